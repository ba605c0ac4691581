"""The Keras callback that checkpoints model.train after every epoch. A module of its own because defining it
needs Keras, and model.train must not import Keras (and so TensorFlow) before its main() has run."""

from __future__ import annotations

import time
from pathlib import Path

import keras

from model.provenance import write_json


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch: save the model with its optimizer state and the history, atomically."""

    def __init__(self, folder: Path, state: dict):
        super().__init__()
        self.folder = folder
        self.state = state
        self.epoch_started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        row = {
            "epoch": epoch + 1,
            **{k: float(v) for k, v in (logs or {}).items()},
            "seconds": round(time.monotonic() - self.epoch_started, 1),
        }
        self.state["history"].append(row)
        self.state["epochs_done"] = epoch + 1
        self.state["training_seconds"] += row["seconds"]
        temporary = self.folder / "checkpoint.tmp.keras"
        self.model.save(temporary)
        temporary.replace(self.folder / "checkpoint.keras")
        write_json(self.folder / "state.json", self.state)
