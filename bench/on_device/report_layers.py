"""The per-layer part of serial.md: each profiled board's units per layer, joined with the .tflite's operators
(bench.on_device.layers.join_profile rows), and the per-op profiler's own cost."""

from __future__ import annotations

from bench.on_device.layers import truncation
from bench.on_device.report_format import DASH, _board, _eff, _int, _pct, _short


def layer_boards(summary: dict) -> list[dict]:
    """The boards with a per-layer profile (serial.md's table and serial.png's layer panels show these)."""
    return [b for b in summary["boards"] if b.get("layers")]


def layer_markdown(summary: dict) -> list[str]:
    """The per-layer table of every board in `summary["boards"]` with `layers` (bench.on_device.layers.join_profile rows),
    `latency` and `device` (kernels, board): for serial.md, and for tests/test_mcu_qemu_kernels.py's report."""
    return _layer_table(summary)


def _layer_table(summary: dict) -> list[str]:
    boards = layer_boards(summary)
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
    """The per-op profiler's own cost on each board that measured it (bench.on_device.layers.profiler_cost): the latency
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
