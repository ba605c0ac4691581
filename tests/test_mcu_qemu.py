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
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from firmware_env import firmware_skip_reason

from bench.firmware.launch import qemu_command
from bench.link import protocol
from bench.link.device import Device
from bench.link.ports import open_port
from bench.link.protocol import Command, ModelState, Status

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
    if not (CIFAR / "test").is_dir():
        return f"needs the CIFAR-10 image folder at {CIFAR}"
    return firmware_skip_reason(qemu=True)


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
    """`pio run -t upload` (QEMU) in its own process group, with `client`, a bench.link.device.Device (the production
    client) on its serial URL, past its BOOT event (`boot`)."""

    def __init__(self, command: list[str]):
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.output: list[str] = []
        url = self._wait_for_url(timeout_s=300)
        self.client = Device(open_port(url), url=url)
        self.boot = self.client.wait_event("BOOT", timeout_s=60)

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

    def close(self):
        self.client.close()
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
    from model.preprocessing import quantize_int8

    data = load_dataset(str(CIFAR), progress=False)
    picks = np.concatenate([np.flatnonzero(data.test.labels == c)[:2] for c in range(10)])
    return quantize_int8(data.test.images[picks], artifact["input"]["scale"], artifact["input"]["zero_point"])


def test_boot_banner_and_hello_match_the_artifact(device, artifact):
    text = device.boot.fields["text"].decode()
    assert text.startswith("SQZ BOOT") and "state=ok" in text and artifact["sha256"][:12] in text
    hello = device.client.request(Command.HELLO)
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
        inference = device.client.invoke(image.tobytes())
        got.append(np.frombuffer(inference.output, dtype=np.int8))
        ticks.append(inference.ticks)
    np.testing.assert_array_equal(np.stack(got), expected)
    again = device.client.invoke(images[0].tobytes())
    # Instruction-count time repeats, but not to the tick: one SysTick wrap interrupt more or less inside Invoke()
    # (where the 24-bit counter happens to stand when it starts) adds about a dozen instructions, 2 ticks (seen in CI).
    assert np.frombuffer(again.output, dtype=np.int8).tolist() == got[0].tolist()
    assert abs(again.ticks - ticks[0]) <= 4, (again.ticks, ticks[0])


def test_profile_has_every_op_and_sums_to_the_invoke(device, images, artifact):
    ticks = device.client.invoke(images[1].tobytes()).ticks
    profile = device.client.profile()
    assert profile.dropped == 0 and len(profile.records) == sum(artifact["op_histogram"].values())
    assert {r.tag for r in profile.records} == {op["name"] for op in artifact["ops"]}
    assert 0.9 * ticks < sum(r.ticks for r in profile.records) <= ticks


def test_device_survives_malformed_frames(device):
    client = device.client
    cases = [
        (b"\x05abc\x00", Status.BAD_FRAME),  # a COBS code past the frame's end
        (b"\x01" * 600 + b"\x00", Status.FRAME_TOO_LONG),  # past the receive buffer
        (protocol.encode_request(Command.HELLO, 5)[:-3] + b"\x00", Status.BAD_FRAME),  # cut: its last COBS code runs past the end
    ]
    for raw, status in cases:
        reply = client.send_raw(raw, timeout_s=10)
        assert isinstance(reply, protocol.Message) and (reply.name, reply.status, reply.seq) == ("UNPARSED", status, 0), reply
    assert client.request(Command.LOAD_INPUT, offset=7, data=b"x").status == Status.BAD_OFFSET
    assert client.request(Command.INVOKE, profile=1).status == Status.INPUT_INCOMPLETE
    assert client.request(Command.HELLO).ok


def test_reset_reboots_with_a_banner(device):
    text = device.client.reset(timeout_s=60)  # RESET answered OK, then the BOOT event
    assert "SQZ BOOT" in text and "state=ok" in text
    assert device.client.request(Command.HELLO).ok


def _rodata_offset(elf: Path, symbol: str) -> tuple[int, int]:
    """(file offset, size) of a global in .rodata of the ELF."""
    symbols = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True, check=True).stdout
    address, size = next((int(p[0], 16), int(p[1], 16)) for p in (line.split() for line in symbols.splitlines()) if p[-1] == symbol)
    headers = subprocess.run(["arm-none-eabi-objdump", "-h", str(elf)], capture_output=True, text=True, check=True).stdout
    for parts in (line.split() for line in headers.splitlines()):
        if len(parts) >= 6 and parts[1] == ".rodata":
            return int(parts[5], 16) + address - int(parts[3], 16), size
    raise AssertionError(f"no .rodata in {elf}")


def _assert_refused_at_boot(elf: Path, banner: bytes, model_state: int, request: tuple[Command, dict], message: bytes) -> None:
    """Boot `elf` (its model damaged on purpose) on QEMU: the BOOT banner must hold `banner`, HELLO report
    `model_state`, and `request` (command, fields) be answered MODEL_INVALID with `message` in its text."""
    dev = QemuDevice(qemu_command(elf))
    try:
        assert banner in dev.boot.fields["text"]
        hello = dev.client.request(Command.HELLO)
        assert hello.fields["model_state"] == model_state
        command, fields = request
        reply = dev.client.request(command, **fields)
        assert reply.status == Status.MODEL_INVALID and message in reply.fields["message"]
    finally:
        dev.close()


def test_corrupted_model_is_refused_at_boot(firmware, tmp_path):
    elf = firmware / "firmware.elf"
    offset = _rodata_offset(elf, "g_model_data")[0] + 1000
    corrupted = tmp_path / "corrupted.elf"
    data = bytearray(elf.read_bytes())
    data[offset] ^= 0xFF
    corrupted.write_bytes(bytes(data))
    load = (Command.LOAD_INPUT, {"offset": 0, "data": b"x"})
    _assert_refused_at_boot(corrupted, b"REFUSED: model corrupted: SHA-256", ModelState.SHA256_MISMATCH, load, b"SHA-256")


def test_boot_banner_states_what_the_checks_cost(device):
    text = device.client.reset(timeout_s=60)  # RESET answered OK, then the BOOT event's text
    fields = dict(item.split("=", 1) for item in text.split() if "=" in item)
    # SHA-256 over ~0.8 MB and the verifier's walk over every table: both run, neither is free
    assert int(fields["sha256_ticks"]) > 100_000 and int(fields["verify_ticks"]) > 1_000, text


def test_broken_flatbuffer_with_a_matching_sha256_is_refused_at_boot(firmware, tmp_path):
    """A package built by hand or by a buggy converter: the SHA-256 matches the bytes, the flatbuffer is unsound."""
    import hashlib

    elf = firmware / "firmware.elf"
    data = bytearray(elf.read_bytes())
    model_at, model_size = _rodata_offset(elf, "g_model_data")
    sha_at, _ = _rodata_offset(elf, "g_model_sha256")
    # the root table offset now points past the end of the buffer: without the verifier TFLM reads beyond it
    data[model_at : model_at + 4] = (model_size + 4096).to_bytes(4, "little")
    data[sha_at : sha_at + 32] = hashlib.sha256(bytes(data[model_at : model_at + model_size])).digest()
    broken = tmp_path / "broken.elf"
    broken.write_bytes(bytes(data))
    banner = b"REFUSED: model refused: the flatbuffer fails the TFLite schema verifier"
    _assert_refused_at_boot(broken, banner, ModelState.MALFORMED, (Command.INVOKE, {"profile": 1}), b"verifier")


def test_size_fits_the_stm32f405(firmware):
    result = pio("-e", ENV, "-t", "size", timeout=600)
    assert "TFLM" in result.stdout or "tflm" in result.stdout
    from bench.firmware.mcu_tools import load_tool

    size_report = load_tool("size_report")

    numbers = size_report.report(firmware / "firmware.elf", firmware / "firmware.map")
    assert numbers["flash"]["tflm"] <= 60 * 1024, numbers
    assert numbers["flash_total"] <= 1024 * 1024 and numbers["ram_total"] <= 128 * 1024, numbers


@pytest.mark.slow
def test_mps2_an500_cortex_m7_gives_the_same_outputs(device, images):
    """The Cortex-M7 board (for ImageNet-sized models) runs the same package with the same int8 results."""
    pio("-e", "qemu_mps2_an500")
    expected = [device.client.invoke(image.tobytes()).output for image in images[:2]]
    m7 = QemuDevice([str(PIO), "run", "-d", str(MCU), "-e", "qemu_mps2_an500", "-t", "upload"])
    try:
        hello = m7.client.request(Command.HELLO).fields
        assert "mps2_an500" in hello["board"] and hello["model_state"] == ModelState.OK and hello["clock_hz"] == 25_000_000
        assert [m7.client.invoke(image.tobytes()).output for image in images[:2]] == expected
    finally:
        m7.close()
