"""Keras model + dataset -> the artifact folder `build/<name>/` (see docs/ARCHITECTURE.md), all or nothing.

`convert_model(...)` validates its inputs before any heavy work, converts (`convert.quantize`), reads the
result back (`convert.inspect_tflite`), runs the pre-flight checks (`convert.preflight`, the TFLM host
interpreter in a subprocess), generates the firmware package (`convert.codegen`) and the report, checks
the generated C array round-trips to the exact `.tflite` bytes, and only then moves the folder into
place. Everything is written to a temporary sibling folder first: a failure at any step leaves the
output path as it was.

`load_artifact(folder)` is the reader for later stages: model.json, with the `.tflite` checked against
its recorded SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from convert import boards, codegen, preflight, quantize
from convert import inspect_tflite as inspect
from convert import report as report_module
from convert.errors import BadInputError

FORMAT = "squeezenet-mcu/artifact/1"
TFLITE_FILE = "model.tflite"
MODEL_JSON = "model.json"
INDICES_FILE = "calibration_indices.json"
FIRMWARE_DIR = "firmware"
REPORT_MD = "report.md"
REPORT_JSON = "report.json"


def _stderr(message: str) -> None:
    print(f"[convert] {message}", file=sys.stderr, flush=True)


def _quiet(message: str) -> None:
    pass


def check_output_path(out: Path) -> None:
    """Refuse an output path that is a file, or a folder holding something other than an artifact."""
    if out.exists() and not out.is_dir():
        raise BadInputError(f"{out}: the output path is a file; give a folder, e.g. build/<name>")
    if out.is_dir() and any(out.iterdir()):
        existing = out / MODEL_JSON
        try:
            is_artifact = json.loads(existing.read_text()).get("format") == FORMAT
        except (OSError, ValueError, AttributeError):
            is_artifact = False
        if not is_artifact:
            raise BadInputError(
                f"{out}: exists and is not a conversion artifact (no {MODEL_JSON} of format {FORMAT}); refusing to replace it"
            )


def display_path(path: Path) -> str:
    from model.provenance import REPO_ROOT

    resolved = path.resolve()
    try:
        return str(resolved.relative_to(REPO_ROOT))
    except ValueError:
        return str(resolved)


def _load_dataset(data):
    from model.data import Dataset, DatasetError, load_dataset

    try:
        dataset = data if isinstance(data, Dataset) else load_dataset(str(data))
        dataset.require_train("calibration")  # a test-only folder cannot calibrate: say so, not "empty split"
        return dataset
    except DatasetError as error:
        raise BadInputError(str(error)) from error


def choose_labels(labels, meta: dict | None, dataset, classes: int, warnings: list[str]) -> list[str]:
    """Explicit labels, else the model's metadata, else the dataset's; their count must be the model's."""
    if labels is not None:
        chosen, origin = list(labels), "--labels"
    elif meta and meta.get("labels"):
        chosen, origin = list(meta["labels"]), "the model's metadata"
        if list(dataset.labels) != chosen:
            warnings.append(f"the dataset's labels differ from the model's metadata labels; the metadata's are used ({dataset.name})")
    else:
        chosen, origin = list(dataset.labels), f"the dataset {dataset.name}"
    if len(chosen) != classes:
        raise BadInputError(
            f"{len(chosen)} labels from {origin} but the model has {classes} outputs; pass --labels FILE (one label a line)"
        )
    return chosen


def _calibration(dataset, count: int, seed: int, indices_file: Path | None) -> dict:
    """The calibration record (indices included); from `indices_file` when given, else drawn with `seed`."""
    split = dataset.train
    if indices_file is not None:
        try:
            stored = json.loads(Path(indices_file).read_text())
            indices = [int(i) for i in stored["indices"]]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise BadInputError(f"{indices_file}: not a calibration indices file ({error})") from error
        recorded = (stored.get("dataset") or {}).get("fingerprint")
        if recorded and recorded != dataset.fingerprint:
            raise BadInputError(
                f"{indices_file}: indices into dataset {recorded[:12]}..., but the dataset given is {dataset.fingerprint[:12]}..."
            )
        if not indices or min(indices) < 0 or max(indices) >= len(split):
            raise BadInputError(f"{indices_file}: indices outside the training split of {len(split)} images")
        seed, requested = stored.get("seed"), len(indices)
    else:
        indices, requested = quantize.calibration_indices(len(split), count, seed), count
    record = {
        "split": "train",
        "count": len(indices),
        "requested": requested,
        "seed": seed,
        "dataset": {"name": dataset.name, "source": dataset.source, "fingerprint": dataset.fingerprint},
        "indices": indices,
    }
    if split.files:
        record["files"] = [split.files[i] for i in indices]
    return record


def preflight_checks(tflite: bytes, info, sample, board: boards.Board | None) -> tuple[list, object, int]:
    """Every pre-flight check, in order; raises PreflightError at the first stage that fails.
    Returns (checks, the TFLM host ArenaUsage, the firmware arena size)."""
    from model import preprocessing

    checks = preflight.static_checks(info)
    preflight.require(checks)  # a model failing these would crash or mislead TFLM: do not run it
    check, usage = preflight.tflm_allocation_check(tflite)
    checks.append(check)
    preflight.require(checks)
    firmware_arena = boards.arena_for_firmware(usage.total)
    checks.append(preflight.tflm_allocation_check(tflite, arena_size=firmware_arena, name="tflm_firmware_arena")[0])
    # One real image through the interpreter: some aborts happen only in Invoke (see preflight).
    quant = info.io_details(info.inputs[0])
    checks.append(preflight.tflm_invoke_check(tflite, preprocessing.quantize_int8(sample, quant["scale"], quant["zero_point"])))
    if board is not None:
        checks.append(preflight.board_check(board, len(tflite), firmware_arena)[0])
    preflight.require(checks)
    return checks, usage, firmware_arena


def convert_model(
    model_path: Path | str,
    data,
    out: Path | str,
    *,
    board: str | None = None,
    calibration_count: int = quantize.DEFAULT_CALIBRATION_COUNT,
    seed: int = quantize.DEFAULT_CALIBRATION_SEED,
    calibration_indices: Path | str | None = None,
    labels: list[str] | None = None,
    name: str | None = None,
    progress: bool = True,
) -> dict:
    """Convert the `.keras` file `model_path`, calibrated on `data` (a dataset spec for
    model.data.load_dataset, or a Dataset), into the artifact folder `out`. Returns model.json's content.

    Raises BadInputError (unusable arguments, model, dataset or output path), ConversionError (the
    converter refused) or PreflightError (the converted model must not go to a device). On any error the
    output path is left as it was.
    """
    started = time.perf_counter()
    log = _stderr if progress else _quiet
    out = Path(out)
    model_path = Path(model_path)
    chosen_board = boards.get(board) if board else None
    check_output_path(out)  # before any heavy work (importing Keras takes seconds): a wrong path costs nothing
    name = name or out.resolve().name

    from model import preprocessing
    from model.metadata import ModelFileError, load_model
    from model.metadata import read as read_metadata
    from model.provenance import sha256_file
    from model.summary import summarize

    warnings: list[str] = []

    log(f"loading {model_path}")
    try:
        model = load_model(model_path)
        meta = read_metadata(model_path)
    except ModelFileError as error:
        raise BadInputError(str(error)) from error
    input_shape = tuple(int(d) for d in model.input_shape[1:])
    classes = int(model.output_shape[-1])

    dataset = _load_dataset(data)
    image_shape = tuple(int(d) for d in dataset.train.images.shape[1:])
    if image_shape != input_shape:
        raise BadInputError(
            f"the dataset {dataset.name} has {image_shape[1]}x{image_shape[0]}x{image_shape[2]} images but the model takes "
            f"{input_shape[1]}x{input_shape[0]}x{input_shape[2]}; calibrate with images of the model's input size"
        )
    if meta is None:
        warnings.append(
            f"no metadata ({model_path.with_suffix('.json').name}) beside the model: how it was trained, and how well, is unknown"
        )
    chosen_labels = choose_labels(labels, meta, dataset, classes, warnings)
    trained_on = ((meta or {}).get("dataset") or {}).get("fingerprint")
    if trained_on and trained_on != dataset.fingerprint:
        warnings.append(
            f"calibrated on {dataset.name} ({dataset.fingerprint[:12]}...), "
            f"not on the dataset the model was trained on ({trained_on[:12]}...)"
        )
    calibration = _calibration(dataset, calibration_count, seed, Path(calibration_indices) if calibration_indices else None)
    summary = summarize(model)

    log(f"converting to full int8, calibrating on {calibration['count']} training images of {dataset.name}")
    t0 = time.perf_counter()
    tflite = quantize.to_int8_tflite(model, dataset.train.images[calibration["indices"]], progress=progress)
    convert_seconds = time.perf_counter() - t0
    info = inspect.read(tflite)

    log("pre-flight checks")
    t0 = time.perf_counter()
    sample = dataset.train.images[calibration["indices"][0]]
    checks, usage, firmware_arena = preflight_checks(tflite, info, sample, chosen_board)
    tflm_seconds = time.perf_counter() - t0

    source_sha = sha256_file(model_path)
    artifact = describe(name, tflite, info, checks, usage, firmware_arena, chosen_board) | {
        "converter": quantize.converter_versions(),
        "labels": chosen_labels,
        "preprocessing": preprocessing.SPEC,
        "parameters": summary["totals"]["params"],
        "macs": summary["totals"]["macs"],
        "layers": summary["layers"],
        "calibration": {k: v for k, v in calibration.items() if k not in ("indices", "files")} | {"indices_file": INDICES_FILE},
        "source_model": {"path": display_path(model_path), "sha256": source_sha, "metadata": meta},
        "warnings": warnings,
    }
    digest, io, indices_record = artifact["sha256"], {k: artifact[k] for k in ("input", "output")}, dict(calibration)

    log(f"writing {out}")
    provenance = {
        "model": f"{name}, model.tflite {len(tflite)} bytes, SHA-256 {digest}",
        "source": f"{artifact['source_model']['path']} (SHA-256 {source_sha})",
        "converter": f"TensorFlow {artifact['converter'].get('tensorflow', '?')}, full int8",
        "git": artifact["git_sha"],
    }
    settings = codegen.package_settings(name, io, chosen_labels, preprocessing.SPEC, firmware_arena, usage.total)
    sources = codegen.generate_checked(tflite, settings, info.ops, provenance)

    artifact["timings_s"] = {
        "convert": round(convert_seconds, 2),
        "tflm": round(tflm_seconds, 2),
        "total": round(time.perf_counter() - started, 2),
    }
    publish(out, tflite, artifact, indices_record, sources)
    seconds = artifact["timings_s"]["total"]
    log(f"done: {out} ({len(tflite):,} bytes, arena {usage.total:,} + margin = {firmware_arena:,}) in {seconds:.1f} s")
    return artifact


def describe(name: str, tflite: bytes, info, checks: list, usage, firmware_arena: int, board: boards.Board | None) -> dict:
    """The fields of model.json that follow from the .tflite and its checks, whatever the model was made from
    (`convert_model` from Keras, `convert.from_tflite` from an existing .tflite); each adds where it came from."""
    from model.provenance import command_line, git_sha, now_utc, software_versions

    return {
        "format": FORMAT,
        "name": name,
        "tflite_file": TFLITE_FILE,
        "sha256": hashlib.sha256(tflite).hexdigest(),
        "tflite_bytes": len(tflite),
        "input": info.io_details(info.inputs[0]),
        "output": info.io_details(info.outputs[0]),
        "ops": info.ops,
        "op_histogram": info.op_histogram(),
        "arena": usage.to_dict() | {"tflite_micro": software_versions().get("tflite-micro")},
        "arena_bytes_for_firmware": firmware_arena,
        "arena_margin": {"bytes": firmware_arena - usage.total, "rule": boards.ARENA_MARGIN_RULE},
        "board": {"chosen": board.key if board else None, "verdicts": boards.fit_all(len(tflite), firmware_arena)},
        "checks": [c.to_dict() for c in checks],
        "firmware": {"folder": FIRMWARE_DIR, "files": list(codegen.FILES), "section_macro": "MODEL_DATA_SECTION"},
        "timings_s": {},
        "created": now_utc(),
        "git_sha": git_sha(),
        "command": command_line(),
        "software": software_versions(),
    }


def publish(out: Path, tflite: bytes, artifact: dict, indices: dict, sources: dict[str, str], report_tail: str = "") -> None:
    """Write everything into a temporary sibling of `out`, then swap it into place. `report_tail` is Markdown
    appended to report.md (convert.compress's section), written with the rest so the swap stays all or nothing."""
    from model.provenance import write_json

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        (staging / TFLITE_FILE).write_bytes(tflite)
        write_json(staging / INDICES_FILE, indices)
        firmware = staging / FIRMWARE_DIR
        firmware.mkdir()
        for file_name, text in sources.items():
            (firmware / file_name).write_text(text)
        write_json(staging / REPORT_JSON, report_module.build(artifact))
        (staging / REPORT_MD).write_text(report_module.render_markdown(artifact) + (f"\n{report_tail}\n" if report_tail else ""))
        write_json(staging / MODEL_JSON, artifact)  # last: its presence marks a complete artifact
        os.chmod(staging, 0o755)  # mkdtemp makes it 0700
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            out.rename(old / "artifact")
            try:
                staging.rename(out)
            except OSError:
                (old / "artifact").rename(out)  # put the previous artifact back
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def load_artifact(folder: Path | str) -> dict:
    """model.json of an artifact folder, after checking model.tflite against its SHA-256 and size.
    Raises BadInputError when the folder is not a complete, consistent artifact."""
    folder = Path(folder)
    try:
        artifact = json.loads((folder / MODEL_JSON).read_text())
    except (OSError, ValueError) as error:
        raise BadInputError(f"{folder}: no readable {MODEL_JSON} ({error}); run python -m convert first") from error
    if artifact.get("format") != FORMAT:
        raise BadInputError(f"{folder / MODEL_JSON}: format {artifact.get('format')!r}, expected {FORMAT!r}")
    tflite = folder / artifact["tflite_file"]
    if not tflite.is_file():
        raise BadInputError(f"{tflite}: missing")
    data = tflite.read_bytes()
    if len(data) != artifact["tflite_bytes"] or hashlib.sha256(data).hexdigest() != artifact["sha256"]:
        raise BadInputError(f"{tflite}: does not match the SHA-256 in {MODEL_JSON}; the artifact was modified, convert again")
    return artifact
