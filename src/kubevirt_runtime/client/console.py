"""Scripted serial-console sessions: send text, expect regular expressions (shared by virtctl and vm_console).

    session = ConsoleSession(connection)     # recv(timeout) -> bytes | str, send(bytes), close()
    session.send("uname -r\\n")
    match = session.expect(r"(\\d+\\.\\d+\\S*)", timeout=30)    # re.Match, or ExpectTimeout / ConsoleClosed
    session.transcript                        # everything received, decoded as UTF-8

An expectation searches only what arrived after the previous match, and after the last send: text the console
replayed from before (virt-handler replays recent output to a new client) or printed before a command was typed
cannot satisfy the expectation meant for that command's answer. A step's timeout covers the whole step.

    run_steps(session, steps, default_timeout) -> [{"send", "expect", "matched", "groups", "named"}, ...]

runs [{"expect": regex, "send": text, "timeout": s, "newline": bool}, ...]: a step sends first (text plus "\\n"
unless newline is false) and then expects.
"""
from __future__ import annotations

import codecs
import re
import time

NEWLINE = "\n"

try:
    from websockets.exceptions import ConnectionClosed as _WebSocketClosed
except ImportError:  # a session over another connection type
    _WebSocketClosed = EOFError
_CLOSED = (_WebSocketClosed, EOFError, OSError)


class ConsoleError(Exception):
    pass


class ExpectTimeout(ConsoleError):
    def __init__(self, pattern: str, timeout: float, step: int | None = None):
        where = f"step {step + 1}: " if step is not None else ""
        super().__init__(f"{where}{pattern!r} did not appear within {timeout:g}s")
        self.pattern, self.timeout, self.step = pattern, timeout, step


class ConsoleClosed(ConsoleError):
    pass


class ConsoleSession:
    def __init__(self, connection, clock=time.monotonic):
        self.conn = connection
        self.clock = clock
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.transcript = ""
        self.cursor = 0  # expectations search transcript[cursor:]

    def send(self, text: str) -> None:
        self.drain()
        self.cursor = len(self.transcript)
        self.conn.send(text.encode())

    def drain(self, quiet: float = 0.05, limit: float = 2.0) -> None:
        """Takes in what already arrived (until the console is quiet for `quiet` seconds, at most `limit`), so
        it counts as output from before what is sent next."""
        deadline = self.clock() + limit
        while self.clock() < deadline and self._receive(quiet):
            pass

    def _receive(self, timeout: float) -> bool:
        """Appends what arrives within timeout; False when nothing did."""
        try:
            data = self.conn.recv(timeout=max(timeout, 0.001))
        except TimeoutError:
            return False
        except _CLOSED as exc:
            raise ConsoleClosed(f"the console closed: {exc}") from None
        if data is None:
            raise ConsoleClosed("the console closed")
        self.transcript += self._decoder.decode(data) if isinstance(data, bytes) else data
        return True

    def expect(self, pattern: str, timeout: float, step: int | None = None) -> re.Match:
        regex = re.compile(pattern, re.MULTILINE)
        deadline = self.clock() + timeout
        while True:
            match = regex.search(self.transcript, self.cursor)
            if match:
                self.cursor = match.end()
                return match
            left = deadline - self.clock()
            if left <= 0:
                raise ExpectTimeout(pattern, timeout, step)
            self._receive(left)


def run_steps(session: ConsoleSession, steps: list[dict], default_timeout: float) -> list[dict]:
    results = []
    for index, step in enumerate(steps):
        outcome = {"send": step.get("send"), "expect": step.get("expect"), "matched": None, "groups": [], "named": {}}
        if step.get("send") is not None:
            newline = NEWLINE if step.get("newline", True) else ""
            session.send(step["send"] + newline)
        if step.get("expect") is not None:
            timeout = step.get("timeout")
            match = session.expect(step["expect"], default_timeout if timeout is None else timeout, index)
            outcome.update(matched=match.group(0), groups=list(match.groups()), named=match.groupdict())
        results.append(outcome)
    return results
