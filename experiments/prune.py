"""python -m experiments.prune: magnitude pruning with fine-tuning, per output channel, on a gradual schedule.

    python -m experiments.prune --model model/pretrained/squeezenet_cifar10.keras --data ../shared/datasets/cifar10 \\
        --density 0.33 --epochs 2 --out runs/pruned

Every Conv2D (and Dense) kernel loses its smallest-magnitude weights per output channel, gradually: the sparsity
follows Zhu & Gupta's (2017) polynomial schedule (cubic, from 0 at the first step to each layer's target at
--end-fraction of the fine-tune; then it fine-tunes at the target), and the masks are re-applied after every
optimiser step, so pruned weights are exactly 0 (model.pruning; Keras 3, any backend: TF-MOT does not support
Keras 3). Each layer's target is --density, raised so every output channel keeps at least --min-kept weights
(conv1 and 1x1 layers after a small squeeze stay denser), or --layer-density NAME=D. Writes, in --out,
<name>.keras and <name>.json (metadata like experiments.cluster's, with "pruning": the density reached per layer,
and the float test accuracy before and after). Then `python -m experiments.cluster --model <name>.keras` shares
the survivors' values (zeros kept), and `python -m convert`, `python -m convert.compress --method prune|huffman|best`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.cluster import BAD_INPUT_ERRORS, add_fine_tune_arguments
from model import exit_codes, quiet_tensorflow
from model.pruning import MIN_KEPT_PER_CHANNEL


def layer_density(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    try:
        if name:
            return name, float(value)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r}: want NAME=DENSITY, e.g. conv10=0.5")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.prune", description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--model", required=True, type=Path, help="the trained .keras model (its .json metadata is carried over)")
    parser.add_argument("--data", required=True, help="image folder (train/ and test/), 'cifar10' or 'synthetic'")
    parser.add_argument("--density", required=True, type=float, help="target fraction of weights kept per layer, in (0, 1]")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="folder for the pruned model and its metadata")
    parser.add_argument("--name", default=None, help="file stem; None: <model stem>_pruned<density in percent>")
    parser.add_argument(
        "--min-kept", type=int, default=MIN_KEPT_PER_CHANNEL, help="weights every output channel keeps at least (small layers stay denser)"
    )
    parser.add_argument(
        "--layer-density", type=layer_density, action="append", default=[], metavar="NAME=D", help="a layer's own target (repeatable)"
    )
    parser.add_argument("--end-fraction", type=float, default=0.75, help="where in the fine-tune the sparsity reaches its target")
    parser.add_argument("--frequency", type=int, default=25, help="steps between mask updates while the sparsity rises")
    add_fine_tune_arguments(parser, epochs=2, lr=0.01)
    return parser


def run(args) -> Path:
    import keras

    from experiments.cluster import fine_tune, recipe_of
    from model import metadata as model_metadata
    from model.data import load_dataset
    from model.evaluate import check_compatible, evaluate_model
    from model.provenance import run_stamp, sha256_file, write_json
    from model.pruning import (
        PruningError,
        density_summary,
        finish_pruning,
        layer_densities,
        make_prune_callback,
        polynomial_sparsity,
        prunable_kernels,
    )
    from model.train import save_for_deployment

    keras.utils.set_random_seed(args.seed)
    model = model_metadata.load_model(args.model)
    source_meta = model_metadata.read(args.model) or {}
    if source_meta.get("pruning"):
        raise PruningError(f"{args.model} is already pruned (its metadata has 'pruning'): prune its source instead")
    targets = layer_densities(model, args.density, args.min_kept, dict(args.layer_density))
    kernels = prunable_kernels(model, targets)
    callback = make_prune_callback(kernels, args.end_fraction, args.frequency)  # checks its arguments before any work
    dataset = load_dataset(args.data)
    dataset.require_train("fine-tuning the pruned model")
    check_compatible(model, source_meta, dataset)
    name = args.name or f"{args.model.stem}_pruned{round(100 * args.density)}"
    source_accuracy = source_meta.get("test_accuracy")
    if source_accuracy is None or source_meta.get("test_dataset_fingerprint", dataset.fingerprint) != dataset.fingerprint:
        source_accuracy = evaluate_model(model, dataset.test, dataset.labels)["top1"]
    print(f"float top-1 of {args.model}: {100 * source_accuracy:.2f}%", flush=True)
    dense = sorted(name for name, value in targets.items() if value == 1.0)
    print(f"pruning {len(kernels)} kernels toward density {args.density} ({', '.join(dense) or 'none'} left dense)", flush=True)

    history, seconds = [], 0.0
    if args.epochs > 0:
        history, seconds = fine_tune(model, dataset, args, [callback])
        print(f"masks: {1000 * callback.seconds_per_batch:.1f} ms per batch", flush=True)
    finish_pruning(kernels)  # --epochs 0 prunes in one shot; after a fit, the targets were reached at --end-fraction
    summary = density_summary(kernels, model)
    for row in summary["layers"]:
        if abs(row["density"] - row["target_density"]) > 0.5 / row["fan_in"] + 1e-6:
            raise AssertionError(f"{row['layer']}: density {row['density']} reached, target {row['target_density']}")

    args.out.mkdir(parents=True, exist_ok=True)
    model_file = args.out / f"{name}.keras"
    save_for_deployment(model, model_file)
    after = evaluate_model(model, dataset.test, dataset.labels)
    meta = {key: source_meta[key] for key in ("architecture", "labels", "preprocessing") if key in source_meta}
    meta |= {
        "format": model_metadata.FORMAT,
        "name": name,
        "model_file": model_file.name,
        "model_sha256": sha256_file(model_file),
        "parameters": int(model.count_params()),
        "dataset": dataset.describe(),
        "recipe": recipe_of(args),
        "epochs": args.epochs,
        "pruning": {
            "method": "magnitude per output channel (the same count per channel), masks re-applied after every optimiser step",
            "schedule": f"polynomial (Zhu & Gupta 2017): s_t = s_f (1 - (1 - t / t_end)^3), t_end = {args.end_fraction} of the steps",
            "schedule_check": {f"{p:.2f}": round(polynomial_sparsity(p, 1.0, 0, 1), 4) for p in (0.25, 0.5, 0.75, 1.0)},
            "end_fraction": args.end_fraction,
            "mask_update_every_steps": args.frequency,
            "density": args.density,
            "min_kept_per_channel": args.min_kept,
            "layer_density_overrides": dict(args.layer_density),
            "dense_layers": dense,
            "mask_ms_per_batch": round(1000 * callback.seconds_per_batch, 2),
            **summary,
            "test_accuracy_before": source_accuracy,
            "source_model": {"file": str(args.model), "sha256": sha256_file(args.model), "command": source_meta.get("command")},
        },
        "history": history,
        **model_metadata.test_score_record(after, dataset),
        **run_stamp(seconds),
    }
    write_json(model_metadata.metadata_path(model_file), meta)
    print(
        f"wrote {model_file}: density {summary['density_all_kernels']:.4f} of all Conv2D/Dense weights "
        f"({summary['density_pruned_layers']:.4f} in the {len(kernels)} pruned layers); float top-1 {100 * after['top1']:.2f}% "
        f"on {after['images']} test images of {dataset.name} (source {100 * source_accuracy:.2f}%)"
    )
    return model_file


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow()
    return exit_codes.run_command(lambda: run(args), BAD_INPUT_ERRORS)


if __name__ == "__main__":
    sys.exit(main())
