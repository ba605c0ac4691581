"""Fault reports on the emulated STM32F405 (QEMU netduinoplus2): the environment qemu_stm32f405_faults is the
firmware plus mcu/test/firmware/fault_trigger.c, which faults when the UART brings "SQZFAULT<kind>". Each real
fault must arrive as a FAULT event "<kind> pc=<stacked PC> status=<CFSR>" naming the handler that ran and the
address of the faulting instruction, and a failed assert as "assert <file>:<line>" (mcu/ports/cortex_m/faults.c,
mcu/src/app/assert_report.c; the NUCLEO boards build the same handlers). One QEMU per kind: the device halts.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from firmware_env import firmware_skip_reason

from bench.firmware.launch import qemu_command
from bench.link.device import Device
from bench.link.ports import open_port

ROOT = Path(__file__).resolve().parents[1]
MCU = ROOT / "mcu"
PIO = ROOT / ".venv" / "bin" / "pio"
PACKAGE = ROOT / "build" / "squeezenet_cifar10" / "firmware"
TRIGGER = MCU / "test" / "firmware" / "fault_trigger.c"
ENV = "qemu_stm32f405_faults"

pytestmark = [pytest.mark.qemu, pytest.mark.tflm]

UNDEFINSTR, IACCVIOL, BFSR = 1 << 16, 1 << 0, 0xFF00


@pytest.fixture(scope="module")
def firmware(tmp_path_factory) -> Path:
    if reason := firmware_skip_reason(qemu=True):
        pytest.skip(reason)
    package = PACKAGE
    if not (package / "model_op_resolver.h").is_file():
        from tiny_artifact import make_tiny_artifact

        package = make_tiny_artifact(tmp_path_factory.mktemp("fault-model"), epochs=1, calibration_count=8) / "firmware"
    environ = dict(os.environ, PLATFORMIO_BUILD_JOBS="2", SQZ_MODEL_DIR=str(package))
    command = ["nice", "-n", "19", str(PIO), "run", "-d", str(MCU), "-j", "2", "-e", ENV]
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600, env=environ)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return MCU / ".pio" / "build" / ENV / "firmware.elf"


def symbol_range(elf: Path, name: str) -> range:
    out = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == name:
            start = int(parts[0], 16) & ~1
            return range(start, start + int(parts[1], 16))
    raise AssertionError(f"{name} not in {elf}")


def fault_text(elf: Path, kind: str) -> str:
    """Boot the firmware in QEMU, request fault `kind`, return the FAULT event's text."""
    from bench.pipeline.main_job import serial_endpoint

    launch = qemu_command(elf, "netduinoplus2", "--timeout", "300")
    with serial_endpoint(launch) as url:
        client = Device(open_port(url), url=url)
        client.wait_event("BOOT", timeout_s=120)
        client.port.write(b"SQZFAULT" + kind.encode())  # not a frame: fault_trigger.c watches the raw bytes
        text = client.wait_event("FAULT", timeout_s=60).fields["text"].decode()
        client.close()
        return text


@pytest.mark.parametrize(
    ("kind", "name", "cfsr_bits"),
    [("U", "UsageFault", UNDEFINSTR), ("B", "BusFault", BFSR), ("H", "HardFault/UsageFault", UNDEFINSTR), ("M", "MemManage", IACCVIOL)],
)
def test_fault_is_reported_with_its_kind_and_the_stacked_pc(firmware, kind, name, cfsr_bits):
    text = fault_text(firmware, kind)
    match = re.fullmatch(r"(\S+) pc=0x([0-9a-f]{8}) status=0x([0-9a-f]{8})", text)
    assert match, text
    pc, status = int(match.group(2), 16), int(match.group(3), 16)
    assert match.group(1) == name and status & cfsr_bits, text
    if kind == "M":  # an instruction fetch from the execute-never region: the stacked PC is the address fetched
        assert pc == 0xE0000000, text
    else:
        assert pc in symbol_range(firmware, "sqz_fault_trigger"), (text, symbol_range(firmware, "sqz_fault_trigger"))


def test_assert_is_reported_as_an_assert(firmware):
    line = next(i for i, text in enumerate(TRIGGER.read_text().splitlines(), 1) if "assert(kind == 0)" in text)
    assert fault_text(firmware, "A") == f"assert fault_trigger.c:{line}"
