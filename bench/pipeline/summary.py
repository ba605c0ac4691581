"""reports/<name>/summary.md of the main job (bench.pipeline.main_job): one comparable table, read in a minute.

`render(summary) -> str` from the pipeline's summary dict (also written as summary.json). Contract:
- a verdict line first, saying what the run proves and what it does not;
- every top-1 names its dataset, split and image count, with its Wilson 95 % interval;
- the device's top-1 sits beside the Keras float and TFLM host top-1 on the same images (the serial benchmark
  scores both references on exactly the images the device ran), so a small sample cannot make the board look
  better or worse than the host;
- latency in the device's honest unit (bench.on_device.latency: emulator instructions, board cycles, host time), the
  board, its kernels and the firmware's flash and RAM against the board's capacity;
- then the stages with their seconds and the reports' paths.
"""

from __future__ import annotations

from bench.on_device.report_format import DASH, _capacity, _ci, _int, _num, _pct, estimate_text, latency_text
from bench.parity.metrics import wilson_interval

ENGINE_TITLES = {"keras": "Keras float", "litert": "LiteRT reference kernels, int8", "tflm": "TFLM host interpreter, int8"}


def _accuracy_table(stages: dict) -> list[str]:
    lines = [
        "## Top-1, each with its dataset and images",
        "",
        "| engine | runs on | dataset | images | top-1 | 95% CI (Wilson) |",
        "|---|---|---|---:|---:|---:|",
    ]
    parity = stages.get("parity") or {}
    pdata = parity.get("dataset") or {}
    for key, title in ENGINE_TITLES.items():
        top1, correct = (parity.get("top1") or {}).get(key), (parity.get("correct") or {}).get(key)
        if top1 is None:
            continue
        n = pdata.get("images", 0)
        where = f"{pdata.get('name', DASH)}, {pdata.get('split', 'test')} split" + (
            "" if n == pdata.get("split_images", n) else " (evenly spread)"
        )
        lines.append(f"| {title} | host (parity) | {where} | {n:,} | {_pct(top1)} | {_ci(wilson_interval(correct, n) if n else None)} |")
    device = stages.get("device") or {}
    accuracy = device.get("accuracy") or {}
    ddata = device.get("dataset") or {}
    n = device.get("images") or 0
    if accuracy:
        where = f"{ddata.get('name', DASH)}, test split" + ("" if n == ddata.get("split_images", n) else " (evenly spread)")
        for key, title, on in (
            ("keras", "Keras float", "host, the device's images"),
            ("tflm_host", "TFLM host interpreter, int8", "host, the device's images"),
            ("device", f"**{device.get('board_name', 'device')}**, int8", "device"),
        ):
            row = accuracy.get(key)
            if row:
                lines.append(f"| {title} | {on} | {where} | {n:,} | {_pct(row['top1'])} | {_ci(row.get('ci95'))} |")
    lines.append("")
    return lines


def _device_table(device: dict) -> list[str]:
    if device.get("status") != "ok":
        return ["## Device", "", f"**{device.get('status', 'not run')}**: {device.get('summary', '')}", ""]
    lat = device.get("latency") or {}
    info = device.get("board") or {}
    lines = ["## Device", "", "| figure | value |", "|---|---|"]
    lines.append(f"| board | {info.get('board', DASH)}; {device['target']} |")
    lines.append(f"| kernels | {info.get('kernels', DASH)} |")
    lines.append(
        f"| outputs | {device['bit_identical']:,}/{device['images']:,} bit-identical to the TFLM host interpreter "
        f"(max \\|diff\\| {_int(device.get('max_abs_diff_lsb'))} LSB) |"
    )
    if lat:
        lines.append(f"| `Invoke()` per inference, median | {latency_text(lat)} |")
        if lat["kind"] == "emulator":
            est = lat.get("estimate") or {}
            if est:
                cpi = est["cpi"]
                lines.append(
                    f"| estimated real-chip latency | {estimate_text(lat)} at {est['clock_hz'] / 1e6:,.0f} MHz for {cpi[0]}–{cpi[1]} "
                    "cycles per instruction: an estimate, not a measurement |"
                )
    memory = device.get("memory") or {}
    if memory:
        regions = memory.get("regions") or {}
        flash, ram = (regions.get("FLASH") or {}).get("length"), (regions.get("RAM") or {}).get("length")
        flash_text, ram_text = f"{memory['flash_total']:,} B", f"{memory['ram_total']:,} B"
        if flash:
            flash_text += f" of {_capacity(flash)} ({_pct(memory['flash_total'] / flash, 1)})"
        if ram:
            ram_text += f" of {_capacity(ram)} ({_pct(memory['ram_total'] / ram, 1)})"
        lines.append(
            f"| firmware | flash {flash_text}: model {memory['flash']['model']:,} B, TFLM and kernels {memory['flash']['tflm']:,} B; "
            f"RAM {ram_text}, of it the arena {memory['ram']['arena']:,} B |"
        )
    lines.append("")
    return lines


def verdict(summary: dict) -> str:
    stages = summary["stages"]
    parity, device = stages.get("parity") or {}, stages.get("device") or {}
    parts = []
    top1 = parity.get("top1") or {}
    pdata = parity.get("dataset") or {}
    if parity:
        cost = ""
        if top1.get("keras") is not None and top1.get("tflm") is not None:
            points = 100 * (top1["keras"] - top1["tflm"])
            cost = f"int8 costs {points:.2f} points of top-1 against float on {pdata.get('images', 0):,} images"
        parts.append(f"host parity {parity.get('verdict', DASH)}" + (f" ({cost})" if cost else ""))
    if device.get("status") == "ok":
        n, same = device["images"], device["bit_identical"]
        what = "ran" if same == n else "did NOT run"
        where = device.get("board_name", "the device")
        parts.append(f"{where} {what} the model exactly as the TFLM host does ({same:,}/{n:,} outputs bit-identical)")
        acc = device.get("accuracy") or {}
        if acc.get("device") and acc.get("tflm_host"):
            d, h = acc["device"]["top1"], acc["tflm_host"]["top1"]
            relation = "equals" if d == h else "differs from"
            parts.append(f"its {_pct(d)} top-1 on {n:,} images {relation} the host's on the same images ({_pct(h)})")
        lat = device.get("latency") or {}
        if lat.get("kind") == "emulator":
            parts.append("latency is an emulator instruction count, not board time")
        elif lat.get("kind") == "host":
            parts.append("no firmware ran: the virtual device is the host interpreter behind the serial protocol")
    elif device:
        parts.append(f"the device stage failed ({device.get('status')})")
    failed = [name for name, stage in stages.items() if stage.get("exit_status")]
    word = "FAIL" if failed else "PASS"
    return f"**{word}**: " + "; ".join(parts) + "."


def render(summary: dict) -> str:
    stages = summary["stages"]
    device = stages.get("device") or {}
    convert = stages.get("convert") or {}
    lines = [
        f"# {summary['model']}: pipeline summary",
        "",
        verdict(summary),
        "",
        f"git {summary['git_sha'][:12]}, {summary['created']}; int8 model {_int(convert.get('tflite_bytes'))} B "
        f"(`{convert.get('artifact', DASH)}`).",
        "",
    ]
    lines += _accuracy_table(stages)
    if device:
        lines += _device_table(device)
    lines += ["## Stages", "", "| stage | result | seconds |", "|---|---|---:|"]
    for name, stage in stages.items():
        lines.append(f"| {name} | {stage.get('summary') or DASH} | {_num(stage.get('seconds'), 1)} |")
    reports = [f"- {name}: `{stage['report']}`" for name, stage in stages.items() if stage.get("report")]
    if reports:
        lines += ["", "Reports:", *reports]
    return "\n".join(lines) + "\n"
