"""Provenance shared by every stage: file hashes, the git commit, software versions, atomic JSON writes."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_sha() -> str:
    """The commit of the checkout, with "-dirty" when tracked files have changed; "unknown" outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()
        status = ["git", "status", "--porcelain", "--untracked-files=no"]
        dirty = subprocess.run(status, cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def software_versions(*extra: str) -> dict:
    names = ("keras", "numpy", "tensorflow-cpu", "tensorflow", "jax", "ai-edge-litert", "tflite-micro") + extra
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    versions.update({name: v for name in names if (v := package_version(name))})
    versions["keras_backend"] = os.environ.get("KERAS_BACKEND", "tensorflow")
    return versions


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def command_line() -> str:
    """How this process was started, as a user would type it (python -m module args...)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    head = f"python -m {spec.name}" if spec and spec.name else f"python {sys.argv[0]}"
    return " ".join([head, *sys.argv[1:]])


def run_stamp(training_seconds: float) -> dict:
    """What every trained model's metadata ends with: how long it trained, when it finished, how it was made, from
    which commit, with which software."""
    return {
        "training_seconds": round(training_seconds, 1),
        "training_finished": now_utc(),
        "command": command_line(),
        "git_sha": git_sha(),
        "software": software_versions(),
    }


def write_json(path: Path, data: dict) -> None:
    """Write JSON through a temporary file and a rename, so a reader never sees half of it."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    temporary.replace(path)
