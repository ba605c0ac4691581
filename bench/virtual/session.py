"""The firmware's protocol state machine (mcu/src/protocol) on the host: `VirtualDevice.receive(bytes)` returns the bytes
the device sends back. Frames are encoded and decoded with bench.link.protocol, the definition the firmware's header is
generated from: no second copy of any layout.

The checks are the C core's (mcu/src/protocol/session.c: the same checks in the same order, the same statuses, details and
texts, FRAME_TOO_LONG past its receive buffer); tests/test_protocol_conformance.py runs one table of cases against both.
HELLO says it is virtual: the board text starts with "virtual", clock_hz is 0 (no cycles) and tick_hz 1e9. PROFILE
answers with no records (the host interpreter has no per-op profiler the Python wheel exposes), and NOT_READY until a
profiled INVOKE ran, as the firmware.
Test hooks: `reset_at` (request counts after which the device "reboots": state lost, BOOT sent, no
reply), `crash_at` (a FAULT event, then silence until RESET or a new connection) and `model_refused`
((ModelState, text): the model failed its boot checks, so HELLO reports it and LOAD_INPUT / INVOKE refuse).
"""

from __future__ import annotations

import functools
import sys

from bench.link.frame import CRC, HEADER, Frame, OversizedBody, encode_frame
from bench.link.protocol import (
    LIMITS,
    REPLY_FLAG,
    UNPARSED_REPLY,
    VERSION,
    Command,
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
from bench.virtual.engines import EngineError, EngineFault
from bench.virtual.identity import Identity, tensor_fields

# The firmware's receive buffer, PROTO_RX_CAPACITY in mcu/src/protocol/session.h: COBS-encoded bytes of one frame; a
# longer one is answered FRAME_TOO_LONG (tests/test_protocol_conformance.py checks the boundary against the C core).
RX_CAPACITY = HEADER.size + LIMITS["max_request_payload"] + CRC.size + 4
# The commands session.c routes to a handler (find_handler); any other command byte is UNKNOWN_COMMAND.
HANDLED = frozenset(int(c) for c in (Command.HELLO, Command.LOAD_INPUT, Command.INVOKE, Command.PROFILE, Command.RESET))


class VirtualDevice:
    """The protocol state machine of the firmware (mcu/src/protocol), on the host. `receive(bytes)` returns
    the bytes the device sends back. Not thread-safe: one per connection at a time."""

    def __init__(self, identity: Identity, engine, *, reset_at=(), crash_at=(), model_refused: tuple[ModelState, str] | None = None):
        self.identity, self.engine = identity, engine
        self.model_refused = model_refused
        self.input_bytes = tensor_fields(identity.input_shape, 1, 0)["bytes"]
        self.output_bytes = tensor_fields(identity.output_shape, 1, 0)["bytes"]
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
            "input": tensor_fields(i.input_shape, i.input_scale, i.input_zero_point),
            "output": tensor_fields(i.output_shape, i.output_scale, i.output_zero_point),
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


def _error(command: int, seq: int, status: Status, detail: int, message: str) -> bytes:
    """The error reply to a request of `command` (any byte: the reply sets the reply flag), in the protocol's error
    layout, as session.c's send_error sends it (text cut to text_max)."""
    return encode_reply(command, seq, status, detail=detail, message=message.encode()[: LIMITS["text_max"]])


@functools.cache  # HELLO is answered on every retry; the tree does not change under a running server
def _git_sha_short() -> str:
    try:
        from model.provenance import git_sha

        return git_sha()[:40]
    except Exception:  # noqa: BLE001 - provenance text only
        return "unknown"
