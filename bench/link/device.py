"""The one host client of the firmware's serial protocol (mcu/PROTOCOL.md): `Device`, its commands as typed calls.

Layers: bench.link.ports.open_port(url) (transport: any pyserial URL) -> bench.link.channel.Channel (requests,
retries, deadlines, reset and crash detection) -> `Device` (this module: the commands, the upload's recovery)
-> bench.on_device.run (the benchmark CLI). Errors are bench.link.errors; replies bench.link.replies.

Contract of `Device`:
- `hello()` -> `DeviceInfo`; `upload(data)` loads one input tensor in chunks and checks the device's CRC-32 of
  the whole tensor against ours; `invoke(data, profile=True)` -> `Inference` (upload, INVOKE, the echoed input
  CRC checked; profile=False runs Invoke() with the device's per-op profiler detached, to measure its cost);
  `profile()` -> `Profile` (the per-op `OpTicks` and how many ops the profiler had no room for); `reset()`.
  `verify(info, artifact)` refuses a device that does not run the artifact's model.
- The upload chunk follows the line's byte damage rate, estimated from recent exchanges (bench.link.line:
  `LineEstimate`, `best_chunk`): a noisy line gets short frames that get through, a clean one full chunks. A
  handshake that fails on a line where many frames arrive damaged says "the line is too noisy" with the measured figures.
- A chunk the device did not expect (BAD_OFFSET) continues from where the device is; a whole-tensor CRC that differs
  restarts the upload (at most MAX_UPLOAD_RESTARTS times); an INVOKE that finds no input uploads again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench.link.channel import MAX_RETRIES, Channel
from bench.link.errors import BenchError, DeviceStatusError, DeviceTimeout, DeviceWasReset, IncompatibleDevice, ProtocolFailure
from bench.link.line import best_chunk
from bench.link.protocol import LIMITS, Command, Message, Status, crc32
from bench.link.replies import DeviceInfo, Inference, OpTicks, Profile

HANDSHAKE_TIMEOUT_S = 10.0  # total time to get a HELLO answered before the port is declared silent
DEFAULT_INVOKE_TIMEOUT_S = 120.0  # one inference until its duration is known (QEMU runs a SqueezeNet in seconds)
INVOKE_TIMEOUT_FACTOR = 5.0  # once known: this many times the slowest inference seen, plus BASE_TIMEOUT_S
MAX_UPLOAD_RESTARTS = 4  # whole-tensor uploads whose final CRC did not match, before giving up
# Tries of one upload chunk: at 1 % byte corruption the best chunk (64 bytes) gets through a third of the time, so
# 12 failures in a row happen about once an image: a chunk has CHUNK_TRIES.
CHUNK_TRIES = 4 * MAX_RETRIES
NOISY_HANDSHAKE_FACTOR = 3.0  # a handshake on a noisy line may take this many times HANDSHAKE_TIMEOUT_S


@dataclass(frozen=True)
class _Chunk:
    chunk: bytes
    message: Message


class Device(Channel):
    """One device behind an open pyserial port. Not thread-safe: one per board."""

    def __init__(self, port, **channel_options: Any):
        """`channel_options`: those of `Channel` (url, baud, log, base_timeout_s), which owns the port's settings."""
        super().__init__(port, **channel_options)
        self.chunk = LIMITS["input_chunk_max"]
        self.invoke_timeout_s = DEFAULT_INVOKE_TIMEOUT_S
        self._slowest_invoke_s = 0.0
        self.info: DeviceInfo | None = None

    # -- commands --

    def hello(self, timeout_s: float = HANDSHAKE_TIMEOUT_S) -> DeviceInfo:
        """HELLO, repeated until `timeout_s` (NOISY_HANDSHAKE_FACTOR times that while frames arrive damaged); a BOOT seen
        meanwhile is fine (the board just started). A silent port or one that only returns noise fails with what to check."""
        started = time.monotonic()
        deadline = started + timeout_s
        read_before = self.stats.bytes_read
        last: BenchError | None = None
        while time.monotonic() < deadline or (self._noisy() and time.monotonic() < started + NOISY_HANDSHAKE_FACTOR * timeout_s):
            # A noisy line (frames arrive, damaged) gets NOISY_HANDSHAKE_FACTOR times as long: at 1 % byte damage one
            # HELLO reply in about 14 gets through whole, and an emulated UART may give only a few tries a second.
            try:
                # One try per loop turn (retries=0): the loop itself is the retry, bounded by the deadline.
                # Each try waits a round trip's time once some are known (a lost reply must not cost 2 s), then 2 s.
                per_try = self._timeout(8, 512) if self._round_trips else 2.0
                per_try = min(per_try, max(0.1, started + NOISY_HANDSHAKE_FACTOR * timeout_s - time.monotonic()))
                fields = self.checked(Command.HELLO, timeout_s=per_try, reply_bytes=512, retries=0)
                self.info = DeviceInfo.from_fields(fields)
                self.chunk = min(self.chunk, self.info.input_chunk_max)
                return self.info
            except DeviceWasReset as error:
                last = error
            except (DeviceTimeout, ProtocolFailure) as error:
                last = error
        heard = self.stats.bytes_read - read_before
        if heard == 0:
            raise DeviceTimeout(
                f"{self.url}: no reply to HELLO within {timeout_s:.0f} s, not a single byte: check that this is the board's port, "
                "that it is powered and flashed with this project's firmware, and that nothing else holds the port"
            )
        if self._noisy():
            raise DeviceTimeout(
                f"{self.url}: the line is too noisy: {self.noise_report()}; no HELLO reply (about 250 bytes) came through whole "
                f"in {time.monotonic() - started:.0f} s. Check the cable and its ground, shorten it, or keep it away from noise sources"
            )
        raise DeviceTimeout(
            f"{self.url}: {heard} bytes came back in {timeout_s:.0f} s but no valid HELLO reply ({last}): "
            f"wrong baud rate? (this run uses --baud {self.baud}; the firmware's is uart.baud in mcu/protocol/protocol.json), "
            "or the board runs other firmware"
        )

    def _load_chunk(self, data: bytes, offset: int) -> _Chunk:
        """One LOAD_INPUT at `offset`, each try sized by `best_chunk` for the line's estimated damage rate (short
        frames get through a noisy line; a clean line gets full chunks, fewer round trips)."""
        limit = self.info.input_chunk_max if self.info else LIMITS["input_chunk_max"]
        for failure in range(CHUNK_TRIES + 1):
            size = best_chunk(self.line.byte_error_rate, limit, reply_bytes=12)
            if size != self.chunk:
                self.note(f"chunk now {size} bytes, was {self.chunk} (estimated byte error rate {self.line.byte_error_rate:.2%})")
                self.chunk = size
            chunk = data[offset : offset + self.chunk]
            try:
                message = self.request(Command.LOAD_INPUT, offset=offset, data=chunk, reply_bytes=12, retries=0)
            except (DeviceTimeout, ProtocolFailure) as error:
                if failure == CHUNK_TRIES:
                    raise
                self.stats.retries += 1
                self.note(f"retry {failure + 1}/{CHUNK_TRIES} of the chunk at {offset}: {error}")
                continue
            return _Chunk(chunk, message)
        raise AssertionError("unreachable")

    def upload(self, data: bytes) -> float:
        """Load `data` as the input tensor; returns the seconds it took. The device's CRC of the whole
        tensor must equal ours, else the upload starts again (bounded)."""
        started = time.monotonic()
        want = crc32(data)
        for restart in range(MAX_UPLOAD_RESTARTS + 1):
            if restart:
                self.stats.upload_restarts += 1
            offset, received, device_crc = 0, -1, None
            while offset < len(data):
                reply = self._load_chunk(data, offset)
                size = len(reply.chunk)
                if reply.message.ok:
                    received, device_crc = reply.message.fields["received"], reply.message.fields["crc32"]
                    offset += size
                elif reply.message.status == Status.BAD_OFFSET and 0 <= int(reply.message.fields["detail"]) <= len(data):
                    # The device holds another number of bytes than we thought: a chunk arrived whose reply was
                    # lost (a retry is then late), or it reset (it holds 0). Carry on from where it is; the
                    # whole-tensor CRC at the end vouches for every byte.
                    expected = int(reply.message.fields["detail"])
                    self.note(f"device expected offset {expected}, not {offset}: continuing from there")
                    offset, received, device_crc = expected, expected, None
                else:
                    raise DeviceStatusError.of_reply("LOAD_INPUT", reply.message)
            else:
                if device_crc is None and received == len(data):
                    # The last reply was lost: a zero-length chunk at the end asks the device for its CRC.
                    fields = self.checked(Command.LOAD_INPUT, offset=len(data), data=b"", reply_bytes=12)
                    received, device_crc = fields["received"], fields["crc32"]
                if received == len(data) and device_crc == want:
                    return time.monotonic() - started
                self.note(f"device holds {received} bytes with CRC {device_crc or 0:#010x}, ours is {want:#010x}: upload restarts")
        raise ProtocolFailure(f"{self.url}: the input upload did not arrive intact after {MAX_UPLOAD_RESTARTS} restarts")

    def invoke(self, data: bytes, profile: bool = True) -> Inference:
        """Upload `data`, run one inference, return its output and the device's ticks of Invoke().
        The device must echo the CRC of what it ran on: an output is never accepted for another input.
        profile=False: Invoke() without the per-op profiler (its ticks leave the profiler's cost out)."""
        want = crc32(data)
        for attempt in range(MAX_UPLOAD_RESTARTS + 1):
            upload_s = self.upload(data)
            started, retries_before = time.monotonic(), self.stats.retries
            reply = self.request(
                Command.INVOKE,
                timeout_s=self.invoke_timeout_s,
                reply_bytes=16 + (self.info.output.bytes if self.info else 0),
                profile=int(profile),
            )
            if reply.status == Status.INPUT_INCOMPLETE and attempt < MAX_UPLOAD_RESTARTS:
                # INVOKE consumes the input: a retried INVOKE whose first try ran finds none. Upload again.
                self.note("INVOKE found no input (a retried INVOKE after a lost reply, or a reset): uploading again")
                continue
            if not reply.ok:
                raise DeviceStatusError.of_reply("INVOKE", reply)
            if reply.fields["input_crc32"] != want:
                raise ProtocolFailure(
                    f"{self.url}: INVOKE ran on input CRC {reply.fields['input_crc32']:#010x}, not the uploaded {want:#010x}"
                )
            output = bytes(reply.fields["output"])
            if self.info and len(output) != self.info.output.bytes:
                raise ProtocolFailure(f"{self.url}: INVOKE returned {len(output)} output bytes, HELLO said {self.info.output.bytes}")
            # The INVOKE deadline follows the inferences seen: the device's own count, or the wall time of an
            # exchange that needed no retry (an emulator's ticks need not match the host's clock).
            elapsed = time.monotonic() - started if self.stats.retries == retries_before else 0.0
            took = max(elapsed, int(reply.fields["ticks"]) / self.info.tick_hz if self.info and self.info.tick_hz else 0.0)
            if took > self._slowest_invoke_s or self.invoke_timeout_s == DEFAULT_INVOKE_TIMEOUT_S:
                self._slowest_invoke_s = max(took, self._slowest_invoke_s)
                self.invoke_timeout_s = self.base_timeout_s + INVOKE_TIMEOUT_FACTOR * self._slowest_invoke_s
            return Inference(output, int(reply.fields["ticks"]), upload_s, len(data))
        raise ProtocolFailure(f"{self.url}: INVOKE kept finding no input after {MAX_UPLOAD_RESTARTS} uploads")

    def profile(self) -> Profile:
        """Per-op ticks of the last INVOKE, all pages. No records when the device has no profiler."""
        records: list[OpTicks] = []
        while True:
            fields = self.checked(Command.PROFILE, first=len(records), reply_bytes=LIMITS["max_reply_payload"])
            records += [OpTicks(r["tag"], int(r["ticks"])) for r in fields["records"]]
            if len(records) >= fields["total"] or not fields["count"]:
                return Profile(records, int(fields["dropped"]))

    def reset(self, timeout_s: float = 60.0) -> str:
        """RESET, then wait for the BOOT banner; returns its text."""
        self.checked(Command.RESET)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                item = self._next(deadline)
                if item is None:
                    raise DeviceTimeout(f"{self.url}: no BOOT banner within {timeout_s:.0f} s of RESET")
                if isinstance(item, Message) and item.kind == "event":
                    self._event(item)
            except DeviceWasReset as booted:
                return booted.text


def verify(info: DeviceInfo, artifact) -> None:
    """Refuse a device that does not run the artifact's model with its tensors, naming both values.
    `artifact` is a convert.artifact_reader.Artifact."""
    from bench.link.protocol import VERSION

    problems = []
    if info.protocol_version != VERSION:
        problems.append(f"protocol version: device {info.protocol_version}, host {VERSION} (update the firmware or this checkout)")
    if info.model_state != "OK":
        problems.append(f"model state: {info.model_state} ({info.model_message})")
    if info.model_sha256 != artifact.sha256:
        problems.append(f"model SHA-256: device {info.model_sha256}, artifact {artifact.sha256} (flash the firmware built from it)")
    for side, tensor, shape, q in (
        ("input", info.input, (1, *artifact.input_shape), artifact.input_q),
        ("output", info.output, (1, len(artifact.labels)), artifact.output_q),
    ):
        if tensor.dtype != "int8":
            problems.append(f"{side} dtype: device {tensor.dtype}, artifact int8")
        if tuple(tensor.shape) != tuple(shape):
            problems.append(f"{side} shape: device {list(tensor.shape)}, artifact {list(shape)}")
        import numpy as np

        if np.float32(tensor.scale) != np.float32(q.scale) or tensor.zero_point != q.zero_point:
            problems.append(
                f"{side} quantization: device scale {tensor.scale!r} zero point {tensor.zero_point}, "
                f"artifact scale {q.scale!r} zero point {q.zero_point}"
            )
    if problems:
        raise IncompatibleDevice(f"the device on this port does not run {artifact.folder}: " + "; ".join(problems))
