"""python -m experiments.explore: the SqueezeNet paper's design-space exploration (section 5) on this project's model.

    python -m experiments.explore --sweep sr --data ../shared/datasets/cifar10 --epochs 10

One metaparameter varies per sweep; every other one is the deployed CIFAR-10 model's (version 1.1, base_e 128,
incr_e 128, pct_3x3 0.5, freq 2, sr 0.125, no bypass, conv1 48 filters, batch norm, dropout 0.5) unless an
architecture flag changes it. Default points:
  sr       Figure 3a analog: squeeze ratio 0.125, 0.25, 0.5, 0.75, 0.99 at pct_3x3 0.5. The builder keeps the
           paper's Fire rule s1x1 < e1x1 + e3x3 (section 3.1), so it refuses SR 1.0; 0.99 is the nearest it builds.
  pct3x3   Figure 3b analog: share of 3x3 expand filters 0.01, 0.125, 0.25, ..., 0.875, 0.99 at sr 0.5 (the
           paper's setting: this sweep's --sr defaults to 0.5).
  bypass   Table 3 analog: none (vanilla), simple (identity bypass) and complex (plus 1x1-conv bypasses).

Every point gets the same recipe, seed and budget: trained by `python -m model.train` in a subprocess (it
checkpoints every epoch and resumes), converted to int8 by `convert.artifact.convert_model` without a board
(a point too big for a microcontroller is still measured), and scored on the TFLM host interpreter. Then, when a
TFLM tree, qemu-system-arm and arm-none-eabi-gcc are there, its device cost on the emulated STM32F405: the
qemu_stm32f405 firmware is built around it and --device-images test images run on QEMU netduinoplus2, giving
instructions per Invoke() (an instruction count, not time), the arena used, flash and RAM from the ELF, and
bit-identity with the TFLM host (experiments.explore_device); a point that overflows the chip is recorded as "does not
fit", one that cannot be measured here as "not measured: <reason>". Writes, in --out: results.json, results.md,
<sweep>.png and points/<label>/ (the trained model, its training log, the int8 artifact, the device report and
result.json). Running the same command again skips the points that finished; a finished point without device
figures is measured on the device without being trained again.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from experiments import explore_device, explore_report
from experiments.explore_point import Context, PointError, TrainingFailed, run_point
from model import cli, exit_codes, quiet_tensorflow
from model.provenance import REPO_ROOT, command_line, git_sha, now_utc, software_versions, write_json
from model.squeezenet import BYPASSES, fire_plan


@dataclass(frozen=True)
class Sweep:
    key: str  # what --sweep takes, and the stem of the labels and of the plot
    parameter: str  # the squeezenet(...) argument it varies
    figure: str
    points: tuple
    fixed: dict  # the paper's setting of the other metaparameter of this figure (user flags still override it)


SWEEPS = {
    s.key: s
    for s in (
        Sweep("sr", "sr", "Figure 3a", (0.125, 0.25, 0.5, 0.75, 0.99), {"pct_3x3": 0.5}),
        Sweep("pct3x3", "pct_3x3", "Figure 3b", (0.01, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 0.99), {"sr": 0.5}),
        Sweep("bypass", "bypass", "Table 3", BYPASSES, {}),
    )
}
# The deployed CIFAR-10 model (model/pretrained/squeezenet_cifar10.json) is every sweep's base.
BASE_CONV1_FILTERS = 48


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.explore",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=lambda prog: _Formatter(prog, max_help_position=36),
    )
    parser.add_argument(
        "--sweep", required=True, choices=tuple(SWEEPS), help="the paper figure to reproduce (see below); the swept flag is ignored"
    )
    parser.add_argument("--points", default=None, help="comma-separated values of the swept metaparameter (default: see below)")
    parser.add_argument("--data", required=True, help="image folder (train/ and test/), 'cifar10' or 'synthetic'")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: reports/explore-<sweep>)")
    parser.add_argument(
        "--limit-test",
        type=int,
        default=None,
        help="score N test images spread over the classes (default: all)",
    )
    parser.add_argument("--calibration-count", type=int, default=500, help="training images calibrating the int8 conversion")
    parser.add_argument("--workers", type=int, default=None, help="TFLM host processes in parallel (default: one per core)")
    device = parser.add_argument_group("device cost (the emulated STM32F405; skipped, saying why, without a TFLM tree or QEMU)")
    device.add_argument(
        "--device-images", type=int, default=explore_device.DEFAULT_IMAGES, help="test images per point on QEMU (0: no device stage)"
    )
    device.add_argument(
        "--device-build-dir",
        type=Path,
        default=explore_device.DEFAULT_BUILD_DIR,
        help="PlatformIO build folder the sweep's firmware is built in (one for all points: only the model recompiles)",
    )
    cli.add_recipe_arguments(parser, "recipe (model.train's flags; identical for every point)", epochs=10)
    cli.add_architecture_arguments(parser, version="1.1", batch_norm=True, conv1_filters=BASE_CONV1_FILTERS)
    return parser


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in the help (unless the help says it or there is none), and the epilog's sweep table as written."""

    def _get_help_string(self, action):
        if action.default is None or "default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def parse_points(sweep: Sweep, text: str | None) -> list:
    if text is None:
        return list(sweep.points)
    values = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        if sweep.parameter == "bypass":
            if item not in BYPASSES:
                raise PointError(f"--points {item!r}: the bypass sweep takes {', '.join(BYPASSES)}")
            values.append(item)
        else:
            try:
                values.append(float(item))
            except ValueError:
                raise PointError(f"--points {item!r}: the {sweep.key} sweep takes numbers, e.g. 0.125,0.25") from None
    if not values or len(set(values)) != len(values):
        raise PointError(f"--points {text!r}: give one or more distinct values")
    return values


def value_text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def plan_points(sweep: Sweep, values: list, base: dict, dataset) -> list[dict]:
    """Every point's architecture, parameters and MACs, checked by building it before anything trains:
    a bad point fails in seconds, not after hours of training the ones before it."""
    import keras

    from model.squeezenet import squeezenet
    from model.summary import summarize

    points = []
    for value in values:
        shown = f"{sweep.parameter}={value_text(value)}"
        arch = base | {sweep.parameter: value}
        if 0.0 < arch["pct_3x3"] < 1.0:  # a rounded-away branch would make the point another point's model
            keys = ("base_e", "incr_e", "pct_3x3", "freq", "sr")
            for spec in fire_plan(**{k: arch[k] for k in keys}):
                if spec.e3x3 == 0 or spec.e1x1 == 0:
                    kind = "3x3" if spec.e3x3 == 0 else "1x1"
                    raise PointError(
                        f"point {shown}: {spec.name} would get no {kind} expand filters ({spec.e1x1} 1x1, {spec.e3x3} 3x3), "
                        "so it would not be the design the value names; raise --base-e or drop the point"
                    )
        try:
            model = squeezenet(input_size=dataset.image_size, classes=len(dataset.labels), **arch)
        except ValueError as error:
            raise PointError(f"point {shown}: {error}") from None
        summary = summarize(model)
        label = f"{sweep.key}-{value_text(value)}"
        points.append({"label": label, "shown": shown, "value": value, "architecture": arch} | _totals(summary))
        keras.backend.clear_session()
    return points


def _totals(summary: dict) -> dict:
    return {"parameters": summary["totals"]["params"], "macs": summary["totals"]["macs"]}


def explore(args) -> int:
    from model.data import load_dataset

    sweep = SWEEPS[args.sweep]
    values = parse_points(sweep, args.points)
    out = (args.out or REPO_ROOT / "reports" / f"explore-{sweep.key}").resolve()
    dataset = load_dataset(args.data)
    dataset.require_train("training the sweep's points")
    base = cli.architecture_of(args)
    points = plan_points(sweep, values, base, dataset)
    recipe = cli.recipe_of(args)
    # The training child and QEMU's benchmark run in the repository root: a relative dataset folder must not change meaning there.
    data = args.data if args.data in ("synthetic", "cifar10") else str(Path(args.data).resolve())
    context = Context(
        out=out,
        data=data,
        dataset=dataset,
        test=dataset.test.spread(args.limit_test),
        settings={"recipe": recipe, "dataset_fingerprint": dataset.fingerprint, "limit_test": args.limit_test}
        | {"calibration_count": args.calibration_count},
        calibration_count=args.calibration_count,
        workers=args.workers,
        device=explore_device.stage_for(args.device_images, args.device_build_dir, data),
    )
    train_images = min(args.limit_train or len(dataset.train), len(dataset.train))
    print(
        f"sweep {sweep.key} ({sweep.figure} analog) on {dataset.name}: {len(points)} points, {args.epochs} epochs each, "
        f"{train_images} training and {len(context.test)} test images; output in {out}",
        flush=True,
    )
    for point in points:
        print(f"  {point['shown']}: {point['parameters']:,} parameters, {point['macs']:,} MACs", flush=True)
    if context.device.unavailable:
        print(f"  device cost: not measured on this run ({context.device.unavailable})", flush=True)
    else:
        print(f"  device cost: {args.device_images} images per point on {explore_device.TARGET}", flush=True)

    results = []
    try:
        for index, point in enumerate(points, 1):
            results.append(run_point(point, index, len(points), context))
    finally:  # a failure or an interruption still leaves the finished points' summary
        if results:
            summary = {
                "format": "squeezenet-mcu/explore/1",
                "sweep": sweep.key,
                "parameter": sweep.parameter,
                "paper_figure": sweep.figure,
                "points_requested": [value_text(v) for v in values],
                "base_architecture": base,
                "recipe": recipe,
                "train_recipe": _train_recipe(out, results[0]),
                "budget": {"epochs": args.epochs, "train_images": train_images, "test_images": len(context.test)},
                "calibration_count": args.calibration_count,
                "device": {"target": explore_device.TARGET, "images": args.device_images, "unavailable": context.device.unavailable},
                "dataset": {"name": dataset.name, "source": dataset.source, "fingerprint": dataset.fingerprint},
                "machine": explore_report.machine(),
                "command": command_line(),
                "git_sha": git_sha(),
                "created": now_utc(),
                "software": software_versions(),
                "points": results,
            }
            write_json(out / "results.json", summary)
            explore_report.write(summary, out)
            print(f"wrote {out / 'results.json'}, {out / 'results.md'} and {out / (sweep.key + '.png')}", flush=True)
    return 0


def _train_recipe(out: Path, result: dict) -> dict | None:
    """model.train's full recipe (weight decay, label smoothing, ...) as its metadata recorded it."""
    meta_file = (out / result["model_file"]).with_suffix(".json")
    return json.loads(meta_file.read_text()).get("recipe") if meta_file.is_file() else None


def main(argv=None) -> int:
    parser = build_parser()
    first, _ = parser.parse_known_args(argv)
    # The sweep's figure fixes another metaparameter (sr 0.5 for Figure 3b); an explicit flag still wins.
    parser.set_defaults(**SWEEPS[first.sweep].fixed)
    args = parser.parse_args(argv)
    if args.device_images < 0:
        parser.error("--device-images takes 0 (no device stage) or a number of test images, e.g. 5")
    quiet_tensorflow()
    from model.data import DatasetError

    try:
        return explore(args)
    except (PointError, DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return exit_codes.FAILED if isinstance(error, TrainingFailed) else exit_codes.BAD_INPUT
    except KeyboardInterrupt:
        print("\ninterrupted: finished points are kept; run the same command to resume", file=sys.stderr)
        return exit_codes.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
