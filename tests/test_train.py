"""Training and evaluation end to end on the synthetic dataset: outputs, resume, evaluation, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model import augment, epoch_checkpoint, evaluate, exit_codes, train
from model.data import load_dataset

TINY = ["--data", "synthetic", "--base-e", "32", "--incr-e", "32", "--batch-size", "64", "--seed", "3"]


def test_augment_is_seeded_and_keeps_shapes():
    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    a = augment.augment(images, np.random.default_rng(5), pad=4, flip=True, cutout=8)
    b = augment.augment(images, np.random.default_rng(5), pad=4, flip=True, cutout=8)
    assert a.shape == images.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, images)
    unchanged = augment.augment(images, np.random.default_rng(5), pad=0, flip=False, cutout=0)
    np.testing.assert_array_equal(unchanged, images)


@pytest.mark.slow
def test_one_epoch_on_synthetic_writes_everything(tmp_path):
    out = tmp_path / "run"
    args = [*TINY, "--epochs", "1", "--out", str(out), "--name", "tiny", "--checkpoint-dir", str(tmp_path / "ck")]
    assert train.main(args) == 0
    for suffix in (".keras", ".json", "_log.csv", "_curve.png"):
        assert (out / f"tiny{suffix}").is_file(), suffix
    meta = json.loads((out / "tiny.json").read_text())
    assert meta["epochs"] == 1 and 0.0 <= meta["test_accuracy"] <= 1.0
    assert meta["labels"] == load_dataset("synthetic").labels
    assert meta["architecture"]["base_e"] == 32 and meta["dataset"]["fingerprint"]
    assert meta["preprocessing"]["in_model_layer"] == "preprocess"
    assert {"keras", "numpy", "python"} <= set(meta["software"])


@pytest.mark.slow
def test_interrupted_training_resumes_where_it_stopped(tmp_path, monkeypatch, capsys):
    out, checkpoints = tmp_path / "run", tmp_path / "ck"
    args = [*TINY, "--epochs", "2", "--out", str(out), "--name", "tiny", "--checkpoint-dir", str(checkpoints)]
    saved = epoch_checkpoint.EpochCheckpoint.on_epoch_end

    def stop_after_first_epoch(self, epoch, logs=None):
        saved(self, epoch, logs)
        raise KeyboardInterrupt

    monkeypatch.setattr(epoch_checkpoint.EpochCheckpoint, "on_epoch_end", stop_after_first_epoch)
    assert train.main(args) == 130
    assert json.loads((checkpoints / "state.json").read_text())["epochs_done"] == 1
    monkeypatch.setattr(epoch_checkpoint.EpochCheckpoint, "on_epoch_end", saved)
    assert train.main(args) == 0
    assert "resuming from" in capsys.readouterr().out
    meta = json.loads((out / "tiny.json").read_text())
    assert meta["epochs"] == 2
    log = (out / "tiny_log.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in log[1:]] == ["1", "2"]  # no epoch lost or repeated

    # The evaluate command reproduces the recorded figure and can record it.
    assert evaluate.main(["--model", str(out / "tiny.keras"), "--data", "synthetic", "--json", "--record"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["top1"] == pytest.approx(meta["test_accuracy"])
    assert json.loads((out / "tiny.json").read_text())["test_command"].startswith("python -m")


def test_evaluate_refuses_a_missing_or_broken_model(tmp_path, capsys):
    assert evaluate.main(["--model", str(tmp_path / "none.keras"), "--data", "synthetic"]) == 2
    assert "no such model file" in capsys.readouterr().err
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    assert evaluate.main(["--model", str(broken), "--data", "synthetic"]) == 2
    assert "not a Keras 3 .keras archive" in capsys.readouterr().err


def test_evaluate_refuses_a_dataset_of_another_size(tmp_path, capsys):
    from model.squeezenet import squeezenet

    path = tmp_path / "m64.keras"
    squeezenet("1.1", input_size=64, classes=10).save(path)
    assert evaluate.main(["--model", str(path), "--data", "synthetic"]) == 2
    assert "images are 32x32 but the model takes 64x64" in capsys.readouterr().err


@pytest.mark.slow
def test_warm_start_copies_the_weights_and_records_where_they_came_from(tmp_path, capsys):
    import keras

    first = [*TINY, "--epochs", "1", "--out", str(tmp_path / "a"), "--name", "tiny", "--checkpoint-dir", str(tmp_path / "ck-a")]
    assert train.main(first) == 0
    source = tmp_path / "a" / "tiny.keras"
    # A zero learning rate leaves every kernel where --init-from put it (only BatchNorm statistics move).
    warm = [*TINY, "--epochs", "1", "--lr", "0", "--init-from", str(source), "--out", str(tmp_path / "b"), "--name", "tiny"]
    assert train.main([*warm, "--checkpoint-dir", str(tmp_path / "ck-b")]) == 0
    before, after = (keras.saving.load_model(p, compile=False) for p in (source, tmp_path / "b" / "tiny.keras"))
    for name in ("conv1", "fire9_expand3x3", "conv10"):
        for w0, w1 in zip(before.get_layer(name).weights, after.get_layer(name).weights, strict=True):
            np.testing.assert_array_equal(w0.numpy(), w1.numpy())
    recorded = json.loads((tmp_path / "b" / "tiny.json").read_text())["recipe"]["init_from"]
    source_meta = json.loads((tmp_path / "a" / "tiny.json").read_text())
    assert recorded["sha256"] == source_meta["model_sha256"] and recorded["command"] == source_meta["command"]

    other_width = [*warm[: warm.index("--base-e")], "--base-e", "16", *warm[warm.index("--base-e") + 2 :]]
    capsys.readouterr()
    assert train.main([*other_width, "--checkpoint-dir", str(tmp_path / "ck-c")]) == exit_codes.BAD_INPUT
    assert "pass the same architecture flags" in capsys.readouterr().err


def test_a_limited_training_set_is_a_seeded_subset_with_every_class_in_proportion():
    from model.data import spread_indices

    labels = np.repeat(np.arange(10), 5000)  # an image folder lists class by class
    chosen = spread_indices(len(labels), 1000, seed=0)
    assert len(np.unique(chosen)) == 1000 and np.all(np.diff(chosen) > 0)
    assert np.bincount(labels[chosen]).tolist() == [100] * 10  # one image per stratum: the classes in proportion
    np.testing.assert_array_equal(chosen, spread_indices(len(labels), 1000, seed=0))
    assert not np.array_equal(chosen, spread_indices(len(labels), 1000, seed=1))  # another seed, other images
    assert not np.array_equal(chosen, spread_indices(len(labels), 1000))  # unseeded: each stratum's first image
    assert len(spread_indices(50, 1000, seed=0)) == 50
