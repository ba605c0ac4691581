"""The report of `python -m experiments.explore`: results.md (tables of accuracy and of device cost, budget, the paper's
figures for context) and <sweep>.png (accuracy against the swept metaparameter, with the model's size beside it,
and accuracy against instructions per inference on the emulated STM32F405)."""

from __future__ import annotations

import os
from pathlib import Path

# What the paper measured (SqueezeNet v1.0 on ImageNet, full training), quoted for context only.
PAPER = {
    "sr": (
        "Paper, Figure 3a (ImageNet, pct_3x3 0.5): top-5 accuracy rises from 80.3% at SR 0.125 (4.8 MB model) to 86.0% "
        "at SR 0.75 (19 MB) and is flat beyond."
    ),
    "pct3x3": "Paper, Figure 3b (ImageNet, SR 0.5): top-5 accuracy peaks at 85.6% with 50% 3x3 filters and is flat beyond.",
    "bypass": (
        "Paper, Table 3 (ImageNet), top-1 / top-5: vanilla SqueezeNet 57.5% / 80.3%, simple bypass 60.4% / 82.5%, "
        "complex bypass 58.8% / 82.0%; the complex bypass makes the model 7.7 MB instead of 4.8 MB."
    ),
}


def machine() -> dict:
    """Where the sweep ran: the figures' training seconds mean little without it."""
    import platform

    info = {"platform": platform.platform(), "cpu": platform.machine(), "cpu_count": os.cpu_count()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):  # not Linux: platform.machine() stays
        pass
    try:
        import keras

        backend = keras.config.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
        elif backend == "jax":
            import jax

            gpus = [str(d) for d in jax.devices() if d.platform == "gpu"]
        else:
            gpus = []
        info |= {"keras_backend": backend, "accelerator": "GPU" if gpus else "CPU", "gpus": gpus}
    except Exception as error:  # a report must not fail for want of a device list
        info["accelerator"] = f"unknown ({type(error).__name__})"
    return info


def accuracy_label(dataset_name: str) -> str:
    """What every accuracy figure is on: the dataset's own name (e.g. 'CIFAR-10 (JPEG copy)')."""
    if dataset_name == "synthetic":
        return "synthetic data (a smoke test, not a measurement)"
    return dataset_name


def _percent(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _count(value, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:,}{unit}"


def figures_line(result: dict) -> str:
    """One line of a finished point's figures, for the progress output."""
    return (
        f"float top-1 {_percent(result.get('float_top1'))}, int8 top-1 {_percent(result.get('int8_top1'))}, "
        f"{result['parameters']:,} parameters, {_count(result.get('tflite_bytes'), ' B')} .tflite, "
        f"{result['macs'] / 1e6:.1f} M MACs, TFLM arena {_count(result.get('arena_bytes'), ' B')}"
    )


def _shown(summary: dict, point: dict) -> str:
    value = point["value"]
    return f"{summary['parameter']}={value:g}" if isinstance(value, float) else f"{summary['parameter']}={value}"


def markdown(summary: dict) -> str:
    data = accuracy_label(summary["dataset"]["name"])
    budget, recipe, points = summary["budget"], summary["recipe"], summary["points"]
    dataset = summary["dataset"]
    lines = [
        f"# Design-space exploration: {summary['sweep']} ({summary['paper_figure']} analog)",
        "",
        f"![{summary['sweep']}]({summary['sweep']}.png)",
        "",
        f"Accuracies are top-1 on {data}, {budget['test_images']} test images, for the Keras float model and for the int8 "
        "model on the TFLM host interpreter (the runtime the microcontroller runs). Sizes are of the int8 `.tflite`; "
        "the arena is what TFLM allocates on the host (the firmware adds a margin).",
        "",
        "| point | float top-1 | int8 top-1 (TFLM host) | int8 - float | parameters | int8 .tflite | MACs | TFLM arena | fits | training |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for p in points:
        f, q = p.get("float_top1"), p.get("int8_top1")
        delta = "n/a" if f is None or q is None else f"{100 * (q - f):+.2f}"
        fits = ", ".join(p.get("fits_boards") or []) or ("none" if "fits_boards" in p else "n/a")
        lines.append(
            f"| {_shown(summary, p)} | {_percent(f)} | {_percent(q)} | {delta} | {p['parameters']:,} | "
            f"{_count(p.get('tflite_bytes'), ' B')} | {p['macs'] / 1e6:.1f} M | {_count(p.get('arena_bytes'), ' B')} | {fits} | "
            f"{p['training_seconds'] / 60:.1f} min |"
        )
    failures = [p for p in points if p.get("int8_error")]
    if failures:
        lines += ["", "int8 failures (the float figures stand):", ""]
        lines += [f"- {_shown(summary, p)}: {p['int8_error'].splitlines()[0]}" for p in failures]
    lines += device_section(summary)
    lines += [
        "",
        "## Budget",
        "",
        f"Every point was trained from scratch with the same recipe, seed and budget: {budget['epochs']} epochs on "
        f"{budget['train_images']:,} training images (SGD, peak learning rate {recipe['lr']}, batch {recipe['batch_size']}, "
        f"{recipe['warmup_epochs']:g} warm-up epochs, seed {recipe['seed']}). That is short of a converged run, and identical "
        "for every point: the table compares designs at this budget. Larger models may be further from convergence and "
        "could rank differently with longer training; read the trends, not the last digit.",
        "",
        "## The paper, for context",
        "",
        PAPER[summary["sweep"]],
        "",
        "The paper trains SqueezeNet v1.0 on ImageNet (1000 classes, 224x224) to convergence and reports top-5; here the "
        f"base is this project's CIFAR-10 model (v1.1, 32x32 input) and the figures are top-1 on {data}. Compare shapes "
        "of the curves, not values.",
        "",
        "## Provenance",
        "",
        f"- command: `{summary['command']}`",
        f"- git: {summary['git_sha']}; created {summary['created']}",
        f"- dataset: {dataset['name']} ({dataset['source']}), fingerprint {dataset['fingerprint'][:16]}...",
        f"- machine: {summary['machine'].get('cpu')}, {summary['machine'].get('cpu_count')} cores, "
        f"{summary['machine'].get('accelerator')} ({summary['machine'].get('platform')})",
        f"- base architecture: {summary['base_architecture']}",
        "",
    ]
    return "\n".join(lines)


def _device_cells(device: dict | None) -> list[str]:
    """instructions, arena used / declared, flash, RAM, bit-identical; or the status across the row."""
    device = device or {"status": "not measured", "reason": "measured before the device stage existed"}
    status = device["status"]
    if status == "measured":
        flash_cap, ram_cap = device.get("flash_capacity"), device.get("ram_capacity")
        flash = f"{device['flash_total']:,} B" + (f" ({100 * device['flash_total'] / flash_cap:.1f}%)" if flash_cap else "")
        ram = f"{device['ram_total']:,} B" + (f" ({100 * device['ram_total'] / ram_cap:.1f}%)" if ram_cap else "")
        return [
            f"{device['per_invoke']['median']:,.0f}",
            f"{device['arena_used_bytes']:,} / {device['arena_bytes']:,} B",
            flash,
            ram,
            f"{device['bit_identical']}/{device['images']}",
        ]
    if status == "does not fit":
        over = ", ".join(f"{region} +{size:,} B" for region, size in sorted(device["overflow_bytes"].items()))
        return ["does not fit", f"(declared {device['arena_bytes']:,} B)", f"overflows: {over}", "", ""]
    if status == "failed":
        return ["failed (see notes)", "", "", "", ""]
    return ["not measured", "", "", "", ""]


def device_section(summary: dict) -> list[str]:
    """Accuracy against what each point costs on the emulated STM32F405 (experiments.explore_device)."""
    points = summary["points"]
    lines = [
        "",
        "## Device cost: the emulated STM32F405",
        "",
        "Each point's int8 model in the qemu_stm32f405 firmware (CMSIS-NN kernels) on QEMU netduinoplus2. `Invoke()` is the "
        "median over the images of guest instructions (QEMU `-icount shift=0`: SysTick ticks x 10^9 / 168 MHz, "
        "bench/on_device/latency.py): an instruction count, not the time on a real chip. The arena is what TFLM used on the device, "
        "as it reports it, of what the firmware declares; flash and RAM are the ELF's, against the chip's 1 MiB and 128 KiB. "
        "Bit-identical: the device's int8 outputs against the TFLM host interpreter's on the same images. A point that "
        "does not fit is the linker's verdict (the firmware overflows the region by the bytes shown).",
        "",
        "| point | int8 top-1 (TFLM host) | `Invoke()` instructions (QEMU count) | arena used / declared | flash | RAM | bit-identical |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for p in points:
        cells = [_shown(summary, p), _percent(p.get("int8_top1")), *_device_cells(p.get("device"))]
        lines.append("| " + " | ".join(cells) + " |")
    notes = []
    for p in points:
        device = p.get("device") or {}
        if device.get("status") == "not measured" or not device:
            reason = device.get("reason") or "measured before the device stage existed; run the same command again"
            notes.append(f"- {_shown(summary, p)}: not measured: {reason}")
        elif device["status"] == "failed":
            notes.append(f"- {_shown(summary, p)}: failed: {device['error'].splitlines()[0]}")
        elif device["status"] == "does not fit":
            notes.append(f"- {_shown(summary, p)}: {device['why']} ({device['tflite_bytes']:,} B model)")
    builds = {}
    for p in points:
        device = p.get("device") or {}
        if device.get("status") == "measured":
            firmware = device["firmware"]
            key = (firmware["firmware_git_sha"], firmware["build_flags"], firmware["compiler"], firmware["kernels"])
            builds.setdefault(key, []).append(_shown(summary, p))
    for (sha, flags, compiler, kernels), shown in builds.items():
        notes.append(f"- firmware of {', '.join(shown)}: git {sha}, {compiler}, `{flags}`, kernels {kernels}")
    if notes:
        lines += ["", *notes]
    return lines


def _instructions(point: dict) -> float:
    device = point.get("device") or {}
    return device["per_invoke"]["median"] if device.get("status") == "measured" else float("nan")


def _device_panel(ax, summary: dict, data: str) -> None:
    """int8 top-1 against instructions per inference, each point labelled with its flash."""
    import numpy as np

    points = summary["points"]
    x = np.array([_instructions(p) for p in points], dtype=float) / 1e6
    y = np.array([np.nan if p.get("int8_top1") is None else 100 * p["int8_top1"] for p in points], dtype=float)
    shown = ~np.isnan(x) & ~np.isnan(y)
    if not shown.any():
        reasons = sorted({explain(p.get("device")) for p in points})
        ax.text(0.5, 0.5, "no device figures:\n" + "\n".join(reasons), ha="center", va="center", wrap=True, fontsize=8)
        ax.set_axis_off()
        return
    ax.plot(x[shown], y[shown], "s", color="tab:orange")
    ax.margins(x=0.2, y=0.15)  # room for the labels beside the points
    for k in np.flatnonzero(shown):
        device = points[k]["device"]
        value = points[k]["value"]
        label = f"{value:g}" if isinstance(value, float) else str(value)
        ax.annotate(
            f"{label}\n{device['flash_total'] / 1024:,.0f} KiB flash", (x[k], y[k]), fontsize=7, xytext=(4, 4), textcoords="offset points"
        )
    missing = [p for k, p in enumerate(points) if not shown[k]]
    if missing:
        ax.text(
            0.02,
            0.02,
            "not shown:\n" + "\n".join(f"{_shown(summary, p)}: {explain(p.get('device'))}" for p in missing),
            transform=ax.transAxes,
            fontsize=7,
            va="bottom",
        )
    ax.set_xlabel("Invoke() on the emulated STM32F405, million instructions (QEMU count, not time)")
    ax.set_ylabel(f"int8 top-1 % on {data} (TFLM host)")
    ax.grid(alpha=0.3)
    ax.set_title("accuracy against device cost", fontsize=10)


def explain(device: dict | None) -> str:
    """A short reason a point has no instruction count."""
    device = device or {}
    status = device.get("status", "not measured")
    if status == "does not fit":
        return "does not fit: " + ", ".join(f"{r} +{n:,} B" for r, n in sorted(device["overflow_bytes"].items()))
    if status == "not measured":
        return "not measured: " + device.get("reason", "before the device stage existed")
    return status


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    points = summary["points"]
    name = summary["dataset"]["name"]
    data = "synthetic data" if name == "synthetic" else name

    def percent(key):
        return np.array([np.nan if p.get(key) is None else 100 * p[key] for p in points], dtype=float)

    float_acc, int8_acc = percent("float_top1"), percent("int8_top1")
    params = np.array([p["parameters"] for p in points], dtype=float) / 1e3
    fig, (ax, device_ax) = plt.subplots(1, 2, figsize=(14, 4.8), gridspec_kw={"width_ratios": [8, 6]})
    if summary["sweep"] == "bypass":
        x = np.arange(len(points))
        for offset, values, label in ((-0.2, float_acc, "float (Keras)"), (0.2, int8_acc, "int8 (TFLM host)")):
            bars = ax.bar(x + offset, np.nan_to_num(values), 0.4, label=label)
            ax.bar_label(bars, ["n/a" if np.isnan(v) else f"{v:.1f}" for v in values], fontsize=8)
        ax.set_ylim(0, 1.3 * max(1.0, np.nanmax(np.r_[float_acc, int8_acc, 0.0])))  # room for the labels and legend
        ax.set_xticks(x, [f"{p['value']}\n{p['parameters']:,} params" for p in points])
        ax.set_xlabel("bypass")
    else:
        values = np.array([p["value"] for p in points], dtype=float)
        ax.plot(values, float_acc, "o-", label="float (Keras)")
        ax.plot(values, int8_acc, "s--", label="int8 (TFLM host)")
        if summary["sweep"] == "sr":
            ax.set_xscale("log", base=2)
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.minorticks_off()
        ax.set_xlabel({"sr": "squeeze ratio (SR)", "pct3x3": "share of 3x3 expand filters (pct_3x3)"}[summary["sweep"]])
        size = ax.twinx()
        size.plot(values, params, "^:", color="grey", label="parameters (right axis)")
        size.set_ylabel("parameters (thousands)", color="grey")
        size.set_ylim(bottom=0)
        ax.set_zorder(size.get_zorder() + 1)  # accuracy lines and legend above the size line
        ax.patch.set_visible(False)
    ax.set_ylabel(f"top-1 % on {data}")
    ax.grid(alpha=0.3)
    handles = [h for a in fig.axes if a is not device_ax for h in a.get_legend_handles_labels()[0]]
    bars = summary["sweep"] == "bypass"
    ax.legend(handles, [h.get_label() for h in handles], loc="upper left" if bars else "lower right", ncol=2 if bars else 1)
    budget = summary["budget"]
    title = f"{summary['paper_figure']} analog on {accuracy_label(name)}"
    ax.set_title(f"{title}\n{budget['epochs']} epochs per point, {budget['test_images']:,} test images", fontsize=10)
    _device_panel(device_ax, summary, data)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(summary: dict, out: Path) -> None:
    (out / "results.md").write_text(markdown(summary))
    plot(summary, out / f"{summary['sweep']}.png")
