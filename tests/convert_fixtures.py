"""The tiny SqueezeNet the convert tests share, a pytest plugin so that a session trains and converts it once
(fixtures imported into two test modules would be made once per module): a test module names it in
`pytest_plugins = ["convert_fixtures"]` and imports the helpers it calls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convert import artifact as artifact_module
from convert import tflm_host

TINY = dict(input_size=32, classes=10, base_e=16, incr_e=16, conv1_filters=8, batch_norm=True)
needs_tflm = pytest.mark.skipif(not tflm_host.available(), reason="tflite-micro is not installed (Linux x86_64 wheels only)")


def tiny_model(path: Path, *, train: bool = True, dead_logits: bool = False) -> Path:
    """A small SqueezeNet v1.1 saved to `path`; trained one epoch on synthetic data so its softmax scale is sane."""
    import keras

    from model.data import load_dataset
    from model.squeezenet import squeezenet

    keras.utils.set_random_seed(0)
    model = squeezenet("1.1", **TINY)
    if train:
        data = load_dataset("synthetic")
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(data.train.images.astype("float32"), data.train.labels, epochs=1, batch_size=32, verbose=0)
    if dead_logits:  # constant logits: the calibrated softmax input scale collapses (TFLM aborts on it)
        conv10 = model.get_layer("conv10")
        conv10.set_weights([np.zeros_like(w) for w in conv10.get_weights()])
    model.save(path)
    return path


@pytest.fixture(scope="session")
def tiny_keras(tmp_path_factory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("models") / "tiny.keras")


@pytest.fixture(scope="session")
def tiny_artifact(tiny_keras, tmp_path_factory) -> Path:
    if not tflm_host.available():
        pytest.skip("tflite-micro is not installed: the artifact needs the TFLM host arena")
    out = tmp_path_factory.mktemp("build") / "tiny"
    artifact_module.convert_model(tiny_keras, "synthetic", out, progress=False, calibration_count=100)
    return out


def leftovers(folder: Path) -> list[Path]:
    """Hidden staging folders a failed conversion must not leave behind."""
    return [p for p in folder.iterdir() if p.name.startswith(".")] if folder.exists() else []
