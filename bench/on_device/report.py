"""The serial benchmark's report files: serial.json (everything), serial.md (read in a minute), serial.png
(latency distribution, memory against the board's capacity, the slowest layers, MACs per unit of every
convolution). `write(out, summary) -> {"json", "markdown", "png"}`; `markdown` and `plot` redraw from the JSON.

Conventions: percentages everywhere (top-1 with its Wilson 95 % interval), integers with thousands separators,
the unit and its caveat in each table's header (bench.on_device.latency: emulator instructions are not time; the virtual
device's host time is not device time), layers named after their Keras layers (bench.parity.layers), a failed board's
cells empty ("—") with its status, never a made-up zero.
"""

from __future__ import annotations

from pathlib import Path

from bench.parity.layers import truncation

DASH = "—"
LAYER_BARS = 15  # the per-layer panel shows this many of the slowest layers


# ---- number formats: one of each, used everywhere ----


def _int(value) -> str:
    return DASH if value is None else f"{value:,.0f}"


def _num(value, digits: int = 2) -> str:
    return DASH if value is None else f"{value:,.{digits}f}"


def _eff(value) -> str:
    """MACs per instruction or cycle: three decimals (a reference-kernel layer does 0.012)."""
    return _num(value, 3)


def _pct(value, digits: int = 2) -> str:
    return DASH if value is None else f"{100 * value:.{digits}f}%"


def _ci(interval) -> str:
    return DASH if not interval else f"{100 * interval[0]:.1f}–{100 * interval[1]:.1f}%"


def _bytes(value) -> str:
    return DASH if value is None else f"{value:,} B"


def _capacity(value: int) -> str:
    return f"{value // (1024 * 1024)} MiB" if value % (1024 * 1024) == 0 else f"{value // 1024:,} KiB"


def _board(b: dict) -> str:
    return (b.get("device") or {}).get("board") or b["port"]


def _short(b: dict) -> str:
    return _board(b).split(" (")[0]


def latency_text(lat: dict) -> str:
    """One run's median `Invoke()` in its honest unit, for a log line or a summary cell."""
    if not lat:
        return DASH
    median = lat["per_inference"]["median"]
    if lat["kind"] == "emulator":
        text = f"{median / 1e6:,.2f} M instructions (QEMU instruction count, not time)"
        if lat.get("macs_per_unit"):
            text += f", {_eff(lat['macs_per_unit'])} MACs/instruction"
        return text
    if lat["kind"] == "cycles":
        clock = f"{lat['clock_hz'] / 1e6:,.0f} MHz"
        return f"{median:,.0f} cycles = {lat['ms']['median']:,.2f} ms at {clock}, {_eff(lat.get('macs_per_unit'))} MACs/cycle"
    if lat["kind"] == "host":
        return f"{lat['ms']['median']:,.2f} ms of host time (virtual device, not a board)"
    return f"{median:,.0f} ticks (unknown timer)"


def estimate_text(lat: dict) -> str:
    est = lat.get("estimate")
    if not est:
        return DASH
    lo, hi = est["ms"]
    return f"{lo:,.0f}–{hi:,.0f} ms"


def _accuracy_rows(summary: dict) -> list[str]:
    images = summary["dataset"]["images"]
    lines = [
        f"## Accuracy and parity: {summary['dataset']['name']}, the same {images:,} test images on every engine",
        "",
        "| board | kernels | status | images | device top-1 | 95% CI (Wilson) | TFLM host top-1, same images "
        "| Keras float top-1, same images | bit-identical to TFLM host | max \\|diff\\| (LSB) | flips vs float |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b in summary["boards"]:
        d = b.get("device") or {}
        acc = b.get("accuracy") or {}
        lsb = b.get("host_lsb") or {}
        device, host, flt = acc.get("device") or {}, acc.get("tflm_host") or {}, acc.get("keras") or {}
        float_flips = next((p["prediction_flips"] for p in b.get("parity") or [] if {p["a"], p["b"]} == {"keras", "device"}), None)
        status = b["status"] if b["status"] == "ok" else f"**{b['status']}**"
        done = b.get("completed", 0)
        identical = f"{lsb['bit_identical']:,}/{done:,}" if lsb else DASH
        lines.append(
            f"| {_board(b)} | {d.get('kernels', DASH)} | {status} | {done:,} | {_pct(device.get('top1'))} | {_ci(device.get('ci95'))} "
            f"| {_pct(host.get('top1'))} | {_pct(flt.get('top1'))} | {identical} | {_int(lsb.get('max_abs_diff_lsb'))} "
            f"| {_int(float_flips)} |"
        )
    lines += [
        "",
        "The references ran on the host on exactly the images the board ran; the interval says where the top-1 of the "
        "whole split may lie, given this sample.",
        "",
    ]
    return lines


def _latency_tables(summary: dict) -> list[str]:
    macs = summary.get("macs")
    lines = []
    by_kind: dict[str, list[dict]] = {}
    for b in summary["boards"]:
        if b.get("latency"):
            by_kind.setdefault(b["latency"]["kind"], []).append(b)
    for kind, boards in by_kind.items():
        first = boards[0]["latency"]
        lines += [f"## Latency of `Invoke()`: {first['unit_label']}", ""]
        if kind == "emulator":
            est = first.get("estimate") or {}
            cpi = est.get("cpi") or [None, None]
            clock = f"{est['clock_hz'] / 1e6:,.0f} MHz" if est else "the board's clock"
            lines += [
                f"| board | kernels | median instructions per inference (QEMU count, not time) | p99 | min–max "
                f"| MACs/instruction ({_int(macs)} MACs) | estimated real-chip latency at {clock}, "
                f"{cpi[0]}–{cpi[1]} cycles/instruction (not measured) |",
                "|---|---|---:|---:|---:|---:|---:|",
            ]
            for b in boards:
                lat, d = b["latency"], b["device"]
                p = lat["per_inference"]
                lines.append(
                    f"| {_board(b)} | {d['kernels']} | {_int(p['median'])} | {_int(p['p99'])} | {_int(p['min'])}–{_int(p['max'])} "
                    f"| {_eff(lat.get('macs_per_unit'))} | {estimate_text(lat)} |"
                )
            lines += [
                "",
                "Virtual time is not board time: with `-icount` QEMU advances its clock a fixed amount per guest instruction "
                "and models no pipeline, flash wait states or caches. "
                f"The timer's own count is kept in serial.json (ticks; {first['unit_note']}). The estimate multiplies the "
                "instruction count by a cycles-per-instruction range (bench.on_device.latency, ESTIMATE_CPI); "
                "only a real board measures it.",
                "",
            ]
        elif kind == "cycles":
            lines += [
                "| board | kernels | median cycles per inference | median ms at the reported clock | p99 ms "
                f"| MACs/cycle ({_int(macs)} MACs) |",
                "|---|---|---:|---:|---:|---:|",
            ]
            for b in boards:
                lat = b["latency"]
                lines.append(
                    f"| {_board(b)} | {b['device']['kernels']} | {_int(lat['per_inference']['median'])} | {_num(lat['ms']['median'])} "
                    f"| {_num(lat['ms']['p99'])} | {_eff(lat.get('macs_per_unit'))} |"
                )
            lines.append("")
        elif kind == "host":
            lines += [
                "| board | median host ms per inference (host time, not a device) | p99 host ms | min–max host ms |",
                "|---|---:|---:|---:|",
            ]
            for b in boards:
                ms = b["latency"]["ms"]
                lines.append(f"| {_board(b)} | {_num(ms['median'])} | {_num(ms['p99'])} | {_num(ms['min'])}–{_num(ms['max'])} |")
            lines += ["", "The virtual device runs the TFLM host interpreter: its figures say nothing about a microcontroller.", ""]
        else:
            lines += ["| board | median ticks | timer |", "|---|---:|---|"]
            for b in boards:
                lines.append(f"| {_board(b)} | {_int(b['latency']['ticks']['median'])} | {b['latency']['unit_note']} |")
            lines.append("")
    return lines


def _layer_boards(summary: dict) -> list[dict]:
    return [b for b in summary["boards"] if b.get("layers")]


def layer_markdown(summary: dict) -> list[str]:
    """The per-layer table of every board in `summary["boards"]` with `layers` (bench.parity.layers.join_profile rows),
    `latency` and `device` (kernels, board): for serial.md, and for tests/test_mcu_qemu_kernels.py's report."""
    return _layer_table(summary)


def _layer_table(summary: dict) -> list[str]:
    boards = _layer_boards(summary)
    lines = []
    for b in summary["boards"]:
        if b.get("layers_error"):
            lines += [f"Per-layer profile of {_board(b)} not joined: {b['layers_error']}.", ""]
        if b.get("profile_dropped"):
            lines += [f"Per-layer profile of {_board(b)} {truncation(b['profile_dropped'])}: its table stops there.", ""]
    lines += _profiler_cost_lines(summary)
    if not boards:
        if any(b["status"] == "ok" for b in summary["boards"]):
            lines += ["## Per layer", "", "No per-layer profile: the device has no profiler (the virtual device has none).", ""]
        return lines
    units = {b["latency"]["unit"] for b in boards}
    unit = units.pop() if len(units) == 1 else "units"
    eff = {"instructions": "MACs/instr.", "cycles": "MACs/cycle"}.get(unit, "MACs/unit")
    cmsis = any("cmsis" in (b["device"].get("kernels") or "").lower() for b in boards)
    head = "| # | layer | op | kernel | output | MACs |"
    rule = "|---:|---|---|---|---|---:|"
    for b in boards:
        head += f" {_short(b)} {b['device']['kernels']}: {unit} | share | {eff} |"
        rule += "---:|---:|---:|"
    if cmsis:
        head += " CMSIS-NN path (from the shapes) |"
        rule += "---|"
    lines += [
        f"## Per layer: {unit} of the last inference (PROFILE), joined with the .tflite's operators",
        "",
        head,
        rule,
    ]
    rows = max((b["layers"] for b in boards), key=len)  # a truncated profile has fewer rows: "not profiled" fills them
    totals = [sum(r["units"] for r in b["layers"]) for b in boards]
    for i, row in enumerate(rows):
        shape = "x".join(map(str, row["output"]))
        cells = f"| {row['index']} | {row['name']} | {row['op']} | {row['kernel'] or DASH} | {shape} | {_int(row['macs'] or None)} |"
        for b, total in zip(boards, totals, strict=True):
            if i >= len(b["layers"]):
                cells += " not profiled | | |"
                continue
            r = b["layers"][i]
            cells += f" {_int(r['units'])} | {_pct(r['units'] / total, 1)} | {_eff(r['macs_per_unit'])} |"
        if cmsis:
            cells += f" {row['cmsis_nn_path'] or DASH} |"
        lines.append(cells)
    sums = "| | **all layers** | | | | " + _int(sum(r["macs"] for r in rows)) + " |"
    for b, total in zip(boards, totals, strict=True):
        invoke = b["latency"]["per_inference"]["median"]
        cut = f", {b['profile_dropped']:,} ops not profiled" if b.get("profile_dropped") else ""
        macs = sum(r["macs"] for r in b["layers"])
        sums += f" **{_int(total)}** ({_pct(total / invoke, 1)} of Invoke(){cut}) | 100% | {_eff(macs / total)} |"
    if cmsis:
        sums += " |"
    lines += [sums, "", "Share: of the layers' sum; the rest of `Invoke()` is the interpreter between operators.", ""]
    return lines


def _profiler_cost_lines(summary: dict) -> list[str]:
    """The per-op profiler's own cost on each board that measured it (bench.parity.layers.profiler_cost): the latency
    figures and the per-layer rows are of Invoke() with the profiler attached."""
    lines = []
    for b in summary["boards"]:
        c = b.get("profiler_cost")
        if c:
            lines.append(
                f"Profiler's own cost on {_board(b)}: one `Invoke()` of the same input takes {_int(c['with'])} {c['unit']} with "
                f"the per-op profiler, {_int(c['without'])} without it: {_int(c['cost'])} {c['unit']} "
                f"({_pct(c['share'], 4) if c['share'] is not None else DASH}); the figures here are with it."
            )
    return [*lines, ""] if lines else []


def _memory_section(summary: dict) -> list[str]:
    memory = summary.get("memory")
    if not memory:
        return []
    regions = memory.get("regions") or {}
    flash_cap = (regions.get("FLASH") or {}).get("length")
    ram_cap = (regions.get("RAM") or {}).get("length")
    lines = ["## Memory: firmware ELF and linker map", ""]
    for title, parts, total, capacity in (
        ("flash", memory["flash"], memory["flash_total"], flash_cap),
        ("RAM", memory["ram"], memory["ram_total"], ram_cap),
    ):
        cap = f" of {_capacity(capacity)}" if capacity else ""
        lines += [f"| {title} part | bytes | KiB | share{cap} |", "|---|---:|---:|---:|"]
        for key, value in parts.items():
            lines.append(f"| {key} | {value:,} | {value / 1024:,.1f} | {_pct(value / capacity, 1) if capacity else DASH} |")
        free = f"; {capacity - total:,} B free" if capacity else ""
        lines += [
            f"| **total** | **{total:,}** | {total / 1024:,.1f} | **{_pct(total / capacity, 1) if capacity else DASH}**{free} |",
            "",
        ]
    if memory.get("platformio_flash") is not None:
        extra = memory["flash_total"] - memory["platformio_flash"]
        lines.append(
            f"Flash total: what the ELF's flash sections hold ({', '.join(memory.get('flash_sections', {}))}). PlatformIO's "
            f"`Flash: used` line counts {memory['platformio_flash']:,} B: it leaves out "
            + (f"{extra:,} B of .init_array/.fini_array (its SIZEPROGREGEXP)" if extra else "nothing")
            + ". The parts come from the linker map"
            + (
                f", which lists constant strings before the linker merges duplicates: {memory['merged_strings']:,} B fewer in the ELF, "
                "taken off the parts that hold them."
                if memory.get("merged_strings")
                else "."
            )
        )
        lines.append("")
    lines += [f"ELF `{memory.get('elf', '')}`, map `{memory.get('map', '')}`.", ""]
    return lines


def _place_lines(t: dict) -> list[str]:
    """A labgrid place's part of a board's details: where it came from and that it was given back."""
    if t.get("scheme") != "labgrid":
        return []
    line = f"- labgrid place `{t['place']}` on coordinator {t['coordinator']}"
    if t.get("exporter"):
        identity = ", ".join(f"{k} {v}" for k, v in sorted(t.get("identity", {}).items())) or "none declared"
        serial = t.get("serial") or {}
        line += (
            f", acquired by {t.get('acquired_by')} in {t.get('acquire_s', 0):.1f} s; exporter {t['exporter']}, "
            f"serial {serial.get('protocol')}://{serial.get('host')}:{serial.get('port')}; identity (resource metadata): {identity}"
        )
    if t.get("identity_agrees") is False:
        line += f"; **the place declares board {t['identity'].get('board')!r}, another than the device reports**"
    if "released" in t:
        line += f"; {'released' if t['released'] else 'NOT released (see labgrid-client -p ' + t['place'] + ' show)'}"
    return [line]


def _board_details(summary: dict) -> list[str]:
    lines = ["## Boards", ""]
    for b in summary["boards"]:
        d = b.get("device") or {}
        lines.append(f"### {_board(b)} (`{b['port']}`)")
        lines.append("")
        if b["status"] != "ok":
            lines += [f"**{b['status']}**: {b['error']}", ""]
        lines += _place_lines(b.get("transport") or {})
        if d:
            lines += [
                f"- kernels {d['kernels']}; clock {d['clock_hz']:,} Hz; timer {d['timer_source']} at {d['tick_hz']:,} Hz",
                f"- firmware {d['firmware_git_sha'][:12]} ({d['compiler']}; {d['build_flags']})",
                f"- arena {d['arena_bytes']:,} B, {d['arena_used_bytes']:,} B used (as the device reports)",
            ]
        lat = b.get("latency") or {}
        if lat:
            p, unit = lat["per_inference"], lat["unit"]
            if lat["kind"] == "host":
                p, unit = lat["ms"], "host ms"
            d = 2 if lat["kind"] == "host" else 0
            lines.append(
                f"- `Invoke()` in {unit}: mean {_num(p['mean'], d)}, median {_num(p['median'], d)}, p90 {_num(p['p90'], d)}, "
                f"p99 {_num(p['p99'], d)}, min {_num(p['min'], d)}, max {_num(p['max'], d)}, std {_num(p['std'], d)} ({lat['unit_note']})"
            )
        for pair in b.get("parity") or []:
            if "lsb" in pair:
                lines.append(
                    f"- {pair['a']} vs {pair['b']}: {pair['lsb']['bit_identical']:,} bit-identical, max |diff| "
                    f"{pair['lsb']['max_abs_diff_lsb']:,} LSB, {pair['prediction_flips']:,} flips"
                )
            elif "float" in pair:
                lines.append(
                    f"- {pair['a']} (float) vs {pair['b']}: top-1 agreement {_pct(pair['top1_agreement'])}, "
                    f"{pair['prediction_flips']:,} flips, cosine {pair['float']['cos']:.4f}"
                )
        up = b.get("upload") or {}
        if up.get("bytes_per_s"):
            share = f" ({_pct(up['line_use'], 0)} of the line)" if up.get("line_use") else " (a socket: no line rate)"
            via = f" over {b['transport']['kind']}" if b.get("transport") else ""
            lines.append(f"- upload {up['bytes_per_s']:,.0f} B/s{share}{via}")
        link = b.get("link") or {}
        if link:
            lines.append(
                f"- link: {link['requests']:,} requests, {link['retries']:,} retries, {link['damaged_frames']:,} damaged frames, "
                f"{b.get('resets', 0):,} resets survived; {b.get('seconds', 0):,.1f} s for the run"
            )
        lines.append("")
    return lines


def title(summary: dict) -> str:
    boards = ", ".join(dict.fromkeys(_board(b) for b in summary["boards"]))
    kernels = ", ".join(dict.fromkeys((b.get("device") or {}).get("kernels") or "?" for b in summary["boards"]))
    return f"{summary['artifact']['name']} on {boards}, kernels {kernels}"


def verdict(summary: dict) -> str:
    parts = []
    for b in summary["boards"]:
        if b["status"] != "ok":
            parts.append(f"{_short(b)}: {b['status']}, no result")
            continue
        lsb, done = b["host_lsb"], b["completed"]
        same = "bit-identical to" if lsb["bit_identical"] == done else "NOT bit-identical to"
        parts.append(f"{_short(b)} ({b['device']['kernels']}): {lsb['bit_identical']:,}/{done:,} outputs {same} the TFLM host interpreter")
    return "; ".join(parts) + "."


def markdown(summary: dict) -> str:
    a, ds = summary["artifact"], summary["dataset"]
    spread = (
        f"{ds['images']:,} of {ds['split_images']:,}" if ds.get("split_images", ds["images"]) != ds["images"] else f"all {ds['images']:,}"
    )
    lines = [
        f"# Serial benchmark: {title(summary)}",
        "",
        f"{spread} test images of {ds['name']} (evenly spread; fingerprint {ds['fingerprint'][:12]}), {summary['warmup']:,} warm-up "
        f"inferences; model `{a['name']}` SHA-256 `{a['model_sha256'][:16]}`, {a.get('model_bytes', 0):,} B, "
        f"{_int(summary.get('macs'))} MACs; git {summary['git_sha'][:12]}; {summary['created']}.",
        "",
        f"**Verdict:** {verdict(summary)}",
        "",
    ]
    lines += _accuracy_rows(summary)
    lines += _latency_tables(summary)
    lines += _layer_table(summary)
    lines += _memory_section(summary)
    lines += _board_details(summary)
    lines += ["![latency, memory and per-layer figures](serial.png)", ""]
    return "\n".join(lines)


# ---- the figure ----


def _latency_panel(ax, summary: dict) -> None:
    """One board: the histogram of its counts (an emulator's are nearly constant: that is the point). Several:
    each board's median with its min-max range, on a log axis when they differ by more than 5x."""
    import numpy as np

    boards = [b for b in summary["boards"] if b.get("ticks") and b.get("latency")]
    if not boards:
        ax.text(0.5, 0.5, "no inference completed", ha="center", va="center")
        ax.set_axis_off()
        return
    kind = boards[0]["latency"]["kind"]
    boards = [b for b in boards if b["latency"]["kind"] == kind]
    unit = {
        "emulator": "M instructions per Invoke() (QEMU count: not time)",
        "cycles": "M cycles per Invoke()",
        "host": "host ms per Invoke() (virtual device: host time)",
    }.get(kind, "M ticks per Invoke() (unknown timer)")
    series = []
    for b in boards:
        lat = b["latency"]
        if kind == "host":
            values = np.asarray(b["ticks"], dtype=np.float64) / lat["ticks"]["median"] * lat["ms"]["median"]
        else:
            values = np.asarray(b["ticks"], dtype=np.float64) / lat["ticks"]["median"] * lat["per_inference"]["median"] / 1e6
        series.append((f"{_short(b)} {b['device']['kernels']}", values))
    if len(series) == 1:
        name, values = series[0]
        from matplotlib.ticker import MaxNLocator

        ax.hist(values, bins=30, color="#4c72b0")
        ax.ticklabel_format(axis="x", style="plain", useOffset=False)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        spread = (values.max() - values.min()) / np.median(values)
        ax.set(
            title=f"Invoke() over {len(values):,} images: {name}, median {np.median(values):,.2f}, spread {100 * spread:.2f}%",
            xlabel=unit,
            ylabel="images",
        )
        return
    medians = [np.median(v) for _, v in series]
    errors = [
        [m - v.min() for m, (_, v) in zip(medians, series, strict=True)],
        [v.max() - m for m, (_, v) in zip(medians, series, strict=True)],
    ]
    y = np.arange(len(series))
    ax.barh(y, medians, xerr=errors, color="#4c72b0", capsize=4)
    for k, m in enumerate(medians):
        ax.text(m, k, f"  {m:,.2f}", va="center", fontsize=9)
    ax.set_yticks(y, [name for name, _ in series])
    ax.invert_yaxis()
    if max(medians) / max(min(medians), 1e-12) > 5:
        ax.set_xscale("log")
    ax.set_xlim(right=max(medians) * 3)
    ax.set(title=f"Invoke(): median and min-max over {len(series[0][1]):,} images per board", xlabel=unit)


def _memory_panel(ax, summary: dict) -> None:
    from matplotlib.patches import Patch

    memory = summary.get("memory")
    if not memory:
        ax.text(0.5, 0.5, "memory: no --elf given", ha="center", va="center")
        ax.set_axis_off()
        return
    regions = memory.get("regions") or {}
    rows = (
        ("flash", memory["flash"], memory["flash_total"], (regions.get("FLASH") or {}).get("length")),
        ("RAM", memory["ram"], memory["ram_total"], (regions.get("RAM") or {}).get("length")),
    )
    colors = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd"]
    handles = []
    k = 0
    for y, (name, parts, total, capacity) in enumerate(rows):
        cap = capacity or total
        left = 0.0
        for key, value in parts.items():
            width = 100 * value / cap
            ax.barh(y, width, left=left, color=colors[k % len(colors)], edgecolor="white", height=0.55)
            handles.append(Patch(color=colors[k % len(colors)], label=f"{name} {key}: {value / 1024:,.1f} KiB"))
            left += width
            k += 1
        label = f"{name}: {total:,} B = {100 * total / cap:.1f}% of {_capacity(cap)}" if capacity else f"{name}: {total:,} B"
        ax.text(0, y - 0.34, label, va="bottom", fontsize=9)
    ax.axvline(100, color="black", linewidth=1.5)
    ax.text(100, 1.45, " 100%", va="center", fontsize=8)
    ax.set_yticks([0, 1], ["flash", "RAM"])
    ax.set_xlim(0, 175)
    ax.set_ylim(1.5, -0.7)
    ax.set_xticks([0, 25, 50, 75, 100])
    ax.legend(handles=handles, fontsize=7, loc="center right", frameon=False)
    ax.set(title="Memory against the board's capacity (linker script regions)", xlabel="% of the region")


def _profiled_boards(ax, summary: dict) -> list[dict]:
    """The boards with a per-layer profile; with none, the panel says so and stays empty."""
    boards = _layer_boards(summary)
    if not boards:
        ax.text(0.5, 0.5, "per-layer profile: not available", ha="center", va="center")
        ax.set_axis_off()
    return boards


def _layers_panel(ax, summary: dict) -> None:
    import numpy as np

    boards = _profiled_boards(ax, summary)
    if not boards:
        return
    unit = boards[0]["latency"]["unit"]
    first = boards[0]["layers"]
    common = min(len(b["layers"]) for b in boards)  # a truncated profile has fewer rows
    order = sorted(range(common), key=lambda i: -first[i]["units"])[:LAYER_BARS]
    y = np.arange(len(order))
    height = 0.8 / len(boards)
    for k, b in enumerate(boards):
        values = [b["layers"][i]["units"] / 1e6 for i in order]
        bars = ax.barh(y + k * height - 0.4 + height / 2, values, height, label=f"{_short(b)} {b['device']['kernels']}")
        for bar, i in zip(bars, order, strict=True):
            eff = b["layers"][i]["macs_per_unit"]
            if eff:
                ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {eff:.3f}", va="center", fontsize=6)
    ax.set_yticks(y, [first[i]["name"] for i in order], fontsize=8)
    ax.invert_yaxis()
    widest = max(b["layers"][i]["units"] for b in boards for i in order) / 1e6
    if len(boards) > 1:
        ax.set_xscale("log")
    ax.set_xlim(right=widest * (8 if len(boards) > 1 else 1.3))  # room for the numbers and the legend
    ax.legend(fontsize=8, loc="lower right")
    eff = {"instructions": "MACs/instruction", "cycles": "MACs/cycle"}.get(unit, "MACs/unit")
    ax.set(
        title=f"The {len(order)} slowest of {len(first)} layers (numbers: {eff})",
        xlabel=f"M {unit} in the layer (last inference)",
    )


def _efficiency_panel(ax, summary: dict) -> None:
    import numpy as np

    boards = _profiled_boards(ax, summary)
    if not boards:
        return
    unit = boards[0]["latency"]["unit"]
    common = min(len(b["layers"]) for b in boards)  # a truncated profile has fewer rows
    convs = [i for i, r in enumerate(boards[0]["layers"][:common]) if r["macs"]]
    x = np.arange(len(convs))
    width = 0.8 / len(boards)
    if len(boards) == 1 and "cmsis" in (boards[0]["device"].get("kernels") or "").lower():
        # One CMSIS-NN build: colour each convolution by the kernel path its shapes select (bench.parity.layers).
        rows = boards[0]["layers"]
        paths = [rows[i]["cmsis_nn_path"] for i in convs]
        families = [p.split(":")[0] + (" " + p[p.index("(") :] if "(" in p else "") for p in paths]
        palette = dict(zip(dict.fromkeys(families), ["#4c72b0", "#dd8452", "#c44e52", "#55a868", "#8172b3"], strict=False))
        for family, color in palette.items():
            picked = [k for k, f in enumerate(families) if f == family]
            ax.bar(x[picked], [rows[convs[k]]["macs_per_unit"] for k in picked], 0.8, color=color, label=f"CMSIS-NN {family}")
    else:
        for k, b in enumerate(boards):
            ax.bar(
                x + k * width - 0.4 + width / 2,
                [b["layers"][i]["macs_per_unit"] for i in convs],
                width,
                label=f"{_short(b)} {b['device']['kernels']}",
            )
    ax.set_xticks(x, [boards[0]["layers"][i]["name"] for i in convs], rotation=90, fontsize=7)
    eff = {"instructions": "MACs per instruction", "cycles": "MACs per cycle"}.get(unit, "MACs per unit")
    values = [b["layers"][i]["macs_per_unit"] for b in boards for i in convs]
    if max(values) / max(min(values), 1e-12) > 10:
        ax.set_yscale("log")  # reference kernels next to CMSIS-NN: both readable
        ax.set_ylim(top=max(values) * 4)  # room for the legend
    else:
        ax.set_ylim(top=max(values) * 1.25)
    ax.set(title=f"{eff}, each convolution in graph order", ylabel=eff)
    ax.legend(fontsize=8)


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(16, 11), gridspec_kw={"height_ratios": [1, 1.35]})
    _latency_panel(axes[0, 0], summary)
    _memory_panel(axes[0, 1], summary)
    _layers_panel(axes[1, 0], summary)
    _efficiency_panel(axes[1, 1], summary)
    ds = summary["dataset"]
    fig.suptitle(f"{title(summary)}\n{ds['images']:,} test images of {ds['name']} · {summary['created'][:10]}", fontsize=13)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
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
