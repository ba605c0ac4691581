"""python -m bench.virtual.device: the firmware's serial protocol served by a host process, for CI and for
trying the tools without a board.

`--listen socket://127.0.0.1:<port>` (port 0: a free one) accepts one client at a time on TCP, exactly as
QEMU exposes the emulated board's UART, and prints `serial: socket://127.0.0.1:<port>` when ready. Each
connection starts with a BOOT event, as a board does after power-on. Frames are encoded and decoded with
bench.link.protocol, the definition the firmware's header is generated from: no second copy of any layout.

Engines:
- `tflm` (default): the artifact's `model.tflite` in the TFLM host interpreter, in one long-lived worker
  process (bench/virtual/worker.py) so an abort inside TFLM becomes a FAULT event, as a HardFault
  does on a board. Ticks are host nanoseconds of `invoke()` alone (tick_hz 1e9, clock_hz 0: no cycles).
- `checksum`: no model; the output is `checksum_output(input)`, a cheap deterministic function, so a
  client's correctness can be checked over thousands of requests in seconds (fault-injection tests).

HELLO says it is virtual: the board text starts with "virtual". PROFILE answers with no records (the host
interpreter has no per-op profiler the Python wheel exposes), and NOT_READY until a profiled INVOKE ran, as the firmware.
The state machine is the C core's (mcu/src/protocol: the same checks in the same order, the same statuses, details and
texts, FRAME_TOO_LONG past its receive buffer); tests/test_protocol_conformance.py runs one table of cases against both.
Test hooks: `reset_at` (request counts after which the device "reboots": state lost, BOOT sent, no
reply), `crash_at` (a FAULT event, then silence until RESET or a new connection) and `model_refused`
((ModelState, text): the model failed its boot checks, so HELLO reports it and LOAD_INPUT / INVOKE refuse).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.link.frame import CRC, HEADER, Frame, OversizedBody, encode_frame
from bench.link.protocol import (
    LIMITS,
    REPLY_FLAG,
    UNPARSED_REPLY,
    VERSION,
    Command,
    DType,
    Event,
    FrameError,
    FrameSplitter,
    LayoutError,
    ModelState,
    Status,
    cobs_decode,
    crc32,
    decode_frame,
    decode_message,
    encode_reply,
)

WORKER = Path(__file__).with_name("worker.py")
WORKER_START_TIMEOUT_S = 60.0
WORKER_INVOKE_TIMEOUT_S = 60.0
BOARD = "virtual (host TFLM interpreter)"
BOARD_CHECKSUM = "virtual (checksum engine: outputs are a CRC of the input, no model)"
# The firmware's receive buffer, PROTO_RX_CAPACITY in mcu/src/protocol/session.h: COBS-encoded bytes of one frame; a
# longer one is answered FRAME_TOO_LONG (tests/test_protocol_conformance.py checks the boundary against the C core).
RX_CAPACITY = HEADER.size + LIMITS["max_request_payload"] + CRC.size + 4
# The commands session.c routes to a handler (find_handler); any other command byte is UNKNOWN_COMMAND.
HANDLED = frozenset(int(c) for c in (Command.HELLO, Command.LOAD_INPUT, Command.INVOKE, Command.PROFILE, Command.RESET))


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
    """One TFLM interpreter in a worker process, serving many invokes (see virtual_device_worker.py)."""

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


@dataclass
class Identity:
    """What HELLO reports: the model's tensors and the device's texts."""

    sha256: bytes
    model_size: int
    input_shape: list[int]
    input_scale: float
    input_zero_point: int
    output_shape: list[int]
    output_scale: float
    output_zero_point: int
    arena_bytes: int
    arena_used_bytes: int
    model_name: str
    board: str
    kernels: str


def identity_from_artifact(folder: Path) -> Identity:
    """The HELLO of the firmware built from this artifact, as far as a host can know it."""
    from convert.artifact_reader import open_artifact

    artifact = open_artifact(folder)
    arena = artifact.meta.get("arena") or {}
    return Identity(
        sha256=bytes.fromhex(artifact.sha256),
        model_size=len(artifact.model_bytes),
        input_shape=[1, *artifact.input_shape],
        input_scale=artifact.input_q.scale,
        input_zero_point=artifact.input_q.zero_point,
        output_shape=[1, len(artifact.labels)],
        output_scale=artifact.output_q.scale,
        output_zero_point=artifact.output_q.zero_point,
        arena_bytes=int(artifact.meta.get("arena_bytes_for_firmware") or arena.get("arena_size") or 0),
        arena_used_bytes=int(arena.get("total") or 0),  # measured by the host interpreter at conversion
        model_name=artifact.name,
        board=BOARD,
        kernels="tflm reference (host)",
    )


def checksum_identity(input_shape=(1, 32, 32, 3), classes: int = 10) -> Identity:
    return Identity(
        sha256=hashlib.sha256(b"bench.virtual.device checksum engine").digest(),
        model_size=0,
        input_shape=list(input_shape),
        input_scale=1.0,
        input_zero_point=-128,
        output_shape=[1, classes],
        output_scale=1 / 256,
        output_zero_point=-128,
        arena_bytes=0,
        arena_used_bytes=0,
        model_name="checksum",
        board=BOARD_CHECKSUM,
        kernels="none",
    )


def _tensor(shape: list[int], scale: float, zero_point: int) -> dict:
    size = 1
    for d in shape:
        size *= d
    dims = list(shape) + [0] * (4 - len(shape))
    return {"dtype": int(DType.INT8), "ndims": len(shape), "dims": dims, "scale": scale, "zero_point": zero_point, "bytes": size}


class VirtualDevice:
    """The protocol state machine of the firmware (mcu/src/protocol), on the host. `receive(bytes)` returns
    the bytes the device sends back. Not thread-safe: one per connection at a time."""

    def __init__(self, identity: Identity, engine, *, reset_at=(), crash_at=(), model_refused: tuple[ModelState, str] | None = None):
        self.identity, self.engine = identity, engine
        self.model_refused = model_refused
        self.input_bytes = _tensor(identity.input_shape, 1, 0)["bytes"]
        self.output_bytes = _tensor(identity.output_shape, 1, 0)["bytes"]
        self.reset_at, self.crash_at = set(reset_at), set(crash_at)
        self.requests = 0
        self.invokes = 0
        self.boots = 0
        self.power_on()

    def power_on(self) -> bytes:
        """Reset the state, as a reboot does; returns the BOOT event."""
        self.buffer = bytearray()
        self.profiled = False  # whether the last INVOKE ran with the profiler (PROFILE is NOT_READY until one has)
        self.crashed = False
        self.boots += 1
        self._splitter = FrameSplitter(max_body=RX_CAPACITY)
        state = f"REFUSED: {self.model_refused[1]}" if self.model_refused else "ok"
        text = (
            f"SQZ BOOT env=virtual proto={VERSION} kernels={self.identity.kernels.split()[0]} "
            f"model={self.identity.sha256.hex()[:12]} state={state}"
        )
        return encode_frame(Frame(int(Event.BOOT) | REPLY_FLAG, 0, 0, text.encode()))

    def hello_fields(self) -> dict:
        i = self.identity
        return {
            "protocol_version": VERSION,
            "max_request_payload": LIMITS["max_request_payload"],
            "max_reply_payload": LIMITS["max_reply_payload"],
            "input_chunk_max": LIMITS["input_chunk_max"],
            "clock_hz": 0,  # a host has no cycle counter worth the name: no MAC/cycle from a virtual device
            "tick_hz": 1_000_000_000,
            "arena_bytes": i.arena_bytes,
            "arena_used_bytes": i.arena_used_bytes,
            "model_state": int(self.model_refused[0] if self.model_refused else ModelState.OK),
            "model_size": i.model_size,
            "model_sha256": i.sha256,
            "input": _tensor(i.input_shape, i.input_scale, i.input_zero_point),
            "output": _tensor(i.output_shape, i.output_scale, i.output_zero_point),
            "board": i.board,
            "timer_source": "host perf_counter_ns",
            "kernels": i.kernels,
            "firmware_git_sha": _git_sha_short(),
            "build_flags": f"engine={self.engine.name}",
            "compiler": f"python {sys.version.split()[0]}",
            "model_name": i.model_name,
            "model_message": self.model_refused[1] if self.model_refused else "",
        }

    def receive(self, data: bytes) -> bytes:
        out = bytearray()
        for body in self._splitter.feed(data):
            out += self._frame(body)
        return bytes(out)

    def _frame(self, body: bytes) -> bytes:
        """One body between delimiters -> the reply bytes, checked in the C core's order (mcu/src/protocol/session.c,
        handle_body): framing, then the command, then its payload layout, then the command's own rules."""
        if self.crashed:
            return b""  # a faulted firmware waits for a reset
        if isinstance(body, OversizedBody):
            return _error(UNPARSED_REPLY, 0, Status.FRAME_TOO_LONG, RX_CAPACITY, "frame too long")
        try:
            frame = decode_frame(body)
        except FrameError as error:
            # Once header and CRC are there (a bad CRC or length), the reply echoes the command and seq the frame claims.
            raw = cobs_decode(body) if error.status in ("BAD_CRC", "BAD_LENGTH") else b""
            command, seq = (raw[0], int.from_bytes(raw[2:4], "little")) if raw else (UNPARSED_REPLY, 0)
            return _error(command, seq, Status[error.status], len(body), "malformed frame")
        if frame.command & REPLY_FLAG or frame.command not in HANDLED:
            return _error(frame.command, frame.seq, Status.UNKNOWN_COMMAND, frame.command, "unknown command")
        try:
            message = decode_message(body, from_device=False)
        except LayoutError:
            return _error(frame.command, frame.seq, Status.BAD_LENGTH, len(frame.payload), "payload does not match the command's layout")
        self.requests += 1
        if self.requests in self.reset_at:
            return self.power_on()  # the reboot swallows the request: no reply, a BOOT event instead
        if self.requests in self.crash_at:
            self.crashed = True
            text = f"HardFault pc=0x{0x08000000 + self.requests:08x} status=0x00008200 (simulated by bench.virtual.device)"
            return encode_frame(Frame(int(Event.FAULT) | REPLY_FLAG, 0, 0, text.encode()))
        command, seq, f = Command(frame.command), frame.seq, message.fields
        if command == Command.HELLO:
            return encode_reply(command, seq, **self.hello_fields())
        if command == Command.LOAD_INPUT:
            return self._load_input(seq, f["offset"], bytes(f["data"]))
        if command == Command.INVOKE:
            return self._invoke(seq, f["profile"])
        if command == Command.PROFILE:
            if self.model_refused or not self.profiled:
                return _error(command, seq, Status.NOT_READY, -1, "no profiled INVOKE yet (none ran, or the last ran with profile 0)")
            if f["first"] > 0:  # no per-op profiler here: 0 records
                return _error(command, seq, Status.BAD_ARGUMENT, 0, "first is past the last record")
            return encode_reply(command, seq, total=0, dropped=0, first=f["first"], count=0, records=[])
        assert command == Command.RESET, command  # HANDLED lists no other
        self.engine.restart()
        return encode_reply(command, seq) + self.power_on()  # the reply, then the reboot and its BOOT event

    def _model_ready(self, command: Command, seq: int) -> bytes | None:
        """The refusal every model-side command gets from a firmware whose model failed its boot checks, else None."""
        if not self.model_refused:
            return None
        state, text = self.model_refused
        status = Status.ALLOCATE_FAILED if state == ModelState.ALLOCATE_FAILED else Status.MODEL_INVALID
        return _error(command, seq, status, int(state), text)

    def _load_input(self, seq: int, offset: int, chunk: bytes) -> bytes:
        command = Command.LOAD_INPUT
        refused = self._model_ready(command, seq)
        if refused:
            return refused
        if offset != 0 and offset != len(self.buffer):
            return _error(command, seq, Status.BAD_OFFSET, len(self.buffer), "offset must be 0 or the bytes received so far")
        if len(chunk) > LIMITS["input_chunk_max"] or len(chunk) > self.input_bytes - offset:
            return _error(command, seq, Status.CHUNK_TOO_LARGE, self.input_bytes, "chunk too long or past the end of the input tensor")
        if offset == 0:
            self.buffer = bytearray()
        self.buffer += chunk
        return encode_reply(command, seq, received=len(self.buffer), total=self.input_bytes, crc32=crc32(bytes(self.buffer)))

    def _invoke(self, seq: int, profile: int) -> bytes:
        command = Command.INVOKE
        if profile > 1:
            return _error(command, seq, Status.BAD_ARGUMENT, profile, "profile must be 0 (no profiler) or 1 (per-op profile)")
        refused = self._model_ready(command, seq)
        if refused:
            return refused
        if len(self.buffer) != self.input_bytes:
            return _error(command, seq, Status.INPUT_INCOMPLETE, len(self.buffer), "load the whole input before INVOKE")
        data = bytes(self.buffer)
        self.buffer = bytearray()  # INVOKE consumes the input, as on the board
        try:
            output, ticks = self.engine.run(data)
        except EngineError as error:
            return _error(command, seq, Status.INVOKE_FAILED, 1, str(error))
        except EngineFault as error:
            self.crashed = True
            return encode_frame(Frame(int(Event.FAULT) | REPLY_FLAG, 0, 0, f"TFLM abort: {error}".encode()[: LIMITS["text_max"]]))
        self.invokes += 1
        self.profiled = bool(profile)
        return encode_reply(command, seq, ticks=ticks, input_crc32=crc32(data), output=output)


class VirtualPort:
    """A VirtualDevice as a pyserial-like port inside this process (no socket, no thread), for tests that drive it
    with bench.link.device.Device: its BOOT event is there on open, and what is written is answered at once. `read(n)`
    returns up to n bytes of what it sent; with none, it waits `timeout` seconds (nothing can arrive meanwhile) and
    returns b""."""

    portstr = "virtual://in-process"

    def __init__(self, device: VirtualDevice):
        self.device = device
        self.timeout: float | None = None
        self._out = bytearray(device.power_on())

    def write(self, data: bytes) -> int:
        self._out += self.device.receive(bytes(data))
        return len(data)

    def read(self, size: int = 1) -> bytes:
        if not self._out:
            time.sleep(self.timeout or 0)
        chunk = bytes(self._out[:size])
        del self._out[:size]
        return chunk

    def close(self) -> None:
        self.device.engine.close()


def _error(command: int, seq: int, status: Status, detail: int, message: str) -> bytes:
    """The error reply to a request of `command` (any byte: the reply sets the reply flag), in the protocol's error
    layout, as session.c's send_error sends it (text cut to text_max)."""
    return encode_reply(command, seq, status, detail=detail, message=message.encode()[: LIMITS["text_max"]])


def _git_sha_short() -> str:
    try:
        from model.provenance import git_sha

        return git_sha()[:40]
    except Exception:  # noqa: BLE001 - provenance text only
        return "unknown"


def parse_listen(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "socket" or not parts.hostname or parts.port is None:
        raise ValueError(f"--listen {url!r}: expected socket://<host>:<port> (port 0 picks a free one)")
    return parts.hostname, parts.port


class Server:
    """A TCP listener serving one VirtualDevice to one client at a time. `start()` runs it in a thread."""

    def __init__(self, device: VirtualDevice, host: str = "127.0.0.1", port: int = 0):
        self.device = device
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, port))
        self.listener.listen(4)
        self.host, self.port = self.listener.getsockname()[:2]
        self.url = f"socket://{self.host}:{self.port}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def serve_forever(self) -> None:
        while not self._stop.is_set():
            if not select.select([self.listener], [], [], 0.2)[0]:
                continue
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._serve(connection)

    def _serve(self, connection: socket.socket) -> None:
        self.device.engine.restart() if self.device.crashed else None
        try:
            connection.sendall(self.device.power_on())
            while not self._stop.is_set():
                if not select.select([connection], [], [], 0.2)[0]:
                    continue
                data = connection.recv(65536)
                if not data:
                    return
                reply = self.device.receive(data)
                if reply:
                    connection.sendall(reply)
        except OSError:
            return  # the client went away mid-reply

    def start(self) -> Server:
        self._thread = threading.Thread(target=self.serve_forever, name="virtual-device", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        self.listener.close()
        self.device.engine.close()


def make_device(artifacts: Path | None, engine: str = "tflm", **hooks) -> VirtualDevice:
    """A VirtualDevice for an artifact folder (engine "tflm"), or the checksum engine (no artifact needed,
    though its tensor shapes follow the artifact's when one is given)."""
    if engine == "checksum":
        identity = checksum_identity()
        if artifacts is not None:
            real = identity_from_artifact(artifacts)
            identity = checksum_identity(real.input_shape, real.output_shape[-1])
        device_engine = ChecksumEngine(_tensor(identity.input_shape, 1, 0)["bytes"], identity.output_shape[-1])
        return VirtualDevice(identity, device_engine, **hooks)
    if artifacts is None:
        raise ValueError("the tflm engine needs --artifacts")
    from convert.artifact_reader import open_artifact
    from convert.tflm_host import default_arena_size

    identity = identity_from_artifact(artifacts)
    artifact = open_artifact(artifacts)
    tflite = artifact.folder / artifact.meta["tflite_file"]
    return VirtualDevice(identity, TflmWorkerEngine(tflite, default_arena_size(len(artifact.model_bytes))), **hooks)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.virtual.device", description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="socket://127.0.0.1:0", help="socket://<host>:<port>; port 0 picks a free one")
    parser.add_argument("--artifacts", type=Path, help="the converter's artifact folder, e.g. build/squeezenet_cifar10")
    parser.add_argument("--engine", choices=("tflm", "checksum"), default="tflm", help="tflm: the model; checksum: no model (tests)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        host, port = parse_listen(args.listen)
        device = make_device(args.artifacts, args.engine)
        server = Server(device, host, port)
    except (ValueError, OSError, EngineFault) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"virtual device ({device.identity.board}, model {device.identity.model_name}) ready", flush=True)
    print(f"serial: {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
