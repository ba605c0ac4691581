"""The firmware side's Python tools (mcu/tools/*.py), loaded from their files.

mcu/tools is a folder of scripts, not a package (PlatformIO and people run them as `python mcu/tools/x.py`),
so the host side loads them by path instead of putting mcu/tools on sys.path for every later import."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TOOLS = Path(__file__).resolve().parents[2] / "mcu" / "tools"


def load_tool(name: str) -> ModuleType:
    """mcu/tools/<name>.py as a module (loaded once, then shared)."""
    key = f"mcu_tools_{name}"
    if key in sys.modules:
        return sys.modules[key]
    path = TOOLS / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such mcu tool (the tools are {sorted(p.stem for p in TOOLS.glob('*.py'))})")
    spec = importlib.util.spec_from_file_location(key, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module  # before exec: dataclasses and the like look their module up by name
    spec.loader.exec_module(module)
    return module
