// The serial console in the browser: xterm.js over the console subresource (raw bytes in binary frames).
import { useEffect, useRef, useState } from "preact/hooks";
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { streamURL } from "./api.js";

export const PROTOCOLS = ["plain.kubevirt.io"];
// Keys go to the guest while a console has focus, Tab included; this one gives the focus back to the page.
export const LEAVE_KEY = "Ctrl+]";
export const isLeaveKey = (e) => e.type === "keydown" && e.ctrlKey && (e.key === "]" || e.code === "BracketRight");

export function SerialConsole({ namespace, name }) {
  const host = useRef(null);
  const status = useRef(null);
  const [state, setState] = useState("Connecting…");
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    const term = new Terminal({ convertEol: false, cursorBlink: true, scrollback: 2000, fontSize: 14,
      screenReaderMode: true });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.attachCustomKeyEventHandler((e) => {
      if (!isLeaveKey(e)) return true;
      term.blur();
      status.current.focus();
      return false;
    });
    term.open(host.current);
    fit.fit();
    const onResize = () => fit.fit();
    addEventListener("resize", onResize);
    const ws = new WebSocket(streamURL(namespace, name, "console"), PROTOCOLS);
    ws.binaryType = "arraybuffer";
    const encoder = new TextEncoder();
    ws.onopen = () => { setState("Connected"); term.focus(); };
    ws.onmessage = (event) => term.write(typeof event.data === "string" ? event.data : new Uint8Array(event.data));
    ws.onclose = (event) => setState(event.code === 1000 ? "The console closed" :
      "Disconnected (the VM may have stopped, or you may not open its console)");
    const input = term.onData((data) => ws.readyState === WebSocket.OPEN && ws.send(encoder.encode(data)));
    return () => {
      input.dispose();
      removeEventListener("resize", onResize);
      ws.close();
      term.dispose();
    };
  }, [namespace, name, attempt]);
  return (
    <div class="pane">
      <p class="pane-status" role="status" aria-live="polite" tabIndex={-1} ref={status}>
        Serial console: {state} <span class="muted">({LEAVE_KEY} leaves the console)</span>{" "}
        {state !== "Connected" && state !== "Connecting…" && (
          <button type="button" onClick={() => { setState("Connecting…"); setAttempt(attempt + 1); }}>Reconnect</button>
        )}
      </p>
      <div class="terminal" ref={host} data-testid="serial-console" aria-label={`Serial console of ${name}`} />
    </div>
  );
}
