"""python -m bench.pipeline: the main job, end to end on the embedded default (the README's first command).

Stages, each skipped with a reason when what it needs is absent:
  1. model     the committed pretrained CIFAR-10 model, or --train to make it again with its recorded recipe
  2. evaluate  float top-1 on the test split

Writes reports/<name>/summary.md and summary.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from model import metadata as model_metadata  # noqa: E402
from model.provenance import REPO_ROOT, git_sha, now_utc, write_json  # noqa: E402

DEFAULT_MODEL = REPO_ROOT / "model" / "pretrained" / "squeezenet_cifar10.keras"
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "datasets" / "cifar10"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline", description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="the Keras model to deploy")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="image folder, 'cifar10' or 'synthetic'")
    parser.add_argument("--train", action="store_true", help="train the model again with the recipe in its metadata first")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N test images")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports", help="reports go to OUT/<model name>/")
    return parser


def stage_train(model_path: Path, data: str) -> dict:
    """Re-run the training command recorded in the model's metadata, writing to the same place."""
    from model import train

    meta = model_metadata.read(model_path)
    if not meta:
        raise SystemExit(f"error: {model_metadata.metadata_path(model_path)} is missing: nothing says how to train this model")
    arch, recipe = meta["architecture"], meta["recipe"]
    argv = [
        "--data",
        data,
        "--out",
        str(model_path.parent),
        "--name",
        model_path.stem,
        "--version",
        arch["version"],
        "--base-e",
        str(arch["base_e"]),
        "--incr-e",
        str(arch["incr_e"]),
        "--pct-3x3",
        str(arch["pct_3x3"]),
        "--freq",
        str(arch["freq"]),
        "--sr",
        str(arch["sr"]),
        "--bypass",
        arch["bypass"],
        "--dropout",
        str(arch["dropout"]),
        "--batch-norm" if arch["batch_norm"] else "--no-batch-norm",
        "--epochs",
        str(recipe["epochs"]),
        "--batch-size",
        str(recipe["batch_size"]),
        "--lr",
        str(recipe["lr"]),
        "--warmup-epochs",
        str(recipe["warmup_epochs"]),
        "--weight-decay",
        str(recipe["weight_decay"]),
        "--label-smoothing",
        str(recipe["label_smoothing"]),
        "--crop-pad",
        str(recipe["crop_pad"]),
        "--cutout",
        str(recipe["cutout"]),
        "--seed",
        str(recipe["seed"]),
    ]
    if arch.get("conv1_filters"):
        argv += ["--conv1-filters", str(arch["conv1_filters"])]
    if train.main(argv) != 0:
        raise SystemExit("error: training failed")
    return {"command": "python -m model.train " + " ".join(argv)}


def stage_evaluate(model_path: Path, data: str, limit: int | None) -> dict:
    import numpy as np

    from model.data import load_dataset
    from model.evaluate import check_compatible, evaluate_model

    model = model_metadata.load_model(model_path)
    dataset = load_dataset(data)
    check_compatible(model, model_metadata.read(model_path), dataset)
    split = dataset.test if not limit else dataset.test.subset(np.arange(min(limit, len(dataset.test))))
    result = evaluate_model(model, split, dataset.labels, progress=sys.stderr.isatty())
    return {"float_top1": result["top1"], "images": result["images"], "dataset": dataset.name, "fingerprint": dataset.fingerprint}


def write_summary(folder: Path, summary: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "summary.json", summary)
    lines = [f"# {summary['model']}: pipeline summary", "", f"git {summary['git_sha']}, {summary['created']}", ""]
    lines += ["| stage | result | seconds |", "|---|---|---|"]
    for name, stage in summary["stages"].items():
        detail = stage.get("summary") or json.dumps({k: v for k, v in stage.items() if k != "seconds"})
        lines.append(f"| {name} | {detail} | {stage.get('seconds', '')} |")
    (folder / "summary.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    summary = {"model": args.model.stem, "git_sha": git_sha(), "created": now_utc(), "stages": {}}

    def run(name, function, *stage_args):
        print(f"== {name}", flush=True)
        started = time.monotonic()
        result = function(*stage_args)
        result["seconds"] = round(time.monotonic() - started, 1)
        summary["stages"][name] = result
        return result

    try:
        if args.train:
            run("train", stage_train, args.model, args.data)
        result = run("evaluate", stage_evaluate, args.model, args.data, args.limit)
        result["summary"] = f"float top-1 {100 * result['float_top1']:.2f}% on {result['images']} test images of {result['dataset']}"
        print(result["summary"])
    except (model_metadata.ModelFileError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    folder = args.out / args.model.stem
    write_summary(folder, summary)
    print(f"summary: {folder / 'summary.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
