"""The engines behind a virtual device: what turns an input tensor into an output tensor and its ticks.

- `TflmWorkerEngine` (engine `tflm`): the artifact's `model.tflite` in the TFLM host interpreter, in one long-lived worker
  process (bench/virtual/worker.py) so an abort inside TFLM becomes a FAULT event, as a HardFault does on a board.
  Ticks are host nanoseconds of `invoke()` alone.
- `ChecksumEngine` (engine `checksum`): no model; the output is `checksum_output(input)`, a cheap deterministic function,
  so a client's correctness can be checked over thousands of requests in seconds (fault-injection tests).

Each has `run(data) -> (output, ticks)`, `restart()` and `close()`; `run` raises `EngineFault` (reported as a FAULT
event) or `EngineError` (an INVOKE_FAILED reply).
"""

from __future__ import annotations

import json
import select
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

WORKER = Path(__file__).with_name("worker.py")
WORKER_START_TIMEOUT_S = 60.0
WORKER_INVOKE_TIMEOUT_S = 60.0


class EngineFault(RuntimeError):
    """The engine died (the TFLM worker aborted): reported to the client as a FAULT event."""


class EngineError(RuntimeError):
    """The engine returned an error status (INVOKE_FAILED)."""


def checksum_output(data: bytes, size: int) -> bytes:
    """The checksum engine's output for input `data`: `size` bytes, each the low byte of a CRC-32 of the
    input and the byte's index. Deterministic, cheap, and sensitive to every input bit."""
    base = zlib.crc32(data)
    return bytes(zlib.crc32(bytes([i & 0xFF, i >> 8]), base) & 0xFF for i in range(size))


class ChecksumEngine:
    name = "checksum"

    def __init__(self, input_bytes: int, output_bytes: int):
        self.input_bytes, self.output_bytes = input_bytes, output_bytes

    def run(self, data: bytes) -> tuple[bytes, int]:
        started = time.perf_counter_ns()
        output = checksum_output(data, self.output_bytes)
        return output, time.perf_counter_ns() - started

    def restart(self) -> None:
        pass

    def close(self) -> None:
        pass


class TflmWorkerEngine:
    """One TFLM interpreter in a worker process, serving many invokes (see bench/virtual/worker.py)."""

    name = "tflm"

    def __init__(self, model_path: Path, arena_size: int):
        self.model_path, self.arena_size = Path(model_path), int(arena_size)
        self.process: subprocess.Popen | None = None
        self.restart()

    def _read_exact(self, size: int, timeout_s: float) -> bytes:
        assert self.process is not None and self.process.stdout is not None
        out = bytearray()
        deadline = time.monotonic() + timeout_s
        fd = self.process.stdout.fileno()
        while len(out) < size:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise EngineFault(f"the TFLM worker did not answer within {timeout_s:.0f} s")
            chunk = self.process.stdout.read1(size - len(out))
            if not chunk:
                code = self.process.wait()
                raise EngineFault(f"the TFLM host interpreter died (exit status {code}; a failed CHECK inside a kernel aborts it)")
            out += chunk
        return bytes(out)

    def _message(self, timeout_s: float) -> tuple[bytes, int | None, bytes]:
        kind = self._read_exact(1, timeout_s)
        ticks = struct.unpack("<Q", self._read_exact(8, timeout_s))[0] if kind == b"O" else None
        (length,) = struct.unpack("<I", self._read_exact(4, timeout_s))
        return kind, ticks, self._read_exact(length, timeout_s)

    def restart(self) -> None:
        self.close()
        command = [sys.executable, str(WORKER), str(self.model_path), str(self.arena_size)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        kind, _, body = self._message(WORKER_START_TIMEOUT_S)
        if kind != b"R":
            raise EngineFault(f"the TFLM host interpreter could not load {self.model_path}: {body.decode(errors='replace')}")
        self.details = json.loads(body)

    def run(self, data: bytes) -> tuple[bytes, int]:
        if self.process is None or self.process.poll() is not None:
            raise EngineFault("the TFLM worker is not running")
        try:
            self.process.stdin.write(struct.pack("<I", len(data)) + data)
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as error:
            raise EngineFault(f"the TFLM worker died ({error})") from error
        kind, ticks, body = self._message(WORKER_INVOKE_TIMEOUT_S)
        if kind != b"O":
            raise EngineError(body.decode(errors="replace"))
        return body, int(ticks or 0)

    def close(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            for stream in (self.process.stdin, self.process.stdout):
                if stream:
                    stream.close()
            self.process = None
