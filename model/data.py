"""Datasets as uint8 NHWC arrays with labels: an image folder, Keras's CIFAR-10 download, or synthetic data.

`load_dataset(spec)` takes
- a folder laid out as `<root>/train/<class>/*` and `<root>/test/<class>/*` (the layout of
  `../shared/datasets/cifar10`); classes are the folder names in sorted order;
- a folder of test images alone: `<root>/test/<class>/*` only, or a flat `<root>/<class>/*` (no train/ or
  test/ in it), whose images are the test split. The train split is then empty: evaluation, parity and the
  serial benchmark work; calibration and training refuse it (`Dataset.require_train`) and say why;
- "cifar10": Keras's download (needs a connected machine the first time; Keras caches it);
- "synthetic": a small, learnable, offline dataset for smoke tests.

Every way in is validated and fails with a `DatasetError` naming the file or folder at fault. Decoded
image folders are cached (`.npz` keyed by the files' names, sizes and mtimes) so the second load of
CIFAR-10 takes about a second instead of a minute. The fingerprint is a SHA-256 over the decoded pixels,
labels and class names: two datasets with the same fingerprint feed the model the same numbers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from model.cache import cache_dir

SPLITS = ("train", "test")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".gif", ".webp"}
CACHE_DIR = cache_dir()  # the project cache (model.cache); tests point it elsewhere
CIFAR10_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class DatasetError(ValueError):
    """A dataset that cannot be used as it is; the message names the file or folder and the fix."""


@dataclass
class Split:
    images: np.ndarray  # uint8, (N, H, W, 3)
    labels: np.ndarray  # int64, (N,)
    files: list[str] = field(default_factory=list)  # relative paths, where the data has files

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices) -> Split:
        indices = np.asarray(indices)
        files = [self.files[i] for i in indices] if self.files else []
        return Split(self.images[indices], self.labels[indices], files)

    def spread(self, limit: int | None, seed: int | None = None) -> Split:
        """`limit` images spread over the split, one per stratum (all without a limit): see spread_indices."""
        return self.subset(spread_indices(len(self), limit, seed))


def spread_indices(available: int, limit: int | None, seed: int | None = None) -> np.ndarray:
    """`limit` distinct indices, in order, one from each of `limit` equal strata of `available` (all of them without
    a limit). Strata, not the first N: image folders are sorted by class, and the first N images would all be
    airplanes; one per stratum keeps every class in proportion. Without a seed, each stratum's first index: the
    test-image selector of every --limit that scores (evaluate, parity, the serial benchmark, the pipeline,
    experiments.explore), reproducible with nothing to record. With a seed, a seeded random index inside each stratum:
    model.train's --limit-train, where another seed should draw other images. The one subset selector."""
    if not limit or limit >= available:
        return np.arange(available)
    starts = (np.arange(limit + 1) * available) // limit
    if seed is None:
        return starts[:-1]
    offsets = np.random.default_rng(seed).random(limit)
    return starts[:-1] + (offsets * (starts[1:] - starts[:-1])).astype(np.int64)


@dataclass
class Dataset:
    name: str  # shown beside every accuracy figure, e.g. "CIFAR-10 (JPEG copy)"
    source: str  # what was asked for: a folder path, "cifar10" or "synthetic"
    labels: list[str]
    train: Split
    test: Split
    fingerprint: str = ""
    layout: str = "train and test"  # or "test only" (<root>/test/), "flat" (<root>/<class>/: all test images)

    @property
    def image_size(self) -> int:
        return int((self.train if len(self.train) else self.test).images.shape[1])

    @property
    def has_train(self) -> bool:
        return len(self.train) > 0

    def require_train(self, purpose: str) -> None:
        """Raise DatasetError when there is no train split: `purpose` ("calibration", "training") needs one."""
        if not self.has_train:
            raise DatasetError(
                f"{self.source}: {purpose} needs a train split, and this folder holds test images only ({self.layout} layout); "
                f"give a folder with train/<class>/* (and test/<class>/*). Evaluation, parity and the serial benchmark take it as it is"
            )

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise DatasetError(f"split {name!r}: expected one of {SPLITS}")
        if name == "train" and not self.has_train:
            self.require_train("--split train")
        return getattr(self, name)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "fingerprint": self.fingerprint,
            "labels": self.labels,
            "image_size": self.image_size,
            "layout": self.layout,
            "train_images": len(self.train),
            "test_images": len(self.test),
        }


def load_dataset(spec: str, *, cache: bool = True, progress: bool = True) -> Dataset:
    """Load a dataset by its spec: a folder path, "cifar10" or "synthetic" (see the module docstring)."""
    if spec == "synthetic":
        dataset = synthetic_dataset()
    elif spec == "cifar10":
        dataset = _keras_cifar10()
    else:
        dataset = _image_folder(Path(spec), cache=cache, progress=progress)
    dataset.fingerprint = fingerprint(dataset)
    return dataset


def fingerprint(dataset: Dataset) -> str:
    digest = hashlib.sha256()
    digest.update("\n".join(dataset.labels).encode())
    for split in (dataset.train, dataset.test):
        digest.update(np.ascontiguousarray(split.images).tobytes())
        digest.update(split.labels.astype(np.int64).tobytes())
    return digest.hexdigest()


def synthetic_dataset(classes: int = 10, size: int = 32, train_per_class: int = 48, test_per_class: int = 16, seed: int = 0) -> Dataset:
    """Offline stand-in: each class is a distinct colour and stripe pattern plus noise, so a model can
    learn it in an epoch or two. For smoke tests, never for accuracy claims."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)

    def make(per_class: int) -> Split:
        images, labels = [], []
        for c in range(classes):
            angle = np.pi * c / classes
            stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * (0.3 + 0.05 * c))
            colour = np.array([(37 * c) % 256, (91 * c + 60) % 256, (151 * c + 120) % 256], np.float32)
            base = colour * (0.6 + 0.4 * stripes[..., None])
            for _ in range(per_class):
                noisy = base + rng.normal(0.0, 20.0, base.shape)
                images.append(np.clip(noisy, 0, 255).astype(np.uint8))
                labels.append(c)
        order = rng.permutation(len(labels))
        return Split(np.stack(images)[order], np.asarray(labels, np.int64)[order])

    labels = [f"class{c}" for c in range(classes)]
    return Dataset("synthetic", "synthetic", labels, make(train_per_class), make(test_per_class))


def _keras_cifar10() -> Dataset:
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as error:  # the download is the only thing that can fail here
        raise DatasetError(
            f"could not download CIFAR-10 through Keras ({error}); on an offline machine pass the image "
            "folder instead, e.g. --data ../shared/datasets/cifar10"
        ) from error
    return Dataset(
        "CIFAR-10",
        "cifar10",
        list(CIFAR10_LABELS),
        Split(x_train.astype(np.uint8), y_train.reshape(-1).astype(np.int64)),
        Split(x_test.astype(np.uint8), y_test.reshape(-1).astype(np.int64)),
    )


def _list_split(root: Path, split: str) -> dict[str, list[Path]]:
    folder = root / split
    if not folder.is_dir():
        raise DatasetError(f"{folder}: missing split folder; an image-folder dataset needs {root}/train/<class>/ and {root}/test/<class>/")
    return _list_classes(folder)


def _list_classes(folder: Path) -> dict[str, list[Path]]:
    """{class: sorted image paths} of `folder`/<class>/*, classes in sorted order."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise DatasetError(f"{folder}: no class folders in it; expected {folder}/<class>/<image files>")
    listing = {}
    for class_dir in classes:
        files = sorted(p for p in class_dir.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise DatasetError(f"{class_dir}: empty class folder; add images or remove the folder")
        listing[class_dir.name] = files
    return listing


def _cache_key(root: Path, listings: dict[str, dict[str, list[Path]]]) -> str:
    digest = hashlib.sha256(str(root.resolve()).encode())
    for split, listing in listings.items():
        for label, files in listing.items():
            for path in files:
                stat = path.stat()
                digest.update(f"{split}/{label}/{path.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def _decode(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as error:
        raise DatasetError(f"{path}: not a readable image ({error}); remove it or replace it") from error


def _decode_split(root: Path, split: str, listing: dict[str, list[Path]], progress: bool) -> Split:
    from model.progress import iterate

    paths = [(index, path) for index, files in enumerate(listing.values()) for path in files]
    images, labels, names = [], [], []
    expected_shape = None
    for label, path in iterate(paths, f"decoding {root.name}/{split}", "img", enabled=None if progress else False, leave=False):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise DatasetError(f"{path}: not an image file (suffix {path.suffix!r}); remove it from the dataset folder")
        pixels = _decode(path)
        if expected_shape is None:
            expected_shape = (pixels.shape, path)
        elif pixels.shape != expected_shape[0]:
            raise DatasetError(
                f"{path}: image size {pixels.shape[1]}x{pixels.shape[0]} differs from "
                f"{expected_shape[0][1]}x{expected_shape[0][0]} of {expected_shape[1]}; all images must share one size"
            )
        images.append(pixels)
        labels.append(label)
        names.append(str(path.relative_to(root)))
    return Split(np.stack(images), np.asarray(labels, np.int64), names)


def _dataset_name(root: Path, files: list[str]) -> str:
    name = "CIFAR-10" if root.resolve().name.lower() in ("cifar10", "cifar-10") else root.resolve().name
    if files and all(Path(f).suffix.lower() in (".jpg", ".jpeg") for f in files):
        name += " (JPEG copy)"  # lossy: accuracy on it is not accuracy on the original pixels
    return name


def _layout(root: Path) -> str:
    """Which layout `root` has (see the module docstring). A folder with train/ needs test/ too (its error says so)."""
    if (root / "train").is_dir():
        return "train and test"
    if (root / "test").is_dir():
        return "test only"
    if any(p.is_dir() for p in root.iterdir()):
        return "flat"
    return "train and test"  # neither splits nor class folders: _list_split names what is missing


def _image_folder(root: Path, *, cache: bool, progress: bool) -> Dataset:
    if not root.is_dir():
        raise DatasetError(
            f"{root}: no such dataset folder (expected a folder with train/ and test/, test/ alone, or <class>/ folders; "
            "or 'cifar10' or 'synthetic')"
        )
    layout = _layout(root)
    if layout == "flat":
        listings = {"test": _list_classes(root)}
    elif layout == "test only":
        listings = {"test": _list_split(root, "test")}
    else:
        listings = {split: _list_split(root, split) for split in SPLITS}
        train_classes, test_classes = list(listings["train"]), list(listings["test"])
        if train_classes != test_classes:
            only_train = sorted(set(train_classes) - set(test_classes))
            only_test = sorted(set(test_classes) - set(train_classes))
            raise DatasetError(f"{root}: train and test classes differ (only in train: {only_train}; only in test: {only_test})")

    cache_file = CACHE_DIR / "datasets" / f"{root.resolve().name}-{_cache_key(root, listings)}.npz"
    if cache and cache_file.is_file():
        stored = np.load(cache_file, allow_pickle=False)
        splits = {s: Split(stored[f"{s}_images"], stored[f"{s}_labels"], [str(f) for f in stored[f"{s}_files"]]) for s in listings}
    else:
        splits = {s: _decode_split(root, s, listings[s], progress) for s in listings}
        if "train" in splits and splits["train"].images.shape[1:] != splits["test"].images.shape[1:]:
            raise DatasetError(
                f"{root}: train images are {splits['train'].images.shape[1:3]} but test images are "
                f"{splits['test'].images.shape[1:3]}; all images must share one size"
            )
        if cache:
            _write_cache(cache_file, splits)
    test = splits["test"]
    train = splits.get("train") or _empty_split(test)
    return Dataset(_dataset_name(root, test.files), str(root), list(listings["test"]), train, test, layout=layout)


def _empty_split(like: Split) -> Split:
    return Split(np.zeros((0, *like.images.shape[1:]), np.uint8), np.zeros(0, np.int64), [])


def _write_cache(cache_file: Path, splits: dict[str, Split]) -> None:
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, split in splits.items():
        arrays[f"{name}_images"] = split.images
        arrays[f"{name}_labels"] = split.labels
        arrays[f"{name}_files"] = np.asarray(split.files)
    temporary = cache_file.with_name(cache_file.name + ".tmp.npz")
    np.savez(temporary, **arrays)
    temporary.replace(cache_file)  # a reader never sees half a cache file
