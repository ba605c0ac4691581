"""python -m experiments.cluster: cluster a trained model's weights per output channel, then fine-tune the centroids.

    python -m experiments.cluster --model model/pretrained/squeezenet_cifar10.keras --data ../shared/datasets/cifar10 \\
        --bits 4 --epochs 3 --out runs/clustered

Every Conv2D (and Dense) kernel gets at most 2**bits distinct values per output channel (k-means, see
model.clustering); fine-tuning keeps each weight's cluster and trains the cluster values. Writes, in --out,
<name>.keras and <name>.json (metadata like model.train's, with "clustering" and the float test accuracy
before and after fine-tuning). Then `python -m convert` and `python -m convert.compress` turn it into a
look-up-table-compressed int8 artifact. --epochs 0 clusters without fine-tuning.

A model pruned by experiments.prune (its metadata has "pruning") keeps its zeros: each channel's survivors
share 2**bits - 1 values, 0 is the last one, and the masks are re-applied after every centroid snap.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from model import cli, exit_codes, quiet_tensorflow
from model.data import DatasetError
from model.metadata import ModelFileError
from model.pruning import PruningError

# What a fine-tuning command (this one, experiments.prune) answers with BAD_INPUT.
BAD_INPUT_ERRORS = (DatasetError, ModelFileError, PruningError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.cluster", description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--model", required=True, type=Path, help="the trained .keras model (its .json metadata is carried over)")
    parser.add_argument("--data", required=True, help="image folder (train/ and test/), 'cifar10' or 'synthetic'")
    parser.add_argument("--bits", type=int, default=4, choices=range(1, 8), help="index bits: k = 2**bits values per output channel")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="folder for the clustered model and its metadata")
    parser.add_argument("--name", default=None, help="file stem; None: <model stem>_cluster<bits>bit")
    parser.add_argument(
        "--all-layers",
        action="store_true",
        help="cluster every kernel, also those too small per channel for LUT compression to shrink (without it they are "
        "left alone: clustering them would only cost accuracy)",
    )
    parser.add_argument("--kmeans-iterations", type=int, default=30, help="Lloyd iterations at most (stops when assignments settle)")
    add_fine_tune_arguments(parser)
    return parser


def add_fine_tune_arguments(parser: argparse.ArgumentParser, epochs: int = 3, lr: float = 0.005) -> None:
    """model.train's recipe flags (model.cli) with a fine-tune's defaults, shared with experiments.prune (one loop: `fine_tune`)."""
    title = "fine-tuning recipe (model.train's pieces: SGD with Nesterov momentum, cosine decay; --epochs 0: none)"
    cli.add_recipe_arguments(parser, title, epochs=epochs, lr=lr, warmup_epochs=0.0)


def recipe_of(args) -> dict:
    from model.train import RECIPE_FIXED

    return RECIPE_FIXED | cli.recipe_of(args)


def fine_tune(model, dataset, args, callbacks: list) -> tuple[list[dict], float]:
    """Fit with `callbacks` run after every batch, in order (experiments.cluster's centroid snap,
    experiments.prune's masks). The one fine-tuning loop of both. Returns (per-epoch history, seconds)."""
    import keras

    from model import preprocessing
    from model.augment import AugmentedBatches
    from model.train import compile_model

    split = dataset.train
    if args.limit_train:
        # Not the first N: an image folder lists its training split class by class, and single-class batches
        # would wreck the batch-norm statistics the fine-tune keeps updating.
        split = split.spread(args.limit_train, seed=args.seed)
    batches = AugmentedBatches(
        split.images, split.labels, len(dataset.labels), batch_size=args.batch_size, pad=args.crop_pad, cutout=args.cutout, seed=args.seed
    )
    compile_model(model, args, len(batches))

    class SyncState(keras.callbacks.Callback):
        """First after every step: on JAX, fit keeps the trained state apart from the Keras variables until
        something reads Callback.model, so callbacks that read or assign variables would see stale values."""

        def on_train_batch_end(self, batch, logs=None):
            _ = self.model

    test_targets = keras.utils.to_categorical(dataset.test.labels, len(dataset.labels))
    started = time.monotonic()
    history = model.fit(
        batches,
        epochs=args.epochs,
        validation_data=(preprocessing.to_float_input(dataset.test.images), test_targets),
        validation_batch_size=500,
        callbacks=[SyncState(), *callbacks],
        verbose=1 if sys.stdout.isatty() else 2,
    ).history
    rows = [{"epoch": e + 1, **{key: float(values[e]) for key, values in history.items()}} for e in range(args.epochs)]
    return rows, time.monotonic() - started


def run(args) -> Path:
    import keras

    from model import metadata as model_metadata
    from model.clustering import check_clustered, cluster_model, make_snap_callback, snap_all
    from model.data import load_dataset
    from model.evaluate import check_compatible, evaluate_model
    from model.provenance import run_stamp, sha256_file, write_json
    from model.pruning import apply_masks, check_zeros_kept, cluster_pruned_model, kernels_from_zeros, make_mask_callback
    from model.train import save_for_deployment

    keras.utils.set_random_seed(args.seed)
    model = model_metadata.load_model(args.model)
    source_meta = model_metadata.read(args.model) or {}
    dataset = load_dataset(args.data)
    dataset.require_train("fine-tuning the clustered model")
    check_compatible(model, source_meta, dataset)
    name = args.name or f"{args.model.stem}_cluster{args.bits}bit"
    # The source's accuracy from its metadata when it was scored on this dataset's test split, else measured now.
    source_accuracy = source_meta.get("test_accuracy")
    if source_accuracy is None or source_meta.get("test_dataset_fingerprint", dataset.fingerprint) != dataset.fingerprint:
        source_accuracy = evaluate_model(model, dataset.test, dataset.labels)["top1"]
    print(f"float top-1 of {args.model}: {100 * source_accuracy:.2f}%", flush=True)

    # A model from experiments.prune keeps its zeros: survivors shared, the zeros one of the 2**bits values.
    pruning = source_meta.get("pruning")
    masks = kernels_from_zeros(model) if pruning else []
    started = time.monotonic()
    cluster = cluster_pruned_model if pruning else cluster_model
    clustered, skipped = cluster(model, args.bits, args.kmeans_iterations, all_layers=args.all_layers)
    kmeans_seconds = time.monotonic() - started
    check_clustered(clustered)
    print(f"clustered {len(clustered)} kernels to <= {2**args.bits} values per output channel in {kmeans_seconds:.1f} s", flush=True)
    if skipped:
        print(f"left {len(skipped)} unclustered (too few weights per channel for LUT compression to pay): {', '.join(skipped)}")
    before = evaluate_model(model, dataset.test, dataset.labels)
    print(f"float top-1 after clustering, before fine-tuning: {100 * before['top1']:.2f}%", flush=True)

    if pruning:
        print(f"pruned source ({pruning.get('density_all_kernels')} density): zeros of {len(masks)} kernels kept", flush=True)
    history, seconds, snap_seconds = [], 0.0, 0.0
    if args.epochs > 0:
        snapper = make_snap_callback(clustered)
        history, seconds = fine_tune(model, dataset, args, [snapper, make_mask_callback(masks)])
        snap_seconds = snapper.seconds_per_batch
        print(f"centroid snap: {1000 * snap_seconds:.1f} ms per batch", flush=True)
    snap_all(clustered)  # the callbacks already did this after the last batch; this makes the invariant explicit
    apply_masks(masks)
    check_clustered(clustered)
    check_zeros_kept(masks)

    args.out.mkdir(parents=True, exist_ok=True)
    model_file = args.out / f"{name}.keras"
    save_for_deployment(model, model_file)
    after = evaluate_model(model, dataset.test, dataset.labels)
    meta = {key: source_meta[key] for key in ("architecture", "labels", "preprocessing", "pruning") if key in source_meta}
    meta |= {
        "format": model_metadata.FORMAT,
        "name": name,
        "model_file": model_file.name,
        "model_sha256": sha256_file(model_file),
        "parameters": int(model.count_params()),
        "dataset": dataset.describe(),
        "recipe": recipe_of(args),
        "epochs": args.epochs,
        "clustering": {
            "bits": args.bits,
            "k": 2**args.bits,
            "per_channel": "output channel (a kernel's last axis): survives per-channel int8 quantisation and batch-norm folding",
            "method": "k-means (linear init), then fine-tuning with fixed assignments and trained centroids (per-batch cluster mean)",
            "kmeans_iterations": args.kmeans_iterations,
            "kmeans_seconds": round(kmeans_seconds, 2),
            "epochs": args.epochs,
            "snap_ms_per_batch": round(1000 * snap_seconds, 2),
            "layers": [entry.describe() for entry in clustered],
            "skipped_layers": skipped,
            "zeros_kept": {"kernels": len(masks), "rule": "survivors: k-means to 2**bits - 1 values; zeros: the 2**bits-th"}
            if pruning
            else None,
            "skip_rule": None if args.all_layers else "fan-in where per-channel LUT indices + table cannot undercut int8 (lut_pays)",
            "test_accuracy_before_finetune": before["top1"],
            "source_model": {
                "file": str(args.model),
                "sha256": sha256_file(args.model),
                "test_accuracy": source_accuracy,
                "command": source_meta.get("command"),
            },
        },
        "history": history,
        **model_metadata.test_score_record(after, dataset),
        **run_stamp(seconds),
    }
    write_json(model_metadata.metadata_path(model_file), meta)
    print(
        f"wrote {model_file}: float top-1 {100 * after['top1']:.2f}% on {after['images']} test images of {dataset.name} "
        f"(source {100 * source_accuracy:.2f}%, clustered before fine-tuning {100 * before['top1']:.2f}%)"
    )
    return model_file


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow()
    return exit_codes.run_command(lambda: run(args), BAD_INPUT_ERRORS)


if __name__ == "__main__":
    sys.exit(main())
