"""Conformance of the firmware's MLPerf Tiny text mode (mcu/mlperf/) with the EEMBC / MLPerf Tiny runner's DUT protocol.

Two levels: the text-mode core compiled for the host with ASan/UBSan and a fake model (fast, always run), and the
MLPerf-mode firmware (environment qemu_stm32f405_mlperf, MLPerf Tiny's ResNet-8) on QEMU through a pty, as the official
runner drives it (marked qemu, tflm). The runner's repository is not needed: the command strings it sends are written
out below, as mlcommons/tiny benchmark/runner (commit 1afd2c9) sends them:
  device_under_test.py  "name", "profile", "db load <len>", "db <hex of 31 bytes>" (26 with an energy monitor),
                        "infer <N> <W>" (tests_accuracy.yaml: 1 0; tests_performance.yaml: 20 5; tests_energy.yaml: 20 0)
  serial_device.py      each command + "%"; replies read as lines ("\\r" and "\\0" dropped) up to one holding "m-ready"
  device_under_test.py, script.py   the lines it parses: ^m-(name)-dut-\\[([^]]+)]$, ^m-(model|profile)-\\[([^]]+)]$,
                        ^m-results-\\[([^]]+)\\]$ (comma-separated floats), ^m-lap-us-([0-9]+)$ (first start, then end)
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from host_process import HostProcess

ROOT = Path(__file__).resolve().parents[1]
TEXT_MODE = ROOT / "mcu" / "mlperf"
CC = shutil.which("gcc") or shutil.which("cc")

# What the runner sends and parses (see the module docstring).
RUNNER_CHUNK = 31
NAME_LINE = re.compile(r"^m-(name)-dut-\[([^]]+)]$")
PROFILE_LINE = re.compile(r"^m-(model|profile)-\[([^]]+)]$")
RESULTS_LINE = re.compile(r"^m-results-\[([^]]+)\]$")
LAP_LINE = re.compile(r"^m-lap-us-([0-9]+)$")


def runner_load_commands(data: bytes, chunk: int = RUNNER_CHUNK) -> list[str]:
    return [f"db load {len(data)}"] + [f"db {data[i : i + chunk].hex()}" for i in range(0, len(data), chunk)]


def parse_infer(lines: list[str]) -> dict:
    """What the runner's _gather_infer_results takes from an infer reply."""
    result = {}
    for line in lines:
        if match := RESULTS_LINE.match(line):
            result["results"] = [float(x) for x in match.group(1).split(",") if x.strip()]
        elif match := LAP_LINE.match(line):
            result["end_time" if "start_time" in result else "start_time"] = int(match.group(1))
    if "start_time" in result and "end_time" in result:
        result["elapsed_time"] = result["end_time"] - result["start_time"]
    return result


class TextLink:
    """The runner's side of the line protocol over a pair of byte callables: send "<command>%", collect lines."""

    def __init__(self, write, read, timeout_s: float = 10.0):
        self._write, self._read, self.timeout_s = write, read, timeout_s
        self._pending = b""

    def read_line(self) -> str:
        while b"\n" not in self._pending:
            chunk = self._read(self.timeout_s)
            if not chunk:
                raise TimeoutError(f"no line within {self.timeout_s} s (have {self._pending[-200:]!r})")
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return line.replace(b"\r", b"").replace(b"\0", b"").decode("ascii")

    def until_ready(self) -> list[str]:
        lines = []
        while True:
            line = self.read_line()
            lines.append(line)
            if "m-ready" in line:
                return lines

    def send_raw(self, data: bytes) -> list[str]:
        self._write(data)
        return self.until_ready()

    def command(self, text: str) -> list[str]:
        return self.send_raw(text.encode("ascii") + b"%")

    def load(self, data: bytes, chunk: int = RUNNER_CHUNK) -> list[str]:
        replies = [self.command(c) for c in runner_load_commands(data, chunk)]
        assert replies[0] == [f"m-[Expecting {len(data)} bytes]", "m-ready"]
        assert all(r == ["m-ready"] for r in replies[1:-1]), replies
        return replies[-1]


def error_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("e-[")]


# ---------------------------------------------------------------- host build of the text mode, fake model


@pytest.fixture(scope="module")
def fake_dut_binary(tmp_path_factory):
    if CC is None:
        pytest.skip("needs a host C compiler (gcc)")
    binary = tmp_path_factory.mktemp("host") / "mlperf_fake_dut"
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover"]
    sources = [str(p) for p in sorted(TEXT_MODE.glob("text_*.c"))] + [str(ROOT / "mcu/test/host/mlperf_fake_dut.c")]
    subprocess.run([CC, *flags, f"-I{TEXT_MODE}", *sources, "-o", str(binary)], check=True)
    return binary


class FakeDut(HostProcess):
    def __init__(self, binary, *args):
        super().__init__(binary, *args)
        self.link = TextLink(self.write, self.read, timeout_s=5)
        self.boot = self.link.until_ready()


@pytest.fixture
def dut(fake_dut_binary):
    device = FakeDut(fake_dut_binary)
    yield device
    assert device.close() == 0, "the host build crashed or a sanitizer fired"


def fake_scores(data: bytes) -> list[float]:
    """The fake model's outputs as the runner reads them: 3 decimals of ((sum + k) mod 256) / 256, as printf writes."""
    return [float(f"{np.float32(((sum(data) + k) % 256) / 256):.3f}") for k in range(10)]


def test_boot_lines(dut):
    assert dut.boot == ["m-timestamp-mode-performance", "m-lap-us-100", "m-timer-[fake clock at 1000000 Hz]", "m-init-done", "m-ready"]


def test_the_runners_session_start(dut):
    link = dut.link
    name = link.command("name")
    assert name[-1] == "m-ready" and [NAME_LINE.match(line).group(2) for line in name[:-1]] == ["host fake"]
    profile = {m.group(1): m.group(2) for line in link.command("profile") if (m := PROFILE_LINE.match(line))}
    assert profile == {"profile": "ULPMark for tinyML Firmware V0.0.1", "model": "ic01"}
    assert link.command("timestamp") == ["m-lap-us-100", "m-ready"]
    assert link.command("help")[0] == "ULPMark for tinyML Firmware V0.0.1"


@pytest.mark.parametrize("iterations, warmups", [(1, 0), (20, 0), (20, 5)])  # the runner's accuracy, energy, performance scripts
def test_the_runners_download_and_infer(dut, iterations, warmups):
    link = dut.link
    data = bytes(random.Random(iterations + warmups).randrange(256) for _ in range(3072))
    assert link.load(data) == ["m-load-done", "m-ready"]
    lines = link.command(f"infer {iterations} {warmups}")
    assert lines[:3] == [f"m-warmup-start-{warmups}", "m-warmup-done", f"m-infer-start-{iterations}"]
    assert lines[5:] == [f"m-invoke-ticks-[total={5000 * iterations},count={iterations},hz=1000000]", "m-infer-done", lines[7], "m-ready"]
    parsed = parse_infer(lines)
    assert parsed["elapsed_time"] == 1000 * iterations and parsed["results"] == fake_scores(data)
    assert link.command("results") == [lines[7], "m-ready"]
    assert link.load(data, chunk=26) == ["m-load-done", "m-ready"]  # the runner's chunks with an energy monitor


def test_scores_are_printed_as_printf_does(dut):
    """Every int8 level of a 1/256-scale output, exact halves included (k = 16: 0.0625 -> "0.062")."""
    link = dut.link
    for base in (0, 1, 16, 48, 250):
        data = bytes([base]) + bytes(3071)
        link.load(data)
        assert parse_infer(link.command("infer 1 0"))["results"] == fake_scores(data)


BAD_LOAD = "e-[db load: N must be a decimal count from 1 to 3072 (the model's input bytes), got "
BAD_BYTE = "; commands are printable ASCII ending in %]"
MALFORMED = [
    ("bogus", "e-[unknown command: bogus (help lists the commands)]"),
    ("NAME", "e-[unknown command: NAME (help lists the commands)]"),
    ("name extra", "e-[name: too many arguments (usage: name)]"),
    ("a b c d e f", "e-[too many words in one command (at most 5): a]"),
    ("db", "e-[db: needs a subcommand: load N, print [N [offset]], or hex bytes]"),
    ("db load", "e-[db load: needs the number of bytes (db load N)]"),
    ("db load 0", BAD_LOAD + "0]"),
    ("db load -5", BAD_LOAD + "-5]"),
    ("db load 12x", BAD_LOAD + "12x]"),
    ("db load 99999999999999999999", BAD_LOAD + "99999999999999999999]"),
    ("db load 3072 1", "e-[db: too many arguments (usage: db load N)]"),
    ("db 00", "e-[db: no load in progress: send db load N first; nothing stored]"),
    ("db zz", "e-[db: invalid hex digit 'z' at position 0; nothing stored]"),
    ("db 0a1", "e-[db: odd number of hex digits (3): two per byte; nothing stored]"),
    ("db print x", "e-[db print: N and offset must be decimal counts, offset at most the 0 bytes received]"),
    ("infer 0", "e-[infer: N must be 1 to 1000000 and W 0 to 1000000 (usage: infer N [W])]"),
    ("infer -1 0", "e-[infer: N must be 1 to 1000000 and W 0 to 1000000 (usage: infer N [W])]"),
    ("infer 1 x", "e-[infer: N must be 1 to 1000000 and W 0 to 1000000 (usage: infer N [W])]"),
    ("infer 1 0 0", "e-[infer: too many arguments (usage: infer N [W])]"),
    ("infer 1 0", "e-[infer: no input loaded: send db load 3072 and the bytes first]"),
    ("results", "e-[results: no inference has run yet (send infer N W)]"),
]


def test_malformed_lines_get_one_error_line_each(dut):
    link = dut.link
    for command, error in MALFORMED:
        assert link.command(command) == [error, "m-ready"], command
    assert link.send_raw(b"na\x00me%") == ["e-[malformed command: byte 0x00 at position 2" + BAD_BYTE, "m-ready"]
    assert link.send_raw(b"\xff\xfe%") == ["e-[malformed command: byte 0xff at position 0" + BAD_BYTE, "m-ready"]
    assert link.send_raw(b"x" * 500 + b"%") == ["e-[command longer than 160 characters before %: ignored]", "m-ready"]
    assert link.send_raw(b"db load " + b"0" * 200 + b"%") == ["e-[command longer than 160 characters before %: ignored]", "m-ready"]
    assert link.send_raw(b"%") == ["m-ready"]  # an empty command: the runner's flush
    assert link.send_raw(b"\r\n  name \t%")[0] == "m-name-dut-[host fake]"  # CR, LF and tabs count as spaces
    assert link.send_raw(b"name%profile%")[0] == "m-name-dut-[host fake]" and link.until_ready()[0].startswith("m-profile-")
    assert link.command("name") == ["m-name-dut-[host fake]", "m-ready"]


def test_db_overflow_is_refused_and_nothing_is_stored(dut):
    link = dut.link
    assert link.command("db load 3073") == [BAD_LOAD + "3073]", "m-ready"]
    assert link.command("db load 10") == ["m-[Expecting 10 bytes]", "m-ready"]
    assert link.command("db " + bytes(range(4)).hex()) == ["m-ready"]
    overflow = "e-[db: overflow: 7 bytes sent but 6 of the 10 loaded bytes remain; nothing stored (db load N starts again)]"
    assert link.command("db " + bytes(range(4, 11)).hex()) == [overflow, "m-ready"]
    assert link.command("db print") == ["m-buffer-00-01-02-03", "m-ready"]
    assert link.command("db " + bytes(range(4, 10)).hex()) == ["m-load-done", "m-ready"]
    full = "e-[db: overflow: 1 bytes sent but 0 of the 10 loaded bytes remain; nothing stored (db load N starts again)]"
    assert link.command("db ff") == [full, "m-ready"]
    assert link.command("db print") == ["m-buffer-00-01-02-03-04-05-06-07", "m-buffer-08-09", "m-ready"]
    assert link.command("db print 3 8") == ["m-buffer-08-09", "m-ready"]
    assert link.command("infer 1 0") == ["e-[infer: 10 bytes loaded but the model takes 3072]", "m-ready"]


def test_truncated_load_is_refused_then_a_full_one_runs(dut):
    link = dut.link
    data = bytes(random.Random(3).randrange(256) for _ in range(3072))
    commands = runner_load_commands(data)
    for command in commands[:33]:  # db load and 32 chunks: 992 of 3072 bytes
        link.command(command)
    lines = link.command("infer 1 0")
    assert lines == ["e-[infer: input incomplete: 992 of 3072 bytes loaded]", "m-ready"]
    assert "results" not in parse_infer(lines)
    assert link.load(data) == ["m-load-done", "m-ready"]  # a new db load starts again
    assert parse_infer(link.command("infer 1 0"))["results"] == fake_scores(data)


def test_random_bytes_never_break_the_session(dut):
    rng = random.Random(7)
    link = dut.link
    alphabet = b"db load infer 0123456789abcdefxyz \r\n\t\x00\xff%"
    for _ in range(200):
        raw = bytes(rng.choice(alphabet) for _ in range(rng.randrange(1, 300))).replace(b"%", b"") + b"%"
        lines = link.send_raw(raw)
        assert lines[-1] == "m-ready"
    assert link.command("name") == ["m-name-dut-[host fake]", "m-ready"]


def test_refused_model_and_failed_inference_are_reported(fake_dut_binary):
    refused = FakeDut(fake_dut_binary, "--no-model")
    assert "e-[model refused: model corrupted: SHA-256 expected deadbeef]" in refused.boot
    refused.link.load(bytes(3072))
    assert refused.link.command("infer 1 0") == ["e-[infer: the model cannot run: model corrupted: SHA-256 expected deadbeef]", "m-ready"]
    assert refused.close() == 0
    failing = FakeDut(fake_dut_binary, "--invoke-fails")
    failing.link.load(bytes(3072))
    lines = failing.link.command("infer 2 1")
    assert lines == ["m-warmup-start-1", "e-[infer: fake Invoke failure]", "m-ready"]
    assert failing.link.command("results") == ["e-[results: no inference has run yet (send infer N W)]", "m-ready"]
    assert failing.close() == 0


# ---------------------------------------------------------------- the firmware on QEMU, through a pty as the runner opens it

RESNET8 = ROOT.parent / "shared" / "models" / "mlperf_tiny_ic_resnet8_int8.tflite"
MLPERF_ENV = "qemu_stm32f405_mlperf"


def qemu_skip_reason() -> str | None:
    from firmware_env import firmware_skip_reason

    if reason := firmware_skip_reason(qemu=True):
        return reason
    if not RESNET8.is_file():
        return f"needs {RESNET8} (../shared/models)"
    return None


@pytest.fixture(scope="module")
def mlperf_firmware(tmp_path_factory):
    reason = qemu_skip_reason()
    if reason:
        pytest.skip(reason)
    from bench.pipeline import main_job as pipeline
    from convert.from_tflite import import_tflite
    from model.data import CIFAR10_LABELS

    folder = tmp_path_factory.mktemp("mlperf")
    build = folder / "resnet8"
    import_tflite(RESNET8, build, labels=CIFAR10_LABELS, board="netduinoplus2", progress=False)
    # the environment's own build dir (mcu/.pio/build/qemu_stm32f405_mlperf): TFLM's objects come from the build cache,
    # which is keyed by the object's path
    firmware = pipeline.stage_firmware(build, environment=MLPERF_ENV)
    return build, Path(firmware["elf"])


@pytest.mark.qemu
@pytest.mark.tflm
def test_mlperf_firmware_on_qemu_through_a_pty(mlperf_firmware):
    import serial

    from bench.mlperf.runner import start_qemu
    from convert import tflm_host
    from convert.artifact_reader import open_artifact

    build, elf = mlperf_firmware
    artifact = open_artifact(build)
    board = start_qemu("qemu-system-arm", "netduinoplus2", elf)  # the pty the runner shim gives the runner
    try:
        timer = "m-timer-[qemu-icount shift=0 SysTick at 168000000 Hz; m-lap-us = ticks x 1e6 / Hz]"
        assert board.boot[0] == "m-timestamp-mode-performance" and LAP_LINE.match(board.boot[1])
        assert board.boot[2:] == [timer, "m-init-done", "m-ready"]
        port = serial.Serial(board.pty, 115200, timeout=0.1)  # as the runner's SerialDevice opens it

        def read(timeout_s: float) -> bytes:
            port.timeout = timeout_s
            return port.read(port.in_waiting or 1)

        link = TextLink(port.write, read, timeout_s=60)
        assert link.send_raw(b"%") == ["m-ready"]
        assert link.command("name") == [f"m-name-dut-[squeezenet-mcu {MLPERF_ENV}]", "m-ready"]
        assert link.command("profile") == ["m-profile-[ULPMark for tinyML Firmware V0.0.1]", "m-model-[ic01]", timer, "m-ready"]
        # malformed lines, a db overflow and a truncated load on the firmware: error lines, and it carries on
        assert error_lines(link.command("db load 4000")) and error_lines(link.send_raw(b"inf\x01er%"))
        images = np.random.default_rng(14).integers(0, 256, size=(2, 3072), dtype=np.uint8)
        for command in runner_load_commands(images[0].tobytes())[:20]:
            link.command(command)
        assert link.command("infer 1 0") == ["e-[infer: input incomplete: 589 of 3072 bytes loaded]", "m-ready"]
        assert error_lines(link.command("db " + bytes(3000).hex()[:124] + "zz"))
        host = tflm_host.invoke(artifact.model_bytes, artifact.input_q.quantize(images.astype(np.float64)).reshape(2, 32, 32, 3))
        for image, expected in zip(images, host.reshape(2, -1), strict=True):
            assert link.load(image.tobytes()) == ["m-load-done", "m-ready"]
            assert link.command("db 00")[0].startswith("e-[db: overflow: 1 bytes sent but 0 of the 3072")
            lines = link.command("infer 2 1")
            parsed = parse_infer(lines)
            scores = np.array(parsed["results"])
            device = np.clip(np.round(scores / artifact.output_q.scale) + artifact.output_q.zero_point, -128, 127).astype(np.int8)
            assert device.tolist() == expected.tolist(), "not bit-identical to the TFLM host"
            ticks = int(re.search(r"m-invoke-ticks-\[total=(\d+),count=2,hz=168000000\]", "\n".join(lines)).group(1))
            # m-lap-us spans 2 x (quantise + Invoke): Invoke's ticks / 168, plus well under 0.2 % for the quantising
            assert ticks / 168 - 1 <= parsed["elapsed_time"] <= ticks / 168 * 1.002 + 2
        port.close()
        port = serial.Serial(board.pty, 115200, timeout=0.1)  # closed and opened again, as the runner does
        link = TextLink(port.write, read, timeout_s=60)
        assert link.command("name") == [f"m-name-dut-[squeezenet-mcu {MLPERF_ENV}]", "m-ready"]
        port.close()
    finally:
        board.stop()
