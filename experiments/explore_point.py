"""One point of `python -m experiments.explore`: train it (a `python -m model.train` subprocess), convert it to int8,
score float and int8 top-1 on the same test images, measure it on the emulated STM32F405 (experiments.explore_device),
and record it in points/<label>/result.json.

Each stage leaves a mark that a re-run trusts: result.json (the point is done; only a device measurement it lacks
is made, from the int8 artifact kept beside it), <label>.json beside <label>.keras (trained with these settings:
only conversion, scoring and the device are redone), model.train's own checkpoint (training resumes from the
last finished epoch).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from experiments import explore_device, explore_report
from model.cli import architecture_flags, recipe_flags
from model.provenance import REPO_ROOT, now_utc, write_json

RESULT_FILE = "result.json"


class PointError(Exception):
    """A point that cannot be run as given; the message names the point (exit status BAD_INPUT)."""


class TrainingFailed(PointError):
    """A point's training subprocess failed; the message names the point and its log (exit status FAILED)."""


@dataclass
class Context:
    """What every point of a sweep shares."""

    out: Path
    data: str  # the --data given to model.train (absolute where it is a folder)
    dataset: object  # model.data.Dataset
    test: object  # the model.data.Split every point is scored on
    settings: dict  # recipe, dataset fingerprint, limit-test, calibration count: what result.json must match
    calibration_count: int
    workers: int | None
    # The device stage (experiments.explore_device); the default measures nothing and says so.
    device: explore_device.DeviceStage = explore_device.DeviceStage(0, explore_device.DEFAULT_BUILD_DIR, "", "--device-images 0")


_EPOCH_LINE = re.compile(r"^(Epoch \d+/\d+|resuming from|\d+/\d+ - .*loss)")


def train_point(point: dict, data: str, recipe: dict, folder: Path) -> Path:
    """Train in a `python -m model.train` subprocess (its own checkpoints make it resumable); its output
    goes to train.log, and its per-epoch lines are echoed. Raises TrainingFailed naming the log."""
    label = point["label"]
    command = [sys.executable, "-m", "model.train", "--data", data, "--out", str(folder), "--name", label]
    command += ["--checkpoint-dir", str(folder / "checkpoint"), *architecture_flags(point["architecture"]), *recipe_flags(recipe)]
    log_path = folder / "train.log"
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    pipe = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with open(log_path, "a") as log, subprocess.Popen(command, cwd=REPO_ROOT, env=env, **pipe) as child:
        log.write(f"$ {' '.join(command)}\n")
        for line in child.stdout:
            log.write(line)
            if _EPOCH_LINE.match(line):
                print(f"      {line.rstrip()}", flush=True)
    if child.returncode != 0:
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-15:])
        raise TrainingFailed(f"point {point['shown']}: training failed (exit status {child.returncode}); its log: {log_path}\n{tail}")
    # The checkpoint also holds the optimizer state; the model and its metadata now mark training done.
    shutil.rmtree(folder / "checkpoint", ignore_errors=True)
    return folder / f"{label}.keras"


def trained_earlier(model_file: Path, point: dict, context: Context) -> bool:
    """Whether model.train already finished this point with these settings (its metadata is written last)."""
    meta_file = model_file.with_suffix(".json")
    if not (model_file.is_file() and meta_file.is_file()):
        return False
    meta = json.loads(meta_file.read_text())
    recipe = context.settings["recipe"]
    return (
        meta.get("epochs") == recipe["epochs"]
        and all(meta.get("recipe", {}).get(k) == v for k, v in recipe.items())
        and all(meta.get("architecture", {}).get(k) == v for k, v in point["architecture"].items())
        and meta.get("dataset", {}).get("fingerprint") == context.dataset.fingerprint
    )


def score_point(model_file: Path, context: Context, folder: Path, say) -> dict:
    """Float and int8 figures of a trained point. A conversion or TFLM failure is recorded, not raised:
    the point still reports its float accuracy, parameters and MACs."""
    import numpy as np

    from bench.parity.engines import TflmEngine, run_engines
    from convert.artifact import convert_model
    from convert.artifact_reader import Quantization
    from convert.errors import ConversionError
    from model.evaluate import evaluate_model
    from model.metadata import load_model
    from model.metadata import read as read_metadata

    dataset, test = context.dataset, context.test
    meta = read_metadata(model_file)
    train_images = meta["dataset"]["train_images"]
    row = {"training_seconds": meta["training_seconds"], "epochs": meta["epochs"], "parameters": meta["parameters"]}
    row |= {"train_images": min(meta["recipe"].get("limit_train") or train_images, train_images), "test_images": len(test)}
    if len(test) == meta.get("test_images") and meta.get("test_dataset_fingerprint") == dataset.fingerprint:
        row["float_top1"] = meta["test_accuracy"]  # model.train scored the same (whole) test split
    else:
        row["float_top1"] = evaluate_model(load_model(model_file), test, dataset.labels)["top1"]

    say("converting to int8")
    try:
        # No board: a point too big for every microcontroller is still converted and measured.
        artifact = convert_model(model_file, dataset, folder / "int8", calibration_count=context.calibration_count, progress=False)
    except ConversionError as error:
        say(f"int8 conversion failed; recorded, the sweep goes on: {str(error).splitlines()[0]}")
        return row | {"int8_top1": None, "int8_error": str(error)}
    row |= {
        "tflite_bytes": artifact["tflite_bytes"],
        "macs": artifact["macs"],
        "arena_bytes": artifact["arena"]["total"],
        "arena_bytes_for_firmware": artifact["arena_bytes_for_firmware"],
        "fits_boards": [v["board"] for v in artifact["board"]["verdicts"] if v["fits"]],
    }
    say(f"int8 top-1 on {len(test)} test images (TFLM host)")
    tflite = (folder / "int8" / artifact["tflite_file"]).read_bytes()
    engine = TflmEngine(tflite, Quantization(artifact["input"]["scale"], artifact["input"]["zero_point"]))
    result = run_engines([engine], test.images, workers=context.workers, progress=False, log=say)["tflm"]
    if not result.ok:
        return row | {"int8_top1": None, "int8_error": result.message}
    int8_top1 = float(np.mean(np.argmax(result.outputs, axis=1) == test.labels))
    return row | {"int8_top1": int8_top1, "tflm_seconds": round(result.busy_seconds, 1)}


def run_point(point: dict, index: int, count: int, context: Context) -> dict:
    """The point's result: read back when a previous run finished it with the same settings, else made."""
    folder = context.out / "points" / point["label"]
    settings = json.loads(json.dumps(context.settings | {"architecture": point["architecture"]}))  # as result.json holds it

    def say(message: str) -> None:
        print(f"[{index}/{count}] {point['shown']}: {message}", flush=True)

    result_file = folder / RESULT_FILE
    if result_file.is_file():
        stored = json.loads(result_file.read_text())
        if stored.get("settings") != settings:
            raise PointError(f"point {point['shown']}: {result_file} was made with other settings; use another --out or delete it")
        if not explore_device.wants(stored, context.device):
            if (stored.get("device") or {}).get("status") not in explore_device.FINAL:
                # Measured before the device stage existed, or without one: say why on this run too.
                stored["device"] = explore_device.not_measured(context.device.unavailable)
                write_json(result_file, stored)
            say(f"finished earlier, skipped ({result_file})")
            return stored
        say(f"finished earlier ({result_file}); measuring it on the device only")
        stored["device"] = explore_device.measure_point(folder, context.device, say)
        write_json(result_file, stored)
        return stored
    folder.mkdir(parents=True, exist_ok=True)
    model_file = folder / f"{point['label']}.keras"
    epochs = settings["recipe"]["epochs"]
    if trained_earlier(model_file, point, context):
        say(f"trained earlier ({model_file}); converting and scoring only")
    else:
        say(f"training ({epochs} epoch{'s' if epochs != 1 else ''})...")
        train_point(point, context.data, settings["recipe"], folder)
    figures = score_point(model_file, context, folder, say)
    result = {k: point[k] for k in ("label", "value", "architecture", "parameters", "macs")} | figures
    result |= {"model_file": str(model_file.relative_to(context.out)), "finished": now_utc(), "settings": settings}
    result["device"] = explore_device.measure_point(folder, context.device, say)
    write_json(result_file, result)
    say(explore_report.figures_line(result))
    return result
