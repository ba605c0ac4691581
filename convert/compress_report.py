"""What `python -m convert.compress` shows of a compression: the per-tensor size table (printed, and in
report.md) and the printed summary of sizes, arenas and board verdicts. It reads only the "compression"
section of model.json, so a written artifact renders the same as a fresh one.
"""

from __future__ import annotations

from pathlib import Path

SIZE_HEADER = ["tensor", "shape", "max distinct/channel", "bits", "int8 B", "LUT B"]
FORMAT_HEADER = ["tensor", "role", "shape", "raw B", "LUT B", "prune B", "Huffman B", "format", "after B"]


def size_header(plans: list) -> list[str]:
    return FORMAT_HEADER if plans and hasattr(plans[0], "sizes") else SIZE_HEADER


def size_rows(plans: list, reasons: bool = False) -> list[list[str]]:
    from convert.preflight import short_name

    rows = []
    if plans and hasattr(plans[0], "sizes"):  # convert.decode_formats.plan.FormatPlan
        for p in plans:
            sizes = [f"{p.sizes[m]:,}" if m in p.sizes else "-" for m in ("lut", "prune", "huffman")]
            after = f"{p.bytes_after:,}" if p.compress else "(kept)"
            rows.append([short_name(p.name), p.role, "x".join(map(str, p.shape)), f"{p.bytes_before:,}", *sizes, p.method or "-", after])
            rows[-1] += [p.reason] if reasons else []
        return rows
    for p in plans:
        bits = str(p.bits) if p.bits is not None else "-"
        after = f"{p.bytes_after:,}" if p.compress else "(kept)"
        rows.append([short_name(p.name), "x".join(map(str, p.shape)), str(p.max_unique), bits, f"{p.bytes_before:,}", after])
        rows[-1] += [p.reason] if reasons else []
    return rows


def text_table(header: list[str], rows: list[list[str]], left: tuple[int, ...] = (0,)) -> str:
    """Columns padded to their widest cell; the `left` columns (names, reasons) left-aligned, numbers right."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(row):
        cells = zip(row, widths, strict=True)
        return "  ".join(str(c).ljust(w) if i in left else str(c).rjust(w) for i, (c, w) in enumerate(cells)).rstrip()

    return "\n".join(line(row) for row in [header, *rows])


def render_markdown(artifact: dict) -> str:
    """The report's LUT-compression section."""
    from convert.report import markdown_table

    c = artifact["compression"]
    src = c["source_artifact"]
    plans = [plan_from_dict(t) for t in c["tensors"]]
    rows = size_rows(plans, reasons=True)
    title = "LUT weight compression" if c.get("format", "lut") == "lut" else f"Weight compression: TFLM DECODE formats ({c['format']})"
    lines = [f"## {title}", ""]
    decoded = c["check"].get("decoded_tensors")
    decoded_note = f"; {decoded['tensors']} decoded tensors equal to the originals." if decoded else "."
    lines += [
        f"{c['tensors_compressed']} of {len(c['tensors'])} tensors compressed: weights {c['weight_bytes_before']:,} -> "
        f"{c['weight_bytes_after']:,} B, model.tflite {c['tflite_bytes_before']:,} -> {c['tflite_bytes_after']:,} B, "
        f"host arena {src['arena_total']:,} -> {artifact['arena']['total']:,} B. Source artifact `{src['path']}` "
        f"(SHA-256 {src['sha256'][:16]}...). Outputs bit-identical to it on {c['check']['images']} images "
        f"of {c['check']['data']['source']}" + decoded_note,
        "",
    ]
    lines += split_lines(c.get("split_filters") or {}, c.get("fitted_to_board"))
    header = size_header(plans)
    left = 3 if header is FORMAT_HEADER else 2  # the name columns; then the sizes, then the note
    lines += markdown_table(header + ["note"], rows, "l" * left + "r" * (len(header) - left) + "l")
    return "\n".join(lines)


def split_lines(split: dict, board: str | None) -> list[str]:
    """The report's sentence on layers split to fit the board (`--split-filters`), or nothing."""
    if not split:
        return []
    from convert.preflight import short_name

    layers = ", ".join(f"{short_name(name)} into {entry['pieces']}" for name, entry in split.items())
    return [
        f"Split to fit {board}: {len(split)} layer(s) along their output channels ({layers}), so that DECODE expands one "
        "piece of the filter at a time; the pieces' outputs are concatenated, the same bytes as the unsplit layer's.",
        "",
    ]


def print_summary(artifact: dict, out: Path) -> None:
    from convert import boards

    c = artifact["compression"]
    src = c["source_artifact"]
    plans = [plan_from_dict(t) for t in c["tensors"]]
    rows = size_rows(plans)
    print(text_table(size_header(plans), rows, left=(0, 1) if size_header(plans) is FORMAT_HEADER else (0,)))
    before, after = c["tflite_bytes_before"], c["tflite_bytes_after"]
    weights = (c["weight_bytes_before"], c["weight_bytes_after"])
    print(f"weights      {weights[0]:>10,} -> {weights[1]:>10,} B ({c['tensors_compressed']} of {len(rows)} tensors compressed)")
    print(f"model.tflite {before:>10,} -> {after:>10,} B ({100 * (after - before) / before:+.1f}%)")
    arena = (src["arena_total"], artifact["arena"]["total"])
    print(f"arena (host) {arena[0]:>10,} -> {arena[1]:>10,} B (a layer's decoded weights live in it while the layer runs)")
    print(f"arena (fw)   {src['arena_bytes_for_firmware']:>10,} -> {artifact['arena_bytes_for_firmware']:>10,} B")
    for line in split_lines(c.get("split_filters") or {}, c.get("fitted_to_board"))[:1]:
        print(line)
    for verdict in artifact["board"]["verdicts"]:
        print(f"  {verdict['board']:<14} {boards.verdict_text(verdict)}")
    print(f"{out}: outputs bit-identical to the source on {c['check']['images']} images ({c['check']['data']['source']})")


def plan_from_dict(entry: dict):
    """A tensor's plan again from its model.json entry (a FormatPlan when it has per-format sizes, else a TensorPlan)."""
    from convert.decode_formats.plan import FormatPlan
    from convert.lut import TensorPlan

    if "sizes" in entry:
        return FormatPlan(**{k: v for k, v in entry.items() if k != "bytes_after"})
    return TensorPlan(**{k: v for k, v in entry.items() if k != "bytes_after"})
