"""python -m convert: a trained .keras model, or an existing full-int8 .tflite -> build/<name>/, the artifact the
firmware and the host checks use.

    python -m convert --model model/pretrained/squeezenet_cifar10.keras --data ../shared/datasets/cifar10 \\
        --out build/squeezenet_cifar10 [--board netduinoplus2]
    python -m convert --tflite ../shared/models/mlperf_tiny_ic_resnet8_int8.tflite --data ../shared/datasets/cifar10 \\
        --out build/resnet8 [--labels FILE] [--board netduinoplus2]     # taken as it is: checked, not converted

Writes model.tflite, model.json, calibration_indices.json, firmware/ (model_data.h/.cc, model_settings.h,
model_op_resolver.h), report.md and report.json. Pre-flight checks (float or hybrid ops, ops TFLM lacks,
concatenation quantisation, softmax quantisation, TFLM host allocation, the chosen board's flash and RAM)
stop the conversion with exit status 4 and nothing written; unusable input gives exit status 2 (README.md, "Exit codes").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from convert.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_PREFLIGHT  # noqa: F401 (the exit statuses of this command)
from model import exit_codes, quiet_tensorflow


def build_parser() -> argparse.ArgumentParser:
    from convert.boards import BOARDS
    from convert.quantize import DEFAULT_CALIBRATION_COUNT, DEFAULT_CALIBRATION_SEED

    parser = argparse.ArgumentParser(
        prog="python -m convert",
        description="Turn a trained .keras model (or an existing full-int8 .tflite) into build/<name>/: the full-int8 model, "
        "its firmware package and a report.",
        epilog="Exit status: 0 done, 2 unusable input, 4 a pre-flight check refused the model, 5 the converter failed (README.md).",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="the trained Keras model (.keras; its .json metadata is read when present)")
    source.add_argument(
        "--tflite", type=Path, help="an existing full-int8 .tflite, taken as it is (no calibration; needs --labels or --data)"
    )
    parser.add_argument(
        "--data",
        help="calibration dataset: image folder (train/ and test/), 'cifar10' or 'synthetic' (with --tflite: only its labels)",
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="artifact folder, e.g. build/<name> (replaced only when it holds an artifact)"
    )
    parser.add_argument(
        "--board", default=None, help=f"refuse the model unless it fits this board: {', '.join(BOARDS)} (default: report all)"
    )
    parser.add_argument(
        "--calibration-count", type=int, default=DEFAULT_CALIBRATION_COUNT, help="training images to calibrate on (default: %(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_CALIBRATION_SEED, help="seed that draws the calibration images (default: %(default)s)"
    )
    parser.add_argument("--calibration-indices", type=Path, default=None, help="reuse the calibration_indices.json of an earlier artifact")
    parser.add_argument(
        "--labels", type=Path, default=None, help="label file, one a line (default: the model's metadata, else the dataset's)"
    )
    parser.add_argument("--name", default=None, help="model name in the firmware and report (default: the --out folder's name)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def _read_labels(path: Path) -> list[str]:
    from convert.errors import BadInputError

    try:
        labels = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError as error:
        raise BadInputError(f"{path}: cannot read the label file ({error})") from error
    if not labels:
        raise BadInputError(f"{path}: no labels in it")
    return labels


def _import(args, labels: list[str] | None) -> dict:
    """--tflite: labels from --labels, else the class folders of --data (nothing else of the dataset is read)."""
    from convert.errors import BadInputError
    from convert.from_tflite import import_tflite

    if labels is None:
        if not args.data:
            raise BadInputError("--tflite needs --labels FILE (one label a line) or --data DATASET to take the labels from")
        from model.data import DatasetError, load_dataset

        try:
            labels = list(load_dataset(args.data, progress=not args.quiet).labels)
        except DatasetError as error:
            raise BadInputError(str(error)) from error
    return import_tflite(args.tflite, args.out, labels=labels, board=args.board, name=args.name, progress=not args.quiet)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow()
    from convert import errors
    from convert.artifact import convert_model
    from convert.errors import ConversionError

    try:
        labels = _read_labels(args.labels) if args.labels else None
        if args.tflite:
            artifact = _import(args, labels)
        elif not args.data:
            raise errors.BadInputError("--model needs --data: the images to calibrate the int8 conversion on")
        else:
            artifact = convert_model(
                args.model,
                args.data,
                args.out,
                board=args.board,
                calibration_count=args.calibration_count,
                seed=args.seed,
                calibration_indices=args.calibration_indices,
                labels=labels,
                name=args.name,
                progress=not args.quiet,
            )
    except (ConversionError, OSError) as error:
        return errors.report(error)
    except KeyboardInterrupt:
        print("\ninterrupted: nothing was written", file=sys.stderr)
        return exit_codes.INTERRUPTED
    arena, firmware_arena = artifact["arena"]["total"], artifact["arena_bytes_for_firmware"]
    print(f"{args.out}: {artifact['tflite_bytes']:,} bytes, arena {arena:,} B (firmware {firmware_arena:,} B)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
