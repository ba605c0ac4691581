"""The decompression region on the emulated STM32F405: a LUT-compressed model whose firmware decodes its weights into
the region (convert.decompression_region; src/app/engine.cc passes it to TFLM's SetDecompressionMemory) runs
bit-identical with the TFLM host interpreter, and the device reports an arena smaller than the one the same model
needs without the region. Host side: a region too small for any DECODE output still works, TFLM decoding into the
arena (the decision: fall back, as TFLM does, rather than refuse). About 50 s: a model built without training
(tests/wide_artifact.py), one firmware build (TFLM's objects from the build cache), two images."""

from __future__ import annotations

import numpy as np
import pytest
import test_mcu_qemu as q
from firmware_env import firmware_skip_reason
from wide_artifact import make_wide_artifacts

from bench.link.protocol import Command, ModelState
from convert import decompression_region, tflm_host

pytestmark = [pytest.mark.qemu, pytest.mark.tflm]
BUILD_DIR = q.MCU / ".pio" / "build-test-decompression"  # apart from other builds; objects from the build cache


if _reason := firmware_skip_reason(qemu=True, host_tflm=True):
    pytestmark.append(pytest.mark.skip(reason=_reason))


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("decompression")
    plain, lut = make_wide_artifacts(folder)
    region = decompression_region.write_artifact(lut, folder / "wide-region")
    return {"lut": lut, "region": folder / "wide-region", "meta": region}


def test_the_region_runs_bit_identical_with_a_smaller_arena_on_the_emulated_board(artifacts, monkeypatch):
    meta, folder = artifacts["meta"], artifacts["region"]
    d = meta["decompression"]
    assert d["region_bytes"] == 36_864 and d["decoded_in_region"] == 1  # the 3x3x16x256 int8 kernel, whole
    monkeypatch.setenv("SQZ_MODEL_DIR", str(folder / "firmware"))
    monkeypatch.setenv("PLATFORMIO_BUILD_DIR", str(BUILD_DIR))
    q.pio("-e", q.ENV)
    from bench.firmware.mcu_tools import load_tool

    build = BUILD_DIR / q.ENV
    ram = load_tool("size_report").report(build / "firmware.elf", build / "firmware.map")["ram"]
    assert ram["decompression"] == d["region_bytes"] and ram["arena"] == d["arena_bytes"]

    inputs = np.random.default_rng(0).integers(-128, 128, size=(2, 32, 32, 3), dtype=np.int8)
    dev = q.QemuDevice([str(q.PIO), "run", "-d", str(q.MCU), "-e", q.ENV, "-t", "upload"])
    try:
        hello = dev.client.request(Command.HELLO).fields
        assert hello["model_state"] == ModelState.OK, hello["model_message"]
        got = [np.frombuffer(dev.client.invoke(image.tobytes()).output, np.int8) for image in inputs]
    finally:
        dev.close()
    np.testing.assert_array_equal(np.stack(got), tflm_host.invoke(folder / "model.tflite", inputs))
    without_region = meta["arena"]["total"]  # the TFLM host's arena for this model, decoded weights inside it
    assert hello["arena_bytes"] == d["arena_bytes"] and hello["arena_used_bytes"] < without_region - 30_000, (hello, without_region)


def test_a_region_too_small_for_any_decoded_tensor_falls_back_to_the_arena(artifacts):
    model = (artifacts["lut"] / "model.tflite").read_bytes()
    small = decompression_region.measure(model, 16)
    assert small["decoded_in_region"] == 0
    assert small["arena_host_bytes"] >= tflm_host.measure_arena(model).total  # the whole arena, as without a region
