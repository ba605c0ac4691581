"""One way to make a small, real int8 artifact for tests: a tiny SqueezeNet trained briefly on the
synthetic data, then converted by the converter itself. Imported by the tests that need one."""

from __future__ import annotations

from pathlib import Path


def make_tiny_artifact(folder: Path, *, epochs: int, calibration_count: int) -> Path:
    """Train, save and convert into `folder`; returns the artifact folder `folder / "tiny"`. More epochs
    give a more confident model (fewer near-ties that flip between float and int8 by chance)."""
    import keras

    from convert.artifact import convert_model
    from model.data import load_dataset
    from model.squeezenet import squeezenet

    dataset = load_dataset("synthetic")
    keras.utils.set_random_seed(0)
    model = squeezenet("1.1", input_size=32, classes=10, base_e=16, incr_e=16, conv1_filters=16, batch_norm=True, dropout=0.0, name="tiny")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(dataset.train.images.astype("float32"), dataset.train.labels, epochs=epochs, batch_size=16, verbose=0)
    model.save(folder / "tiny.keras")
    convert_model(folder / "tiny.keras", dataset, folder / "tiny", calibration_count=calibration_count, progress=False)
    return folder / "tiny"
