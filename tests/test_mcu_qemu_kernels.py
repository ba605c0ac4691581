"""CMSIS-NN against reference kernels, same model, same emulated STM32F405, one run: instruction-count
ticks of Invoke() (QEMU -icount shift=0), outputs identical, CMSIS-NN at least 5x fewer ticks.
Writes reports/mcu_kernels.json (ticks, per-op profile, flash/RAM split of both builds)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import test_mcu_qemu as q

from bench.protocol import Command
from bench.protocol_link import invoke, read_profile

pytestmark = [*q.pytestmark, pytest.mark.slow]
artifact, images = q.artifact, q.images  # fixtures


def measure(env: str, images_: np.ndarray) -> dict:
    q.pio("-e", env)
    build = q.MCU / ".pio" / "build" / env
    dev = q.QemuDevice([str(q.PIO), "run", "-d", str(q.MCU), "-e", env, "-t", "upload"])
    try:
        hello = dev.link.request(Command.HELLO).fields
        runs = [invoke(dev.link, image.tobytes()) for image in images_[:3]]
        profile = read_profile(dev.link)
    finally:
        dev.close()
    sys.path.insert(0, str(q.MCU / "tools"))
    import size_report

    return {
        "env": env,
        "kernels": hello["kernels"],
        "arena_used_bytes": hello["arena_used_bytes"],
        "outputs": [np.frombuffer(out, np.int8).tolist() for out, _ in runs],
        "ticks": [t for _, t in runs],
        "profile": profile,
        "size": size_report.report(build / "firmware.elf", build / "firmware.map"),
    }


def test_cmsis_nn_needs_five_times_fewer_ticks(artifact, images):
    cmsis = measure("qemu_stm32f405", images)
    reference = measure("qemu_stm32f405_ref", images)
    assert cmsis["outputs"] == reference["outputs"]
    ratio = np.mean(reference["ticks"]) / np.mean(cmsis["ticks"])
    report = {"model_sha256": artifact["sha256"], "tick_unit": "SysTick at 168 MHz of QEMU virtual time, -icount shift=0",
              "ratio_reference_over_cmsis_nn": round(float(ratio), 2), "builds": [cmsis, reference]}  # fmt: skip
    out = q.ROOT / "reports" / "mcu_kernels.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    assert ratio >= 5, f"reference/CMSIS-NN ticks = {ratio:.2f}"
