"""Shared fixtures and paths. Tests never need the dataset unless marked `data`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parent.parent
CIFAR10_DIR = REPO_ROOT.parent / "shared" / "datasets" / "cifar10"
PRETRAINED = REPO_ROOT / "model" / "pretrained" / "squeezenet_cifar10.keras"


@pytest.fixture
def cifar10_dir() -> Path:
    if not (CIFAR10_DIR / "test").is_dir():
        pytest.skip(f"needs the CIFAR-10 image folder at {CIFAR10_DIR} (see ../shared/README.md)")
    return CIFAR10_DIR


@pytest.fixture
def pretrained_model() -> Path:
    if not PRETRAINED.is_file():
        pytest.skip(f"needs {PRETRAINED.relative_to(REPO_ROOT)} (train it: see README)")
    return PRETRAINED
