"""PNG plots and a markdown summary of a density run (bench/bench_density.py's data), with matplotlib.

- cdf.png: the CDF of create -> Running per round, the floor's domain start as a line;
- stages.png: a stacked bar per round of the median time each startup stage took;
- memory.png: launcher-side memory per VM beyond the guest (RSS and PSS of launcher, libvirtd, QEMU), and the
  floor's (libvirtd + QEMU on the host);
- summary.md: the figures as tables, the ratios to the floor, and the plots.
"""
from __future__ import annotations

from pathlib import Path

STAGE_COLORS = {
    "VMICreated": "#8c564b", "PodCreated": "#e377c2", "PodScheduled": "#7f7f7f", "ContainersStarted": "#bcbd22",
    "LauncherReady": "#17becf", "DomainDefined": "#1f77b4", "DomainStarted": "#ff7f0e", "Running": "#2ca02c",
    "FirstConsoleOutput": "#d62728",
}
PARTS = ("launcher", "libvirtd", "qemu")


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def cdf(data: dict, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for result in data["rounds"]:
        times = sorted(v["running"] for v in result["vms"].values() if v["running"] is not None)
        if len(times) < 2:
            continue
        fractions = [(i + 1) / result["count"] for i in range(len(times))]
        ax.step([0] + times, [0] + fractions, where="post", label=f"{result['count']} VMs")
    floor = data["floor"]["median"]["running"]
    ax.axvline(floor, color="black", linestyle=":", label=f"floor {floor:.2f}s")
    ax.axvline(10, color="grey", linestyle="--", linewidth=0.8)
    ax.axvline(20, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("seconds from VM create to VMI Running")
    ax.set_ylabel("fraction of VMs Running")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title("create -> Running, VMs created at once on one 2-core node (TCG)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def stages(data: dict, path: Path) -> None:
    plt = _pyplot()
    summaries = [s for s in data["summaries"] if s["stage_median"]]
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.7 * max(len(summaries), 1)))
    labels = []
    seen = set()
    for row, summary in enumerate(summaries):
        left = 0.0
        for stage, seconds in summary["stage_median"].items():
            ax.barh(row, seconds, left=left, color=STAGE_COLORS.get(stage, "#999999"),
                    label=stage if stage not in seen else None, edgecolor="white", linewidth=0.5)
            seen.add(stage)
            left += seconds
        labels.append(f"{summary['count']} VMs")
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("median seconds per stage, from VM create (each segment ends at its stage)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=5, fontsize=8, frameon=False)
    ax.set_title("where a start spends its time")
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def memory(data: dict, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    bars = []
    for summary in data["summaries"]:
        if summary["memory_mib"]["rss_kib"]["qemu"] is None:
            continue
        for kind in ("rss_kib", "pss_kib"):
            bars.append((f"{summary['count']} VMs\n{kind[:3].upper()}", summary["memory_mib"][kind]))
    floor = data["floor"]["memory_mib"]
    for kind in ("rss_kib", "pss_kib"):
        bars.append((f"floor\n{kind[:3].upper()}", {"launcher": 0.0, **floor[kind]}))
    colors = {"launcher": "#1f77b4", "libvirtd": "#ff7f0e", "qemu": "#2ca02c"}
    for x, (_, parts) in enumerate(bars):
        bottom = 0.0
        for part in PARTS:
            value = parts.get(part) or 0.0
            ax.bar(x, value, bottom=bottom, color=colors[part], label=part if x == 0 else None)
            bottom += value
        ax.text(x, bottom + 1, f"{bottom:.0f}", ha="center", fontsize=8)
    ax.axhline(100, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xticks(range(len(bars)), [b[0] for b in bars], fontsize=8)
    ax.set_ylabel("MiB per VM beyond the guest's RAM (median)")
    ax.legend()
    ax.set_title("launcher-side memory per VM")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _f(value, unit="s"):
    return "-" if value is None else f"{value:.2f}{unit}"


def markdown(data: dict) -> str:
    floor = data["floor"]["median"]
    lines = [f"# VM start density ({data['when']})", "",
             f"One 2-core node, TCG, the demo VM (128Mi), VMs created at once; KubeVirt cpuAllocationRatio "
             f"{data['cpu_allocation_ratio']}. Floor: the same guest started by a bare libvirtd on the host "
             f"(median of {len(data['floor']['runs'])}): domain running {floor['running']:.2f}s, first console "
             f"output {floor['first_output']:.2f}s.", "",
             "| VMs | Running | create->Running P50 | P95 | max | P50/floor | first output P50 | P95 | P50/floor |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in data["summaries"]:
        ratio = lambda v, base: "-" if v is None else f"{v / base:.1f}x"  # noqa: E731
        lines.append(f"| {s['count']} | {s['running']}" + (f" ({s['unschedulable']} unschedulable)"
                                                           if s["unschedulable"] else "")
                     + f" | {_f(s['p50'])} | {_f(s['p95'])} | {_f(s['max'])} | {ratio(s['p50'], floor['running'])}"
                     f" | {_f(s['first_output_p50'])} | {_f(s['first_output_p95'])}"
                     f" | {ratio(s['first_output_p50'], floor['first_output'])} |")
    stages_seen = []
    for s in data["summaries"]:
        stages_seen += [k for k in s["stage_median"] if k not in stages_seen]
    lines += ["", "Median seconds per stage (the time from the stage before it):", "",
              "| VMs | " + " | ".join(stages_seen) + " |", "| --- |" + " --- |" * len(stages_seen)]
    for s in data["summaries"]:
        lines.append(f"| {s['count']} | " + " | ".join(_f(s["stage_median"].get(k)) for k in stages_seen) + " |")
    lines += ["", "Launcher-side memory per VM beyond the guest's RAM (median MiB):", "",
              "| VMs | launcher | libvirtd | QEMU | RSS total | PSS total |", "| --- | --- | --- | --- | --- | --- |"]
    for s in data["summaries"]:
        rss, pss = s["memory_mib"]["rss_kib"], s["memory_mib"]["pss_kib"]
        if rss["qemu"] is None:
            continue
        lines.append(f"| {s['count']} | {rss['launcher']:.1f} | {rss['libvirtd']:.1f} | {rss['qemu']:.1f} | "
                     f"{sum(rss[p] for p in PARTS):.1f} | {sum(pss[p] for p in PARTS):.1f} |")
    fm = data["floor"]["memory_mib"]
    lines.append(f"| floor | - | {fm['rss_kib']['libvirtd']:.1f} | {fm['rss_kib']['qemu']:.1f} | "
                 f"{sum(fm['rss_kib'].values()):.1f} | {sum(fm['pss_kib'].values()):.1f} |")
    lines += ["", "API writes per VMI (kube-apiserver's apiserver_request_total, every client):", ""]
    for s in data["summaries"]:
        lines.append(f"- {s['count']} VMs: " + ", ".join(f"{k} {v}" for k, v in s["writes_per_vmi"].items()))
    lines += ["", "![create -> Running CDF](cdf.png)", "", "![stages](stages.png)", "", "![memory](memory.png)", ""]
    return "\n".join(lines)


def write_all(data: dict, directory: Path) -> None:
    cdf(data, directory / "cdf.png")
    stages(data, directory / "stages.png")
    memory(data, directory / "memory.png")
    (directory / "summary.md").write_text(markdown(data))
