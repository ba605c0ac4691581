"""The firmware on an emulated STM32F405 (QEMU netduinoplus2): built with PlatformIO from the converted
CIFAR model, flashed with `pio run -t upload`, checked against the artifact and the TFLM host interpreter.

Needs qemu-system-arm, arm-none-eabi-gcc, PlatformIO's tool-scons (scripts/setup.sh), a TFLM tree
(convert.tflm_tree: TFLM_ROOT, else the tree scripts/setup.sh made) and the model package build/squeezenet_cifar10 (made here from
model/pretrained/squeezenet_cifar10.keras when that exists). The PlatformIO build dir mcu/.pio is reused:
a build with nothing changed takes seconds; the first one compiles TFLM (many minutes on 2 cores).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench import protocol
from bench.protocol import Command, ModelState, Status
from bench.protocol_link import Link, invoke, read_profile
from convert import tflm_tree

ROOT = Path(__file__).resolve().parents[1]
MCU = ROOT / "mcu"
PIO = ROOT / ".venv" / "bin" / "pio"
ARTIFACT = ROOT / "build" / "squeezenet_cifar10"
PRETRAINED = ROOT / "model" / "pretrained" / "squeezenet_cifar10.keras"
CIFAR = ROOT.parent / "shared" / "datasets" / "cifar10"
ENV = "qemu_stm32f405"
BUILD_TIMEOUT_S = 3600

pytestmark = [pytest.mark.qemu, pytest.mark.tflm, pytest.mark.data]


def skip_reason() -> str | None:
    if not shutil.which("qemu-system-arm") or not shutil.which("arm-none-eabi-gcc"):
        return "needs qemu-system-arm and arm-none-eabi-gcc (scripts/setup.sh installs them)"
    if not (Path(os.environ.get("PLATFORMIO_CORE_DIR", Path.home() / ".platformio")) / "packages" / "tool-scons" / "scons.py").is_file():
        return "needs PlatformIO's tool-scons: run scripts/setup.sh"
    if not (CIFAR / "test").is_dir():
        return f"needs the CIFAR-10 image folder at {CIFAR}"
    if tflm_tree.find_tree("tflm") is None:
        return f"needs a TFLM tree: {tflm_tree.HOWTO}"
    return None


if skip_reason():
    pytestmark.append(pytest.mark.skip(reason=skip_reason()))


def pio(*args: str, timeout: float = BUILD_TIMEOUT_S) -> subprocess.CompletedProcess:
    env = dict(os.environ, PLATFORMIO_BUILD_JOBS="2")
    command = ["nice", "-n", "19", str(PIO), "run", "-d", str(MCU), "-j", "2", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


@pytest.fixture(scope="module")
def artifact() -> dict:
    """model.json of the CIFAR artifact, converted from the pretrained model when that is newer."""
    meta = json.loads((ARTIFACT / "model.json").read_text()) if (ARTIFACT / "model.json").is_file() else None
    if PRETRAINED.is_file():
        import hashlib

        source_sha = hashlib.sha256(PRETRAINED.read_bytes()).hexdigest()
        if not meta or meta.get("source_model", {}).get("sha256") != source_sha:
            command = [sys.executable, "-m", "convert", "--model", str(PRETRAINED), "--data", str(CIFAR), "--out", str(ARTIFACT)]
            subprocess.run(command, check=True, cwd=ROOT, timeout=1800)
            meta = json.loads((ARTIFACT / "model.json").read_text())
    if meta is None:
        pytest.skip(
            f"no model package: run python -m convert --model {PRETRAINED.relative_to(ROOT)} --data {CIFAR} --out build/squeezenet_cifar10"
        )
    return meta


@pytest.fixture(scope="module")
def firmware(artifact) -> Path:
    pio("-e", ENV)
    return MCU / ".pio" / "build" / ENV


class QemuDevice:
    """`pio run -t upload` (QEMU) in its own process group, with a Link on its serial URL."""

    def __init__(self, command: list[str]):
        import serial

        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.output: list[str] = []
        url = self._wait_for_url(timeout_s=300)
        self.port = serial.serial_for_url(url, timeout=0.5)
        self.link = Link(self.port.write, self._read, timeout_s=60)
        self.boot = self.link.wait_event("BOOT", timeout_s=60)

    def _wait_for_url(self, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                break
            self.output.append(line)
            if line.startswith("serial: socket://"):
                return line.split(": ", 1)[1].strip()
        raise AssertionError("QEMU did not start:\n" + "".join(self.output[-40:]))

    def _read(self, timeout_s: float) -> bytes:
        self.port.timeout = timeout_s
        first = self.port.read(1)
        if not first:
            return b""
        self.port.timeout = 0
        return first + self.port.read(65536)

    def close(self):
        self.port.close()
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture(scope="module")
def device(firmware):
    dev = QemuDevice([str(PIO), "run", "-d", str(MCU), "-e", ENV, "-t", "upload"])
    yield dev
    dev.close()


@pytest.fixture(scope="module")
def images(artifact) -> np.ndarray:
    """20 CIFAR-10 test images (two per class), quantised as the model's input wants."""
    from model.data import load_dataset
    from model.preprocessing import quantize_input

    data = load_dataset(str(CIFAR), progress=False)
    picks = np.concatenate([np.flatnonzero(data.test.labels == c)[:2] for c in range(10)])
    return quantize_input(data.test.images[picks], artifact["input"]["scale"], artifact["input"]["zero_point"])


def test_boot_banner_and_hello_match_the_artifact(device, artifact):
    text = device.boot.fields["text"].decode()
    assert text.startswith("SQZ BOOT") and "state=ok" in text and artifact["sha256"][:12] in text
    hello = device.link.request(Command.HELLO)
    assert hello.ok, hello.fields
    f = hello.fields
    assert f["protocol_version"] == protocol.VERSION and f["model_state"] == ModelState.OK, f["model_message"]
    assert f["model_sha256"].hex() == artifact["sha256"] and f["model_size"] == artifact["tflite_bytes"]
    for side in ("input", "output"):
        shape = artifact[side]["shape"]
        assert f[side]["dims"][: len(shape)] == shape and f[side]["ndims"] == len(shape)
        assert f[side]["dtype"] == protocol.DType.INT8
        assert np.float32(f[side]["scale"]) == np.float32(artifact[side]["scale"]) and f[side]["zero_point"] == artifact[side]["zero_point"]
    assert f["kernels"] == "cmsis_nn" and "qemu_stm32f405" in f["board"] and f["clock_hz"] == 168_000_000
    assert 0 < f["arena_used_bytes"] <= f["arena_bytes"]


def test_twenty_images_bit_exact_with_the_tflm_host_interpreter(device, images):
    from convert import tflm_host

    expected = tflm_host.invoke(ARTIFACT / "model.tflite", images)
    got, ticks = [], []
    for image in images:
        output, t = invoke(device.link, image.tobytes())
        got.append(np.frombuffer(output, dtype=np.int8))
        ticks.append(t)
    np.testing.assert_array_equal(np.stack(got), expected)
    again, t = invoke(device.link, images[0].tobytes())
    # Instruction-count time repeats, but not to the tick: one SysTick wrap interrupt more or less inside Invoke()
    # (where the 24-bit counter happens to stand when it starts) adds about a dozen instructions, 2 ticks (seen in CI).
    assert np.frombuffer(again, dtype=np.int8).tolist() == got[0].tolist() and abs(t - ticks[0]) <= 4, (t, ticks[0])


def test_profile_has_every_op_and_sums_to_the_invoke(device, images, artifact):
    _, ticks = invoke(device.link, images[1].tobytes())
    records = read_profile(device.link)
    assert len(records) == sum(artifact["op_histogram"].values())
    assert {r["tag"] for r in records} == {op["name"] for op in artifact["ops"]}
    assert 0.9 * ticks < sum(r["ticks"] for r in records) <= ticks


def test_device_survives_malformed_frames(device):
    link = device.link
    for raw in (b"\x05abc\x00", b"\x01" * 600 + b"\x00", protocol.encode_request(Command.HELLO, 5)[:-3] + b"\x00"):
        reply = link.send_raw(raw)
        assert reply.status in (Status.BAD_FRAME, Status.BAD_CRC, Status.FRAME_TOO_LONG), reply
    assert link.request(Command.LOAD_INPUT, offset=7, data=b"x").status == Status.BAD_OFFSET
    assert link.request(Command.INVOKE).status == Status.INPUT_INCOMPLETE
    assert link.request(Command.HELLO).ok


def test_reset_reboots_with_a_banner(device):
    assert device.link.request(Command.RESET).ok
    boot = device.link.wait_event("BOOT", timeout_s=60)
    assert b"state=ok" in boot.fields["text"]
    assert device.link.request(Command.HELLO).ok


def test_corrupted_model_is_refused_at_boot(firmware, tmp_path):
    elf = firmware / "firmware.elf"
    symbols = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    address = next(int(line.split()[0], 16) for line in symbols.splitlines() if line.endswith(" g_model_data"))
    headers = subprocess.run(["arm-none-eabi-objdump", "-h", str(elf)], capture_output=True, text=True, check=True).stdout
    offset = None
    for line in headers.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[1] == ".rodata":
            vma, file_offset = int(parts[3], 16), int(parts[5], 16)
            offset = file_offset + (address - vma) + 1000
    corrupted = tmp_path / "corrupted.elf"
    data = bytearray(elf.read_bytes())
    data[offset] ^= 0xFF
    corrupted.write_bytes(bytes(data))
    dev = QemuDevice([sys.executable, str(MCU / "tools" / "qemu_launch.py"), "--machine", "netduinoplus2", "--elf", str(corrupted)])
    try:
        assert b"REFUSED: model corrupted: SHA-256" in dev.boot.fields["text"]
        hello = dev.link.request(Command.HELLO)
        assert hello.fields["model_state"] == ModelState.SHA256_MISMATCH
        reply = dev.link.request(Command.LOAD_INPUT, offset=0, data=b"x")
        assert reply.status == Status.MODEL_INVALID and b"SHA-256" in reply.fields["message"]
    finally:
        dev.close()


def test_size_fits_the_stm32f405(firmware):
    result = pio("-e", ENV, "-t", "size", timeout=600)
    assert "TFLM" in result.stdout or "tflm" in result.stdout
    sys.path.insert(0, str(MCU / "tools"))
    import size_report

    numbers = size_report.report(firmware / "firmware.elf", firmware / "firmware.map")
    assert numbers["flash"]["tflm"] <= 60 * 1024, numbers
    assert numbers["flash_total"] <= 1024 * 1024 and numbers["ram_total"] <= 128 * 1024, numbers


@pytest.mark.slow
def test_mps2_an500_cortex_m7_gives_the_same_outputs(device, images):
    """The Cortex-M7 board (for ImageNet-sized models) runs the same package with the same int8 results."""
    pio("-e", "qemu_mps2_an500")
    expected = [invoke(device.link, image.tobytes())[0] for image in images[:2]]
    m7 = QemuDevice([str(PIO), "run", "-d", str(MCU), "-e", "qemu_mps2_an500", "-t", "upload"])
    try:
        hello = m7.link.request(Command.HELLO).fields
        assert "mps2_an500" in hello["board"] and hello["model_state"] == ModelState.OK and hello["clock_hz"] == 25_000_000
        assert [invoke(m7.link, image.tobytes())[0] for image in images[:2]] == expected
    finally:
        m7.close()
