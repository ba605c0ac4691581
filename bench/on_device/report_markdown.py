"""serial.md, read in a minute: the verdict, accuracy and parity, latency in its unit, the per-layer table
(bench.on_device.report_layers), memory against the board's capacity, each board's details. `markdown(summary) -> str`.

Each table's header carries its unit and caveat; a failed board's cells are empty ("—") with its status.
"""

from __future__ import annotations

from bench.on_device.report_format import DASH, _board, _capacity, _ci, _eff, _int, _num, _pct, _short, estimate_text, title
from bench.on_device.report_layers import layer_markdown


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


def _memory_section(summary: dict) -> list[str]:
    memory = summary.get("memory")
    if not memory:
        return []
    regions = memory.get("regions") or {}
    flash_cap = (regions.get("FLASH") or {}).get("length")
    ram_cap = (regions.get("RAM") or {}).get("length")
    lines = ["## Memory: firmware ELF and linker map", ""]
    for region, parts, total, capacity in (
        ("flash", memory["flash"], memory["flash_total"], flash_cap),
        ("RAM", memory["ram"], memory["ram_total"], ram_cap),
    ):
        cap = f" of {_capacity(capacity)}" if capacity else ""
        lines += [f"| {region} part | bytes | KiB | share{cap} |", "|---|---:|---:|---:|"]
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
    lines += layer_markdown(summary)
    lines += _memory_section(summary)
    lines += _board_details(summary)
    lines += ["![latency, memory and per-layer figures](serial.png)", ""]
    return "\n".join(lines)
