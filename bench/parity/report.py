"""The parity report: `parity.json` (everything, machine-readable), `parity.md` (read in a minute) and
`parity.png` (difference histograms and a confusion matrix).

`write(folder, report)` writes all three from the one `report` dict that `bench.parity.check` assembles (the
content of parity.json), so the Markdown and the figure can always be redrawn from the JSON alone
(`render_markdown`, `plot`).
"""

from __future__ import annotations

from pathlib import Path

JSON_FILE, MARKDOWN_FILE, FIGURE_FILE = "parity.json", "parity.md", "parity.png"
FLIPS_SHOWN = 20  # the Markdown lists this many; parity.json has them all
HISTOGRAM_BINS = 16  # the figure's last bin gathers every larger difference, so one outlier cannot squash the rest


def write(folder: Path, report: dict) -> dict[str, Path]:
    from model.provenance import write_json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / JSON_FILE, "markdown": folder / MARKDOWN_FILE, "figure": folder / FIGURE_FILE}
    plot(report, paths["figure"])
    paths["markdown"].write_text(render_markdown(report))
    write_json(paths["json"], report)
    return paths


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _title(report: dict, key: str) -> str:
    return report["engines"][key]["title"]


def _pair(report: dict, a: str, b: str) -> dict | None:
    return next((p for p in report["pairs"] if {p["a"], p["b"]} == {a, b}), None)


def device_engine(report: dict) -> str | None:
    """The int8 engine whose figures speak for the device: TFLM when it ran, else LiteRT."""
    for key in ("tflm", "litert"):
        if report["engines"].get(key, {}).get("status") == "ok":
            return key
    return None


def int8_cost_line(report: dict) -> str:
    """The report's first answer, in one Markdown line: top-1 lost (or not) to int8, and how often float and int8 agree."""
    engines = report["engines"]
    float_ok = engines.get("keras", {}).get("status") == "ok"
    int8_ok = [k for k in ("tflm", "litert") if engines.get(k, {}).get("status") == "ok"]
    if not float_ok or not int8_ok:
        missing = "the float model" if not float_ok else "no int8 engine ran"
        return f"**What does int8 cost?** Not measured: {missing} (see Engines)."
    base = engines["keras"]["top1"]
    scores = {k: engines[k]["top1"] for k in int8_ok}
    if len(set(scores.values())) == 1:
        int8_text = f"int8 {_pct(next(iter(scores.values())))}"
    else:
        int8_text = ", ".join(f"{_title(report, k)} {_pct(v)}" for k, v in scores.items())
    delta = 100 * (min(scores.values()) - base)
    if delta < 0:
        cost = f"{-delta:.2f} points of top-1: float {_pct(base)} → {int8_text}."
    elif delta > 0:
        cost = f"nothing in top-1 here: int8 scores {delta:.2f} points above float (float {_pct(base)} → {int8_text})."
    else:
        cost = f"nothing in top-1: float {_pct(base)}, {int8_text}."
    pair = _pair(report, "keras", int8_ok[0])
    flips = pair["prediction_flips"]
    return (
        f"**What does int8 cost?** {cost[0].upper() + cost[1:]} Float and int8 predict the same class on {_pct(pair['top1_agreement'])} "
        f"of the images ({flips:,} flip{'' if flips == 1 else 's'}); cosine similarity of their outputs {pair['float']['cos']:.5f}."
    )


def tflm_exact_line(report: dict) -> str:
    """The report's second answer, in one Markdown line: is TFLM bit-identical to the reference kernels, and if
    not, by how much and from which layer on."""
    gate = next((g for g in report["gates"] if g["name"] == "bit_exact"), None)
    pair = _pair(report, "litert", "tflm")
    images = report["dataset"]["images"]
    tflm = report["engines"].get("tflm", {})
    if tflm.get("status") == "failed":
        return f"**Is TFLM exact?** No: it failed on this model ({_first_line(tflm['message'])})."
    if pair is None:
        why = _first_line(gate["detail"]) if gate and gate.get("detail") else "TFLM and LiteRT did not both run"
        return f"**Is TFLM exact?** Not measured: {why}."
    lsb = pair["lsb"]
    if lsb["bit_identical"] == images:
        return f"**Is TFLM exact?** Yes: its outputs are bit-identical to the LiteRT reference kernels on all {images:,} images."
    text = (
        f"**Is TFLM exact?** No: bit-identical on {lsb['bit_identical']:,} of {images:,} images, max |difference| "
        f"{lsb['max_abs_diff_lsb']} LSB, {pair['prediction_flips']:,} top-1 flip{'' if pair['prediction_flips'] == 1 else 's'}."
    )
    first = (report.get("localization") or {}).get("first_differing_layers") or []
    if first:
        top = first[0]
        text += f" First layer that differs: **{top['layer']}** (operator {top['operator']} {top['op']}, {top['samples']} samples)."
    return text


def _cell(text, limit: int | None = None) -> str:
    """Table-safe text: one line ('|' or a newline would end the cell), at most `limit` characters."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def _first_line(text) -> str:
    return str(text or "").strip().splitlines()[0] if str(text or "").strip() else ""


def render_markdown(report: dict) -> str:
    dataset, artifact = report["dataset"], report["artifact"]
    limited = dataset["images"] != dataset["split_images"]
    count = f"{dataset['images']:,} of {dataset['split_images']:,} images (evenly spread)" if limited else f"{dataset['images']:,} images"
    lines = [
        f"# Host parity: {artifact['name']}",
        "",
        f"**{report['verdict']}** · {dataset['name']}, {dataset['split']} split, {count} · "
        f"{report['seconds']['total']:.0f} s with {report['machine']['workers']} workers · {report['created']}",
        "",
        "- " + int8_cost_line(report),
        "- " + tflm_exact_line(report),
        "",
        "## Gates",
        "",
        "| gate | requirement | measured | result |",
        "|---|---|---|---|",
    ]
    for gate in report["gates"]:
        measured = gate["measured"] or gate["detail"] or ""
        lines.append(f"| {gate['name']} | {_cell(gate['requirement'])} | {_cell(_first_line(measured), 300)} | **{gate['status']}** |")

    lines += ["", "## Engines", "", "| engine | status | top-1 | correct | ms per image |", "|---|---|---|---|---|"]
    for engine in report["engines"].values():
        if engine["status"] == "ok":
            lines.append(f"| {engine['title']} | ok | {_pct(engine['top1'])} | {engine['correct']:,} | {engine['ms_per_image']} |")
        else:
            message = _cell(_first_line(engine["message"]), 300)
            if message != _cell(engine["message"]):
                message += " (more in parity.json)"
            lines.append(f"| {engine['title']} | **{engine['status']}**: {message} | | | |")
    lines += [
        "",
        "ms per image: the engine's busy time over the images; Keras batches on every core, each int8 engine runs one image "
        "at a time on one core (chunks of them in parallel).",
    ]

    if report["pairs"]:
        lines += [
            "",
            "## Between engines",
            "",
            "Float columns compare the dequantised int8 output with the float probabilities (ST-style, over all outputs). "
            "For float against int8, the LSB columns round the float output onto the int8 output grid first.",
            "",
            "| pair | top-1 agreement | flips | bit-identical | max abs diff (LSB) | RMSE | MAE | L2r | COS |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for pair in report["pairs"]:
            lsb = pair.get("lsb") or pair.get("lsb_vs_float_on_int8_grid") or {}
            flt = pair.get("float") or {}
            cells = [
                f"{_title(report, pair['a'])} / {_title(report, pair['b'])}",
                _pct(pair["top1_agreement"]),
                f"{pair['prediction_flips']:,}",
                f"{lsb['bit_identical']:,} ({_pct(lsb['bit_identical_rate'])})" if lsb else "",
                str(lsb.get("max_abs_diff_lsb", "")),
                *(f"{flt[k]:.3g}" if k in flt else "" for k in ("rmse", "mae", "l2r")),
                f"{flt['cos']:.5f}" if "cos" in flt else "",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        histogram = _pair(report, "litert", "tflm")
        if histogram:
            counts = ", ".join(f"{k} LSB: {v:,}" for k, v in histogram["lsb"]["samples_by_max_abs_diff_lsb"].items())
            lines += ["", f"LiteRT / TFLM, samples by their max |difference|: {counts}."]

    localization = report.get("localization")
    if localization:
        lines += ["", "## Where LiteRT and TFLM part ways", ""]
        if localization.get("error"):
            lines.append(f"Localisation failed: {localization['error']}")
        else:
            lines.append(
                f"{localization['localized']} of {localization['differing_samples']} differing samples re-run with every tensor kept; "
                "the first operator whose output differs while its inputs were identical:"
            )
            lines += ["", "| layer | operator | op | samples |", "|---|---|---|---|"]
            for row in localization["first_differing_layers"]:
                lines.append(f"| {_cell(row['layer'])} | {row['operator']} | {row['op']} | {row['samples']} |")

    flips = report["flips"]
    if flips:
        keys = list(flips[0]["predictions"])
        shown = flips[:FLIPS_SHOWN]
        more = f"; the first {len(shown)} here, all in parity.json" if len(shown) < len(flips) else ""
        lines += ["", f"## Samples whose prediction flips between engines ({len(flips):,}{more})", ""]
        lines += ["| index | file | label | " + " | ".join(_title(report, k) for k in keys) + " |", "|---|---|---|" + "---|" * len(keys)]
        for flip in shown:
            cells = [str(flip["index"]), _cell(flip["file"] or ""), _cell(flip["label"]), *(_cell(flip["predictions"][k]) for k in keys)]
            lines.append("| " + " | ".join(cells) + " |")

    software = report["software"]
    versions = ", ".join(
        f"{k} {software[k]}" for k in ("tensorflow-cpu", "tensorflow", "keras", "ai-edge-litert", "tflite-micro", "numpy") if k in software
    )
    source = artifact["source_model"]
    lines += [
        "",
        "## Provenance",
        "",
        f"- model: `{artifact['folder']}/model.tflite`, SHA-256 `{artifact['model_sha256']}`",
        f"- float reference: `{source.get('used') or source.get('path')}`, SHA-256 `{source.get('sha256')}`"
        if source.get("kind") != "tflite"
        else f"- float reference: none: imported from `{source.get('path')}` (convert --tflite)",
        f"- dataset: {dataset['name']} (`{dataset['source']}`), fingerprint `{dataset['fingerprint']}`",
        f"- git `{report['git_sha']}`; {versions}; Python {software.get('python')}",
        f"- command: `{report['command']}`",
        "",
        f"![difference histogram and confusion matrix]({FIGURE_FILE})",
        "",
    ]
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    """Left: samples by max |difference| in LSB for each int8 comparison; right: the device engine's confusion matrix."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt
    import numpy as np

    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    series = []
    for pair in report["pairs"]:
        lsb = pair.get("lsb") or pair.get("lsb_vs_float_on_int8_grid")
        if lsb:
            name = f"{_title(report, pair['a'])} / {_title(report, pair['b'])}"
            if "lsb_vs_float_on_int8_grid" in pair:
                name += " (float on int8 grid)"
            series.append((name, {int(k): v for k, v in lsb["samples_by_max_abs_diff_lsb"].items()}))
    if series:
        top = min(max(max(h) for _, h in series), HISTOGRAM_BINS - 1)
        x = np.arange(top + 1)
        width = 0.8 / len(series)
        for i, (name, histogram) in enumerate(series):
            counts = [histogram.get(int(k), 0) for k in x]
            counts[-1] += sum(v for k, v in histogram.items() if k > top)
            left.bar(x + i * width - 0.4 + width / 2, counts, width, label=name)
        left.set_yscale("log")
        left.set_xlabel("max |difference| over a sample's outputs (LSB)")
        left.set_ylabel("samples")
        left.legend(fontsize=8)
        overflow = max(max(h) for _, h in series) > top
        left.set_xticks(x, [str(k) for k in x[:-1]] + [f"{x[-1]}+" if overflow else str(x[-1])])
    else:
        left.text(0.5, 0.5, "no int8 comparison (an int8 engine did not run)", ha="center", va="center")
        left.set_axis_off()
    left.set_title("Output differences")

    key = device_engine(report) or ("keras" if report["engines"].get("keras", {}).get("status") == "ok" else None)
    if key:
        matrix = np.asarray(report["engines"][key]["confusion_matrix"])
        labels = report["labels"]
        shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        right.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        if len(labels) <= 20:
            for (i, j), count in np.ndenumerate(matrix):
                if count:
                    right.text(j, i, str(count), ha="center", va="center", fontsize=7, color="white" if shares[i, j] > 0.5 else "black")
            right.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
            right.set_yticks(range(len(labels)), labels, fontsize=8)
        right.set_xlabel("predicted")
        right.set_ylabel("true")
        right.set_title(f"Confusion matrix: {_title(report, key)}, top-1 {_pct(report['engines'][key]['top1'])}")
    else:
        right.text(0.5, 0.5, "no engine produced outputs", ha="center", va="center")
        right.set_axis_off()
    figure.suptitle(f"{report['artifact']['name']} on {report['dataset']['name']}, {report['dataset']['images']:,} images")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
