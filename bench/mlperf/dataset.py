"""The MLPerf Tiny runner's image-classification dataset (`<out>/ic01/`) made from an image-folder dataset.

The official runner (mlcommons/tiny `benchmark/runner`) reads `<dataset_path>/<model id>/y_labels.csv`, one row per
image: `file,classes,class` (`emu_s_002009.bin,10,2`), and sends each file's bytes as they are: for ic01, the 32x32x3
image as raw uint8 RGB pixels in HWC order (MLPerf's `perf_samples_loader.py` writes them so). The firmware's MLPerf
mode quantises those pixels with the model's input scale and zero point.

`python -m bench.mlperf.dataset --data ../shared/datasets/cifar10 --out build/mlperf-datasets [--per-class 20]` writes
`--per-class` test images of each class (20: 200 images, as many as MLPerf's ic01 set; its own images are CIFAR-10's
original pixels, which ../shared does not have), spread evenly over each class's files in file-name order, named
`<class>_<file stem>.bin`, rows interleaved class by class. Deterministic: the same folder gives the same files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

MODEL_ID = "ic01"
LABELS_FILE = "y_labels.csv"


def select(labels: np.ndarray, classes: int, per_class: int) -> list[int]:
    """Indices of `per_class` images of each class, evenly spaced over that class's images in their order, interleaved
    (first of each class, then the second of each, ...). Raises ValueError when a class has fewer images."""
    from model.data import spread_indices  # the one subset selector

    chosen = []
    for label in range(classes):
        members = np.flatnonzero(labels == label)
        if len(members) < per_class:
            raise ValueError(f"class {label} has {len(members)} test images, fewer than --per-class {per_class}")
        chosen.append(members[spread_indices(len(members), per_class)])
    return [int(chosen[label][k]) for k in range(per_class) for label in range(classes)]


def write_dataset(images: np.ndarray, labels: np.ndarray, files: list[str], class_names: list[str], out: Path, per_class: int) -> Path:
    """Write `<out>/ic01/*.bin` and its y_labels.csv; returns the ic01 folder."""
    if images.ndim != 4 or images.dtype != np.uint8 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 images (N, H, W, 3), got {images.dtype} {images.shape}")
    folder = out / MODEL_ID
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index in select(labels, len(class_names), per_class):
        label = int(labels[index])
        name = f"{class_names[label]}_{Path(files[index]).stem}.bin" if files else f"{class_names[label]}_{index:05d}.bin"
        (folder / name).write_bytes(np.ascontiguousarray(images[index]).tobytes())
        rows.append(f"{name},{len(class_names)},{label}\n")
    (folder / LABELS_FILE).write_text("".join(rows))
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the MLPerf Tiny runner's ic01 dataset (raw-pixel .bin files + y_labels.csv).")
    parser.add_argument("--data", required=True, help="image-folder dataset (e.g. ../shared/datasets/cifar10); its test split is used")
    parser.add_argument("--out", required=True, type=Path, help="the runner's --dataset_path; ic01/ is written in it")
    parser.add_argument("--per-class", type=int, default=20, help="images per class (default: %(default)s, 200 images for CIFAR-10)")
    args = parser.parse_args(argv)
    if args.per_class < 1:
        parser.error(f"--per-class must be at least 1, got {args.per_class}")
    from model.data import DatasetError, load_dataset

    try:
        dataset = load_dataset(args.data, progress=False)
        test = dataset.test
        folder = write_dataset(test.images, test.labels, test.files, dataset.labels, args.out, args.per_class)
    except (DatasetError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    count = args.per_class * len(dataset.labels)
    print(f"{folder}: {count} images of {dataset.name} (fingerprint {dataset.fingerprint[:12]}), {folder / LABELS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
