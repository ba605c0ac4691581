"""The serial benchmark's report files: serial.json (everything), serial.md (read in a minute), serial.png
(latency distribution, memory against the board's capacity, the slowest layers, MACs per unit of every
convolution). `write(out, summary) -> {"json", "markdown", "png"}`; bench.on_device.report_markdown's `markdown` and
bench.on_device.report_plot's `plot` redraw from the JSON.

Conventions (bench.on_device.report_format): percentages everywhere (top-1 with its Wilson 95 % interval), integers with
thousands separators, the unit and its caveat in each table's header (bench.on_device.latency: emulator instructions are
not time; the virtual device's host time is not device time), layers named after their Keras layers (bench.on_device.layers),
a failed board's cells empty ("—") with its status, never a made-up zero.
"""

from __future__ import annotations

from pathlib import Path

from bench.on_device.report_markdown import markdown
from bench.on_device.report_plot import plot


def write(out: Path, summary: dict) -> dict:
    from model.provenance import write_json

    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": str(out / "serial.json"), "markdown": str(out / "serial.md"), "png": str(out / "serial.png")}
    plot(summary, out / "serial.png")
    (out / "serial.md").write_text(markdown(summary))
    clean = {**summary, "paths": paths}
    write_json(out / "serial.json", clean)
    return paths
