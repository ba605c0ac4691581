"""python -m model.train: train a SqueezeNet on an image-folder, CIFAR-10 or synthetic dataset.

    python -m model.train --data ../shared/datasets/cifar10 --out model/pretrained --name squeezenet_cifar10 \
        --version 1.1 --conv1-filters 48 --batch-norm --epochs 40

Writes, in --out: <name>.keras (the final epoch's model: no selection on the test set), <name>.json
(metadata: architecture, labels, preprocessing, dataset fingerprint, recipe, accuracy, time, versions),
<name>_log.csv (per-epoch loss and accuracy) and <name>_curve.png.

A checkpoint is written after every epoch (model with optimizer state, plus the history) under
--checkpoint-dir. Running the same command again after an interruption resumes from it; the
augmentation is seeded by (seed, epoch), so a resumed run sees the same data order an uninterrupted one
would. --restart ignores an existing checkpoint.

--init-from MODEL.keras starts from a trained model's weights instead of a random initialisation: a warm
restart of the schedule (a second cosine cycle) or a fine-tune. The source file's hash, command and
accuracy go into the metadata, so the chain of commands behind a model can be replayed.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from model import cli, exit_codes, preprocessing, quiet_tensorflow
from model import metadata as model_metadata
from model.data import CACHE_DIR, DatasetError, load_dataset
from model.evaluate import evaluate_model
from model.provenance import now_utc, run_stamp, sha256_file, write_json

# Keras (and so TensorFlow) is imported inside the functions that use it: main() quiets TensorFlow's start-up first.


class TrainingSetupError(ValueError):
    """The run cannot start as asked (an --init-from that does not fit, a checkpoint of other settings)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m model.train", description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--data", required=True, help="image folder (train/ and test/), 'cifar10' (Keras download) or 'synthetic'")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="folder for the model, metadata, log and curve")
    parser.add_argument("--name", default="squeezenet", help="file stem of everything written")
    cli.add_architecture_arguments(parser, version="1.1", batch_norm=True)
    recipe = cli.add_recipe_arguments(parser)
    recipe.add_argument(
        "--init-from",
        type=Path,
        default=None,
        metavar="MODEL.keras",
        help="start from this trained model's weights (a warm restart or fine-tune); its architecture must match",
    )
    parser.add_argument(
        "--checkpoint-dir",
        type=Path,
        default=None,
        help="default: a folder under ~/.cache/squeezenet-mcu/checkpoints named after the run's settings",
    )
    parser.add_argument("--restart", action="store_true", help="ignore an existing checkpoint and start over")
    return parser


# What the training loop does that no flag changes (compile_model, AugmentedBatches): recorded with every recipe.
RECIPE_FIXED = {"optimizer": "SGD, Nesterov momentum 0.9", "schedule": "linear warm-up then cosine decay to 0", "flip": True}


def recipe_of(args) -> dict:
    """The run's recipe as recorded in <name>.json: what the loop fixes, the recipe flags (model.cli), the start."""
    return RECIPE_FIXED | cli.recipe_of(args) | {"init_from": initial_weights_of(args.init_from)}


def initial_weights_of(path: Path | None) -> dict | None:
    """What a warm-started run started from: the file's hash, and the command and accuracy its metadata
    recorded, so the chain of training commands behind a model stays reproducible."""
    if path is None:
        return None
    if not path.is_file():
        raise TrainingSetupError(f"--init-from {path}: no such file")
    record = {"file": str(path), "sha256": sha256_file(path)}
    meta_file = model_metadata.metadata_path(path)
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        record |= {key: meta.get(key) for key in ("command", "epochs", "test_accuracy", "recipe")}
    return record


def load_initial_weights(model, path: Path) -> None:
    """Copy a trained model's weights into the freshly built one, layer by layer, refusing any mismatch."""
    import keras

    source = keras.saving.load_model(path, compile=False)
    source_layers = {layer.name: layer for layer in source.layers}
    for layer in model.layers:
        if not layer.weights:
            continue
        donor = source_layers.get(layer.name)
        shapes = [tuple(w.shape) for w in layer.weights]
        donor_shapes = [tuple(w.shape) for w in donor.weights] if donor is not None else None
        if donor_shapes != shapes:
            raise TrainingSetupError(
                f"--init-from {path}: layer {layer.name} has weights {donor_shapes} there but {shapes} here; "
                "pass the same architecture flags the model was trained with"
            )
        layer.set_weights(donor.get_weights())


def compile_model(model, args, steps_per_epoch: int) -> None:
    import keras

    total = args.epochs * steps_per_epoch
    warmup = min(int(cli.warmup_epochs(args.epochs, args.warmup_epochs) * steps_per_epoch), total - 1)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0, decay_steps=max(1, total - warmup), warmup_target=args.lr, warmup_steps=warmup
    )
    optimizer = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True, weight_decay=args.weight_decay)
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=args.label_smoothing)
    # XLA measured 2.7x slower than plain graph mode on this 2-core CPU.
    model.compile(optimizer=optimizer, loss=loss, metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")], jit_compile=False)


def save_for_deployment(model, path: Path) -> None:
    """Save the weights and graph without the optimizer state: half the size, and nothing downstream
    (evaluation, conversion) needs the momentum buffers. Training resumes from the checkpoint instead."""
    # A model rebuilt from its config is uncompiled, so it carries no optimizer variables (clone_model
    # would recompile the clone and keep them), and the config keeps the single-tensor input structure.
    clean = model.__class__.from_config(model.get_config())
    clean.set_weights(model.get_weights())
    clean.save(path)


def run_key(args, fingerprint: str) -> str:
    settings = json.dumps([cli.architecture_of(args), recipe_of(args), fingerprint], sort_keys=True)
    return hashlib.sha256(settings.encode()).hexdigest()[:12]


def write_log(path: Path, history: list[dict]) -> None:
    columns = sorted({key for row in history for key in row}, key=lambda k: (k != "epoch", k))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)


def plot_curve(path: Path, history: list[dict], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("loss", "train"), ("val_loss", "test")):
        if key in history[0]:
            ax_loss.plot(epochs, [row[key] for row in history], label=label)
    for key, label in (("accuracy", "train (augmented)"), ("val_accuracy", "test")):
        if key in history[0]:
            ax_acc.plot(epochs, [100 * row[key] for row in history], label=label)
    ax_loss.set(xlabel="epoch", ylabel="loss (label-smoothed cross-entropy)")
    ax_acc.set(xlabel="epoch", ylabel="top-1 %")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def train(args) -> Path:
    import keras

    from model.augment import AugmentedBatches
    from model.epoch_checkpoint import EpochCheckpoint
    from model.squeezenet import squeezenet

    keras.utils.set_random_seed(args.seed)
    dataset = load_dataset(args.data)
    dataset.require_train("training")
    train_split = dataset.train
    if args.limit_train:
        train_split = train_split.spread(args.limit_train, seed=args.seed)
    key = run_key(args, dataset.fingerprint)
    folder = args.checkpoint_dir or CACHE_DIR / "checkpoints" / f"{args.name}-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    state_file = folder / "state.json"
    steps = int(np.ceil(len(train_split) / args.batch_size))

    if state_file.is_file() and (folder / "checkpoint.keras").is_file() and not args.restart:
        state = json.loads(state_file.read_text())
        if state.get("key") != key:
            raise TrainingSetupError(f"{folder} holds a checkpoint of other settings; pass --restart or another --checkpoint-dir")
        model = keras.saving.load_model(folder / "checkpoint.keras")
        print(f"resuming from {folder} after epoch {state['epochs_done']} of {args.epochs}", flush=True)
    else:
        state = {"key": key, "epochs_done": 0, "history": [], "training_seconds": 0.0, "started": now_utc()}
        model = squeezenet(input_size=dataset.image_size, classes=len(dataset.labels), **cli.architecture_of(args))
        if args.init_from:
            load_initial_weights(model, args.init_from)
        compile_model(model, args, steps)
        print(f"training {model.name} ({model.count_params():,} parameters) on {dataset.name}; checkpoints in {folder}", flush=True)

    if state["epochs_done"] < args.epochs:
        batches = AugmentedBatches(
            train_split.images,
            train_split.labels,
            len(dataset.labels),
            batch_size=args.batch_size,
            pad=args.crop_pad,
            cutout=args.cutout,
            seed=args.seed,
            epoch=state["epochs_done"],
        )
        test_targets = keras.utils.to_categorical(dataset.test.labels, len(dataset.labels))
        model.fit(
            batches,
            epochs=args.epochs,
            initial_epoch=state["epochs_done"],
            validation_data=(preprocessing.to_float_input(dataset.test.images), test_targets),
            validation_batch_size=500,
            callbacks=[EpochCheckpoint(folder, state)],
            verbose=1 if sys.stdout.isatty() else 2,
        )

    args.out.mkdir(parents=True, exist_ok=True)
    model_file = args.out / f"{args.name}.keras"
    save_for_deployment(model, model_file)
    train_score = evaluate_model(model, train_split.spread(10000, seed=args.seed), dataset.labels)
    test_score = evaluate_model(model, dataset.test, dataset.labels)
    write_log(args.out / f"{args.name}_log.csv", state["history"])
    plot_curve(args.out / f"{args.name}_curve.png", state["history"], f"{model.name} on {dataset.name}")
    meta = {
        "format": model_metadata.FORMAT,
        "name": args.name,
        "model_file": model_file.name,
        "model_sha256": sha256_file(model_file),
        "architecture": cli.architecture_of(args) | {"input_size": dataset.image_size, "classes": len(dataset.labels)},
        "parameters": int(model.count_params()),
        "labels": dataset.labels,
        "preprocessing": preprocessing.SPEC,
        "dataset": dataset.describe(),
        "recipe": recipe_of(args),
        "epochs": state["epochs_done"],
        "train_accuracy_unaugmented": {
            "top1": train_score["top1"],
            "images": train_score["images"],
            "subset": "class-spread, seeded",
        },
        **model_metadata.test_score_record(test_score, dataset),
        "training_started": state["started"],
        **run_stamp(state["training_seconds"]),
    }
    write_json(model_metadata.metadata_path(model_file), meta)
    print(f"wrote {model_file}: float top-1 {100 * test_score['top1']:.2f}% on {test_score['images']} test images of {dataset.name}")
    return model_file


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow()
    resume = "the last finished epoch is checkpointed; run the same command to resume"
    return exit_codes.run_command(lambda: train(args), (DatasetError, TrainingSetupError), interrupted=resume)


if __name__ == "__main__":
    sys.exit(main())
