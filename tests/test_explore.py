"""python -m experiments.explore: a two-point sweep end to end on synthetic data, resume, and refusing bad points early."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments import explore, explore_point
from model import data as model_data
from model import train
from model.cli import architecture_of

# A small base so each point trains and converts in seconds; the sweep's logic does not depend on size.
SMALL = ["--base-e", "16", "--incr-e", "16", "--conv1-filters", "16", "--batch-size", "32"]


@pytest.mark.slow
def test_two_point_sr_sweep_and_its_resume(tmp_path, capsys):
    out = tmp_path / "explore"
    argv = ["--sweep", "sr", "--points", "0.125,0.25", "--epochs", "1", "--data", "synthetic", "--out", str(out)]
    # The device stage has its own test (test_explore_device.py): here it is off, and says so.
    argv += [*SMALL, "--limit-test", "100", "--calibration-count", "50", "--device-images", "0"]
    assert explore.main(argv) == 0
    printed = capsys.readouterr().out
    assert "[1/2] sr=0.125: training (1 epoch)..." in printed and "[2/2] sr=0.25: converting to int8" in printed
    assert "int8 top-1 on 100 test images (TFLM host)" in printed

    results = json.loads((out / "results.json").read_text())
    assert results["sweep"] == "sr" and results["dataset"]["name"] == "synthetic"
    assert results["budget"] == {"epochs": 1, "train_images": 480, "test_images": 100}
    assert results["machine"]["accelerator"] in ("CPU", "GPU")
    points = results["points"]
    assert [p["value"] for p in points] == [0.125, 0.25]
    for point in points:
        assert 0.0 <= point["float_top1"] <= 1.0 and 0.0 <= point["int8_top1"] <= 1.0, point
        assert point["tflite_bytes"] > 0 and point["arena_bytes"] > 0 and point["macs"] > 0
        assert point["architecture"]["base_e"] == 16 and point["architecture"]["pct_3x3"] == 0.5
        assert point["test_images"] == 100 and point["epochs"] == 1
        assert point["device"] == {"status": "not measured", "reason": "--device-images 0"}
    assert points[0]["parameters"] < points[1]["parameters"]
    assert (out / "sr.png").stat().st_size > 0
    report = (out / "results.md").read_text()
    assert "sr=0.25" in report and "synthetic data" in report and "80.3%" in report
    assert not (out / "points" / "sr-0.125" / "checkpoint").exists()  # dead weight once the point is done

    # The same command again: both points are read back, nothing is trained or converted.
    assert explore.main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("finished earlier, skipped") == 2 and "training (" not in printed
    assert json.loads((out / "results.json").read_text())["points"] == points

    # Trained but not scored (interrupted during conversion): only conversion and scoring run again.
    (out / "points" / "sr-0.25" / "result.json").unlink()
    assert explore.main(argv) == 0
    printed = capsys.readouterr().out
    assert "[2/2] sr=0.25: trained earlier" in printed and "training (" not in printed
    again = json.loads((out / "results.json").read_text())["points"][1]
    assert again["float_top1"] == points[1]["float_top1"] and again["tflite_bytes"] == points[1]["tflite_bytes"]

    # Another budget into the same folder would mix settings: refused, naming the point.
    assert explore.main([*argv[:5], "2", *argv[6:]]) == 2
    assert "sr=0.125" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--sweep", "sr", "--points", "0.125,1.0"], "point sr=1: fire2: squeeze filters"),
        (["--sweep", "pct3x3", "--points", "0.5,0.01"], "point pct_3x3=0.01: fire2 would get no 3x3 expand filters"),
        (["--sweep", "sr", "--points", "0.25,big"], "--points 'big': the sr sweep takes numbers"),
        (["--sweep", "bypass", "--points", "none,dense"], "--points 'dense': the bypass sweep takes none, simple, complex"),
    ],
)
def test_a_bad_point_is_refused_before_any_training(tmp_path, capsys, extra, message):
    out = tmp_path / "explore"
    assert explore.main([*extra, "--data", "synthetic", "--out", str(out), *SMALL]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_an_unknown_sweep_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        explore.main(["--sweep", "width", "--data", "synthetic"])
    assert exit_info.value.code == 2 and "invalid choice: 'width'" in capsys.readouterr().err


def test_architecture_flags_round_trip_through_model_train():
    arch = {**explore.SWEEPS["sr"].fixed, "version": "1.0", "base_e": 24, "incr_e": 8, "freq": 1, "sr": 0.25, "bypass": "complex"}
    arch |= {"conv1_filters": 16, "batch_norm": False, "dropout": 0.25}
    args = train.build_parser().parse_args(["--data", "synthetic", *explore_point.architecture_flags(arch)])
    assert architecture_of(args) == arch


def test_the_limited_test_set_spans_the_classes_and_is_the_one_every_scorer_uses():
    dataset = model_data.load_dataset("synthetic")
    subset = dataset.test.spread(40)
    assert len(subset) == 40 and len(set(subset.labels.tolist())) > 5
    np.testing.assert_array_equal(subset.labels, dataset.test.subset(model_data.spread_indices(len(dataset.test), 40)).labels)
    args = explore.build_parser().parse_args(["--sweep", "sr", "--data", "synthetic", "--limit-test", "40"])
    assert args.limit_test == 40 and len(dataset.test.spread(None)) == len(dataset.test)


def test_a_failed_training_names_the_point_and_its_log(tmp_path):
    point = {"label": "sr-0.5", "shown": "sr=0.5", "architecture": {"sr": 0.5}}
    with pytest.raises(explore_point.TrainingFailed, match=r"point sr=0.5: training failed \(exit status 2\); its log: .*train.log"):
        explore_point.train_point(point, str(tmp_path / "no-such-dataset"), {"epochs": 1}, tmp_path)
    assert "no such dataset folder" in (tmp_path / "train.log").read_text()


def test_a_conversion_failure_is_recorded_and_the_point_still_reports(tmp_path, monkeypatch):
    from convert import artifact
    from convert.errors import PreflightError

    dataset = model_data.load_dataset("synthetic")
    model_file = tmp_path / "sr-0.5.keras"
    meta = {"training_seconds": 1.0, "epochs": 1, "dataset": {"train_images": 480}, "parameters": 1234, "recipe": {"limit_train": None}}
    meta |= {"test_accuracy": 0.5, "test_images": len(dataset.test), "test_dataset_fingerprint": dataset.fingerprint}
    model_file.with_suffix(".json").write_text(json.dumps(meta))

    def refuse(*args, **kwargs):
        raise PreflightError([("softmax_quantization", "input scale is too small")])

    monkeypatch.setattr(artifact, "convert_model", refuse)
    context = explore_point.Context(tmp_path, "synthetic", dataset, dataset.test, {}, calibration_count=50, workers=1)
    said = []
    row = explore_point.score_point(model_file, context, tmp_path, said.append)
    assert row["float_top1"] == 0.5 and row["int8_top1"] is None and row["parameters"] == 1234
    assert "softmax_quantization" in row["int8_error"] and any("sweep goes on" in line for line in said)
