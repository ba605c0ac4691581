"""bench.link.protocol: COBS, CRC-32, frames and payload layouts, against the definition in mcu/protocol/protocol.json."""

import random
import zlib

import pytest

from bench.link import protocol
from bench.link.protocol import Command, Event, FrameError, LayoutError, Status


def test_cobs_round_trip_edge_cases():
    rng = random.Random(0)
    cases = [b"", b"\x00", b"\x00\x00", b"\x01", bytes(range(1, 255)), bytes(range(1, 256)), bytes(254 * [7]) + b"\x00", bytes(600)]
    cases += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 800))) for _ in range(200)]
    for data in cases:
        encoded = protocol.cobs_encode(data)
        assert 0 not in encoded
        assert protocol.cobs_decode(encoded) == data


def test_cobs_rejects_malformed():
    with pytest.raises(FrameError, match="BAD_FRAME"):
        protocol.cobs_decode(b"\x05ab")  # code runs past the end
    with pytest.raises(FrameError, match="BAD_FRAME"):
        protocol.cobs_decode(b"\x03a\x00")


def test_crc_is_zlib_crc32():
    assert protocol.crc32(b"123456789") == 0xCBF43926 == zlib.crc32(b"123456789")


def test_request_round_trip_and_seq():
    wire = protocol.encode_request(Command.LOAD_INPUT, 0xBEEF, offset=256, data=bytes(range(200)))
    assert wire.endswith(b"\x00") and 0 not in wire[:-1]
    message = protocol.decode_message(wire[:-1], from_device=False)
    assert message.name == "LOAD_INPUT" and message.seq == 0xBEEF
    assert message.fields == {"offset": 256, "data": bytes(range(200))}


def test_reply_error_layout():
    wire = protocol.encode_reply(Command.INVOKE, 7, Status.INVOKE_FAILED, detail=1, message=b"Invoke failed")
    message = protocol.decode_message(wire[:-1])
    assert not message.ok and message.status == Status.INVOKE_FAILED and message.seq == 7
    assert message.fields == {"detail": 1, "message": b"Invoke failed"}


def test_profile_reply_list_layout():
    records = [{"ticks": 10**10 + i, "tag": f"OP_{i}"} for i in range(3)]
    wire = protocol.encode_reply(Command.PROFILE, 3, total=3, dropped=0, first=0, count=3, records=records)
    assert protocol.decode_message(wire[:-1]).fields["records"] == records


def test_event_decoding():
    frame = protocol.Frame(Event.BOOT | protocol.REPLY_FLAG, 0, 0, b"SQZ BOOT board=x")
    message = protocol.decode_message(protocol.encode_frame(frame)[:-1])
    assert message.kind == "event" and message.name == "BOOT" and message.fields["text"] == b"SQZ BOOT board=x"


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda body: body[:5], "BAD_FRAME"),
        (lambda body: body[:-1] + bytes([body[-1] ^ 1]), "BAD_CRC"),
        (lambda body: body[:6] + b"x" + body[6:], "BAD_CRC"),
    ],
)
def test_malformed_frames_raise_typed_errors(mutate, status):
    body = protocol.Frame(Command.HELLO, 0, 1, b"abc")
    raw = protocol.encode_frame(body)[:-1]
    decoded = protocol.cobs_decode(raw)
    with pytest.raises(FrameError) as error:
        protocol.decode_frame(protocol.cobs_encode(mutate(decoded)))
    assert error.value.status == status


def test_length_field_checked_against_bytes():
    body = bytearray(protocol.cobs_decode(protocol.encode_frame(protocol.Frame(Command.HELLO, 0, 1, b"abc"))[:-1]))
    body[4] = 2  # header says 2 payload bytes, frame has 3
    body[-4:] = protocol.crc32(bytes(body[:-4])).to_bytes(4, "little")
    with pytest.raises(FrameError, match="BAD_LENGTH"):
        protocol.decode_frame(protocol.cobs_encode(bytes(body)))


def test_layout_mismatch_raises():
    with pytest.raises(LayoutError):
        protocol.decode_message(protocol.encode_frame(protocol.Frame(Command.LOAD_INPUT | protocol.REPLY_FLAG, 0, 1, b"\x01\x02"))[:-1])


def test_splitter_handles_split_and_joined_frames():
    stream = protocol.encode_request(Command.HELLO, 1) + b"\x00\x00" + protocol.encode_request(Command.RESET, 2)
    splitter = protocol.FrameSplitter()
    bodies = [body for k in range(0, len(stream), 3) for body in splitter.feed(stream[k : k + 3])]
    assert [protocol.decode_message(b, from_device=False).name for b in bodies] == ["HELLO", "RESET"]


def test_definition_is_consistent():
    d = protocol.DEFINITION
    codes = [c["code"] for c in d["commands"]]
    core = next(s for s in d["command_sets"] if s["name"] == "core")
    assert all(core["first"] <= c <= core["last"] for c in codes) and len(set(codes)) == len(codes)
    events = next(s for s in d["command_sets"] if s["name"] == "events")
    assert all(events["first"] <= e["code"] <= events["last"] for e in d["events"])
    assert len({s["code"] for s in d["statuses"]}) == len(d["statuses"]) and Status.OK == 0
    assert d["limits"]["input_chunk_max"] + 4 <= d["limits"]["max_request_payload"]
