"""python -m model.evaluate: float top-1 accuracy of a trained Keras model on a dataset split.

    python -m model.evaluate --model model/pretrained/squeezenet_cifar10.keras \
        --data ../shared/datasets/cifar10 [--split test] [--limit N] [--json] [--record]

With --record the figure is written into the model's metadata JSON as `test_accuracy` (test split, no
limit only), together with the command that produced it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from model import exit_codes, preprocessing, quiet_tensorflow
from model import metadata as model_metadata
from model.data import DatasetError, Split, load_dataset
from model.provenance import command_line, now_utc, write_json


def predict(model, images: np.ndarray, batch_size: int = 250, progress: bool = False) -> np.ndarray:
    """Softmax probabilities for uint8 images, in batches."""
    from model.progress import iterate

    outputs = []
    for start in iterate(range(0, len(images), batch_size), "float inference", "batch", enabled=None if progress else False, leave=False):
        batch = preprocessing.to_float_input(images[start : start + batch_size])
        outputs.append(np.asarray(model(batch, training=False)))
    return np.concatenate(outputs)


def top1(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))


def evaluate_model(model, split: Split, labels: list[str], batch_size: int = 250, progress: bool = False) -> dict:
    probabilities = predict(model, split.images, batch_size, progress)
    predicted = np.argmax(probabilities, axis=1)
    per_class = {name: float(np.mean(predicted[split.labels == c] == c)) for c, name in enumerate(labels) if np.any(split.labels == c)}
    return {"top1": top1(probabilities, split.labels), "images": len(split), "per_class_top1": per_class}


def check_compatible(model, meta: dict | None, dataset) -> None:
    """Refuse a dataset the model cannot be scored on, naming both sides."""
    side = model.input_shape[1]
    if dataset.image_size != side:
        raise DatasetError(f"{dataset.source}: images are {dataset.image_size}x{dataset.image_size} but the model takes {side}x{side}")
    if meta and meta.get("labels") and meta["labels"] != dataset.labels:
        raise DatasetError(f"{dataset.source}: classes {dataset.labels} differ from the model's {meta['labels']}")
    classes = model.output_shape[-1]
    if len(dataset.labels) != classes:
        raise DatasetError(f"{dataset.source}: {len(dataset.labels)} classes but the model has {classes} outputs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path, help="a .keras file written by model.train")
    parser.add_argument(
        "--data",
        required=True,
        help="image folder (train/ and test/, or test images alone: test/<class>/ or <class>/), 'cifar10' or 'synthetic'",
    )
    parser.add_argument("--split", default="test", choices=("train", "test"))
    parser.add_argument("--limit", type=int, default=None, help="score N images spread evenly over the split (default: all)")
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--record", action="store_true", help="write test_accuracy into the model's metadata JSON")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow()
    try:
        model = model_metadata.load_model(args.model)
        meta = model_metadata.read(args.model)
        dataset = load_dataset(args.data)
        check_compatible(model, meta, dataset)
    except (DatasetError, model_metadata.ModelFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return exit_codes.BAD_INPUT
    split = dataset.split(args.split)
    split = split.spread(args.limit)
    result = evaluate_model(model, split, dataset.labels, args.batch_size, progress=True)
    result.update(dataset=dataset.name, fingerprint=dataset.fingerprint, split=args.split, model=str(args.model))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.model}: float top-1 {100 * result['top1']:.2f}% on {result['images']} {args.split} images of {dataset.name}")
    if args.record:
        if args.split != "test" or args.limit or meta is None:
            print("error: --record needs the whole test split and the model's metadata JSON", file=sys.stderr)
            return exit_codes.BAD_INPUT
        meta.update(
            test_accuracy=result["top1"],
            test_images=result["images"],
            test_dataset=dataset.name,
            test_dataset_fingerprint=dataset.fingerprint,
            test_command=command_line(),
            test_measured=now_utc(),
        )
        write_json(model_metadata.metadata_path(args.model), meta)
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
