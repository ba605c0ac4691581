"""A trained model's metadata: the JSON beside its .keras file, and loading both with clear errors.

`<name>.keras` goes with `<name>.json`: architecture (the builder's arguments, enough to rebuild it),
labels, preprocessing, dataset fingerprint, recipe, accuracy, training time and software versions.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

FORMAT = "squeezenet-mcu/model-metadata/1"


class ModelFileError(ValueError):
    """A model file that is missing, not a Keras archive, or unreadable."""


def metadata_path(model_path: Path) -> Path:
    return Path(model_path).with_suffix(".json")


def read(model_path: Path) -> dict | None:
    path = metadata_path(model_path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ModelFileError(f"{path}: not valid JSON ({error})") from error


def load_model(model_path: Path, compile: bool = False):
    """Load a .keras file, turning every way it can be wrong into a ModelFileError that names it."""
    import keras

    path = Path(model_path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file (train one with python -m model.train, or use model/pretrained/)")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a Keras 3 .keras archive; save the model with model.save('name.keras')")
    try:
        return keras.saving.load_model(path, compile=compile)
    except Exception as error:  # Keras raises many types for a damaged archive
        raise ModelFileError(f"{path}: could not be loaded as a Keras model ({type(error).__name__}: {error})") from error


def test_score_record(score: dict, dataset) -> dict:
    """The test-set part of a trained model's metadata, from model.evaluate's score: one layout for every trainer."""
    return {
        "test_accuracy": score["top1"],
        "test_images": score["images"],
        "test_dataset": dataset.name,
        "test_dataset_fingerprint": dataset.fingerprint,
        "per_class_test_accuracy": score["per_class_top1"],
    }
