"""The project-local PlatformIO platform (mcu/platform/): installed per clone (platforms_dir = .pio/platforms), so two
clones on one machine each build with their own builder, never with the first clone's; and the shared linker script
(mcu/ports/cortex_m/cortex_m.ld) of the bare-metal boards and the real boards' compile checks, which takes MEMORY
from the board's board_memory.ld (a check's: platform/ld/board_memory.ld, its sizes from the board JSON)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIO = ROOT / ".venv" / "bin" / "pio"

MCU = ROOT / "mcu"
SHARED_SCRIPT_BOARDS = sorted(
    path.stem for path in (MCU / "platform" / "boards").glob("*.json") if "memory_ldscript_dir" in json.loads(path.read_text())["build"]
)


def clone(folder: Path) -> Path:
    """What a PlatformIO run of mcu/ reads: mcu/ itself and the stdlib lookups its pre-script imports."""
    shutil.copytree(ROOT / "mcu", folder / "mcu", ignore=shutil.ignore_patterns(".pio"))
    shutil.copytree(ROOT / "convert", folder / "convert", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "model").mkdir()
    for name in ("__init__.py", "cache.py", "exit_codes.py"):  # convert.tflm_tree imports both
        shutil.copy(ROOT / "model" / name, folder / "model" / name)
    return folder


def builder_used(project: Path, package: Path, core_dir: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORMIO_")}
    env |= {"SQZ_MODEL_DIR": str(package), "PLATFORMIO_CORE_DIR": str(core_dir)}
    command = [str(PIO), "run", "-d", str(project / "mcu"), "-e", "qemu_stm32f405", "-t", "envdump"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return re.search(r"'BUILD_SCRIPT': '([^']+)'", result.stdout).group(1)


@pytest.mark.tflm
@pytest.mark.skipif(not PIO.exists(), reason="needs PlatformIO in .venv (scripts/setup.sh)")
def test_two_clones_each_use_their_own_platform_builder(tmp_path):
    from conftest import require_tflm_tree

    require_tflm_tree()
    package = tmp_path / "package"
    package.mkdir()
    for name in ("model_data.h", "model_data.cc", "model_settings.h", "model_op_resolver.h"):
        (package / name).write_text("// placeholder: envdump compiles nothing\n")
    (package / "model_op_resolver.h").write_text('// placeholder\n#define SQZ_MODEL_OPS "CONV_2D"\n')  # the build reads it
    core_dir = tmp_path / "core"  # a PlatformIO home shared by both clones, as on a user's machine
    shutil.copytree(Path(os.environ.get("PLATFORMIO_CORE_DIR", Path.home() / ".platformio")) / "packages", core_dir / "packages")
    first, second = clone(tmp_path / "first"), clone(tmp_path / "second")
    assert builder_used(first, package, core_dir) == str(first / "mcu" / "platform" / "builder" / "main.py")
    assert builder_used(second, package, core_dir) == str(second / "mcu" / "platform" / "builder" / "main.py")
    assert not (core_dir / "platforms").exists()  # nothing global that a third clone could pick up


# A stand-in for startup.c and a port: the system vectors, one device vector, data, bss, a constructor table entry.
LINK_PROBE = r"""
extern unsigned _estack;
int g_data = 7, g_bss;
void Reset_Handler(void) { g_bss = g_data; for (;;) {} }
__attribute__((section(".isr_vector"), used)) void* const g_vectors[16] = {&_estack, Reset_Handler};
__attribute__((section(".isr_vector.irq"), used)) void (*const g_irq_vectors[1])(void) = {Reset_Handler};
"""


def memory_regions(board_memory: str) -> dict[str, tuple[int, int]]:
    """FLASH and RAM (origin, length in bytes) of a board_memory.ld."""
    regions = {}
    for name, origin, length, unit in re.findall(r"(\w+)\s*\([a-z]+\)\s*:\s*ORIGIN\s*=\s*(\w+),\s*LENGTH\s*=\s*(\d+)([KM]?)", board_memory):
        regions[name] = (int(origin, 0), int(length) * {"": 1, "K": 1024, "M": 1 << 20}[unit])
    return regions


def board_layout(board: dict, memory_ld: Path) -> tuple[dict[str, tuple[int, int]], int, list[str]]:
    """A board's FLASH and RAM (origin, length), stack reserve, and the link flags that set them: a QEMU board's
    board_memory.ld states them; a compile check's (build.check) comes from its board JSON as --defsym, as
    platform/builder/main.py passes it."""
    check = board["build"].get("check")
    if check is None:
        stack = int(re.search(r"STACK_SIZE\s*:\s*(\d+)K", memory_ld.read_text()).group(1)) * 1024
        return memory_regions(memory_ld.read_text()), stack, []
    flash = (int(check["flash_origin"], 0), board["upload"]["maximum_size"])
    ram = (int(check["ram_origin"], 0), board["upload"]["maximum_ram_size"])
    memory = {"SQZ_FLASH_ORIGIN": flash[0], "SQZ_FLASH_SIZE": flash[1], "SQZ_RAM_ORIGIN": ram[0], "SQZ_RAM_SIZE": ram[1]}
    memory["STACK_SIZE"] = check.get("stack_size", 0)
    return {"FLASH": flash, "RAM": ram}, memory["STACK_SIZE"], [f"-Wl,--defsym={k}={v}" for k, v in memory.items()]


def symbols(elf: Path) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    return {name: int(value, 16) for value, _, name in (line.split() for line in out.splitlines() if len(line.split()) == 3)}


@pytest.mark.parametrize("board", SHARED_SCRIPT_BOARDS)
def test_shared_linker_script_lays_out_each_board_in_its_own_memory(tmp_path, board):
    from conftest import in_ci

    if not shutil.which("arm-none-eabi-gcc"):
        if in_ci():
            pytest.fail("CI=true: needs arm-none-eabi-gcc (scripts/setup.sh installs it)")
        pytest.skip("needs arm-none-eabi-gcc (scripts/setup.sh installs it)")
    config = json.loads((MCU / "platform" / "boards" / f"{board}.json").read_text())
    build = config["build"]
    assert build["ldscript"] == "ports/cortex_m/cortex_m.ld", "every board with a memory_ldscript_dir links with the shared script"
    memory_ld = MCU / build["memory_ldscript_dir"] / "board_memory.ld"
    regions, stack, memory_flags = board_layout(config, memory_ld)
    assert set(regions) == {"FLASH", "RAM"}, f"{memory_ld}: MEMORY needs FLASH and RAM"
    (tmp_path / "probe.c").write_text(LINK_PROBE)
    elf = tmp_path / "probe.elf"
    command = ["arm-none-eabi-gcc", f"-mcpu={build['cpu']}", "-mthumb", "-nostdlib", "-O1", str(tmp_path / "probe.c")]
    command += ["-T", str(MCU / build["ldscript"]), "-L", str(memory_ld.parent), *memory_flags, "-o", str(elf)]
    subprocess.run(command, capture_output=True, text=True, check=True, cwd=tmp_path)
    found = symbols(elf)
    flash, ram = regions["FLASH"], regions["RAM"]
    assert found["g_vectors"] == flash[0]  # the vector table at the flash origin, where the core reads it at reset
    assert found["g_irq_vectors"] == flash[0] + 16 * 4  # the device vectors right after the 16 system vectors
    assert ram[0] <= found["g_data"] < found["g_bss"] < found["_estack"] <= ram[0] + ram[1]
    assert found["_estack"] - found["_sstack"] == stack  # the board's stack reserve
