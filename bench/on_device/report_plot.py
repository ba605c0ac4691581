"""serial.png: four panels drawn from the summary: the latency distribution, memory against the board's capacity,
the slowest layers, and MACs per unit of every convolution. `plot(summary, path)`; matplotlib is imported only here,
and only when drawing.
"""

from __future__ import annotations

from pathlib import Path

from bench.on_device.report_format import _capacity, _short, title
from bench.on_device.report_layers import layer_boards

LAYER_BARS = 15  # the per-layer panel shows this many of the slowest layers


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
    boards = layer_boards(summary)
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
        # One CMSIS-NN build: colour each convolution by the kernel path its shapes select (bench.on_device.layers).
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
