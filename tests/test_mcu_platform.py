"""The project-local PlatformIO platform is installed per clone (platforms_dir = .pio/platforms): two clones on one
machine each build with their own mcu/platform/builder, never with the first clone's."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIO = ROOT / ".venv" / "bin" / "pio"

pytestmark = [pytest.mark.tflm, pytest.mark.skipif(not PIO.exists(), reason="needs PlatformIO in .venv (scripts/setup.sh)")]


def clone(folder: Path) -> Path:
    """What a PlatformIO run of mcu/ reads: mcu/ itself and the stdlib lookups its pre-script imports."""
    shutil.copytree(ROOT / "mcu", folder / "mcu", ignore=shutil.ignore_patterns(".pio"))
    shutil.copytree(ROOT / "convert", folder / "convert", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "model").mkdir()
    for name in ("__init__.py", "cache.py"):
        shutil.copy(ROOT / "model" / name, folder / "model" / name)
    return folder


def builder_used(project: Path, package: Path, core_dir: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORMIO_")}
    env |= {"SQZ_MODEL_DIR": str(package), "PLATFORMIO_CORE_DIR": str(core_dir)}
    command = [str(PIO), "run", "-d", str(project / "mcu"), "-e", "qemu_stm32f405", "-t", "envdump"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return re.search(r"'BUILD_SCRIPT': '([^']+)'", result.stdout).group(1)


def test_two_clones_each_use_their_own_platform_builder(tmp_path):
    from conftest import require_tflm_tree

    require_tflm_tree()
    package = tmp_path / "package"
    package.mkdir()
    for name in ("model_data.h", "model_data.cc", "model_settings.h", "model_op_resolver.h"):
        (package / name).write_text("// placeholder: envdump compiles nothing\n")
    core_dir = tmp_path / "core"  # a PlatformIO home shared by both clones, as on a user's machine
    shutil.copytree(Path(os.environ.get("PLATFORMIO_CORE_DIR", Path.home() / ".platformio")) / "packages", core_dir / "packages")
    first, second = clone(tmp_path / "first"), clone(tmp_path / "second")
    assert builder_used(first, package, core_dir) == str(first / "mcu" / "platform" / "builder" / "main.py")
    assert builder_used(second, package, core_dir) == str(second / "mcu" / "platform" / "builder" / "main.py")
    assert not (core_dir / "platforms").exists()  # nothing global that a third clone could pick up
