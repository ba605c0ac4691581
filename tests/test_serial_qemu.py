"""python -m bench.on_device against the emulated STM32F405 (QEMU netduinoplus2) running the firmware that
tests/test_mcu_qemu.py builds (mcu/.pio/build/qemu_stm32f405/firmware.elf) with build/squeezenet_cifar10."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bench.firmware.launch import qemu_command
from bench.on_device import run as bench_serial
from convert import tflm_tree

ROOT = Path(__file__).resolve().parents[1]
ELF = ROOT / "mcu" / ".pio" / "build" / "qemu_stm32f405" / "firmware.elf"
ARTIFACT = ROOT / "build" / "squeezenet_cifar10"
CIFAR = ROOT.parent / "shared" / "datasets" / "cifar10"

pytestmark = [pytest.mark.qemu, pytest.mark.tflm, pytest.mark.data, pytest.mark.slow]


def _skip_reason() -> str | None:
    if not shutil.which("qemu-system-arm"):
        return "needs qemu-system-arm (scripts/setup.sh)"
    if tflm_tree.find_tree("tflm") is None:
        return f"needs a TFLM tree: {tflm_tree.HOWTO}"
    if not ELF.is_file() or not (ARTIFACT / "model.json").is_file() or not (CIFAR / "test").is_dir():
        return "needs the QEMU firmware (pytest tests/test_mcu_qemu.py builds it), build/squeezenet_cifar10 and the CIFAR-10 folder"
    return None


def test_twenty_images_on_the_emulated_board_bit_identical(tmp_path, capsys):
    # Checked when the test runs, not at collection: in a fresh clone tests/test_mcu_qemu.py (collected
    # first) builds the firmware and the artifact this test needs.
    if reason := _skip_reason():
        pytest.skip(reason)
    command = qemu_command(ELF)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if line.startswith("serial: socket://"):
                url = line.split(": ", 1)[1].strip()
        assert url, "QEMU did not start"
        out = tmp_path / "report"
        argv = ["--port", url, "--artifacts", str(ARTIFACT), "--data", str(CIFAR), "--limit", "20", "--warmup", "1"]
        code = bench_serial.main(argv + ["--elf", str(ELF), "--out", str(out), "--no-progress"])
        board = json.loads((out / "serial.json").read_text())["boards"][0]
        if board["status"] == "refused" and "model SHA-256" in board["error"]:
            pytest.skip(f"the built firmware carries another model than {ARTIFACT}: rebuild it (tests/test_mcu_qemu.py)")
        assert code == 0, capsys.readouterr()
        assert board["host_lsb"]["bit_identical"] == 20 and board["device"]["emulated"]
        # The emulator's unit is the instruction: HELLO says how its timer relates to them, the host converts exactly.
        assert board["device"]["timer_source"].startswith("qemu-icount shift=0")
        lat = board["latency"]
        assert lat["kind"] == "emulator" and lat["unit"] == "instructions" and "ms" not in lat
        assert lat["per_inference"]["median"] == pytest.approx(lat["ticks"]["median"] * 1e9 / board["device"]["tick_hz"])
        assert 0.2 < lat["macs_per_unit"] < 1.0 and lat["estimate"]["clock_hz"] == 168_000_000
        # Per layer: every operator named from the .tflite, instructions joined, sums close to Invoke()'s.
        layers = board["layers"]
        assert [r["name"] for r in layers][2:4] == ["conv1", "maxpool1"] and len(layers) == len(board["profile"])
        assert 0.98 * lat["per_inference"]["max"] < sum(r["units"] for r in layers) <= 1.001 * lat["per_inference"]["max"]
        memory = json.loads((out / "serial.json").read_text())["memory"]
        assert memory["flash_total"] == memory["elf_flash_total"] and memory["regions"]["FLASH"]["length"] == 1 << 20
        text = (out / "serial.md").read_text()
        assert "median instructions per inference (QEMU count, not time)" in text and "MACs/instruction" in text
        assert "| fire2_expand3x3 | CONV_2D | 3x3, 16->64 | 16x16x64 | 2,359,296 |" in text and "im2col 3x3" in text
        assert "PlatformIO's `Flash: used` line counts" in text and "of 1 MiB" in text and "ms at 168" not in text
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
