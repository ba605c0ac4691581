"""The main job end to end on the pretrained model, on a small sample: QEMU when a TFLM tree is found, and
the virtual device when none is."""

from __future__ import annotations

import json
import re

import pytest
from conftest import require_tflm_tree

from bench.pipeline import main_job as pipeline

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
    text = (folder / "summary.md").read_text()
    # One comparable table: every top-1 with its dataset and image count, the device beside the host on its 5 images.
    assert text.splitlines()[2].startswith("**PASS**") and "5/5 outputs bit-identical" in text
    table = text.split("| engine | runs on | dataset | images | top-1 | 95% CI (Wilson) |")[1].split("\n\n")[0]
    rows = [line for line in table.splitlines()[2:] if line.startswith("| ")]
    assert all("CIFAR-10 (JPEG copy)" in row for row in rows)
    assert len(rows) == 6 and sum("| 500 |" in r for r in rows) == 3 and sum("| 5 |" in r for r in rows) == 3
    assert all(re.search(r"\| \d+\.\d\d% \| \d+\.\d–\d+\.\d% \|$", r) for r in rows)
    assert "TFLM host interpreter, int8 | host, the device's images" in text
    return json.loads((folder / "summary.json").read_text())


def test_pipeline_on_the_virtual_device_without_tflm(tmp_path, cifar10_dir, pretrained_model, monkeypatch):
    monkeypatch.setattr(pipeline, "tflm_tree", lambda: None)
    summary = run_pipeline(tmp_path, cifar10_dir)
    assert list(summary["stages"]) == ["convert", "parity", "device"]
    device = summary["stages"]["device"]
    assert device["target"].startswith("virtual device") and device["bit_identical"] == device["images"] == 5
    assert device["latency"]["kind"] == "host" and "ms of host time" in device["summary"]


@pytest.mark.qemu
def test_pipeline_on_the_emulated_stm32f405(tmp_path, cifar10_dir, pretrained_model):
    require_tflm_tree()
    summary = run_pipeline(tmp_path, cifar10_dir)
    assert list(summary["stages"]) == ["convert", "parity", "firmware", "device"]
    device = summary["stages"]["device"]
    assert device["target"].startswith("QEMU netduinoplus2") and device["bit_identical"] == device["images"] == 5
    assert device["latency"]["unit"] == "instructions" and "M instructions (QEMU instruction count, not time)" in device["summary"]
    assert summary["stages"]["parity"]["verdict"] == "PASS"


def test_training_replays_a_warm_restart_as_its_chain_of_runs(tmp_path, monkeypatch):
    from model import train

    calls = []
    monkeypatch.setattr(train, "main", lambda argv: calls.append(argv) or 0)
    arch = {"version": "1.1", "base_e": 128, "incr_e": 128, "pct_3x3": 0.5, "freq": 2, "sr": 0.125, "bypass": "none"}
    arch |= {"dropout": 0.5, "batch_norm": True, "conv1_filters": 48}
    first = {"epochs": 45, "batch_size": 128, "lr": 0.1, "warmup_epochs": 2.0, "weight_decay": 0.005, "label_smoothing": 0.1}
    first |= {"crop_pad": 4, "cutout": 0, "seed": 0}
    second = first | {"epochs": 35, "lr": 0.05, "cutout": 8, "init_from": {"sha256": "ab", "recipe": first}}
    commands = pipeline.train_recipe(arch, second, "data", tmp_path, "m")
    assert len(calls) == len(commands) == 2
    assert calls[0][calls[0].index("--epochs") + 1] == "45" and "--init-from" not in calls[0]
    assert calls[0][calls[0].index("--out") + 1] == str(tmp_path / "m_init")
    assert calls[1][calls[1].index("--init-from") + 1] == str(tmp_path / "m_init" / "m.keras")
    assert calls[1][calls[1].index("--cutout") + 1] == "8" and calls[1][calls[1].index("--out") + 1] == str(tmp_path)
