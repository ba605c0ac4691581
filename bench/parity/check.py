"""python -m bench.parity: host-side parity of Keras float, LiteRT reference kernels and TFLM on the host.

    python -m bench.parity --artifacts build/<name> --data ../shared/datasets/cifar10 \\
        [--split test] [--limit N] [--out reports/<name>-parity]

Runs the same images through the Keras float model the artifact was converted from, the int8 model in
LiteRT with the reference op resolver, and the int8 model in TFLM's host interpreter (worker
subprocesses: a TFLM crash is reported, not fatal), on every core. Reports top-1 per engine, agreement,
bit-identical rates and LSB differences between the int8 engines, ST-style float metrics against Keras,
confusion matrices and the samples whose prediction flips; when LiteRT and TFLM disagree on a sample it
re-runs it with every tensor kept and names the first layer that differs. Writes parity.json,
parity.md and parity.png into --out.

It answers, before anything is flashed: what does int8 cost, and does TFLM compute exactly what the
reference kernels compute (so that a difference later seen on a device is the device's)?
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from model import exit_codes, quiet_tensorflow

ENGINE_KEYS = ("keras", "litert", "tflm")


def build_parser() -> argparse.ArgumentParser:
    from bench.parity.gates import EXIT_BAD_INPUT, EXIT_GATE_FAILED, EXIT_INCOMPLETE, EXIT_OK

    parser = argparse.ArgumentParser(
        prog="python -m bench.parity",
        description=(
            "Host parity before flashing: the same images through the Keras float model, the int8 model in LiteRT's reference "
            "kernels and the int8 model in TFLM's host interpreter. Says what int8 costs and whether TFLM is bit-exact; "
            "writes parity.json, parity.md and parity.png."
        ),
        epilog=(
            f"Exit status: {EXIT_OK} every gate holds; {EXIT_GATE_FAILED} a gate failed; {EXIT_BAD_INPUT} unusable input (artifact "
            f"tampered with or incomplete, dataset of other classes), nothing run; {EXIT_INCOMPLETE} an engine asked for is unavailable "
            "here, so a gate could not be evaluated (the others still ran and are reported); 130 interrupted (README.md, 'Exit codes')."
        ),
    )
    parser.add_argument("--artifacts", required=True, type=Path, metavar="DIR", help="the converter's artifact folder, build/<name>")
    parser.add_argument(
        "--data",
        required=True,
        metavar="DATASET",
        help="image folder (train/ and test/, or test images alone: test/<class>/ or <class>/), 'cifar10' or 'synthetic'",
    )
    parser.add_argument("--split", default="test", choices=("train", "test"), help="default: test")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="N images spread evenly over the split (default: all)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR", help="report folder (default: reports/<artifact name>-parity)")
    parser.add_argument(
        "--engines", default=",".join(ENGINE_KEYS), help=f"comma-separated subset of {','.join(ENGINE_KEYS)} (default: all)"
    )
    parser.add_argument(
        "--keras", type=Path, default=None, metavar="PATH", help="the float model, when not at model.json's source_model.path"
    )
    parser.add_argument(
        "--workers", type=int, default=None, metavar="N", help="parallel workers (default: every core this process may use)"
    )
    parser.add_argument(
        "--gate-bit-exact",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="gate: TFLM bit-identical to LiteRT on every sample (default: on)",
    )
    parser.add_argument(
        "--gate-top1-points",
        type=float,
        default=1.0,
        metavar="P",
        help="gate: |int8 top-1 - float top-1| <= P percentage points (default: 1.0)",
    )
    parser.add_argument("--no-gate-top1", action="store_true", help="switch the int8 top-1 gate off")
    parser.add_argument(
        "--localize", type=int, default=20, metavar="N", help="name the first differing layer for up to N samples (default: 20; 0: off)"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress (bars on a terminal, a line every 30 s in a redirected log)"
    )
    return parser


def _parse_engines(text: str) -> list[str] | None:
    """The engines asked for, in one fixed order (float, the reference, TFLM); None when `text` is not a subset."""
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys or any(k not in ENGINE_KEYS for k in keys):
        return None
    return [k for k in ENGINE_KEYS if k in keys]


def _warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_engines(keys: list[str], artifact) -> list:
    from bench.parity import engines

    made = {
        "keras": lambda: engines.KerasEngine(artifact.keras_path, artifact.keras_problem, artifact.input_shape, len(artifact.labels)),
        "litert": lambda: engines.LiteRTEngine(artifact.model_bytes, artifact.input_q),
        "tflm": lambda: engines.TflmEngine(artifact.model_bytes, artifact.input_q),
    }
    return [made[key]() for key in keys]


def _localize(args, artifact, engines: list, images, indices, outputs: dict) -> dict | None:
    """Name the first differing layer for up to --localize samples on which LiteRT and TFLM differ; None when
    they do not differ (or did not both run)."""
    import numpy as np

    from bench.parity import localize as parity_localize
    from bench.parity.engines import KerasEngine
    from model.preprocessing import quantize_int8

    if "litert" not in outputs or "tflm" not in outputs:
        return None
    differing = np.nonzero(np.any(outputs["litert"] != outputs["tflm"], axis=1))[0]
    if not len(differing) or not args.localize:
        return None
    chosen = differing[: args.localize]
    print(
        f"localising: {len(differing):,} samples differ between LiteRT and TFLM; re-running {len(chosen)} with every tensor kept",
        flush=True,
    )
    # With the Keras model at hand, tensor names map back to its exact layer names.
    keras_engine = next((e for e in engines if isinstance(e, KerasEngine) and e.model is not None), None)
    known = [layer.name for layer in keras_engine.model.layers] if keras_engine else None
    inputs = quantize_int8(images.images[chosen], artifact.input_q.scale, artifact.input_q.zero_point)
    found = parity_localize.localize(artifact.model_bytes, artifact.info, inputs, [int(indices[i]) for i in chosen], known)
    return found | {"differing_samples": int(len(differing)), "localized": int(len(chosen))}


def run(args) -> int:
    """Everything after argument parsing; returns the exit status. Raises ArtifactError, DatasetError or
    ModelFileError for unusable input (before any engine runs); never for an engine's sake."""
    from bench.parity import gates as parity_gates
    from bench.parity import metrics
    from bench.parity import report as parity_report
    from bench.parity.engines import default_workers, run_engines
    from convert.artifact_reader import check_dataset, open_artifact
    from model.data import load_dataset, spread_indices
    from model.provenance import command_line, git_sha, now_utc, software_versions

    started = time.perf_counter()
    seconds = {}
    keys = _parse_engines(args.engines)
    artifact = open_artifact(args.artifacts, args.keras)
    dataset = load_dataset(args.data, progress=not args.no_progress)
    check_dataset(artifact, dataset)
    split = dataset.split(args.split)
    indices = spread_indices(len(split), args.limit)
    images = split.subset(indices)
    out = args.out or Path("reports") / f"{artifact.name}-parity"
    print(f"parity: {artifact.name} on {len(images):,} {args.split} images of {dataset.name}; engines {', '.join(keys)}", flush=True)
    seconds["setup"] = time.perf_counter() - started

    t0 = time.perf_counter()
    workers = args.workers or default_workers()
    engines = build_engines(keys, artifact)
    results = run_engines(engines, images.images, workers=workers, progress=False if args.no_progress else None, log=_warn)
    seconds["engines"] = time.perf_counter() - t0

    outputs = {key: r.outputs for key, r in results.items() if r.ok}
    computed = metrics.compare(outputs, {k: results[k].int8 for k in outputs}, images.labels, len(artifact.labels), artifact.output_q)
    t0 = time.perf_counter()
    localization = _localize(args, artifact, engines, images, indices, outputs)
    seconds["localization"] = time.perf_counter() - t0
    max_top1_points = None if args.no_gate_top1 else args.gate_top1_points
    gates = parity_gates.evaluate(results, computed, len(images), bit_exact=args.gate_bit_exact, max_top1_points=max_top1_points)
    seconds["total"] = time.perf_counter() - started  # the report's own writing (about a second) excluded

    report = {
        "format": "squeezenet-mcu/parity/1",
        "verdict": parity_gates.verdict(gates),
        "exit_status": parity_gates.exit_status(gates),
        "created": now_utc(),
        "command": command_line(),
        "git_sha": git_sha(),
        "software": software_versions(),
        "machine": {"cpus": os.cpu_count(), "workers": workers},
        "artifact": artifact.describe(),
        "dataset": {
            "name": dataset.name,
            "source": dataset.source,
            "fingerprint": dataset.fingerprint,
            "split": args.split,
            "split_images": len(split),
            "images": len(images),
            "selection": "all" if len(images) == len(split) else f"{len(images)} evenly spread indices (--limit)",
        },
        "labels": artifact.labels,
        "gates": gates,
        "engines": {key: result.describe(len(images)) | computed["engines"].get(key, {}) for key, result in results.items()},
        "pairs": computed["pairs"],
        "flips": metrics.flips(outputs, images.labels, artifact.labels, indices, images.files),
        "localization": localization,
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
    }
    paths = parity_report.write(out, report)

    print(parity_report.int8_cost_line(report).replace("**", ""))
    print(parity_report.tflm_exact_line(report).replace("**", ""))
    for gate in gates:
        said = (gate["measured"] or gate["detail"] or "").strip().splitlines()
        print(f"gate {gate['name']}: {gate['status']}" + (f" ({said[0]})" if said else ""))
    print(f"{report['verdict']} in {seconds['total']:.1f} s; report: {paths['markdown']}")
    return report["exit_status"]


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if _parse_engines(args.engines) is None:
        parser.error(f"--engines {args.engines!r}: expected a comma-separated subset of {', '.join(ENGINE_KEYS)}")
    for option, value in (("--limit", args.limit), ("--workers", args.workers)):
        if value is not None and value < 1:
            parser.error(f"{option} {value}: expected a positive number")
    if args.gate_top1_points < 0 or args.localize < 0:
        parser.error("--gate-top1-points and --localize take numbers >= 0")
    quiet_tensorflow()
    from bench.parity.gates import EXIT_BAD_INPUT
    from convert.artifact_reader import ArtifactError
    from model.data import DatasetError
    from model.metadata import ModelFileError

    try:
        return run(args)
    except (ArtifactError, DatasetError, ModelFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:  # an unreadable file, a full disk: which path, not a traceback
        print(f"error: {error.filename or ''}: {error.strerror or error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("\ninterrupted: no report written", file=sys.stderr)
        return exit_codes.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
