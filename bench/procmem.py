"""Memory of processes from /proc, for the benchmarks: RSS, PSS, and QEMU's guest RAM share."""
from pathlib import Path


def rss_kib(pid) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pss_kib(pid) -> int:
    """Proportional set size: shared library pages split among the processes mapping them."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def qemu_breakdown(pid, guest_bytes) -> tuple[int, int]:
    """(guest RAM RSS, TCG code buffer RSS) in KiB, from /proc/<pid>/smaps: the guest's RAM is the anonymous
    mapping of (about) its size, the code buffer the anonymous writable+executable one."""
    guest = code = 0
    size = rss = 0
    perms = path = ""
    entries = []
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5 and not fields[0].endswith(":"):
            if perms:
                entries.append((size, rss, perms, path))
            perms, path = fields[1], fields[5] if len(fields) > 5 else ""
            size = rss = 0
        elif fields[0] == "Size:":
            size = int(fields[1])
        elif fields[0] == "Rss:":
            rss = int(fields[1])
    if perms:
        entries.append((size, rss, perms, path))
    lo, hi = guest_bytes // 1024, guest_bytes // 1024 + 4 * 1024
    for size, rss, perms, path in entries:
        if not path and lo <= size <= hi:
            guest += rss
        elif "x" in perms and "w" in perms and not path:
            code += rss
    return guest, code


def comm(pid) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def pids_in_cgroup(fragment: str) -> list[int]:
    """Processes whose cgroup path contains `fragment` (e.g. a pod uid with '_' for '-')."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if fragment in (entry / "cgroup").read_text():
                found.append(int(entry.name))
        except OSError:
            continue
    return found
