"""Compile checks of the four real-board environments (issue 11): each check_<env> builds the board's own sources
(portable core, its port, the TFLM tree and kernels it selects, a generated model package) with its framework's
compiler flags on the local platform (Debian's arm-none-eabi-gcc; for ESP32 standing in for Xtensa GCC), against
tests/arduino's minimal Arduino API, and links into the chip's flash and RAM (mcu/platform/boards/check_*.json).

What passing proves, and what it does not, is in mcu/README.md ("Compile checks"). The settings-only tests at the
top need no toolchain; the builds are marked `tflm`. The model package is build/squeezenet_cifar10/firmware when
it exists (the model the boards run), else the small test artifact (tests/tiny_artifact.py).
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from firmware_env import firmware_skip_reason

from bench.firmware.environments import environment_board, project_config
from bench.link import protocol
from convert import tflm_tree

ROOT = Path(__file__).resolve().parents[1]
MCU = ROOT / "mcu"
PIO = ROOT / ".venv" / "bin" / "pio"
PACKAGE = ROOT / "build" / "squeezenet_cifar10" / "firmware"
BUILD_TIMEOUT_S = 3600


@dataclass(frozen=True)
class Check:
    real: str  # the real-board environment it checks
    tree: str
    kernels: str  # SQZ_KERNELS, what HELLO reports
    kernel_symbol: str  # a symbol only that kernel set defines
    assert_report: bool  # whether the firmware's own __assert_func is linked


CHECKS = {
    "check_nucleo_h743zi": Check("nucleo_h743zi", "tflm", "cmsis_nn", "arm_convolve_s8", True),
    "check_nucleo_f767zi": Check("nucleo_f767zi", "tflm", "cmsis_nn", "arm_convolve_s8", True),
    "check_esp32dev": Check("esp32dev", "esp-tflite-micro", "esp_nn/opt", "esp_nn_conv_s8_opt", False),
    "check_esp32-s3-devkitc-1": Check("esp32-s3-devkitc-1", "esp-tflite-micro", "esp_nn/esp32s3", "esp_nn_conv_s8_esp32s3", False),
}
# What a check may set that its board's environment does not (and why): the ESP32-S3's Xtensa assembly.
CHECK_ONLY = {"platform", "board", "custom_esp_nn_assembly"}
SHARED = ("custom_tflm_tree", "custom_tflm_kernels", "custom_esp_nn_tree", "custom_esp_nn")
SHARED += ("build_src_filter", "build_flags", "build_unflags")


# ---- settings: no toolchain needed ------------------------------------------------------------------------------


@pytest.mark.parametrize("env", CHECKS)
def test_check_builds_what_its_board_builds(env):
    """The check and the real environment get the same tree, kernels, sources and flags from one section."""
    config = project_config()
    check, real = config.items(f"env:{env}", as_dict=True), config.items(f"env:{CHECKS[env].real}", as_dict=True)
    assert set(check) - set(real) <= CHECK_ONLY, set(check) - set(real)
    for option in SHARED:
        assert check.get(option) == real.get(option), option
    assert real.get("custom_tflm_tree", "tflm") == CHECKS[env].tree
    assert "lib_deps" not in real, "the boards build from the trees the set-up makes, not pinned lib_deps"
    assert environment_board(env)["build"]["check"]["of"] == CHECKS[env].real


def test_esp32_boards_have_room_and_keep_their_assert_handler():
    config = project_config()
    for env in ("esp32dev", "esp32-s3-devkitc-1"):
        options = config.items(f"env:{env}", as_dict=True)
        assert options["board_build.partitions"] == "huge_app.csv"
        assert "-<app/assert_report.c>" in " ".join(options["build_src_filter"])
        assert "-fexceptions" in environment_board(f"check_{env}")["build"]["check"]["cxxflags"], "the check must compile as the core does"


def test_one_baud_rate_for_firmware_host_and_monitor():
    config = project_config()
    assert protocol.UART_BAUD == protocol.DEFINITION["uart"]["baud"]
    from bench.link.line import DEFAULT_BAUD

    assert DEFAULT_BAUD == protocol.UART_BAUD
    assert f"#define PROTO_UART_BAUD {protocol.UART_BAUD}" in (MCU / "src" / "protocol" / "protocol_defs.h").read_text()
    assert int(config.get("env", "monitor_speed")) == protocol.UART_BAUD
    assert "Serial.begin(PROTO_UART_BAUD)" in (MCU / "ports" / "arduino" / "entry.cpp").read_text()


# ---- the builds -------------------------------------------------------------------------------------------------


def skip_reason() -> str | None:
    return firmware_skip_reason(qemu=False, trees=("tflm", "esp-tflite-micro", "esp-nn"))


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    if skip_reason():
        pytest.skip(skip_reason())
    if (PACKAGE / "model_op_resolver.h").is_file():
        return PACKAGE
    from tiny_artifact import make_tiny_artifact

    return make_tiny_artifact(tmp_path_factory.mktemp("board-model"), epochs=1, calibration_count=8) / "firmware"


def pio_run(env: str, package: Path) -> subprocess.CompletedProcess:
    environ = dict(os.environ, PLATFORMIO_BUILD_JOBS="2", SQZ_MODEL_DIR=str(package))
    command = ["nice", "-n", "19", str(PIO), "run", "-d", str(MCU), "-j", "2", "-e", env]
    result = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, env=environ)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-4000:]
    return result


def defined_symbols(elf: Path) -> set[str]:
    out = subprocess.run(["arm-none-eabi-nm", "--defined-only", str(elf)], check=True, capture_output=True, text=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


@pytest.mark.tflm
@pytest.mark.parametrize("env", CHECKS)
def test_board_firmware_compiles_and_links_into_the_chip(env, package):
    check = CHECKS[env]
    result = pio_run(env, package)
    build = MCU / ".pio" / "build" / env
    from bench.firmware.mcu_tools import load_tool

    size_report = load_tool("size_report")

    numbers = size_report.report(build / "firmware.elf", build / "firmware.map")
    limits = environment_board(env)["upload"]
    print(f"\n{env}: flash {numbers['flash_total']} of {limits['maximum_size']} B {numbers['flash']}")
    print(f"{env}: RAM {numbers['ram_total']} of {limits['maximum_ram_size']} B {numbers['ram']}")
    assert numbers["flash"]["model"] > 0 and numbers["ram"]["arena"] > 0
    assert numbers["flash_total"] <= limits["maximum_size"] and numbers["ram_total"] <= limits["maximum_ram_size"]

    info = (build / "generated" / "sqz_build_info.h").read_text()
    assert f'#define SQZ_KERNELS "{check.kernels}"' in info, info
    symbols = defined_symbols(build / "firmware.elf")
    assert check.kernel_symbol in symbols, f"{check.kernel_symbol} not linked: the kernels HELLO names are not the ones compiled"
    assert "esp_nn_conv_s8_ansi" not in symbols, "ESP-NN's plain C convolution is linked"
    firmware_map = (build / "firmware.map").read_text()
    assert ("assert_report.o" in firmware_map) == check.assert_report
    if check.assert_report:  # the Cortex-M fault handlers with the stacked PC, not the core's weak ones
        assert {"HardFault_Handler", "MemManage_Handler", "BusFault_Handler", "UsageFault_Handler", "cm_fault_report"} <= symbols
    if env == "check_esp32-s3-devkitc-1":
        stubs = (build / "generated" / "esp_nn_stubs.c").read_text()
        stubbed = set(re.findall(r"void (\w+)\(void\)", stubs))
        assembly = {p.stem for p in (tflm_tree.find_tree("esp-nn") / "src").rglob("*_esp32s3.S")}
        assert stubbed and len(assembly) >= 15, (stubbed, assembly)
        assert "stubbed" in result.stdout


@pytest.mark.tflm
def test_tflm_does_not_compile_with_the_arduino_esp32_exceptions_flag():
    """Why the TFLM library gets -fno-exceptions: with Arduino-ESP32's -fexceptions and TF_LITE_STATIC_MEMORY, the
    classes whose operator delete TFLM makes private cannot be created with placement new."""
    if skip_reason():
        pytest.skip(skip_reason())
    root = tflm_tree.find_tree("esp-tflite-micro")
    flags = ["-std=gnu++11", "-mcpu=cortex-m4", "-mthumb", "-fno-rtti", "-DTF_LITE_STATIC_MEMORY", "-fsyntax-only"]
    includes = [f"-I{root}", f"-I{root / 'third_party/flatbuffers/include'}"]
    command = ["arm-none-eabi-g++", *flags, *includes, str(root / "tensorflow/lite/micro/micro_allocator.cc")]
    with_exceptions = subprocess.run([*command, "-fexceptions"], capture_output=True, text=True)
    assert with_exceptions.returncode != 0 and "is private" in with_exceptions.stderr
    assert subprocess.run([*command, "-fexceptions", "-fno-exceptions"], capture_output=True, text=True).returncode == 0
