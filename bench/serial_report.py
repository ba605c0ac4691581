"""The serial benchmark's report files: serial.json (everything), serial.md (read in a minute), serial.png
(latency distribution, per-op bars, memory bars). `write(out, summary) -> {"json", "markdown", "png"}`."""

from __future__ import annotations

from pathlib import Path


def _fmt(value, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def markdown(summary: dict) -> str:
    a = summary["artifact"]
    lines = [
        f"# Serial benchmark: {a['name']}",
        "",
        f"{summary['dataset']['images']} test images of {summary['dataset']['name']} "
        f"(fingerprint {summary['dataset']['fingerprint'][:12]}),"
        f" {summary['warmup']} warm-up inferences; model SHA-256 `{a['model_sha256'][:16]}`, {summary['macs'] or 0:,} MACs; "
        f"git {summary['git_sha'][:12]}; {summary['created']}.",
        "",
        "| board | status | images | top-1 | bit-identical to TFLM host | max LSB | median | p99 | MAC/cycle | upload |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for b in summary["boards"]:
        d = b.get("device") or {}
        lat = b.get("latency") or {}
        us = lat.get("us") or {}
        lsb = b.get("host_lsb") or {}
        up = b.get("upload") or {}
        rate = f"{_fmt(up.get('bytes_per_s'), 0)} B/s" + (f" ({up['line_use']:.0%} of the line)" if up.get("line_use") else "")
        lines.append(
            f"| {d.get('board', b['port'])} | {b['status']} | {b.get('completed', 0)} | {_fmt((b.get('accuracy') or {}).get('top1'), 3)} "
            f"| {lsb.get('bit_identical', 'n/a')}/{b.get('completed', 0)} | {lsb.get('max_abs_diff_lsb', 'n/a')} "
            f"| {_fmt(us.get('median'))} us | {_fmt(us.get('p99'))} us | {_fmt(lat.get('mac_per_cycle'), 3)} | {rate} |"
        )
    lines.append("")
    for b in summary["boards"]:
        d = b.get("device") or {}
        lines.append(f"## {d.get('board', b['port'])} ({b['port']})")
        if b["status"] != "ok":
            lines += ["", f"**{b['status']}**: {b['error']}", ""]
        if d:
            lines += [
                "",
                f"- clock {d['clock_hz']:,} Hz, timer {d['timer_source']} at {d['tick_hz']:,} Hz, kernels {d['kernels']}, "
                f"firmware {d['firmware_git_sha'][:12]} ({d['compiler']}; {d['build_flags']})",
                f"- arena {d['arena_bytes']:,} bytes, {d['arena_used_bytes']:,} used (as the device reports)",
            ]
        lat = b.get("latency") or {}
        if lat:
            us = lat.get("us", {})
            lines.append(
                f"- latency ({lat['unit_note']}): mean {_fmt(us.get('mean'))} us, median {_fmt(us.get('median'))}, "
                f"p90 {_fmt(us.get('p90'))}, p99 {_fmt(us.get('p99'))}, min {_fmt(us.get('min'))}, max {_fmt(us.get('max'))}, "
                f"std {_fmt(us.get('std'))}; mean {lat['ticks']['mean']:,.0f} ticks"
            )
        for pair in b.get("parity") or []:
            if "lsb" in pair:
                lines.append(
                    f"- {pair['a']} vs {pair['b']}: {pair['lsb']['bit_identical']} bit-identical, max |diff| "
                    f"{pair['lsb']['max_abs_diff_lsb']} LSB, {pair['prediction_flips']} flips"
                )
            elif "float" in pair:
                lines.append(
                    f"- {pair['a']} (float) vs {pair['b']}: top-1 agreement {pair['top1_agreement']:.3f}, "
                    f"{pair['prediction_flips']} flips, cos {pair['float']['cos']:.4f}"
                )
        link = b.get("link") or {}
        if link:
            lines.append(
                f"- link: {link['requests']:,} requests, {link['retries']} retries, {link['damaged_frames']} damaged frames, "
                f"{b.get('resets', 0)} resets survived"
            )
        if b.get("profile"):
            top = sorted(b["profile"], key=lambda r: -r["ticks"])[:5]
            lines.append("- slowest ops: " + ", ".join(f"{r['tag']} {r['ticks']:,}" for r in top))
        elif b["status"] == "ok":
            lines.append("- per-op profile: none (the device has no profiler)")
        lines.append("")
    memory = summary.get("memory")
    if memory:
        lines += [
            "## Memory (firmware ELF and map)",
            "",
            "flash: " + ", ".join(f"{k} {v:,}" for k, v in memory["flash"].items()) + f"; total {memory['flash_total']:,} bytes",
            "",
            "RAM: " + ", ".join(f"{k} {v:,}" for k, v in memory["ram"].items()) + f"; total {memory['ram_total']:,} bytes",
            "",
        ]
    return "\n".join(lines) + "\n"


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for b in summary["boards"]:
        d = b.get("device") or {}
        ticks = b.get("ticks")
        if ticks and d.get("tick_hz"):
            axes[0].hist([t * 1e6 / d["tick_hz"] for t in ticks], bins=30, alpha=0.6, label=d.get("board", b["port"])[:30])
    axes[0].set(title="Invoke() latency", xlabel="microseconds", ylabel="images")
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=7)
    profile = next((b["profile"] for b in summary["boards"] if b.get("profile")), None)
    if profile:
        axes[1].barh(range(len(profile)), [r["ticks"] for r in profile])
        axes[1].set_yticks(range(len(profile)), [r["tag"] for r in profile], fontsize=5)
        axes[1].invert_yaxis()
    axes[1].set(title="per-op ticks (last inference)" if profile else "per-op profile: not available", xlabel="ticks")
    memory = summary.get("memory")
    if memory:
        for row, (name, parts) in enumerate((("flash", memory["flash"]), ("RAM", memory["ram"]))):
            left = 0
            for key, value in parts.items():
                axes[2].barh(row, value, left=left, label=f"{name} {key}")
                left += value
        axes[2].set_yticks([0, 1], ["flash", "RAM"])
        axes[2].legend(fontsize=6)
    axes[2].set(title="memory (bytes)" if memory else "memory: no --elf given")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(out: Path, summary: dict) -> dict:
    from model.provenance import write_json

    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": str(out / "serial.json"), "markdown": str(out / "serial.md"), "png": str(out / "serial.png")}
    plot(summary, out / "serial.png")
    (out / "serial.md").write_text(markdown(summary))
    clean = {**summary, "paths": paths}
    write_json(out / "serial.json", clean)
    return paths
