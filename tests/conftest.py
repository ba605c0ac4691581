"""Shared fixtures and paths. Tests never need the dataset unless marked `data`.

Firmware tests (marked `qemu` or `tflm`) skip on a machine without the firmware toolchain, saying what is missing;
with CI=true such a skip is a failure: in CI the firmware must be built and run, or the run proves nothing of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from convert import tflm_tree

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


@pytest.fixture
def virtual_servers():
    """start(artifact, engine, **hooks): a bench.virtual server of make_device(artifact, engine, **hooks), started; every
    server started is stopped when the test ends."""
    from bench.virtual.device import make_device
    from bench.virtual.server import Server

    started = []

    def start(artifact: Path | None, engine: str, **hooks):
        server = Server(make_device(artifact, engine, **hooks)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def require_tflm_tree(name: str = "tflm") -> Path:
    """The TFLM tree firmware tests build with (convert.tflm_tree's lookup), else a skip that says how to make it."""
    path = tflm_tree.find_tree(name)
    if path is None:
        pytest.skip(f"needs the {name} tree: {tflm_tree.HOWTO}")
    return path


FIRMWARE_MARKERS = ("qemu", "tflm")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_ci() and any(item.get_closest_marker(m) for m in FIRMWARE_MARKERS):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"CI=true: a firmware test may not skip ({reason}); scripts/setup.sh makes what it needs"
