"""CMSIS-NN against reference kernels, same model, same emulated STM32F405, one run: Invoke() in guest
instructions (QEMU -icount shift=0; SysTick ticks converted by bench.on_device.latency from the timer source HELLO
reports), outputs identical, CMSIS-NN at least 5x fewer instructions. Writes reports/mcu_kernels.json
(ticks, instructions, per-layer profile, flash/RAM split of both builds) and reports/mcu_kernels.md (the
per-layer table of both builds: instructions and MACs per instruction, layers named from the .tflite)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import test_mcu_qemu as q

from bench.link.protocol import Command

pytestmark = [*q.pytestmark, pytest.mark.slow]
artifact, images = q.artifact, q.images  # fixtures


def measure(env: str, images_: np.ndarray, model_bytes: bytes, macs: int) -> dict:
    from bench.on_device.latency import latency_stats, timing
    from bench.on_device.layers import join_profile, model_layers

    q.pio("-e", env)
    build = Path(os.environ.get("PLATFORMIO_BUILD_DIR") or q.MCU / ".pio" / "build") / env  # PlatformIO's override
    dev = q.QemuDevice([str(q.PIO), "run", "-d", str(q.MCU), "-e", env, "-t", "upload"])
    try:
        hello = dev.client.request(Command.HELLO).fields
        runs = [dev.client.invoke(image.tobytes()) for image in images_[:3]]  # bench.link.replies.Inference
        read = dev.client.profile()
    finally:
        dev.close()
    from bench.firmware.mcu_tools import load_tool

    size_report = load_tool("size_report")

    assert read.dropped == 0, f"{env}: the profile is truncated: {read.dropped} ops not profiled"
    profile = [{"tag": r.tag, "ticks": r.ticks} for r in read.records]  # as bench.on_device.run keeps it
    info = {k: hello[k] for k in ("board", "timer_source", "tick_hz", "clock_hz", "kernels")} | {"emulated": True}
    ticks = [r.ticks for r in runs]
    return {
        "env": env,
        "device": info,
        "status": "ok",
        "latency": latency_stats(ticks, info, macs),
        "layers": join_profile(model_layers(model_bytes), profile, timing(info)),
        "kernels": hello["kernels"],
        "arena_used_bytes": hello["arena_used_bytes"],
        "outputs": [np.frombuffer(r.output, np.int8).tolist() for r in runs],
        "ticks": ticks,
        "profile": profile,
        "size": size_report.report(build / "firmware.elf", build / "firmware.map"),
    }


def test_cmsis_nn_needs_five_times_fewer_instructions(artifact, images):
    from bench.on_device import report_layers

    model_bytes = (q.ARTIFACT / "model.tflite").read_bytes()
    cmsis = measure("qemu_stm32f405", images, model_bytes, artifact["macs"])
    reference = measure("qemu_stm32f405_ref", images, model_bytes, artifact["macs"])
    assert cmsis["outputs"] == reference["outputs"]
    ratio = np.mean(reference["ticks"]) / np.mean(cmsis["ticks"])
    report = {"model_sha256": artifact["sha256"], "unit": "guest instructions: SysTick ticks x 10^9 / 168 MHz (QEMU -icount shift=0)",
              "ratio_reference_over_cmsis_nn": round(float(ratio), 2), "builds": [cmsis, reference]}  # fmt: skip
    out = q.ROOT / "reports" / "mcu_kernels.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    boards = [b | {"port": b["env"]} for b in (cmsis, reference)]
    table = "\n".join(report_layers.layer_markdown({"boards": boards}))
    (q.ROOT / "reports" / "mcu_kernels.md").write_text(table + "\n")
    assert "| conv1 | CONV_2D | 3x3, 3->48 |" in table and "cmsis_nn: instructions" in table and "reference: instructions" in table
    assert ratio >= 5, f"reference/CMSIS-NN instructions = {ratio:.2f}"
