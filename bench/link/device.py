"""A typed client for the firmware's serial protocol (mcu/PROTOCOL.md), with retries, reset and crash detection.

Layers: `open_port(url)` (transport: any pyserial URL) -> `Device` (this module: requests, retries, typed
replies) -> bench.on_device.run (the benchmark CLI). Frames are encoded and decoded by bench.link.protocol, the one
definition shared with the firmware; nothing here knows a byte layout.

Contract of `Device`:
- `hello()` -> `DeviceInfo`; `upload(data)` loads one input tensor in chunks and checks the device's CRC-32 of
  the whole tensor against ours; `invoke(data, profile=True)` -> `Inference` (upload, INVOKE, the echoed input
  CRC checked; profile=False runs Invoke() with the device's per-op profiler detached, to measure its cost);
  `profile()` -> `Profile` (the per-op `OpTicks` and how many ops the profiler had no room for); `reset()`.
- Every request carries the next sequence number; a reply with another seq (a stale answer to an earlier
  try) is dropped. A request is retried, each retry logged, when the device says it received a damaged
  frame (BAD_CRC, BAD_FRAME), when an undecodable frame arrives instead of the reply (a damaged reply), or
  when nothing arrives in time; at most `MAX_RETRIES` times, then `DeviceTimeout` / `ProtocolFailure`.
- The upload chunk follows the line's byte damage rate, estimated from recent exchanges (`LineEstimate`,
  `best_chunk`): a noisy line gets short frames that get through, a clean one full chunks. A handshake or request
  that fails on a line where many frames arrive damaged says "the line is too noisy" with the measured figures.
- A BOOT event, or a boot banner in the raw byte stream, raises `DeviceWasReset` (the caller handshakes
  again and repeats the sample). A FAULT event, or a crash text in the raw stream (Cortex-M HardFault,
  ESP32 "Guru Meditation", abort()), raises `DeviceCrashed`. Neither is retried here.
- Timeouts are named constants scaled by payload size and line rate, on the monotonic clock; once round trips
  are known, a request waits RTT_FACTOR times the slowest recent one (a lost frame does not stall for a second).

Errors (all `BenchError`): `PortUnavailable` (cannot open; `busy` set when another program holds it),
`DeviceTimeout`, `ProtocolFailure`, `DeviceStatusError` (the device answered an error status: `status`,
`detail`, `message`), `DeviceCrashed`, `DeviceWasReset`, `IncompatibleDevice` (handshake refused).
"""

from __future__ import annotations

import errno
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.link.protocol import (
    LIMITS,
    UART_BAUD,
    Command,
    DType,
    FrameSplitter,
    Message,
    ModelState,
    ProtocolError,
    Status,
    crc32,
    decode_message,
    encode_request,
)

# ---- timing constants -------------------------------------------------------------------------------
BITS_PER_BYTE = 10  # 8N1 on a UART: start + 8 data + stop
DEFAULT_BAUD = UART_BAUD  # what the firmware opens its UART at (mcu/protocol/protocol.json, "uart")
# A socket:// or loop:// port has no line rate; timeouts are scaled as if it were this slow UART, which
# errs on the long side (QEMU's emulated UART may be slower than the host's loopback).
ASSUMED_SOCKET_BAUD = 115_200
LINE_SAFETY = 3.0  # a reply may take this many times its bytes' line time (USB latency, busy host)
BASE_TIMEOUT_S = 1.0  # per request, on top of the bytes' time: device processing, OS scheduling
HANDSHAKE_TIMEOUT_S = 10.0  # total time to get a HELLO answered before the port is declared silent
DEFAULT_INVOKE_TIMEOUT_S = 120.0  # one inference until its duration is known (QEMU runs a SqueezeNet in seconds)
INVOKE_TIMEOUT_FACTOR = 5.0  # once known: this many times the slowest inference seen, plus BASE_TIMEOUT_S
MAX_RETRIES = 12  # per request; with 1 % byte corruption a 256-byte chunk fails ~93 % of the time before it shrinks
MAX_UPLOAD_RESTARTS = 4  # whole-tensor uploads whose final CRC did not match, before giving up
MIN_CHUNK = 16
# Tries of one upload chunk: at 1 % byte corruption the best chunk (64 bytes) gets through a third of the time, so
# 12 failures in a row happen about once an image: a chunk has CHUNK_TRIES.
CHUNK_TRIES = 4 * MAX_RETRIES
QUIET_GAP_S = 0.01  # after a damaged frame: how long the line must stay quiet before the request is retried
FRAME_OVERHEAD = 6 + 4 + 2  # header, CRC, COBS code bytes and delimiter (roughly)
# Per-request deadlines follow the round trips seen: a lost frame (its delimiter damaged, say) costs this many times
# the slowest recent round trip, not BASE_TIMEOUT_S. Never below MIN_TIMEOUT_S. A deadline too short costs a retry,
# and the late reply (dropped as stale) still counts as a round trip, so the deadline grows back to what the line needs.
RTT_FACTOR = 4.0
MIN_TIMEOUT_S = 0.03
RTT_WINDOW = 32  # round trips remembered
# The line's damage rate is estimated from the last exchanges (weights decay by ESTIMATE_DECAY per exchange, about
# 50 exchanges' memory), so chunks shrink within a few failures and grow back as clean exchanges accumulate.
ESTIMATE_DECAY = 0.98
# What one exchange costs besides its bytes (the device's turnaround, the host's read loop), as bytes' worth of
# line time: with it the best chunk at 1 % corruption is 64 bytes, not the 16 a pure byte count would give.
ROUND_TRIP_BYTES = 48
# Above this share of damaged frames the handshake's failure is blamed on noise, with the measured figures.
NOISY_SHARE = 0.2
NOISY_HANDSHAKE_FACTOR = 3.0  # a handshake on a noisy line may take this many times HANDSHAKE_TIMEOUT_S

# Texts that mean the firmware died: Cortex-M fault handlers (ours sends FAULT events, others print),
# ESP-IDF's panic handler, newlib's abort. A boot banner means it restarted.
CRASH_TEXT = re.compile(rb"HardFault|MemManage|BusFault|UsageFault|UnexpectedInterrupt|Guru Meditation|abort\(\) was called|Backtrace:")
BOOT_TEXT = re.compile(rb"SQZ BOOT|rst:0x[0-9a-f]+")
# A frame with a valid CRC but a status byte outside the protocol's list is treated as damaged (retried), like
# one with a bad CRC: found by fuzzing the reply handling (bench/fuzz/targets.py, py_device).
STATUS_CODES = frozenset(int(s) for s in Status)


class BenchError(Exception):
    """Base of the errors of the serial benchmark; the message says what to check."""


class PortUnavailable(BenchError):
    def __init__(self, message: str, busy: bool = False):
        super().__init__(message)
        self.busy = busy


class DeviceTimeout(BenchError):
    """No (usable) reply within the deadline, after the retries."""


class ProtocolFailure(BenchError):
    """Replies arrived but never a valid one for the request, or one that contradicts it."""


class DeviceStatusError(BenchError):
    """The device answered with an error status."""

    def __init__(self, command: str, status: Status, detail: int, message: str):
        super().__init__(f"{command}: the device answered {status.name} (detail {detail}){': ' + message if message else ''}")
        self.command, self.status, self.detail, self.device_message = command, status, detail, message


class DeviceCrashed(BenchError):
    """The firmware reported a fault (or printed a crash banner) and stopped."""

    def __init__(self, text: str):
        super().__init__(f"the device crashed: {text}")
        self.text = text


class DeviceWasReset(BenchError):
    """The device rebooted (BOOT event or banner); its state (a half-loaded input) is gone."""

    def __init__(self, text: str):
        super().__init__(f"the device reset: {text}")
        self.text = text


class IncompatibleDevice(BenchError):
    """The device runs another protocol version, model or tensor layout than the artifact."""


# ---- typed replies ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    scale: float
    zero_point: int
    bytes: int

    @classmethod
    def from_fields(cls, f: dict) -> TensorInfo:
        try:
            dtype = DType(f["dtype"]).name.lower()
        except ValueError:
            dtype = f"dtype {f['dtype']}"
        return cls(dtype, tuple(f["dims"][: f["ndims"]]), float(f["scale"]), int(f["zero_point"]), int(f["bytes"]))


@dataclass(frozen=True)
class DeviceInfo:
    protocol_version: int
    max_request_payload: int
    max_reply_payload: int
    input_chunk_max: int
    clock_hz: int
    tick_hz: int
    arena_bytes: int
    arena_used_bytes: int
    model_state: str
    model_size: int
    model_sha256: str
    input: TensorInfo
    output: TensorInfo
    board: str
    timer_source: str
    kernels: str
    firmware_git_sha: str
    build_flags: str
    compiler: str
    model_name: str
    model_message: str

    @property
    def virtual(self) -> bool:
        """A host process serving the protocol (bench.virtual.device), not a microcontroller."""
        return self.board.startswith("virtual")

    @property
    def emulated(self) -> bool:
        return "qemu" in self.board.lower()

    @classmethod
    def from_fields(cls, f: dict) -> DeviceInfo:
        try:
            state = ModelState(f["model_state"]).name
        except ValueError:
            state = f"state {f['model_state']}"
        texts = ("board", "timer_source", "kernels", "firmware_git_sha", "build_flags", "compiler", "model_name", "model_message")
        return cls(
            **{k: int(f[k]) for k in ("protocol_version", "max_request_payload", "max_reply_payload", "input_chunk_max")},
            **{k: int(f[k]) for k in ("clock_hz", "tick_hz", "arena_bytes", "arena_used_bytes", "model_size")},
            model_state=state,
            model_sha256=bytes(f["model_sha256"]).hex(),
            input=TensorInfo.from_fields(f["input"]),
            output=TensorInfo.from_fields(f["output"]),
            **{k: str(f[k]) for k in texts},
        )

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self) | {"virtual": self.virtual, "emulated": self.emulated}


@dataclass(frozen=True)
class Inference:
    output: bytes
    ticks: int
    upload_s: float  # wall time of the upload, retries included
    upload_bytes: int


@dataclass(frozen=True)
class _Chunk:
    chunk: bytes
    message: Message


@dataclass(frozen=True)
class OpTicks:
    tag: str
    ticks: int


@dataclass(frozen=True)
class Profile:
    """The per-op records of the last INVOKE; `dropped` ops ran after them without a record (the profiler was full):
    a truncated profile when not 0."""

    records: list[OpTicks]
    dropped: int = 0


@dataclass
class LinkStats:
    """What the link went through: every retry is also logged with its reason. `frames_read` counts every frame that
    arrived; `damaged_frames` those that failed their CRC here, `damage_echoes` the device's BAD_CRC/BAD_FRAME answers
    (a request that arrived damaged there)."""

    requests: int = 0
    retries: int = 0
    stale_replies: int = 0
    damaged_frames: int = 0
    frames_read: int = 0
    damage_echoes: int = 0
    upload_restarts: int = 0
    bytes_written: int = 0
    bytes_read: int = 0
    log: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "log"} | {"retry_log_tail": self.log[-20:]}


# ---- transport --------------------------------------------------------------------------------------


def open_port(url: str, baud: int = DEFAULT_BAUD, *, open_timeout_s: float = 5.0):
    """A pyserial port for `url` (/dev/ttyUSB0, COM3, socket://host:port, rfc2217://host:port, loop://,
    faulty://... of bench.link.serial_handlers). Raises PortUnavailable naming what to check."""
    import serial

    from bench.link.serial_handlers import register

    register()  # the project's own schemes (faulty://), through pyserial's protocol_handler_packages

    kwargs: dict[str, Any] = {"baudrate": baud, "timeout": 0.05, "write_timeout": open_timeout_s}
    if "://" not in url:
        kwargs["exclusive"] = True  # a second program on a local port would steal bytes: refuse instead
    try:
        if url.startswith("rfc2217://"):
            from bench.link.transport import open_rfc2217  # pyserial's client, settings negotiated once (see there)

            return open_rfc2217(url, **kwargs)
        return serial.serial_for_url(url, **kwargs)
    except serial.SerialException as error:
        text = str(error)
        if url.startswith("rfc2217://") and ("RFC2217" in text or "waiting for option" in text):
            from bench.link.transport import rfc2217_refused

            raise PortUnavailable(rfc2217_refused(url, text)) from error
        code = getattr(error, "errno", None)
        if code == errno.EBUSY or "exclusively lock" in text or "busy" in text.lower() or "Access is denied" in text:
            raise PortUnavailable(
                f"{url} is busy: another program (a serial monitor, another benchmark, pio device monitor) has it open; close it",
                busy=True,
            ) from error
        if "Connection refused" in text or "could not open port" in text and "://" in url:
            raise PortUnavailable(
                f"{url}: nothing is listening there ({text}); start the emulator (pio run -e qemu_stm32f405 -t upload) "
                "or python -m bench.virtual.device first"
            ) from error
        if code == errno.ENOENT or "No such file" in text or "FileNotFoundError" in text:
            raise PortUnavailable(f"{url}: no such port; is the board plugged in? (ls /dev/ttyUSB* /dev/ttyACM*)") from error
        if code == errno.EACCES or "Permission denied" in text:
            raise PortUnavailable(f"{url}: permission denied; add yourself to the dialout group (or uucp) and log in again") from error
        raise PortUnavailable(f"{url}: cannot open ({text})") from error
    except OSError as error:  # pyserial's RFC 2217 client lets a socket error during negotiation through
        if url.startswith("rfc2217://"):
            raise PortUnavailable(f"{url}: the server closed the connection while it opened ({error}); is its board attached?") from error
        raise PortUnavailable(f"{url}: cannot open ({error})") from error


def line_rate(url: str, baud: int) -> int | None:
    """Bytes per second the line allows, or None for a socket (no line rate)."""
    return None if url.startswith(("socket://", "loop://", "faulty://")) else baud // BITS_PER_BYTE


def bytes_time_s(count: int, url: str, baud: int) -> float:
    return count * BITS_PER_BYTE / ((line_rate(url, baud) and baud) or ASSUMED_SOCKET_BAUD)


# ---- the line's error rate --------------------------------------------------------------------------


class LineEstimate:
    """The per-byte damage probability p of the line, from the outcomes of recent exchanges: an exchange of n bytes
    (request and reply frames) gets through with probability (1-p)^n, so p = -ln(1 - failed share) / mean n."""

    def __init__(self) -> None:
        # A prior worth a few clean exchanges of 100 bytes: full chunks until the line shows damage.
        self.exchanges, self.failures, self.bytes = 4.0, 0.0, 400.0

    def record(self, nbytes: int, failed: bool) -> None:
        self.exchanges = self.exchanges * ESTIMATE_DECAY + 1
        self.failures = self.failures * ESTIMATE_DECAY + failed
        self.bytes = self.bytes * ESTIMATE_DECAY + nbytes

    @property
    def byte_error_rate(self) -> float:
        share = min(self.failures / self.exchanges, 0.99)
        return -math.log1p(-share) / (self.bytes / self.exchanges)


def best_chunk(p: float, limit: int, reply_bytes: int) -> int:
    """The LOAD_INPUT chunk (a power of two from MIN_CHUNK, or `limit`) that moves the most input bytes per unit of
    line time at byte damage rate p: c * (1-p)^n / (n + ROUND_TRIP_BYTES), n the bytes of the exchange."""
    sizes = sorted({min(MIN_CHUNK << k, limit) for k in range(12) if MIN_CHUNK << k <= 2 * limit} | {limit})

    def goodput(c: int) -> float:
        n = c + 8 + reply_bytes + 2 * FRAME_OVERHEAD
        return c * (1 - p) ** n / (n + ROUND_TRIP_BYTES)

    return max(sizes, key=goodput)


# ---- the client -------------------------------------------------------------------------------------


class Device:
    """One device behind an open pyserial port. Not thread-safe: one per board."""

    def __init__(
        self,
        port,
        *,
        url: str = "",
        baud: int = DEFAULT_BAUD,
        log: Callable[[str], None] | None = None,
        base_timeout_s: float = BASE_TIMEOUT_S,
    ):
        self.port = port
        self.url = url or getattr(port, "portstr", "") or "port"
        self.baud = baud
        self.stats = LinkStats()
        self._log = log
        self._splitter = FrameSplitter(max_body=4 * (LIMITS["max_reply_payload"] + 64))
        self._pending: list[Message | bytes] = []
        self._seq = 0
        self._raw_tail = b""  # recent bytes outside frames, for banners split over reads
        self.chunk = LIMITS["input_chunk_max"]
        self.line = LineEstimate()
        self._round_trips: list[float] = []  # seconds of recent exchanges answered at the first try (not INVOKE)
        self._sent: dict[int, float] = {}  # seq -> when it was sent, to time replies that arrive late
        self.base_timeout_s = base_timeout_s
        self.invoke_timeout_s = DEFAULT_INVOKE_TIMEOUT_S
        self._slowest_invoke_s = 0.0
        self.info: DeviceInfo | None = None

    # -- low level --

    def note(self, message: str) -> None:
        self.stats.log.append(message)
        if self._log:
            self._log(f"{self.url}: {message}")

    def _timeout(self, request_bytes: int, reply_bytes: int) -> float:
        line = bytes_time_s(request_bytes + reply_bytes + 2 * FRAME_OVERHEAD, self.url, self.baud)
        fixed = self.base_timeout_s + LINE_SAFETY * line
        if len(self._round_trips) < 4:
            return fixed
        return min(fixed, max(MIN_TIMEOUT_S, RTT_FACTOR * max(self._round_trips) + line))

    def _quiet_gap(self) -> float:
        """How long the line must stay quiet after a damaged frame before a retry: QUIET_GAP_S, or twice the slowest
        recent round trip when that is shorter (a reply still on its way would have come by then)."""
        return min(QUIET_GAP_S, 2 * max(self._round_trips)) if len(self._round_trips) >= 4 else QUIET_GAP_S

    def noise_report(self) -> str:
        """The measured damage on this link, for error messages: the share of frames that arrived damaged."""
        s = self.stats
        frames = s.frames_read + s.damage_echoes  # a damage echo stands for a request frame the device got damaged
        bad = s.damaged_frames + s.damage_echoes
        share = bad / frames if frames else 0.0
        # A frame of n bytes arrives whole with probability (1-p)^n, n here the mean length of what arrived: a lower
        # bound, since short frames (the device's error answers) get through more often than long ones.
        mean_bytes = max(1.0, s.bytes_read / max(1, s.frames_read))
        rate = 1 - (1 - min(share, 0.999)) ** (1 / mean_bytes)
        return (
            f"{share:.0%} of frames arrived damaged ({s.damaged_frames} bad CRC here and {s.damage_echoes} reported by the device, "
            f"of {frames}; at least about {rate:.1%} of bytes damaged)"
        )

    def _noisy(self) -> bool:
        s = self.stats
        frames = s.frames_read + s.damage_echoes
        return frames >= 5 and (s.damaged_frames + s.damage_echoes) / frames >= NOISY_SHARE

    def _read(self, timeout_s: float) -> bytes:
        try:
            self.port.timeout = max(0.0, timeout_s)
            first = self.port.read(1)
            if not first:
                return b""
            self.port.timeout = 0
            data = first + self.port.read(65536)
        except OSError as error:  # pyserial's SerialException is one; a remote port's server went away (ser2net, its machine)
            raise PortUnavailable(f"{self.url}: the port failed while reading ({error}); did its server or board go away?") from error
        self.stats.bytes_read += len(data)
        return data

    def _check_raw(self, data: bytes) -> None:
        """Text outside frames: a crash or boot banner printed by something other than our protocol core."""
        window = self._raw_tail + data
        self._raw_tail = window[-64:]
        crash = CRASH_TEXT.search(window)
        if crash:
            line = window[max(0, crash.start() - 20) : crash.end() + 80].split(b"\n")
            raise DeviceCrashed(b" ".join(line).decode("ascii", "replace").strip())

    def _next(self, deadline: float) -> Message | bytes | None:
        """The next decoded message, or the raw body of a damaged frame, or None at the deadline."""
        while not self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            data = self._read(min(left, 0.5))
            if not data:
                continue
            # Every body of this read is queued (a damaged one as its raw bytes) before any is acted on.
            for body in list(self._splitter.feed(data)):
                self.stats.frames_read += 1
                try:
                    message = decode_message(body)
                    if message.frame.status not in STATUS_CODES:  # Message.status would raise ValueError later
                        raise ProtocolError(f"status {message.frame.status} is not one the protocol defines")
                    self._pending.append(message)
                except ProtocolError:
                    self.stats.damaged_frames += 1
                    self._pending.append(body)
            if not self._pending:
                self._check_raw(self._splitter.pending)
        item = self._pending.pop(0)
        if isinstance(item, bytes):
            self._check_raw(item)
            if BOOT_TEXT.search(item):
                raise DeviceWasReset(item.decode("ascii", "replace").strip())
        return item

    def _event(self, message: Message) -> None:
        text = bytes(message.fields.get("text", b"")).decode("ascii", "replace")
        if message.name == "FAULT":
            raise DeviceCrashed(text)
        if message.name == "BOOT":
            self._pending.clear()
            raise DeviceWasReset(text)

    def _write(self, data: bytes) -> None:
        import serial

        try:
            self.port.write(data)
        except serial.SerialTimeoutException as error:
            raise DeviceTimeout(f"{self.url}: writing {len(data)} bytes timed out: is the line flow-controlled (RTS/CTS)?") from error
        except (OSError, serial.SerialException) as error:
            raise PortUnavailable(f"{self.url}: the port failed while writing ({error}); was the board unplugged?") from error
        self.stats.bytes_written += len(data)

    def request(
        self, command: Command, *, timeout_s: float | None = None, reply_bytes: int = 64, retries: int = MAX_RETRIES, **fields: Any
    ) -> Message:
        """Send one request and return its reply (OK or an error status the caller handles), retrying
        damaged or lost exchanges; see the module docstring."""
        payload_bytes = sum(len(v) for v in fields.values() if isinstance(v, bytes | bytearray))
        adaptive = timeout_s is None
        exchange_bytes = payload_bytes + 8 + reply_bytes + 2 * FRAME_OVERHEAD
        why = ""
        for attempt in range(retries + 1):
            if attempt:
                self.stats.retries += 1
                self.note(f"retry {attempt}/{retries} of {command.name}: {why}")
                self.line.record(exchange_bytes, failed=True)
            timeout = self._timeout(payload_bytes + 8, reply_bytes) if adaptive else timeout_s
            self._seq = (self._seq + 1) & 0xFFFF or 1
            seq = self._seq
            self.stats.requests += 1
            # A leading delimiter ends whatever half frame the device may still hold from a damaged try.
            self._write((b"\x00" if attempt else b"") + encode_request(command, seq, **fields))
            sent = time.monotonic()
            self._sent[seq] = sent
            if len(self._sent) > RTT_WINDOW:
                del self._sent[next(iter(self._sent))]
            deadline = sent + timeout
            why = f"no reply within {timeout:.2f} s"
            while True:
                item = self._next(deadline)
                if item is None:
                    break
                if isinstance(item, bytes) or item.kind == "unparsed":
                    # Either may be a piece of the reply, or the device's answer to a fragment of an earlier
                    # try: retrying at once would make the next reply arrive as stale, again and again.
                    # Wait until the line has been quiet a moment, then retry (a valid reply still wins).
                    why = (
                        "a damaged frame arrived instead of the reply"
                        if isinstance(item, bytes)
                        else (f"the device could not read a frame ({item.status.name})")
                    )
                    deadline = min(deadline, time.monotonic() + self._quiet_gap() + bytes_time_s(reply_bytes, self.url, self.baud))
                    continue
                if item.kind == "event" and (item.seq or not item.ok):
                    # Not an event: the device's BAD_CRC echo of a damaged request whose command byte became
                    # an event code (events always have seq 0 and status OK).
                    why = f"the device received a damaged request ({item.status.name}, echoed as {item.name})"
                    self.stats.damage_echoes += 1
                    break
                if item.kind == "event":
                    self._event(item)
                    continue
                if item.seq != seq:
                    self.stats.stale_replies += 1
                    if adaptive and item.seq in self._sent:
                        self._round_trips = [*self._round_trips[-(RTT_WINDOW - 1) :], time.monotonic() - self._sent[item.seq]]
                    continue
                if item.status in (Status.BAD_CRC, Status.BAD_FRAME):
                    why = f"the device received a damaged request ({item.status.name})"
                    self.stats.damage_echoes += 1
                    break
                if item.name != command.name:
                    why = f"a {item.name} reply carried this request's seq"
                    break
                self.line.record(exchange_bytes, failed=False)
                if adaptive and not attempt:
                    self._round_trips = [*self._round_trips[-(RTT_WINDOW - 1) :], time.monotonic() - sent]
                return item
        self.line.record(exchange_bytes, failed=True)
        noise = f"; the line is too noisy: {self.noise_report()}" if self._noisy() else ""
        if why.startswith("no reply"):
            raise DeviceTimeout(f"{self.url}: {command.name} unanswered after {retries} retries ({why}){noise}")
        raise ProtocolFailure(f"{self.url}: {command.name} failed after {retries} retries; last: {why}{noise}")

    def checked(self, command: Command, **kwargs: Any) -> dict:
        reply = self.request(command, **kwargs)
        if not reply.ok:
            message = bytes(reply.fields.get("message", b"")).decode("ascii", "replace")
            raise DeviceStatusError(command.name, reply.status, int(reply.fields.get("detail", 0)), message)
        return reply.fields

    # -- raw exchanges: tests that send malformed frames, and read what the device says, with no retry --

    def next_frame(self, timeout_s: float) -> Message | bytes:
        """The next frame from the device as it came: a `Message` (a reply of any status or seq, or an event: BOOT and
        FAULT are returned, not raised) or the raw body of one that does not decode. DeviceTimeout when none comes."""
        item = self._next(time.monotonic() + timeout_s)
        if item is None:
            raise DeviceTimeout(f"{self.url}: no frame within {timeout_s:.1f} s")
        return item

    def send_raw(self, data: bytes, timeout_s: float = BASE_TIMEOUT_S) -> Message | bytes:
        """Write `data` as it is (a damaged or oversized frame, say) and return the next frame that is not an event."""
        self._write(data)
        while isinstance(item := self.next_frame(timeout_s), Message) and item.kind == "event" and item.ok and not item.seq:
            pass
        return item

    def wait_event(self, name: str, timeout_s: float) -> Message:
        """Frames until the event `name` (BOOT, FAULT) arrives; the frames before it are dropped."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                item = self.next_frame(max(0.0, deadline - time.monotonic()))
            except DeviceCrashed:
                if name != "FAULT":
                    raise
                continue  # the crash text of the FAULT frame still arriving (COBS leaves text readable): wait for the frame
            if isinstance(item, Message) and item.kind == "event" and item.name == name:
                return item

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
                    m = reply.message
                    message = bytes(m.fields.get("message", b"")).decode("ascii", "replace")
                    raise DeviceStatusError("LOAD_INPUT", m.status, int(m.fields.get("detail", 0)), message)
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
                message = bytes(reply.fields.get("message", b"")).decode("ascii", "replace")
                raise DeviceStatusError("INVOKE", reply.status, int(reply.fields.get("detail", 0)), message)
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

    def close(self) -> None:
        try:
            self.port.close()
        except Exception:  # noqa: BLE001 - closing a dead port must not hide the error that killed it
            pass


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
