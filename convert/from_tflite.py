"""An existing full-int8 `.tflite` -> the same artifact folder `python -m convert` makes from a Keras model.

`import_tflite(path, out, ...)` reads the model (refusing bytes that are not a TFLite flatbuffer, or that the schema
cannot parse), runs the same pre-flight checks (int8 input and output, no float or hybrid op, only ops TFLM has, the TFLM
host allocation and one Invoke in a subprocess, the chosen board), generates the firmware package and report, and
publishes all or nothing (`convert.artifact.publish`). Nothing is calibrated: the model is taken as it is, so model.json
records `calibration.count` 0 and `source_model.kind` "tflite", and the host parity has no Keras engine (it says why).

Parameters and MACs come from the graph itself (`layer_costs`): weights and biases of each op, and
`inspect_tflite.operator_macs`, the count the per-layer device reports use too.
"""

from __future__ import annotations

import hashlib
import sys
import time
from math import prod
from pathlib import Path

import numpy as np

from convert import boards, codegen, preflight
from convert import inspect_tflite as inspect
from convert.artifact import INDICES_FILE, check_output_path, describe, display_path, preflight_checks, publish
from convert.errors import BadInputError

# What a device is fed: raw pixels quantised with the model's own input scale and zero point. Whatever normalisation
# the model was trained with is folded into that quantisation (MLPerf Tiny's ResNet-8: scale 1.0, zero point -128).
IMPORTED_SPEC = {
    "input": "RGB pixels, HWC, values 0..255 (uint8 range)",
    "color_order": "RGB (assumed: an imported model does not record it)",
    "layout": "HWC",
    "resize": "none: images must already have the model's input size",
    "in_model_layer": None,
    "int8_input": "round(pixel / input_scale) + input_zero_point, clipped to [-128, 127]",
}


def layer_costs(info: inspect.TfliteInfo) -> list[dict]:
    """One row per operator: the name of its output tensor, its output shape, parameters (constant inputs) and MACs."""
    rows = []
    for op in info.operators:
        inputs = [info.tensors[i] for i in op.inputs if i >= 0]
        output = info.tensors[op.outputs[0]]
        params = sum(prod(t.shape) for t in inputs if t.constant)
        macs = inspect.operator_macs(info, op)
        shape = list(output.shape[1:]) if len(output.shape) > 1 else list(output.shape)
        rows.append({"block": f"{preflight.short_name(output.name)} ({op.op})", "params": params, "macs": macs, "output": shape})
    return rows


def _read(path: Path) -> tuple[bytes, inspect.TfliteInfo]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BadInputError(f"{path}: cannot read the model ({error})") from error
    try:
        return data, inspect.read(data)
    except ValueError as error:
        raise BadInputError(f"{path}: {error}; give a sound, full-int8 .tflite file") from error
    except Exception as error:  # the flatbuffers parser raises whatever a truncated buffer makes it hit
        raise BadInputError(f"{path}: not a readable TFLite model: the flatbuffer is truncated or fails the schema ({error!r})") from None


def import_tflite(
    tflite_path: Path | str,
    out: Path | str,
    *,
    labels: list[str],
    board: str | None = None,
    name: str | None = None,
    progress: bool = True,
) -> dict:
    """Make the artifact folder `out` from the full-int8 model `tflite_path`. Returns model.json's content.
    Raises BadInputError or PreflightError; on any error the output path is left as it was."""
    started = time.perf_counter()
    log = (lambda message: print(f"[convert] {message}", file=sys.stderr, flush=True)) if progress else (lambda message: None)
    out, tflite_path = Path(out), Path(tflite_path)
    chosen_board = boards.get(board) if board else None
    check_output_path(out)
    name = name or out.resolve().name
    log(f"reading {tflite_path}")
    tflite, info = _read(tflite_path)
    classes = prod(info.tensors[info.outputs[0]].shape) if info.outputs else 0
    if len(labels) != classes:
        raise BadInputError(f"{len(labels)} labels but the model has {classes} outputs; pass --labels FILE (one label a line)")

    log("pre-flight checks")
    shape = info.tensors[info.inputs[0]].shape[1:] if info.inputs else ()
    sample = np.full(shape, 128, dtype=np.uint8)  # no dataset needed: a mid-grey image exercises every kernel
    checks, usage, firmware_arena = preflight_checks(tflite, info, sample, chosen_board)
    layers = layer_costs(info)
    source = {"path": display_path(tflite_path), "sha256": hashlib.sha256(tflite).hexdigest(), "metadata": None, "kind": "tflite"}
    artifact = describe(name, tflite, info, checks, usage, firmware_arena, chosen_board) | {
        "converter": {"imported": f"{source['path']}: taken as it is, not converted here"},
        "labels": list(labels),
        "preprocessing": IMPORTED_SPEC,
        "parameters": sum(row["params"] for row in layers),
        "macs": sum(row["macs"] for row in layers),
        "layers": layers,
        "calibration": {"count": 0, "split": None, "note": "imported full-int8 model: calibrated elsewhere", "indices_file": INDICES_FILE},
        "source_model": source,
        "warnings": [f"imported {source['path']}: no Keras model, so parity compares LiteRT reference and TFLM host only"],
    }
    digest, io = artifact["sha256"], {k: artifact[k] for k in ("input", "output")}
    provenance = {
        "model": f"{name}, model.tflite {len(tflite)} bytes, SHA-256 {digest}",
        "source": f"{source['path']} (imported full-int8 .tflite)",
        "converter": "none: imported as it is",
        "git": artifact["git_sha"],
    }
    settings = codegen.package_settings(name, io, list(labels), IMPORTED_SPEC, firmware_arena, usage.total)
    sources = codegen.generate_checked(tflite, settings, info.ops, provenance)
    artifact["timings_s"] = {"total": round(time.perf_counter() - started, 2)}
    log(f"writing {out}")
    publish(out, tflite, artifact, {"count": 0, "indices": [], "note": artifact["calibration"]["note"]}, sources)
    log(f"done: {out} ({len(tflite):,} bytes, arena {usage.total:,} + margin = {firmware_arena:,})")
    return artifact
