"""What the firmware tests need on this machine, as one skip reason: the tests that build firmware, and those that run
it on QEMU, check the same tools (scripts/setup.sh installs them all) and say the same thing when one is missing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from convert import tflm_host, tflm_tree

SCONS = Path(os.environ.get("PLATFORMIO_CORE_DIR", Path.home() / ".platformio")) / "packages" / "tool-scons" / "scons.py"


def firmware_skip_reason(*, qemu: bool, trees: tuple[str, ...] = ("tflm",), host_tflm: bool = False) -> str | None:
    """Why a firmware test cannot run here (None: it can): arm-none-eabi-gcc, PlatformIO's tool-scons, the TFLM
    `trees` (convert.tflm_tree), qemu-system-arm when `qemu`, and the tflite-micro wheel (the TFLM host
    interpreter) when `host_tflm`."""
    tools = ["qemu-system-arm", "arm-none-eabi-gcc"] if qemu else ["arm-none-eabi-gcc"]
    missing = [tool for tool in tools if not shutil.which(tool)]
    if missing:
        return f"needs {' and '.join(tools)} (scripts/setup.sh installs {'them' if len(tools) > 1 else 'it'})"
    if not SCONS.is_file():
        return "needs PlatformIO's tool-scons: run scripts/setup.sh"
    absent = [name for name in trees if tflm_tree.find_tree(name) is None]
    if absent:
        return f"needs the {', '.join(absent)} tree{'s' if len(absent) > 1 else ''}: {tflm_tree.HOWTO}"
    if host_tflm and not tflm_host.available():
        return "needs the tflite-micro wheel (the TFLM host interpreter; Linux x86_64): scripts/setup.sh installs it"
    return None
