"""Fuzz targets for the protocol's Python side: each takes one input (bytes) and raises on a finding.

    python -m bench.fuzz.targets py_frame [libFuzzer options] [corpus folders]   # coverage-guided, with atheris
    python -m bench.fuzz.targets py_device -max_total_time=30 work/corpus

- `py_frame`: the frame parser (bench.link.frame, bench.link.protocol's layouts). The input is a byte stream cut
  into reads by its own bytes and fed to `FrameSplitter`; every body must decode to a `Message` or raise a
  `ProtocolError` (nothing else), and a decoded frame must survive re-encoding unchanged.
- `py_device`: the client's reply handling (bench.link.device.Device). A fake port answers each request the
  client writes with a reply made from the input: raw bytes, a valid frame with fuzzed status and payload,
  or a well-formed reply of the right layout with fuzzed field values. `hello`, `invoke` and `profile` must
  end in a result or a `BenchError`, never another exception.

`check(target, data)` runs one input without atheris (the committed corpus is replayed that way by
tests/test_fuzz_corpus.py); bench.fuzz.run runs these targets for a time budget and reports.
"""

from __future__ import annotations

import struct
import sys

TARGETS = ("py_frame", "py_device")


class Finding(AssertionError):
    """An input broke a target's contract (as opposed to being refused with the documented error)."""


class _Stream:
    """Reads numbers and byte strings off a fuzz input; past its end, everything is zero/empty."""

    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def left(self) -> int:
        return len(self.data) - self.at

    def byte(self) -> int:
        if self.at >= len(self.data):
            return 0
        self.at += 1
        return self.data[self.at - 1]

    def take(self, count: int) -> bytes:
        chunk = self.data[self.at : self.at + count]
        self.at += len(chunk)
        return chunk

    def u(self, size: int) -> int:
        return int.from_bytes(self.take(size).ljust(size, b"\0"), "little")


# ---- py_frame ------------------------------------------------------------------------------------------


def frame_target(data: bytes) -> None:
    from bench.link.frame import FrameSplitter, decode_frame, encode_frame
    from bench.link.protocol import ProtocolError, decode_message

    stream = _Stream(data)
    splitter = FrameSplitter(max_body=stream.byte() * 8 + 1)
    bodies = []
    while stream.left():
        bodies += list(splitter.feed(stream.take(stream.byte() % 32 + 1)))
    for body in bodies:
        try:
            frame = decode_frame(body)
        except ProtocolError:
            continue  # refused with the documented error: fine
        again = decode_frame(encode_frame(frame)[:-1])
        if again != frame:
            raise Finding(f"re-encoding changed the frame: {frame} -> {again}")
        for from_device in (True, False):
            try:
                decode_message(body, from_device=from_device)
            except ProtocolError:
                pass


# ---- py_device -----------------------------------------------------------------------------------------


class _InputExhausted(Exception):
    """The fake port ran out of fuzz input: the session ends here (not a finding)."""


class _FuzzPort:
    """A pyserial-like port: what the client writes is parsed; each request queues a reply made from the input."""

    portstr = "loop://fuzz"

    def __init__(self, stream: _Stream):
        self.stream = stream
        self.timeout = 0.0
        self._out = bytearray()
        self.uploaded = bytearray()

    def write(self, data: bytes) -> int:
        from bench.link.protocol import FrameSplitter, decode_message

        for body in FrameSplitter().feed(bytes(data)):
            request = decode_message(body, from_device=False)  # the client must only send valid requests
            if request.name == "LOAD_INPUT":  # what a device would hold, for plausible CRCs
                offset = request.fields["offset"]
                self.uploaded[offset:] = request.fields["data"]
            self._out += self._reply(request)
        return len(data)

    def read(self, size: int = 1) -> bytes:
        if not self._out:
            if not self.stream.left():
                raise _InputExhausted
            self._out += self.stream.take(self.stream.byte() % 16)  # unsolicited bytes: noise, banners
        chunk, self._out = bytes(self._out[:size]), self._out[size:]
        return chunk

    def _reply(self, request) -> bytes:
        from bench.link.protocol import Command, Frame, Status, encode_frame, encode_reply

        s = self.stream
        mode = s.byte() % 4
        seq = request.seq if s.byte() % 8 else s.u(2)
        command = Command[request.name]
        if mode == 0:
            return s.take(s.byte())  # raw bytes
        if mode == 1:  # any frame: fuzzed command byte, status and payload, valid CRC and length
            return encode_frame(Frame(s.byte() | 0x80, s.byte(), seq, s.take(s.u(2) % 1400)))
        if mode == 2:  # an error reply with a known or unknown status
            status = s.byte()
            payload = struct.pack("<I", s.u(4)) + bytes([len(text := s.take(s.byte() % 64))]) + text
            return encode_frame(Frame(int(command) | 0x80, status, seq, payload))
        return encode_reply(command, seq, Status.OK, **_reply_fields(command, request.fields, s, bytes(self.uploaded)))


def _reply_fields(command, request: dict, s: _Stream, uploaded: bytes) -> dict:
    """Well-formed OK reply fields for `command`: any values of the layout's types, made plausible (the
    request's offset, a protocol version and tensor sizes the client accepts) unless the input says not to."""
    from bench.link.protocol import _COMMANDS, LAYOUTS, VERSION, crc32

    values = _layout_values(_COMMANDS[int(command)]["reply"], LAYOUTS, s)
    plausible = s.byte() % 4
    if plausible and command.name == "LOAD_INPUT":
        values["received"], values["crc32"] = len(uploaded), crc32(uploaded)
    if plausible and command.name == "INVOKE":
        values["input_crc32"], values["output"] = crc32(uploaded), values["output"][:OUTPUT_BYTES].ljust(OUTPUT_BYTES, b"\0")
    if plausible and command.name == "HELLO":
        values["protocol_version"] = VERSION
        values["input"]["bytes"], values["output"]["bytes"] = INPUT_BYTES, OUTPUT_BYTES
    if plausible and command.name == "PROFILE":
        values["first"] = request["first"]
    return values


INPUT_BYTES = 300  # the tensor device_target uploads (two chunks)
OUTPUT_BYTES = 10


def _layout_values(fields: list, layouts: dict, s: _Stream) -> dict:
    """Values for every field of a layout, drawn from the input (the layout is the protocol's one definition, and
    its types' sizes are bench.link.layout's)."""
    from bench.link.layout import SCALARS, fixed_bytes

    values: dict = {}
    for name, kind in fields:
        if kind in SCALARS:
            scalar = struct.Struct("<" + SCALARS[kind])
            items = scalar.unpack(s.take(scalar.size).ljust(scalar.size, b"\0"))
            values[name] = list(items) if kind == "u16x4" else items[0]
        elif (size := fixed_bytes(kind)) is not None:
            values[name] = s.take(size).ljust(size, b"\0")
        elif kind in ("str8", "bytes16", "rest"):
            values[name] = s.take(s.byte() % 40)  # any bytes and any length: the device may send non-ASCII text
        elif kind.startswith("list:"):
            _, count_field, record = kind.split(":")
            values[name] = [_layout_values(layouts[record], layouts, s) for _ in range(s.byte() % 6)]
            values[count_field] = len(values[name])
        elif kind in layouts:
            values[name] = _layout_values(layouts[kind], layouts, s)
        else:
            raise Finding(f"fuzz_targets cannot fill field type {kind!r}: teach _layout_values")
    return values


class _VirtualClock:
    """Device's clock during a fuzz input: each reading advances 1 ms, so its deadlines end loops after the same
    number of steps on any machine, however loaded (libFuzzer needs an input to behave the same every run)."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 0.001
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


def device_target(data: bytes) -> None:
    import bench.link.channel
    import bench.link.device
    from bench.link.device import Device
    from bench.link.errors import BenchError

    stream = _Stream(data)
    device = Device(_FuzzPort(stream), url="loop://fuzz", base_timeout_s=0.0)
    timed = (bench.link.channel, bench.link.device)  # the client's modules whose deadlines read `time`: one clock for both
    real_times, clock = [module.time for module in timed], _VirtualClock()
    for module in timed:
        module.time = clock
    try:
        device.hello(timeout_s=0.05)
        device.invoke(stream.take(INPUT_BYTES).ljust(INPUT_BYTES, b"\0"), profile=stream.byte() % 4 != 1)
        device.profile()
    except (BenchError, _InputExhausted):
        pass  # documented outcomes of a bad device, or the end of this input
    finally:
        for module, real_time in zip(timed, real_times, strict=True):
            module.time = real_time


def check(target: str, data: bytes) -> None:
    """Run `target` on one input; raises Finding or the unexpected exception."""
    {"py_frame": frame_target, "py_device": device_target}[target](data)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in TARGETS or argv[1] in ("-h", "--help"):
        print(__doc__)
        print(f"targets: {', '.join(TARGETS)}; the other arguments go to libFuzzer (see `-help=1`)")
        return 0 if len(argv) > 1 and argv[1] in ("-h", "--help") else 2
    import atheris

    target = argv[1]
    with atheris.instrument_imports(include=["bench"]):
        import bench.link.channel  # noqa: F401  (instrumented for coverage: requests, retries, frame reading)
        import bench.link.device  # noqa: F401
        import bench.link.frame  # noqa: F401
        import bench.link.layout  # noqa: F401
        import bench.link.protocol  # noqa: F401

    def one_input(data: bytes) -> None:
        check(target, data)

    atheris.Setup([argv[0], *argv[2:]], one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
