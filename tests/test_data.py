"""Datasets: the image-folder layout, its errors (each naming the file or folder), caching, fingerprints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model import data
from model.data import DatasetError, load_dataset


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")


def write_image(path: Path, size=(8, 8), value=0, fmt="PNG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path, format=fmt)


def make_folder(root: Path, classes=("cat", "dog"), per_class=2, size=(8, 8)) -> Path:
    for split in ("train", "test"):
        for c, name in enumerate(classes):
            for i in range(per_class):
                write_image(root / split / name / f"{i}.png", size, value=40 * c + i)
    return root


def test_image_folder_loads_sorted_classes(tmp_path):
    dataset = load_dataset(str(make_folder(tmp_path / "toy", classes=("dog", "cat"))), progress=False)
    assert dataset.labels == ["cat", "dog"]
    assert dataset.train.images.shape == (4, 8, 8, 3) and dataset.train.images.dtype == np.uint8
    assert list(dataset.train.labels) == [0, 0, 1, 1]
    assert dataset.train.files[0] == "train/cat/0.png"
    assert dataset.name == "toy" and len(dataset.fingerprint) == 64


def test_jpeg_folders_are_labelled_as_lossy_copies(tmp_path):
    root = tmp_path / "cifar10"
    for split in ("train", "test"):
        write_image(root / split / "a" / "0.jpg", fmt="JPEG")
        write_image(root / split / "b" / "0.jpg", fmt="JPEG")
    assert load_dataset(str(root), progress=False).name == "CIFAR-10 (JPEG copy)"


def test_cache_gives_the_same_dataset(tmp_path):
    root = make_folder(tmp_path / "toy")
    first = load_dataset(str(root), progress=False)
    assert list((data.CACHE_DIR / "datasets").glob("toy-*.npz"))
    second = load_dataset(str(root), progress=False)
    assert first.fingerprint == second.fingerprint and second.train.files == first.train.files


def test_fingerprint_changes_with_a_pixel(tmp_path):
    root = make_folder(tmp_path / "toy")
    before = load_dataset(str(root), progress=False).fingerprint
    write_image(root / "test" / "dog" / "1.png", value=200)
    assert load_dataset(str(root), progress=False).fingerprint != before


def test_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="nowhere: no such dataset folder"):
        load_dataset(str(tmp_path / "nowhere"))


def test_missing_split(tmp_path):
    root = make_folder(tmp_path / "toy")
    for path in sorted((root / "test").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (root / "test").rmdir()
    with pytest.raises(DatasetError, match=r"toy/test: missing split folder"):
        load_dataset(str(root))


def test_empty_class(tmp_path):
    root = make_folder(tmp_path / "toy")
    (root / "train" / "emu").mkdir()
    with pytest.raises(DatasetError, match=r"train/emu: empty class folder"):
        load_dataset(str(root))


def test_non_image_file(tmp_path):
    root = make_folder(tmp_path / "toy")
    (root / "train" / "cat" / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match=r"cat/notes.txt: not an image file"):
        load_dataset(str(root), progress=False)


def test_corrupt_image(tmp_path):
    root = make_folder(tmp_path / "toy")
    (root / "train" / "cat" / "9.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DatasetError, match=r"cat/9.png: not a readable image"):
        load_dataset(str(root), progress=False)


def test_mixed_image_sizes(tmp_path):
    root = make_folder(tmp_path / "toy")
    write_image(root / "train" / "dog" / "7.png", size=(9, 8))
    with pytest.raises(DatasetError, match=r"dog/7.png: image size 9x8 differs from 8x8"):
        load_dataset(str(root), progress=False)


def test_train_and_test_sizes_differ(tmp_path):
    root = make_folder(tmp_path / "toy")
    for path in (root / "test").rglob("*.png"):
        write_image(path, size=(16, 16))
    with pytest.raises(DatasetError, match="all images must share one size"):
        load_dataset(str(root), progress=False)


def test_train_test_class_mismatch(tmp_path):
    root = make_folder(tmp_path / "toy")
    write_image(root / "test" / "emu" / "0.png")
    with pytest.raises(DatasetError, match=r"only in train: \[\]; only in test: \['emu'\]"):
        load_dataset(str(root))


def test_synthetic_is_deterministic_and_balanced():
    a, b = load_dataset("synthetic"), load_dataset("synthetic")
    assert a.fingerprint == b.fingerprint
    assert a.train.images.shape == (480, 32, 32, 3)
    assert np.bincount(a.test.labels).tolist() == [16] * 10


def test_split_subset_keeps_files(tmp_path):
    dataset = load_dataset(str(make_folder(tmp_path / "toy")), progress=False)
    subset = dataset.test.subset([3, 0])
    assert subset.files == [dataset.test.files[3], dataset.test.files[0]]
    assert list(subset.labels) == [1, 0]


@pytest.mark.parametrize("flat", [False, True], ids=["test-folder-only", "flat-class-folders"])
def test_a_folder_of_test_images_alone_is_the_test_split(tmp_path, flat):
    root = tmp_path / "my_images"
    for c, name in enumerate(("cat", "dog")):
        for i in range(3):
            write_image(root / ("" if flat else "test") / name / f"{i}.jpg", value=40 * c + i, fmt="JPEG")
    dataset = load_dataset(str(root), progress=False)
    assert dataset.labels == ["cat", "dog"] and len(dataset.test) == 6 and len(dataset.train) == 0
    assert dataset.layout == ("flat" if flat else "test only") and dataset.image_size == 8
    assert dataset.name == "my_images (JPEG copy)"  # named as the user gave it
    assert dataset.test.files[0] == ("cat/0.jpg" if flat else "test/cat/0.jpg")
    assert dataset.describe()["train_images"] == 0 and dataset.train.images.shape == (0, 8, 8, 3)
    with pytest.raises(DatasetError, match=r"calibration needs a train split, and this folder holds test images only"):
        dataset.require_train("calibration")
    with pytest.raises(DatasetError, match=r"--split train needs a train split"):
        dataset.split("train")
    assert load_dataset(str(root), progress=False).fingerprint == dataset.fingerprint  # the cache gives the same data
