"""What host parity needs from a converter artifact (`build/<name>/`), checked before any engine runs.

`open_artifact(folder, keras=None) -> Artifact`:
- model.json is read through `convert.artifact.load_artifact`, the converter's own reader, which refuses a
  `model.tflite` whose SHA-256 (or size) is not the one recorded: both int8 engines would otherwise run a
  model nobody converted. Any such problem is an `ArtifactError` and nothing runs.
- The input and output quantisation are parsed from the `.tflite` itself (`convert.inspect_tflite`) and
  must agree with model.json; they must be single-scale int8, since parity compares full-int8 models.
- The Keras model the artifact came from (`source_model.path`, or `keras` when given) is located and its
  SHA-256 compared with `source_model.sha256`. A missing or changed Keras file is *not* fatal: the float
  reference is then unavailable (`keras_problem` says why) and the int8 engines still run.

`check_dataset(artifact, dataset)` raises `DatasetError` for a dataset whose classes or image shape are
not the model's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


class ArtifactError(ValueError):
    """An artifact folder that cannot be used: missing, incomplete, tampered with, or not full int8."""


@dataclass(frozen=True)
class Quantization:
    """Affine int8 quantisation of one tensor: real = (q - zero_point) * scale."""

    scale: float
    zero_point: int

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """Real values -> int8 with this scale and zero point (model.preprocessing.quantize_int8, the one quantizer)."""
        from model.preprocessing import quantize_int8

        return quantize_int8(values, self.scale, self.zero_point)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (np.asarray(q, dtype=np.float32) - np.float32(self.zero_point)) * np.float32(self.scale)

    def to_dict(self) -> dict:
        return {"scale": self.scale, "zero_point": self.zero_point}


@dataclass
class Artifact:
    folder: Path
    name: str
    meta: dict  # model.json as written by the converter
    model_bytes: bytes  # model.tflite, already checked against meta["sha256"]
    sha256: str
    info: object  # convert.inspect_tflite.TfliteInfo of model_bytes
    input_shape: tuple[int, ...]  # without the batch axis, e.g. (32, 32, 3)
    input_q: Quantization
    output_q: Quantization
    labels: list[str]
    keras_path: Path | None  # the float reference, when it was found and matches its recorded SHA-256
    keras_problem: str | None  # why the float reference cannot be used, else None

    def describe(self) -> dict:
        source = self.meta.get("source_model") or {}
        return {
            "folder": str(self.folder),
            "name": self.name,
            "model_sha256": self.sha256,
            "model_bytes": len(self.model_bytes),
            "input": {"shape": list(self.input_shape), **self.input_q.to_dict()},
            "output": {"classes": len(self.labels), **self.output_q.to_dict()},
            "source_model": {
                "path": source.get("path"),
                "sha256": source.get("sha256"),
                "kind": source.get("kind", "keras"),
                "used": str(self.keras_path) if self.keras_path else None,
                "problem": self.keras_problem,
            },
            "converted": self.meta.get("created"),
            "converter_git_sha": self.meta.get("git_sha"),
        }


def _io_quantization(info, tensor_index: int, role: str, stated: dict | None, where: Path) -> tuple[tuple[int, ...], Quantization]:
    details = info.io_details(tensor_index)
    if details["dtype"] != "int8" or details["scale"] is None:
        raise ArtifactError(
            f"{where}: the model's {role} is {details['dtype']} (scale {details['scale']}); parity compares full-int8 models "
            "(int8 input and output with one scale each): convert with python -m convert"
        )
    quant = Quantization(float(details["scale"]), int(details["zero_point"]))
    # model.json is what the firmware is generated from: if it disagrees with the bytes, the artifact is
    # inconsistent and nothing measured on it would mean what it says.
    for key, actual in (("scale", quant.scale), ("zero_point", quant.zero_point), ("shape", list(details["shape"]))):
        if stated and key in stated and stated[key] != actual and not (key == "scale" and np.isclose(stated[key], actual, rtol=1e-6)):
            raise ArtifactError(f"{where}: model.json states {role} {key} {stated[key]} but model.tflite has {actual}; convert again")
    return tuple(int(d) for d in details["shape"]), quant


def _locate_keras(folder: Path, meta: dict, override: Path | None) -> tuple[Path | None, str | None]:
    """(path, None) when the float reference is usable, else (None, why not)."""
    from model.provenance import REPO_ROOT, sha256_file

    source = meta.get("source_model") or {}
    recorded_sha = source.get("sha256")
    if source.get("kind") == "tflite" and override is None:
        return None, f"the artifact was imported from {source.get('path')} (convert --tflite): there is no Keras float model to compare"
    if override is not None:
        candidates = [Path(override)]
        named = str(override)
    elif source.get("path"):
        path = Path(source["path"])
        # The converter records the path relative to the repository root when it can; an artifact copied
        # elsewhere may carry its Keras model beside it instead.
        candidates = [path] if path.is_absolute() else [REPO_ROOT / path, Path.cwd() / path, folder / path.name]
        named = source["path"]
    else:
        return None, f"{folder / 'model.json'} names no source_model.path; pass --keras PATH to compare against the float model"
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        return None, f"the Keras model {named} (source_model.path in model.json) is not here; pass --keras PATH to compare against it"
    if recorded_sha and sha256_file(found) != recorded_sha:
        return None, (
            f"{found} is not the Keras model this artifact was converted from (its SHA-256 differs from source_model.sha256 in "
            "model.json); convert it again, or pass --keras with the original file"
        )
    return found, None


def open_artifact(folder: Path | str, keras: Path | str | None = None) -> Artifact:
    """Read and check `folder` (see the module docstring). Raises ArtifactError."""
    from convert import inspect_tflite
    from convert.artifact import MODEL_JSON, load_artifact
    from convert.errors import BadInputError

    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(
            f"{folder}: no such artifact folder; make one with python -m convert --model <model.keras> --data <dataset> --out {folder}"
        )
    try:
        meta = load_artifact(folder)
    except BadInputError as error:
        raise ArtifactError(str(error)) from error
    except (KeyError, TypeError) as error:  # a model.json of the right format with a field missing
        raise ArtifactError(f"{folder / MODEL_JSON}: incomplete ({type(error).__name__}: {error}); convert again") from error
    tflite = folder / meta["tflite_file"]
    model_bytes = tflite.read_bytes()
    try:
        info = inspect_tflite.read(model_bytes)
    except ValueError as error:
        raise ArtifactError(f"{tflite}: {error}") from error
    if len(info.inputs) != 1 or len(info.outputs) != 1:
        raise ArtifactError(f"{tflite}: {len(info.inputs)} inputs and {len(info.outputs)} outputs; parity handles one of each")
    input_shape, input_q = _io_quantization(info, info.inputs[0], "input", meta.get("input"), tflite)
    output_shape, output_q = _io_quantization(info, info.outputs[0], "output", meta.get("output"), tflite)
    labels = list(meta.get("labels") or [])
    if len(labels) != output_shape[-1]:
        raise ArtifactError(f"{folder / MODEL_JSON}: {len(labels)} labels but the model has {output_shape[-1]} outputs; convert again")
    keras_path, keras_problem = _locate_keras(folder, meta, Path(keras) if keras else None)
    return Artifact(
        folder=folder,
        name=meta.get("name") or folder.resolve().name,
        meta=meta,
        model_bytes=model_bytes,
        sha256=meta["sha256"],
        info=info,
        input_shape=input_shape[1:],
        input_q=input_q,
        output_q=output_q,
        labels=labels,
        keras_path=keras_path,
        keras_problem=keras_problem,
    )


def check_dataset(artifact: Artifact, dataset) -> None:
    """Refuse a dataset the model cannot be scored on, naming both sides (raises model.data.DatasetError)."""
    from model.data import DatasetError

    if list(dataset.labels) != artifact.labels:
        raise DatasetError(
            f"{dataset.source}: the dataset's classes {list(dataset.labels)} differ from the model's {artifact.labels} "
            f"(model.json of {artifact.folder}); use the dataset the model was trained for"
        )
    shape = tuple(int(d) for d in dataset.test.images.shape[1:])
    if shape != artifact.input_shape:
        raise DatasetError(f"{dataset.source}: images are {shape} (H, W, C) but the model takes {artifact.input_shape}")
