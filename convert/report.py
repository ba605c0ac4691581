"""The conversion report: `report.json` (data) and `report.md` (the same for a person), from model.json.

Both are built from the artifact's `model.json` and nothing else, so the report cannot state anything the
artifact does not.
"""

from __future__ import annotations

from convert import boards


def build(artifact: dict) -> dict:
    """report.json: size, parameters, MACs per layer, op histogram, arena, board fit, checks, timings."""
    meta = (artifact.get("source_model") or {}).get("metadata") or {}
    return {
        "format": "squeezenet-mcu/conversion-report/1",
        "name": artifact["name"],
        "tflite_bytes": artifact["tflite_bytes"],
        "sha256": artifact["sha256"],
        "parameters": artifact["parameters"],
        "macs": artifact["macs"],
        "layers": artifact["layers"],
        "op_histogram": artifact["op_histogram"],
        "ops": artifact["ops"],
        "input": artifact["input"],
        "output": artifact["output"],
        "arena": {k: artifact["arena"][k] for k in ("total", "head", "tail", "measured_by")},
        "arena_bytes_for_firmware": artifact["arena_bytes_for_firmware"],
        "boards": artifact["board"],
        "checks": artifact["checks"],
        "warnings": artifact.get("warnings", []),
        "calibration": {k: v for k, v in artifact["calibration"].items() if k != "indices"},
        "float_test_accuracy": meta.get("test_accuracy"),
        "float_test_dataset": meta.get("test_dataset"),
        "timings_s": artifact["timings_s"],
        "created": artifact["created"],
    }


def _kib(n: int) -> str:
    return f"{n:,} B ({n / 1024:,.1f} KiB)"


def markdown_table(header: list[str], rows: list[list], align: str) -> list[str]:
    """A Markdown table; `align` has one letter per column, l or r."""
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(artifact: dict) -> str:
    a = artifact
    report = build(artifact)
    arena, chosen = a["arena"], a["board"]["chosen"]
    checks = a["checks"]
    passed = sum(c["passed"] for c in checks)
    lines = [f"# Conversion report: {a['name']}", ""]
    summary = (
        f"`model.tflite` is {_kib(a['tflite_bytes'])}, full int8 (weights per channel, activations, input and output), "
        f"{a['parameters']:,} parameters and {a['macs']:,} MACs per image. The TFLM host interpreter allocates it in "
        f"{arena['total']:,} bytes (head {arena['head']:,}, tail {arena['tail']:,}); the firmware declares "
        f"{a['arena_bytes_for_firmware']:,}. Pre-flight: {passed} of {len(checks)} checks passed."
    )
    if chosen:
        verdict = next(v for v in a["board"]["verdicts"] if v["board"] == chosen)
        summary += f" Chosen board {verdict['name']}: {boards.verdict_text(verdict)}."
    lines += [summary, ""]
    for warning in a.get("warnings", []):
        lines.append(f"> Warning: {warning}")
    if a.get("warnings"):
        lines.append("")

    source = a["source_model"]
    meta = source.get("metadata") or {}
    accuracy = ""
    if meta.get("test_accuracy") is not None:
        images, dataset = meta.get("test_images", "?"), meta.get("test_dataset", "?")
        accuracy = f"; float top-1 {100 * meta['test_accuracy']:.2f}% on {images} test images of {dataset}"
    cal = a["calibration"]
    imported = source.get("kind") == "tflite"
    io = [(kind, a[kind]) for kind in ("input", "output")]
    rows = [
        ["source model", f"`{source['path']}` (SHA-256 {source['sha256'][:16]}...){accuracy}"],
        ["model.tflite", f"{_kib(a['tflite_bytes'])}, SHA-256 `{a['sha256']}`"],
        *[[kind, f"`{d['name']}` {d['dtype']} {d['shape']}, scale {d['scale']:.9g}, zero point {d['zero_point']}"] for kind, d in io],
        ["labels", ", ".join(a["labels"][:12]) + (f", ... ({len(a['labels'])} in all)" if len(a["labels"]) > 12 else "")],
        ["calibration", cal["note"] if imported else _calibration_text(cal)],
        ["converter", a["converter"]["imported"] if imported else _converter_text(a["converter"])],
        [
            "preprocessing",
            f"raw {a['preprocessing']['color_order']} pixels 0..255, {a['preprocessing']['layout']}; "
            + ("quantised with the model's input scale and zero point" if imported else "normalisation inside the model"),
        ],
    ]
    lines += ["## Model", ""] + markdown_table(["", ""], rows, "ll") + [""]

    lines += ["## Parameters and MACs per layer", ""]
    total_macs = max(1, a["macs"])
    rows = []
    for row in a["layers"]:
        filters = f"{row['s1x1']}/{row['e1x1']}/{row['e3x3']}" if "s1x1" in row else ""
        share = f"{100 * row['macs'] / total_macs:.1f}%"
        rows.append([row["block"], "x".join(map(str, row["output"])), filters, f"{row['params']:,}", f"{row['macs']:,}", share])
    rows.append(["**total**", "", "", f"**{a['parameters']:,}**", f"**{a['macs']:,}**", "100%"])
    lines += markdown_table(["layer", "output", "s1x1/e1x1/e3x3", "parameters", "MACs", "MACs share"], rows, "lrrrrr")
    lines += [
        "",
        "Parameters are counted on the graph of the .tflite (weights and biases), MACs for CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED."
        if imported
        else "Parameters are counted on the Keras model (batch-norm statistics included; the converter folds them into the convolutions).",
        "",
    ]

    lines += ["## Ops", ""]
    versions = {op["name"]: op["version"] for op in a["ops"]}
    rows = [[name, versions.get(name, ""), count] for name, count in report["op_histogram"].items()]
    lines += markdown_table(["op", "version", "count"], rows, "lrr")
    lines += ["", f"`firmware/model_op_resolver.h` registers exactly these {len(a['ops'])} ops.", ""]

    lines += ["## Tensor arena", ""]
    rows = [
        ["total (host)", f"{arena['total']:,}"],
        ["head: activations, planned and reused", f"{arena['head']:,}"],
        ["tail: persistent (tensor structs, kernel data)", f"{arena['tail']:,}"],
        ["firmware arena, `kTensorArenaBytes`", f"{a['arena_bytes_for_firmware']:,}"],
    ]
    lines += markdown_table(["", "bytes"], rows, "lr")
    lines += [
        "",
        f"Measured by the {arena['measured_by']} (tflite-micro {arena.get('tflite_micro', '?')}).",
        f"Firmware arena: {a['arena_margin']['rule']}.",
    ]
    lines += ["The model was allocated again in exactly `kTensorArenaBytes`, and one calibration image ran through it.", ""]

    lines += ["## Boards", ""]
    rows = []
    for v in a["board"]["verdicts"]:
        mark = " (chosen)" if v["board"] == chosen else ""
        rows.append(
            [
                f"{v['name']}{mark}",
                f"{v['model_bytes']:,} / {v['flash'] - v['flash_reserved']:,}",
                f"{v['arena_bytes']:,} / {v['ram'] - v['ram_reserved']:,}",
                "yes" if v["fits"] else "**no**",
                boards.verdict_text(v),
            ]
        )
    lines += markdown_table(["board (`--board`)", "flash: model / budget", "RAM: arena / budget", "fits", "verdict"], rows, "lrrll")
    lines += ["", "Budgets: flash or RAM of the board minus the firmware's own share (`convert/boards.py`).", ""]

    lines += ["## Pre-flight checks", ""]
    lines += [f"- {'passed' if c['passed'] else '**FAILED**'} `{c['name']}`: {c['detail']}" for c in checks]
    t = a["timings_s"]
    lines += ["", "## Timings", ""]
    if "convert" in t:
        lines += [f"Calibration and conversion {t['convert']:.1f} s, TFLM host checks {t['tflm']:.1f} s, total {t['total']:.1f} s."]
    else:
        lines += [f"Imported, checked and packaged in {t['total']:.1f} s."]
    lines += ["", f"Created {a['created']} at git {a['git_sha']}.", ""]
    return "\n".join(lines)


def _calibration_text(cal: dict) -> str:
    return f"{cal['count']} images of the {cal['split']} split of {cal['dataset']['name']}, seed {cal['seed']} (`{cal['indices_file']}`)"


def _converter_text(converter: dict) -> str:
    return f"TensorFlow {converter.get('tensorflow', '?')}, Keras {converter.get('keras', '?')}"
