"""experiments.explore's device stage: a tiny sweep point measured on the emulated STM32F405 (QEMU), and the paths that
record no figures: "not measured" without the toolchain, "does not fit" from the linker's overflow, and a point
finished before the device stage existed measured on a re-run without being trained again."""

from __future__ import annotations

import json

import pytest

from experiments import explore, explore_device, explore_point, explore_report
from model.provenance import REPO_ROOT

SMALL = ["--base-e", "16", "--incr-e", "16", "--conv1-filters", "16", "--batch-size", "32"]
TEST_BUILD_DIR = REPO_ROOT / "mcu" / ".pio" / "build-explore-test"  # apart from a real sweep's mcu/.pio/build-explore


def sweep_argv(out, *extra: str) -> list[str]:
    argv = ["--sweep", "sr", "--points", "0.125", "--epochs", "1", "--limit-train", "96", "--data", "synthetic", "--out", str(out)]
    return [*argv, *SMALL, "--limit-test", "20", "--calibration-count", "20", *extra]


@pytest.mark.qemu
@pytest.mark.tflm
@pytest.mark.slow
def test_a_point_gets_real_device_figures_and_a_rerun_keeps_them(tmp_path, capsys):
    reason = explore_device.unavailable_reason(2)
    if reason:
        pytest.skip(f"needs the firmware toolchain: {reason}")
    out = tmp_path / "explore"
    argv = sweep_argv(out, "--device-images", "2", "--device-build-dir", str(TEST_BUILD_DIR))
    assert explore.main(argv) == 0
    printed = capsys.readouterr().out
    assert "device: 2 test images on QEMU netduinoplus2" in printed

    point = json.loads((out / "results.json").read_text())["points"][0]
    device = point["device"]
    assert device["status"] == "measured", device
    assert device["images"] == 2 and device["bit_identical"] == 2 and device["unit"] == "instructions"
    # A tiny SqueezeNet is ~1 M MACs: more than one instruction per MAC, far fewer than a billion in all.
    assert point["macs"] < device["per_invoke"]["min"] <= device["per_invoke"]["median"] < 1e9
    assert (
        0
        < device["arena_used_bytes"]
        <= device["arena_bytes"]
        == json.loads((out / "points/sr-0.125/int8/model.json").read_text())["arena_bytes_for_firmware"]
    )
    assert device["flash_model"] >= point["tflite_bytes"] and device["flash_total"] > device["flash_model"]
    assert device["ram_total"] >= device["arena_bytes"] and device["flash_capacity"] == 1024 * 1024
    assert device["firmware"]["build_flags"] and device["firmware"]["timer_source"].startswith("qemu")
    assert (out / "points" / "sr-0.125" / device["report"]).is_file()
    report = (out / "results.md").read_text()
    assert f"{device['per_invoke']['median']:,.0f}" in report and "2/2" in report

    # Measured is final: the same command again neither trains, nor builds, nor runs QEMU.
    assert explore.main(argv) == 0
    printed = capsys.readouterr().out
    assert "finished earlier, skipped" in printed and "device:" not in printed


def test_without_the_toolchain_every_point_is_recorded_as_not_measured(tmp_path, monkeypatch):
    import bench.pipeline.main_job

    monkeypatch.setattr(bench.pipeline.main_job, "tflm_tree", lambda: None)
    assert explore_device.unavailable_reason(5).startswith("no TFLM tree (")
    assert explore_device.unavailable_reason(0) == "--device-images 0"
    stage = explore_device.stage_for(5, tmp_path / "build", "synthetic")
    record = explore_device.measure_point(tmp_path, stage, print)
    assert record["status"] == "not measured" and record["reason"].startswith("no TFLM tree")
    assert explore_device.line(record).startswith("not measured: no TFLM tree")


def test_a_point_without_an_int8_artifact_is_not_measured(tmp_path, monkeypatch):
    monkeypatch.setattr(explore_device, "unavailable_reason", lambda images: None)
    stage = explore_device.stage_for(5, tmp_path / "build", "synthetic")
    record = explore_device.measure_point(tmp_path, stage, print)
    assert record["status"] == "not measured" and "no int8 artifact" in record["reason"]


def test_the_linkers_overflow_is_a_does_not_fit_with_the_numbers():
    # GNU ld's words when a model or its arena is too big for the STM32F405 (both regions may overflow).
    output = (
        "/usr/bin/arm-none-eabi-ld: .pio/build/qemu_stm32f405/firmware.elf section `.rodata' will not fit in region `FLASH'\n"
        "/usr/bin/arm-none-eabi-ld: region `FLASH' overflowed by 151234 bytes\n"
        "/usr/bin/arm-none-eabi-ld: region `RAM' overflowed by 2048 bytes\n"
        "collect2: error: ld returned 1 exit status\n"
    )
    overflow = explore_device.overflows(output)
    assert overflow == {"flash": 151234, "ram": 2048}
    assert explore_device.overflows("error: model_data.cc:1: expected ';'") == {}
    record = explore_device.does_not_fit({"tflite_bytes": 1_100_000, "arena_bytes_for_firmware": 140_000}, overflow)
    assert record["status"] == "does not fit" and record["status"] in explore_device.FINAL
    assert "FLASH overflowed by 151,234 B" in record["why"] and "RAM overflowed by 2,048 B" in record["why"]


def finished_point(tmp_path, device: dict | None) -> tuple[dict, explore_point.Context]:
    """A point as a run before the device stage left it: result.json, its int8 artifact's model.json."""
    from model import data as model_data

    dataset = model_data.load_dataset("synthetic")
    point = {"label": "sr-0.5", "shown": "sr=0.5", "value": 0.5, "architecture": {"sr": 0.5}, "parameters": 1, "macs": 1}
    folder = tmp_path / "points" / "sr-0.5"
    (folder / "int8").mkdir(parents=True)
    (folder / "int8" / "model.json").write_text("{}")
    settings = {"recipe": {"epochs": 1}, "architecture": point["architecture"]}
    stored = point | {"float_top1": 0.5, "int8_top1": 0.5, "settings": settings} | ({"device": device} if device else {})
    (folder / "result.json").write_text(json.dumps(stored))
    context = explore_point.Context(tmp_path, "synthetic", dataset, dataset.test, {"recipe": {"epochs": 1}}, calibration_count=1, workers=1)
    return point, context


def test_a_point_finished_before_the_device_stage_is_measured_without_training(tmp_path, monkeypatch, capsys):
    point, context = finished_point(tmp_path, device=None)
    calls = []
    monkeypatch.setattr(explore_device, "measure", lambda artifact, stage, out, say: calls.append(artifact) or {"status": "does not fit"})
    monkeypatch.setattr(explore_point, "train_point", lambda *a: pytest.fail("a finished point was trained again"))

    context.device = explore_device.DeviceStage(5, tmp_path / "build", "synthetic", unavailable=None)
    result = explore_point.run_point(point, 1, 1, context)
    assert calls == [tmp_path / "points" / "sr-0.5" / "int8"] and result["device"] == {"status": "does not fit"}
    assert "measuring it on the device only" in capsys.readouterr().out
    assert json.loads((tmp_path / "points" / "sr-0.5" / "result.json").read_text())["device"] == {"status": "does not fit"}

    # Final: the next run does not measure it again.
    assert explore_point.run_point(point, 1, 1, context)["device"] == {"status": "does not fit"} and len(calls) == 1
    assert "finished earlier, skipped" in capsys.readouterr().out


def test_a_rerun_without_the_toolchain_skips_the_point_and_says_why(tmp_path, capsys):
    point, context = finished_point(tmp_path, device=None)
    context.device = explore_device.DeviceStage(5, tmp_path / "build", "synthetic", unavailable="no TFLM tree (make one)")
    result = explore_point.run_point(point, 1, 1, context)
    assert result["device"] == {"status": "not measured", "reason": "no TFLM tree (make one)"}
    assert "finished earlier, skipped" in capsys.readouterr().out


def test_the_report_shows_each_device_status(tmp_path):
    measured = {"status": "measured", "per_invoke": {"median": 12_345_678.0, "min": 1, "max": 2}, "arena_used_bytes": 60_000}
    measured |= {"arena_bytes": 66_000, "flash_total": 500_000, "ram_total": 80_000, "flash_capacity": 1 << 20, "ram_capacity": 1 << 17}
    measured |= {
        "bit_identical": 5,
        "images": 5,
        "firmware": {"firmware_git_sha": "abc", "build_flags": "-Os", "compiler": "gcc 12", "kernels": "cmsis_nn"},
    }
    big = explore_device.does_not_fit({"tflite_bytes": 1_200_000, "arena_bytes_for_firmware": 80_000}, {"flash": 250_000})
    points = [
        {"value": 0.125, "parameters": 10, "macs": 1e6, "int8_top1": 0.4, "float_top1": 0.4, "training_seconds": 60, "device": measured},
        {"value": 0.75, "parameters": 20, "macs": 2e6, "int8_top1": 0.5, "float_top1": 0.5, "training_seconds": 60, "device": big},
        {"value": 0.99, "parameters": 30, "macs": 3e6, "int8_top1": 0.6, "float_top1": 0.6, "training_seconds": 60},
    ]
    summary = {"sweep": "sr", "parameter": "sr", "paper_figure": "Figure 3a", "points": points, "dataset": {"name": "synthetic"}}
    summary |= {
        "budget": {"epochs": 1, "train_images": 10, "test_images": 10},
        "recipe": {"lr": 0.1, "batch_size": 8, "warmup_epochs": 0.2, "seed": 0},
    }
    summary |= {"command": "python -m experiments.explore", "git_sha": "abc", "created": "now", "base_architecture": {}}
    summary["dataset"] |= {"source": "synthetic", "fingerprint": "0" * 64}
    summary["machine"] = {"cpu": "x", "cpu_count": 2, "accelerator": "CPU", "platform": "linux"}
    text = explore_report.markdown(summary)
    device_rows = [line for line in text.splitlines() if "12,345,678" in line]
    assert len(device_rows) == 1 and device_rows[0].startswith("| sr=0.125 | 40.00% |")
    assert "60,000 / 66,000 B" in device_rows[0] and "500,000 B (47.7%)" in device_rows[0] and "| 5/5 |" in device_rows[0]
    assert "does not fit" in text and "FLASH overflowed by 250,000 B" in text and "flash +250,000 B" in text
    assert "sr=0.99: not measured: measured before the device stage existed" in text
    assert "git abc, gcc 12, `-Os`, kernels cmsis_nn" in text
    explore_report.plot(summary, tmp_path / "sr.png")
    assert (tmp_path / "sr.png").stat().st_size > 0
