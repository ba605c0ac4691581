"""One device state machine: the same table of requests, each with one expected reply, run against the firmware's C
protocol core (mcu/src/protocol, built for the host with the fake model of mcu/test/host/fake_device.c) and against
bench.virtual.device (checksum engine), both driven by bench.link.device.Device, the production client. The C core is the
reference (it is what runs on the boards); the table is what it answers, and the virtual device must answer the same:
status, echoed command and seq, detail, text, and the fields of OK replies. Both devices hold a 3072-byte input."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import test_mcu_protocol_host as host

from bench.link import protocol
from bench.link.device import Device
from bench.link.protocol import (
    REPLY_FLAG,
    UNPARSED_REPLY,
    Command,
    Frame,
    Message,
    ModelState,
    Status,
    cobs_decode,
    cobs_encode,
    crc32,
    encode_frame,
    encode_request,
)
from bench.virtual.device import make_device
from bench.virtual.server import VirtualPort
from bench.virtual.session import RX_CAPACITY

INPUT_BYTES = 3072
REFUSED = (ModelState.SHA256_MISMATCH, "model SHA-256 mismatch")  # what fake_device --no-model reports
MALFORMED = "malformed frame"
LAYOUT = "payload does not match the command's layout"
OFFSET = "offset must be 0 or the bytes received so far"
CHUNK = "chunk too long or past the end of the input tensor"
INCOMPLETE = "load the whole input before INVOKE"
NOT_PROFILED = "no profiled INVOKE yet (none ran, or the last ran with profile 0)"
PROFILE_ARG = "profile must be 0 (no profiler) or 1 (per-op profile)"


@dataclass(frozen=True)
class Reply:
    """The one expected reply: status, the command byte and seq it carries, and its fields (all of an error reply's;
    the listed ones of an OK reply)."""

    status: Status
    command: int
    seq: int
    fields: dict = field(default_factory=dict)


def error(status: Status, command: int, seq: int, detail: int, message: str) -> Reply:
    return Reply(status, command | REPLY_FLAG, seq, {"detail": detail, "message": message.encode()})


def ok(command: Command, seq: int, **fields) -> Reply:
    return Reply(Status.OK, int(command) | REPLY_FLAG, seq, fields)


def body(command: int, seq: int, payload: bytes) -> bytes:
    """The decoded bytes of a frame (header, payload, CRC), to damage before COBS-encoding them again."""
    return cobs_decode(encode_frame(Frame(command, 0, seq, payload))[:-1])


def with_crc(decoded: bytes | bytearray) -> bytes:
    return bytes(decoded[:-4]) + crc32(bytes(decoded[:-4])).to_bytes(4, "little")


def load(seq: int, offset: int, data: bytes) -> bytes:
    return encode_request(Command.LOAD_INPUT, seq, offset=offset, data=data)


def loaded(seq: int, data: bytes) -> Reply:
    return ok(Command.LOAD_INPUT, seq, received=len(data), total=INPUT_BYTES, crc32=crc32(data))


def upload(data: bytes, seq: int = 100) -> list[tuple[bytes, Reply]]:
    """The exchanges of a whole upload in 256-byte chunks, each with its OK reply."""
    return [
        (load(seq + k, offset, data[offset : offset + 256]), loaded(seq + k, data[: offset + 256]))
        for k, offset in enumerate(range(0, len(data), 256))
    ]


def sized_load(encoded: int) -> bytes:
    """A LOAD_INPUT frame whose COBS body (what the device's receive buffer holds) is `encoded` bytes."""
    for chunk in range(200, 400):
        frame = load(60, 0, b"\x01" * chunk)
        if len(frame) - 1 == encoded:
            return frame
    raise AssertionError(f"no LOAD_INPUT frame encodes to {encoded} bytes")


GOOD = body(Command.LOAD_INPUT, 9, b"\x00\x00\x00\x00abcd")
WRONG_LENGTH = bytearray(body(Command.LOAD_INPUT, 11, b"\x00\x00\x00\x00abc"))
WRONG_LENGTH[4] = 200
DATA = bytes(range(256)) * 12
OVERSIZED = bytes(range(1, 256)) * 3

# name -> (refused model?, [(bytes sent, the one expected reply), ...]); each case starts on a freshly booted device.
# A data table: cases read alike (`duplicates` pairs some) but each spells out its bytes and reply in full.
CASES: dict[str, tuple[bool, list[tuple[bytes, Reply]]]] = {
    # LOAD_INPUT: the model first, then the offset, then the chunk's size; CHUNK_TOO_LARGE's detail is the tensor's size
    "load: bad offset is checked before the chunk's size": (False, [(load(1, 5, bytes(257)), error(Status.BAD_OFFSET, 2, 1, 0, OFFSET))]),
    "load: chunk over input_chunk_max": (False, [(load(2, 0, bytes(257)), error(Status.CHUNK_TOO_LARGE, 2, 2, INPUT_BYTES, CHUNK))]),
    "load: chunk past the end of the tensor": (
        False,
        [*upload(DATA[:2944]), (load(3, 2944, bytes(129)), error(Status.CHUNK_TOO_LARGE, 2, 3, INPUT_BYTES, CHUNK))],
    ),
    "load: offset other than the bytes held": (
        False,
        [(load(4, 0, bytes(100)), loaded(4, bytes(100))), (load(5, 99, bytes(10)), error(Status.BAD_OFFSET, 2, 5, 100, OFFSET))],
    ),
    "load: offset 0 starts again": (
        False,
        [(load(6, 0, bytes(100)), loaded(6, bytes(100))), (load(7, 0, b"\x07" * 10), loaded(7, b"\x07" * 10))],
    ),
    "load: an empty chunk at the end asks for the CRC": (False, [*upload(DATA), (load(8, INPUT_BYTES, b""), loaded(8, DATA))]),
    "model refused: before the offset and the chunk's size": (
        True,
        [
            (load(10, 5, bytes(257)), error(Status.MODEL_INVALID, 2, 10, int(REFUSED[0]), REFUSED[1])),
            (encode_request(Command.INVOKE, 11, profile=1), error(Status.MODEL_INVALID, 3, 11, int(REFUSED[0]), REFUSED[1])),
            (encode_request(Command.INVOKE, 12, profile=2), error(Status.BAD_ARGUMENT, 3, 12, 2, PROFILE_ARG)),
            (encode_request(Command.PROFILE, 13, first=0), error(Status.NOT_READY, 4, 13, -1, NOT_PROFILED)),
            (encode_request(Command.HELLO, 14), ok(Command.HELLO, 14, model_state=int(REFUSED[0]))),
        ],
    ),
    # INVOKE and PROFILE
    "invoke: without input": (
        False,
        [(encode_request(Command.INVOKE, 20, profile=1), error(Status.INPUT_INCOMPLETE, 3, 20, 0, INCOMPLETE))],
    ),
    "invoke: with part of the input": (
        False,
        [*upload(DATA[:512]), (encode_request(Command.INVOKE, 21, profile=1), error(Status.INPUT_INCOMPLETE, 3, 21, 512, INCOMPLETE))],
    ),
    "invoke: profile other than 0 or 1": (
        False,
        [*upload(DATA), (encode_request(Command.INVOKE, 22, profile=2), error(Status.BAD_ARGUMENT, 3, 22, 2, PROFILE_ARG))],
    ),
    "invoke: consumes the input": (
        False,
        [
            *upload(DATA),
            (encode_request(Command.INVOKE, 23, profile=1), ok(Command.INVOKE, 23, input_crc32=crc32(DATA))),
            (encode_request(Command.INVOKE, 24, profile=1), error(Status.INPUT_INCOMPLETE, 3, 24, 0, INCOMPLETE)),
        ],
    ),
    "profile: before any INVOKE": (
        False,
        [(encode_request(Command.PROFILE, 25, first=0), error(Status.NOT_READY, 4, 25, -1, NOT_PROFILED))],
    ),
    "profile: after an INVOKE without the profiler": (
        False,
        [
            *upload(DATA),
            (encode_request(Command.INVOKE, 26, profile=0), ok(Command.INVOKE, 26, input_crc32=crc32(DATA))),
            (encode_request(Command.PROFILE, 27, first=0), error(Status.NOT_READY, 4, 27, -1, NOT_PROFILED)),
        ],
    ),
    # framing: a frame the device cannot attribute is answered as UNPARSED with seq 0, detail the bytes it got
    "frame: longer than the receive buffer": (
        False,
        [
            (OVERSIZED + b"\x00", error(Status.FRAME_TOO_LONG, UNPARSED_REPLY, 0, RX_CAPACITY, "frame too long")),
            (encode_request(Command.HELLO, 30), ok(Command.HELLO, 30)),
        ],
    ),
    "frame: exactly the receive buffer, then one byte more": (
        False,
        [
            (sized_load(RX_CAPACITY), error(Status.CHUNK_TOO_LARGE, 2, 60, INPUT_BYTES, CHUNK)),
            (sized_load(RX_CAPACITY + 1), error(Status.FRAME_TOO_LONG, UNPARSED_REPLY, 0, RX_CAPACITY, "frame too long")),
        ],
    ),
    "frame: bad CRC echoes command and seq": (
        False,
        [(cobs_encode(GOOD[:-1] + bytes([GOOD[-1] ^ 0x40])) + b"\x00", error(Status.BAD_CRC, 2, 9, len(cobs_encode(GOOD)), MALFORMED))],
    ),
    "frame: truncated CRC": (
        False,
        [(cobs_encode(GOOD[:-1]) + b"\x00", error(Status.BAD_CRC, 2, 9, len(cobs_encode(GOOD[:-1])), MALFORMED))],
    ),
    "frame: bad COBS": (False, [(b"\x09abc\x00", error(Status.BAD_FRAME, UNPARSED_REPLY, 0, 4, MALFORMED))]),
    "frame: shorter than header and CRC": (
        False,
        [(cobs_encode(GOOD[:5]) + b"\x00", error(Status.BAD_FRAME, UNPARSED_REPLY, 0, 6, MALFORMED))],
    ),
    "frame: header length not the payload's": (
        False,
        [
            (
                cobs_encode(with_crc(WRONG_LENGTH)) + b"\x00",
                error(Status.BAD_LENGTH, 2, 11, len(cobs_encode(with_crc(WRONG_LENGTH))), MALFORMED),
            )
        ],
    ),
    "layout: HELLO with a payload": (
        False,
        [(cobs_encode(body(Command.HELLO, 12, b"x")) + b"\x00", error(Status.BAD_LENGTH, 1, 12, 1, LAYOUT))],
    ),
    "layout: INVOKE with two bytes": (
        False,
        [(cobs_encode(body(Command.INVOKE, 13, b"xy")) + b"\x00", error(Status.BAD_LENGTH, 3, 13, 2, LAYOUT))],
    ),
    "layout: PROFILE with one byte": (
        False,
        [(cobs_encode(body(Command.PROFILE, 14, b"x")) + b"\x00", error(Status.BAD_LENGTH, 4, 14, 1, LAYOUT))],
    ),
    "layout: LOAD_INPUT shorter than its offset": (
        False,
        [(cobs_encode(body(Command.LOAD_INPUT, 15, b"xyz")) + b"\x00", error(Status.BAD_LENGTH, 2, 15, 3, LAYOUT))],
    ),
    "unknown command": (
        False,
        [(cobs_encode(body(0x3E, 16, b"")) + b"\x00", error(Status.UNKNOWN_COMMAND, 0x3E, 16, 0x3E, "unknown command"))],
    ),
    "unknown command: one with the reply flag": (
        False,
        [(cobs_encode(body(0x81, 17, b"")) + b"\x00", error(Status.UNKNOWN_COMMAND, 0x81, 17, 0x81, "unknown command"))],
    ),
    # seq: echoed as sent, 0 included (the client never sends 0, the device does not care)
    "seq: echoed": (
        False,
        [
            (encode_request(Command.HELLO, 0xBEEF), ok(Command.HELLO, 0xBEEF)),
            (load(0xFFFF, 9, b"x"), error(Status.BAD_OFFSET, 2, 0xFFFF, 0, OFFSET)),
        ],
    ),
    "seq: 0 is a request like any other": (
        False,
        [
            (encode_request(Command.HELLO, 0), ok(Command.HELLO, 0)),
            (encode_request(Command.PROFILE, 0, first=0), error(Status.NOT_READY, 4, 0, -1, NOT_PROFILED)),
        ],
    ),
}


@pytest.fixture(scope="module")
def fake_device_binary(tmp_path_factory):
    return host.build_fake_device(tmp_path_factory.mktemp("conformance"))


@pytest.fixture(params=["c_core", "virtual"])
def open_device(request, fake_device_binary):
    """A factory: (refused model?) -> a Device on a freshly booted device of this kind, past its BOOT event."""
    opened: list = []

    def start(refused: bool) -> Device:
        if request.param == "c_core":
            process = host.FakeDevice(fake_device_binary, *(["--no-model"] if refused else []))
            opened.append(process)
            return process.client
        client = Device(VirtualPort(make_device(None, "checksum", model_refused=REFUSED if refused else None)))
        client.wait_event("BOOT", timeout_s=5)
        return client

    yield start
    for process in opened:
        assert process.close() == 0, "the host build crashed or a sanitizer fired"


@pytest.mark.parametrize("name", list(CASES))
def test_one_reply_per_request(open_device, name):
    refused, exchanges = CASES[name]
    client = open_device(refused)
    for sent, want in exchanges:
        reply = client.send_raw(sent)
        assert isinstance(reply, Message), (name, reply)
        got = {k: reply.fields[k] for k in want.fields}
        assert (reply.status, reply.frame.command, reply.seq, got) == (want.status, want.command, want.seq, want.fields), (name, sent[:16])
    assert client.request(Command.HELLO).ok  # and the device still answers


def test_the_table_covers_every_status_both_can_give():
    """Every status the C core's session and commands return for any input, bar the backend's own (INVOKE_FAILED,
    ALLOCATE_FAILED) and the reply-too-long guard (INTERNAL), has a case above."""
    covered = {want.status for _, exchanges in CASES.values() for _, want in exchanges}
    assert covered == set(Status) - {Status.INVOKE_FAILED, Status.ALLOCATE_FAILED, Status.INTERNAL}, set(Status) - covered
    assert protocol.LIMITS["input_chunk_max"] == 256  # the byte counts of the cases above assume it
