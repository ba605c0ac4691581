"""The PlatformIO environments of mcu/platformio.ini and their boards: the one lookup from an environment name to
its board file (mcu/platform/boards/<board>.json) and, for the emulated boards, the QEMU machine."""

from __future__ import annotations

import json

from model.provenance import REPO_ROOT

MCU = REPO_ROOT / "mcu"


class UnknownEnvironment(ValueError):
    """The name is no environment of mcu/platformio.ini, or not one of an emulated board where one is needed."""


def project_config():
    """mcu/platformio.ini as PlatformIO reads it (without the extra configs a build adds)."""
    from platformio.project.config import ProjectConfig

    return ProjectConfig(str(MCU / "platformio.ini"), parse_extra=False)


def environment_board(env: str) -> dict:
    """The board JSON of environment `env`; UnknownEnvironment names the fix."""
    config = project_config()
    if f"env:{env}" not in config.sections():
        raise UnknownEnvironment(f"no environment {env} in mcu/platformio.ini")
    return json.loads((MCU / "platform" / "boards" / f"{config.get(f'env:{env}', 'board')}.json").read_text())


def qemu_board(env: str) -> dict:
    """The board JSON of a QEMU environment (it names its `build.qemu_machine`); UnknownEnvironment otherwise."""
    board = environment_board(env)
    if "qemu_machine" not in board["build"]:
        raise UnknownEnvironment(f"{env} is not a QEMU board; this runs the firmware on qemu-system-arm")
    return board
