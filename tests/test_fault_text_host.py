"""The FAULT texts (mcu/src/app/fault_text.c), built for the host: each AppFaultKind the Cortex-M handlers report has
the name tests/test_mcu_faults_qemu.py expects on QEMU, and each handler's is a crash text bench.link.channel recognises in
the raw stream, also in the MLPerf text mode's "e-[fault: ...]" line, which writes the same text. Every kind,
UnexpectedInterrupt (startup.c's Default_Handler) included, is in bench.link.channel.CRASH_TEXT."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bench.link.channel import CRASH_TEXT

ROOT = Path(__file__).resolve().parents[1]
GCC = shutil.which("gcc")
KINDS = [
    "HardFault",
    "MemManage",
    "BusFault",
    "UsageFault",
    "HardFault/MemManage",
    "HardFault/BusFault",
    "HardFault/UsageFault",
    "UnexpectedInterrupt",
]


@pytest.mark.skipif(GCC is None, reason="needs a host C compiler (gcc)")
def test_each_fault_kind_has_its_text(tmp_path):
    binary = tmp_path / "fault_text"
    sources = [ROOT / "mcu/src/app/fault_text.c", ROOT / "mcu/test/host/fault_text_main.c"]
    flags = ["-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined"]
    subprocess.run([GCC, *flags, *map(str, sources), f"-I{ROOT / 'mcu/src/app'}", "-o", str(binary)], check=True)
    lines = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout.splitlines()
    faults, out_of_range = lines[: len(KINDS)], lines[len(KINDS)]
    assert faults == [f"{kind} pc=0x0800123a status=0x00010000" for kind in KINDS]
    for text in [*faults[:-1], out_of_range]:  # the handlers' kinds (and a bad kind) read as a crash
        assert CRASH_TEXT.search(text.encode()), f"bench.link.channel would not see {text!r} as a crash"
    assert lines[len(KINDS) + 1 :] == ["assert micro_interpreter.cc:123", "assert ?:0", "HardFault/UsageFaul"]
