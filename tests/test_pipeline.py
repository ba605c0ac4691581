"""The main job end to end on the pretrained model, on a small sample: QEMU when a TFLM tree is found, and
the virtual device when none is."""

from __future__ import annotations

import json

import pytest

from bench import pipeline

pytestmark = [pytest.mark.slow, pytest.mark.data]


def run_pipeline(tmp_path, cifar10_dir) -> dict:
    argv = [
        "--data",
        str(cifar10_dir),
        "--limit",
        "500",
        "--device-limit",
        "5",
        "--out",
        str(tmp_path / "reports"),
        "--build",
        str(tmp_path / "build"),
    ]
    assert pipeline.main(argv) == 0
    folder = tmp_path / "reports" / "squeezenet_cifar10"
    assert (folder / "summary.md").is_file()
    return json.loads((folder / "summary.json").read_text())


def test_pipeline_on_the_virtual_device_without_tflm(tmp_path, cifar10_dir, pretrained_model, monkeypatch):
    monkeypatch.setattr(pipeline, "tflm_tree", lambda: None)
    summary = run_pipeline(tmp_path, cifar10_dir)
    assert list(summary["stages"]) == ["convert", "parity", "device"]
    device = summary["stages"]["device"]
    assert device["target"].startswith("virtual device") and device["bit_identical"] == device["images"] == 5


@pytest.mark.qemu
def test_pipeline_on_the_emulated_stm32f405(tmp_path, cifar10_dir, pretrained_model):
    if pipeline.tflm_tree() is None:
        pytest.skip("needs a TFLM tree: set TFLM_ROOT or make ~/.cache/squeezenet-mcu/tflm (see docs/BENCHMARKS.md, Firmware)")
    summary = run_pipeline(tmp_path, cifar10_dir)
    assert list(summary["stages"]) == ["convert", "parity", "firmware", "device"]
    device = summary["stages"]["device"]
    assert device["target"].startswith("QEMU netduinoplus2") and device["bit_identical"] == device["images"] == 5
    assert summary["stages"]["parity"]["verdict"] == "PASS"
