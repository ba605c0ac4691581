"""Requests and replies on one open port, with retries, deadlines, and reset and crash detection: `Channel`, the
layer under bench.link.device.Device (which adds the protocol's commands). Frames are encoded and decoded by
bench.link.protocol, the one definition shared with the firmware; nothing here knows a byte layout.

- Every request carries the next sequence number; a reply with another seq (a stale answer to an earlier
  try) is dropped. A request is retried, each retry logged, when the device says it received a damaged
  frame (BAD_CRC, BAD_FRAME), when an undecodable frame arrives instead of the reply (a damaged reply), or
  when nothing arrives in time; at most `MAX_RETRIES` times, then `DeviceTimeout` / `ProtocolFailure`. A request
  that fails on a line where many frames arrive damaged says "the line is too noisy" with the measured figures.
- A BOOT event, or a boot banner in the raw byte stream, raises `DeviceWasReset` (the caller handshakes
  again and repeats the sample). A FAULT event, or a crash text in the raw stream (Cortex-M HardFault,
  ESP32 "Guru Meditation", abort()), raises `DeviceCrashed`. Neither is retried here.
- Timeouts are named constants scaled by payload size and line rate, on the monotonic clock; once round trips
  are known, a request waits RTT_FACTOR times the slowest recent one (a lost frame does not stall for a second).
- Each exchange's outcome feeds the line's damage estimate (`self.line`, bench.link.line.LineEstimate).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.link.errors import DeviceCrashed, DeviceStatusError, DeviceTimeout, DeviceWasReset, PortUnavailable, ProtocolFailure
from bench.link.line import DEFAULT_BAUD, FRAME_OVERHEAD, LineEstimate, bytes_time_s
from bench.link.protocol import LIMITS, Command, FrameSplitter, Message, ProtocolError, Status, decode_message, encode_request

LINE_SAFETY = 3.0  # a reply may take this many times its bytes' line time (USB latency, busy host)
BASE_TIMEOUT_S = 1.0  # per request, on top of the bytes' time: device processing, OS scheduling
MAX_RETRIES = 12  # per request; with 1 % byte corruption a 256-byte chunk fails ~93 % of the time before it shrinks
QUIET_GAP_S = 0.01  # after a damaged frame: how long the line must stay quiet before the request is retried
# Per-request deadlines follow the round trips seen: a lost frame (its delimiter damaged, say) costs this many times
# the slowest recent round trip, not BASE_TIMEOUT_S. Never below MIN_TIMEOUT_S. A deadline too short costs a retry,
# and the late reply (dropped as stale) still counts as a round trip, so the deadline grows back to what the line needs.
RTT_FACTOR = 4.0
MIN_TIMEOUT_S = 0.03
RTT_WINDOW = 32  # round trips remembered
# Above this share of damaged frames the handshake's failure is blamed on noise, with the measured figures.
NOISY_SHARE = 0.2


# Texts that mean the firmware died: Cortex-M fault handlers (ours sends FAULT events, others print),
# ESP-IDF's panic handler, newlib's abort. A boot banner means it restarted.
CRASH_TEXT = re.compile(rb"HardFault|MemManage|BusFault|UsageFault|UnexpectedInterrupt|Guru Meditation|abort\(\) was called|Backtrace:")
BOOT_TEXT = re.compile(rb"SQZ BOOT|rst:0x[0-9a-f]+")
# A frame with a valid CRC but a status byte outside the protocol's list is treated as damaged (retried), like
# one with a bad CRC: found by fuzzing the reply handling (bench/fuzz/targets.py, py_device).
STATUS_CODES = frozenset(int(s) for s in Status)


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


class Channel:
    """Requests with retries and typed errors over one open pyserial port. Not thread-safe: one per board."""

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
        self.line = LineEstimate()
        self._round_trips: list[float] = []  # seconds of recent exchanges answered at the first try (not INVOKE)
        self._sent: dict[int, float] = {}  # seq -> when it was sent, to time replies that arrive late
        self.base_timeout_s = base_timeout_s

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
            raise DeviceStatusError.of_reply(command.name, reply)
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

    def close(self) -> None:
        try:
            self.port.close()
        except Exception:  # noqa: BLE001 - closing a dead port must not hide the error that killed it
            pass
