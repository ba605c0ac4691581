"""python -m bench.on_device end to end against the virtual device (TFLM host interpreter) on a tiny int8
artifact made here; two boards at once; a refused device; a reset mid-run; usage errors; what serial.md says;
a folder of test images alone through parity, the serial benchmark and model.evaluate (calibration refuses it)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from tiny_artifact import make_tiny_artifact

from bench.on_device import run as bench_serial
from bench.virtual.device import make_device
from bench.virtual.server import Server


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    """A tiny SqueezeNet trained briefly on the synthetic data and converted by the converter (~30 s)."""
    return make_tiny_artifact(tmp_path_factory.mktemp("serial"), epochs=3, calibration_count=32)


@pytest.fixture
def servers(artifact, virtual_servers):
    """start(**hooks): a virtual board running the artifact on the TFLM host interpreter."""
    return functools.partial(virtual_servers, artifact, "tflm")


def test_two_virtual_boards_bit_identical_with_everything_written(artifact, servers, tmp_path, capsys):
    urls = [servers().url, servers(reset_at={30}).url]
    out = tmp_path / "report"
    argv = ["--artifacts", str(artifact), "--data", "synthetic", "--limit", "12", "--warmup", "2", "--out", str(out), "--no-progress"]
    code = bench_serial.main(argv + sum((["--port", u] for u in urls), []))
    assert code == 0, capsys.readouterr()
    report = json.loads((out / "serial.json").read_text())
    assert len(report["boards"]) == 2
    for board in report["boards"]:
        assert board["status"] == "ok" and board["completed"] == 12 and board["device"]["virtual"]
        assert board["host_lsb"]["bit_identical"] == 12 and len(board["ticks"]) == 12
        assert board["latency"]["ms"]["median"] > 0 and board["latency"]["kind"] == "host" and "us" not in board["latency"]
        assert any(p["a"] == "keras" for p in board["parity"])  # the float reference ran
        assert set(board["accuracy"]) == {"device", "tflm_host", "keras"} and board["accuracy"]["device"]["images"] == 12
    assert report["boards"][1]["resets"] == 1  # survived, nothing lost or repeated (12 completed, all identical)
    assert report["dataset"]["fingerprint"] and report["git_sha"] and report["artifact"]["model_sha256"]
    assert (out / "serial.png").read_bytes()[:4] == b"\x89PNG"
    text = (out / "serial.md").read_text()
    assert "12 of 160 test images of synthetic" in text
    assert "**Verdict:** virtual (tflm reference (host)): 12/12 outputs bit-identical" in text
    assert "## Latency of `Invoke()`: host ms (virtual device: host time, not a device)" in text
    assert "| virtual (host TFLM interpreter) | tflm reference (host) | ok | 12 |" in text and "| 12/12 | 0 |" in text
    assert "No per-layer profile" in text and "n/a" not in text and "ticks" not in text.split("## Boards")[0]
    captured = capsys.readouterr()
    assert "Invoke() " in captured.out and "ms of host time (virtual device, not a board)" in captured.out and "\r" not in captured.err


def test_a_device_with_another_model_is_refused_naming_both(artifact, tmp_path, capsys):
    server = Server(make_device(artifact, "checksum")).start()  # same shapes, another "model"
    try:
        argv = ["--port", server.url, "--artifacts", str(artifact), "--data", "synthetic", "--limit", "2", "--out", str(tmp_path / "r")]
        code = bench_serial.main(argv + ["--no-progress", "--no-keras"])
    finally:
        server.stop()
    assert code == bench_serial.EXIT_DEVICE
    err = capsys.readouterr().err
    assert ": refused: " in err and "model SHA-256: device" in err and "artifact" in err


def test_usage_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench_serial.main(["--artifacts", "x", "--data", "synthetic"])  # no --port
    code = bench_serial.main(["--port", "loop://", "--artifacts", str(tmp_path / "none"), "--data", "synthetic"])
    assert code == bench_serial.EXIT_BAD_INPUT and "no such artifact folder" in capsys.readouterr().err


def test_latency_statistics():
    board = {"board": "a board", "timer_source": "timer", "tick_hz": 100, "clock_hz": 1000}
    stats = bench_serial.latency_stats([100, 200, 300, 400], board, macs=5000)
    assert stats["ticks"]["median"] == 250 and stats["ms"]["min"] == 1000 and stats["kind"] == "cycles"
    assert stats["per_inference"]["median"] == 2500 and stats["macs_per_unit"] == pytest.approx(5000 / 2500)


def test_model_layers_are_named_after_the_keras_layers_with_their_macs(artifact):
    from bench.on_device.layers import model_layers

    meta = json.loads((artifact / "model.json").read_text())
    found = model_layers((artifact / "model.tflite").read_bytes())
    names = [layer.name for layer in found]
    assert names[:4] == ["preprocess", "preprocess", "conv1", "maxpool1"] and names[-2:] == ["avgpool10", "softmax"]
    assert {"fire2_squeeze", "fire2_expand1x1", "fire2_expand3x3", "fire2_concat", "conv10"} <= set(names)
    assert sum(layer.macs for layer in found) == meta["macs"]
    expand = found[names.index("fire2_expand3x3")]
    assert expand.kernel.startswith("3x3, ") and expand.cmsis_nn_path.startswith("im2col 3x3")
    assert found[names.index("fire2_squeeze")].cmsis_nn_path.startswith("1x1 fast")


def write_test_images(root: Path, per_class: int = 2, flat: bool = False) -> Path:
    """The synthetic test split as PNG files: <root>/<class>/* (flat) or <root>/test/<class>/* only."""
    import numpy as np
    from PIL import Image

    from model.data import synthetic_dataset

    dataset = synthetic_dataset()
    for c, label in enumerate(dataset.labels):
        for k, i in enumerate(np.nonzero(dataset.test.labels == c)[0][:per_class]):
            path = root / ("" if flat else "test") / label / f"{k}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(dataset.test.images[i]).save(path)
    return root


@pytest.mark.parametrize("flat", [False, True], ids=["test-folder-only", "flat-class-folders"])
def test_a_folder_of_test_images_alone_runs_parity_serial_and_evaluate(artifact, servers, tmp_path, capsys, flat, monkeypatch):
    from bench.parity import check as parity
    from model import data, evaluate

    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    folder = write_test_images(tmp_path / "my_images", flat=flat)
    assert parity.main(["--artifacts", str(artifact), "--data", str(folder), "--out", str(tmp_path / "parity"), "--no-progress"]) == 0
    report = json.loads((tmp_path / "parity" / "parity.json").read_text())
    assert report["dataset"]["name"] == "my_images" and report["dataset"]["images"] == 20
    argv = ["--port", servers().url, "--artifacts", str(artifact), "--data", str(folder), "--limit", "20", "--warmup", "0"]
    assert bench_serial.main(argv + ["--out", str(tmp_path / "serial"), "--no-progress", "--no-keras"]) == 0
    assert "all 20 test images of my_images" in (tmp_path / "serial" / "serial.md").read_text()
    assert evaluate.main(["--model", str(artifact.parent / "tiny.keras"), "--data", str(folder)]) == 0
    assert "on 20 test images of my_images" in capsys.readouterr().out
    # Calibration and training need a train split, and say so.
    assert parity.main(["--artifacts", str(artifact), "--data", str(folder), "--split", "train"]) == 2
    assert "needs a train split, and this folder holds test images only" in capsys.readouterr().err
    from convert.artifact import convert_model
    from convert.errors import BadInputError

    with pytest.raises(BadInputError, match="calibration needs a train split"):
        convert_model(artifact.parent / "tiny.keras", str(folder), tmp_path / "again", progress=False)
    from model import train

    assert train.main(["--data", str(folder), "--out", str(tmp_path / "runs"), "--name", "x", "--epochs", "1"]) == 2
    assert "training needs a train split" in capsys.readouterr().err
