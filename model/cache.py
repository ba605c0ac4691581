"""The project's one cache folder, outside every clone: decoded datasets, training checkpoints, TFLM trees and the
firmware build cache. `SQUEEZENET_MCU_CACHE` moves it; the default is ~/.cache/squeezenet-mcu. Standard library only,
so the PlatformIO build scripts can import it too."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "SQUEEZENET_MCU_CACHE"


def cache_dir() -> Path:
    """The cache folder, read from the environment at each call (a test or a CLI may set it late)."""
    configured = os.environ.get(ENV_VAR)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "squeezenet-mcu"
