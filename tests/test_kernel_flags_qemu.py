"""The library optimisation options (custom_tflm_optimization, custom_cmsis_nn_optimization in mcu/platformio.ini,
applied by mcu/scripts/tflm.py) are really what the default firmware was compiled with, and HELLO says so.

The compiler's own record decides: GCC writes each object's command-line options into its DWARF compile unit
(DW_AT_producer, -g), so the ELF tells, per source file, which -O it was compiled with (GCC uses the last one).
Bit-exactness of the firmware so built with the TFLM host is tests/test_mcu_qemu.py's
test_twenty_images_bit_exact_with_the_tflm_host_interpreter (same environment, same build)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import test_mcu_qemu as q

from bench.link.protocol import Command

pytestmark = q.pytestmark
artifact, firmware, device = q.artifact, q.firmware, q.device  # fixtures
O_LEVEL = r"-O[0-3sgz]?|-Ofast"
LAST_O = re.compile(r"(?:^|\s)(" + O_LEVEL + r")(?=\s|$)")


def configured(option: str) -> list[str]:
    from bench.firmware.environments import project_config

    value = project_config().get(f"env:{q.ENV}", option, "")  # build_flags comes back as a list, custom options as a string
    return " ".join(value if isinstance(value, list) else [value]).split()


def expected_level(flags: list[str]) -> str:
    """The -O GCC uses for a library object: the option's last -O, else build_flags' (the environment's)."""
    levels = [f for f in flags if re.fullmatch(O_LEVEL, f)] or [f for f in configured("build_flags") if re.fullmatch(O_LEVEL, f)]
    return levels[-1]


def compile_units(elf: Path) -> dict[str, str]:
    """{source path: its DW_AT_producer} of every compile unit in the ELF."""
    dump = subprocess.run(
        ["arm-none-eabi-readelf", "--debug-dump=info", "--dwarf-depth=1", str(elf)], check=True, capture_output=True, text=True
    ).stdout
    units, producer = {}, None
    for line in dump.splitlines():
        if "DW_AT_producer" in line:
            producer = line.split("): ", 1)[-1]
        elif "DW_AT_name" in line and producer is not None:
            units[line.split("): ", 1)[-1].strip()] = producer
            producer = None
    return units


@pytest.fixture(scope="module")
def firmware_elf(firmware) -> Path:
    return Path(os.environ.get("PLATFORMIO_BUILD_DIR") or q.MCU / ".pio" / "build") / q.ENV / "firmware.elf"


def test_each_library_is_compiled_with_its_configured_optimisation(firmware_elf):
    units = compile_units(firmware_elf)
    groups = {
        "CMSIS-NN": ([p for p in units if "/third_party/cmsis_nn/" in p], expected_level(configured("custom_cmsis_nn_optimization"))),
        "TFLM": (
            [p for p in units if "/tensorflow/" in p and "/third_party/cmsis_nn/" not in p],
            expected_level(configured("custom_tflm_optimization")),
        ),
        "application": ([p for p in units if p.startswith("src/app/")], expected_level([])),
    }
    for group, (paths, level) in groups.items():
        assert len(paths) >= 3, f"too few {group} compile units in {firmware_elf}: {paths}"
        wrong = {p: LAST_O.findall(units[p])[-1:] for p in paths if LAST_O.findall(units[p])[-1:] != [level]}
        assert not wrong, f"{group} objects not compiled with {level} (their last -O): {wrong}"
    hot = [p for p in units if p.endswith("arm_nn_mat_mult_kernel_s8_s16.c")]
    assert hot, "the im2col convolution's inner kernel (arm_nn_mat_mult_kernel_s8_s16) is not in the firmware"


def test_hello_reports_the_library_flags(device):
    flags = device.client.request(Command.HELLO).fields["build_flags"]
    for group, option in (("TFLM", "custom_tflm_optimization"), ("CMSIS-NN", "custom_cmsis_nn_optimization")):
        value = " ".join(configured(option)) or "env flags"
        assert f"{group} {value};" in flags, (group, value, flags)
    assert "-mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard" in flags, flags


def test_a_flag_that_is_no_optimisation_stops_the_build_naming_the_fix(artifact):
    environ = dict(os.environ, SQZ_CMSIS_NN_OPTIMIZATION="-O2 -DARM_MATH_DSP")
    command = [str(q.PIO), "run", "-d", str(q.MCU), "-e", q.ENV]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environ)
    assert result.returncode != 0
    assert "SQZ_CMSIS_NN_OPTIMIZATION = '-O2 -DARM_MATH_DSP': -DARM_MATH_DSP is not an -O level or -f option" in result.stderr
