"""Split layers on the emulated STM32F405: `python -m convert.compress --split-filters` fits a board too small for the
whole decoded filter by splitting its layer into pieces (convert.conv_split); the firmware built from that artifact
runs on QEMU netduinoplus2 and its outputs are byte for byte those of the uncompressed, unsplit source on the TFLM
host. The board is the F405 with its RAM cut to what the split model needs, so that the whole-filter fit must give
the filter up. About a minute: a model built without training (tests/wide_artifact.py), one firmware build (TFLM's
objects from the build cache), two images."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import test_mcu_qemu as q
from firmware_env import firmware_skip_reason
from wide_artifact import make_wide_artifacts

from bench.link.protocol import Command, ModelState
from convert import boards, compress, compress_plan, conv_split, lut, tflm_host
from convert.artifact import load_artifact
from convert.compress_board_fit import compress_to_fit

pytestmark = [pytest.mark.qemu, pytest.mark.tflm]
BUILD_DIR = q.MCU / ".pio" / "build-test-conv-split"  # apart from other builds; objects from the build cache

if _reason := firmware_skip_reason(qemu=True, host_tflm=True):
    pytestmark.append(pytest.mark.skip(reason=_reason))


def firmware_arena(model: bytes) -> int:
    plans, apply = compress_plan.choose(model, "lut", lut.MAX_INDEX_BITS, None)
    return compress_to_fit(model, plans, None, apply)[2]


def test_a_split_compressed_model_runs_on_the_emulated_board_with_its_source_s_outputs(tmp_path, monkeypatch, capsys):
    plain, _ = make_wide_artifacts(tmp_path)
    source = (plain / "model.tflite").read_bytes()
    wide = next(name for name in conv_split.splittable_filters(source) if "/wide" in name)
    budget = firmware_arena(conv_split.split(source, {wide: 4}))
    assert budget < firmware_arena(source)  # whole, the decoded filter does not fit the board below
    monkeypatch.setitem(boards.BOARDS, "tight-f405", replace(boards.get("netduinoplus2"), key="tight-f405", ram=budget, ram_reserved=0))

    out = tmp_path / "wide-split"
    argv = ["--artifact", str(plain), "--out", str(out), "--board", "tight-f405", "--split-filters", "--data", "synthetic"]
    assert compress.main([*argv, "--check-images", "2", "--quiet"]) == 0, capsys.readouterr().err
    c = load_artifact(out)["compression"]
    assert c["split_filters"][wide]["pieces"] >= 2 and c["split_filters"][wide]["output_channels"] == 256
    assert all(t["compress"] for t in c["tensors"] if conv_split.source_name(t["name"]) == wide)

    monkeypatch.setenv("SQZ_MODEL_DIR", str(out / "firmware"))
    monkeypatch.setenv("PLATFORMIO_BUILD_DIR", str(BUILD_DIR))
    q.pio("-e", q.ENV)
    inputs = np.random.default_rng(0).integers(-128, 128, size=(2, 32, 32, 3), dtype=np.int8)
    dev = q.QemuDevice([str(q.PIO), "run", "-d", str(q.MCU), "-e", q.ENV, "-t", "upload"])
    try:
        hello = dev.client.request(Command.HELLO).fields
        assert hello["model_state"] == ModelState.OK, hello["model_message"]
        got = np.stack([np.frombuffer(dev.client.invoke(image.tobytes()).output, np.int8) for image in inputs])
    finally:
        dev.close()
    np.testing.assert_array_equal(got, tflm_host.invoke(source, inputs))  # the uncompressed, unsplit source
    assert hello["arena_bytes"] <= budget
