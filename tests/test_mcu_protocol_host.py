"""The firmware's protocol core (mcu/src/protocol), compiled for the host with ASan/UBSan and a fake model,
driven through bench.protocol: valid sessions, then malformed, truncated, oversized and random frames."""

import random
import shutil
import subprocess
from pathlib import Path

import pytest
from host_process import HostProcess

from bench import protocol
from bench.protocol import Command, Status
from bench.protocol_link import DeviceError, Link, invoke, load_input, read_profile

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL_SOURCES = sorted((ROOT / "mcu" / "src" / "protocol").glob("*.c"))
CC = shutil.which("gcc") or shutil.which("cc")
pytestmark = pytest.mark.skipif(CC is None, reason="needs a host C compiler (gcc)")


@pytest.fixture(scope="module")
def fake_device_binary(tmp_path_factory):
    binary = tmp_path_factory.mktemp("host") / "fake_device"
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover"]
    command = [CC, *flags, f"-I{ROOT / 'mcu/src/protocol'}", *map(str, PROTOCOL_SOURCES), str(ROOT / "mcu/test/host/fake_device.c")]
    subprocess.run([*command, "-o", str(binary)], check=True)
    return binary


class Device(HostProcess):
    def __init__(self, binary, *args):
        super().__init__(binary, *args)
        self.link = Link(self.write, self.read, timeout_s=5)
        self.link.wait_event("BOOT")


@pytest.fixture
def device(fake_device_binary):
    dev = Device(fake_device_binary)
    yield dev
    assert dev.close() == 0, "the host build crashed or a sanitizer fired"


def test_hello_layout_written_by_c_decodes_in_python(device):
    reply = device.link.request(Command.HELLO)
    assert reply.ok and reply.name == "HELLO"
    fields = reply.fields
    assert fields["protocol_version"] == protocol.VERSION and fields["input_chunk_max"] == protocol.LIMITS["input_chunk_max"]
    assert fields["input"]["dims"] == [1, 32, 32, 3] and fields["input"]["zero_point"] == -128 and fields["input"]["scale"] == 1.0
    assert fields["output"]["bytes"] == 10 and fields["board"] == "host_fake" and fields["model_sha256"][:4] == b"\xde\xad\xbe\xef"


def test_upload_invoke_profile(device):
    data = bytes(random.Random(1).randrange(256) for _ in range(3072))
    output, ticks = invoke(device.link, data)
    assert output == bytes((sum(data) + k) % 256 for k in range(10)) and ticks == 5010
    records = read_profile(device.link)
    assert [r["tag"] for r in records] == ["CONV_2D", "MAX_POOL_2D", "CONCATENATION", "MEAN", "SOFTMAX"]
    assert [r["ticks"] for r in records] == [1000, 1001, 1002, 1003, 1004]


def test_input_is_consumed_by_invoke(device):
    invoke(device.link, bytes(3072))
    reply = device.link.request(Command.INVOKE)
    assert reply.status == Status.INPUT_INCOMPLETE


def test_upload_rules(device):
    link = device.link
    assert link.request(Command.PROFILE, first=0).status == Status.NOT_READY
    assert link.request(Command.LOAD_INPUT, offset=0, data=bytes(257)).status == Status.CHUNK_TOO_LARGE
    assert link.request(Command.LOAD_INPUT, offset=100, data=bytes(10)).status == Status.BAD_OFFSET
    assert link.request(Command.LOAD_INPUT, offset=0, data=bytes(100)).fields["received"] == 100
    assert link.request(Command.LOAD_INPUT, offset=99, data=bytes(10)).status == Status.BAD_OFFSET
    reply = link.request(Command.LOAD_INPUT, offset=100, data=b"\x01" * 100)
    assert reply.fields == {"received": 200, "total": 3072, "crc32": protocol.crc32(bytes(100) + b"\x01" * 100)}
    assert link.request(Command.INVOKE).status == Status.INPUT_INCOMPLETE
    assert link.request(Command.LOAD_INPUT, offset=200, data=bytes(2873)[:256]).ok
    assert link.request(Command.LOAD_INPUT, offset=0, data=bytes(0)).fields["received"] == 0
    assert load_input(link, bytes(3072)) == protocol.crc32(bytes(3072))
    tail = link.request(Command.LOAD_INPUT, offset=0, data=bytes(256))
    assert tail.ok
    assert link.request(Command.LOAD_INPUT, offset=256, data=bytes(10)).ok


def test_past_the_end_chunk_refused(device):
    link = device.link
    for offset in range(0, 3072 - 128, 256):
        assert link.request(Command.LOAD_INPUT, offset=offset, data=bytes(min(256, 3072 - 128 - offset))).ok
    assert link.request(Command.LOAD_INPUT, offset=3072 - 128, data=bytes(129)).status == Status.CHUNK_TOO_LARGE
    assert link.request(Command.LOAD_INPUT, offset=3072 - 128, data=bytes(128)).fields["received"] == 3072


def _frame_body(command, seq, payload):
    return protocol.cobs_decode(protocol.encode_frame(protocol.Frame(command, 0, seq, payload))[:-1])


def test_malformed_and_truncated_frames_get_error_replies(device):
    link = device.link
    good = _frame_body(Command.LOAD_INPUT, 9, b"\x00\x00\x00\x00abcd")
    cases = [
        (protocol.cobs_encode(good[:-1]), Status.BAD_CRC, 9),  # truncated CRC
        (protocol.cobs_encode(good[:5]), Status.BAD_FRAME, 0),  # shorter than header + CRC
        (b"\x09abc", Status.BAD_FRAME, 0),  # COBS code past the end
        (protocol.cobs_encode(good[:-1] + bytes([good[-1] ^ 0x40])), Status.BAD_CRC, 9),
    ]
    wrong_length = bytearray(_frame_body(Command.LOAD_INPUT, 11, b"\x00\x00\x00\x00abc"))
    wrong_length[4] = 200
    wrong_length[-4:] = protocol.crc32(bytes(wrong_length[:-4])).to_bytes(4, "little")
    cases.append((protocol.cobs_encode(bytes(wrong_length)), Status.BAD_LENGTH, 11))
    cases.append((protocol.cobs_encode(_frame_body(Command.HELLO, 12, b"x")), Status.BAD_LENGTH, 12))
    cases.append((protocol.cobs_encode(_frame_body(Command.INVOKE, 13, b"xy")), Status.BAD_LENGTH, 13))
    cases.append((protocol.cobs_encode(_frame_body(Command.PROFILE, 14, b"x")), Status.BAD_LENGTH, 14))
    cases.append((protocol.cobs_encode(_frame_body(Command.LOAD_INPUT, 15, b"xyz")), Status.BAD_LENGTH, 15))
    cases.append((protocol.cobs_encode(_frame_body(0x3E, 16, b"")), Status.UNKNOWN_COMMAND, 16))
    cases.append((protocol.cobs_encode(_frame_body(0x40, 17, b"")), Status.UNKNOWN_COMMAND, 17))
    cases.append((bytes(range(1, 256)) * 3, Status.FRAME_TOO_LONG, 0))
    for raw, status, seq in cases:
        reply = link.send_raw(raw + b"\x00")
        assert (reply.status, reply.seq) == (status, seq), raw[:20]
    assert link.request(Command.HELLO).ok


def test_random_garbage_never_breaks_the_device(device):
    rng = random.Random(5)
    link = device.link
    for _ in range(300):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 400)))
        raw = body.replace(b"\x00", b"")
        if not raw:
            continue
        reply = link.send_raw(raw + b"\x00")
        assert reply.status != Status.OK
    assert link.request(Command.HELLO).ok


def test_model_refused_is_reported(fake_device_binary):
    dev = Device(fake_device_binary, "--no-model")
    hello = dev.link.request(Command.HELLO)
    assert hello.fields["model_state"] == protocol.ModelState.SHA256_MISMATCH
    reply = dev.link.request(Command.LOAD_INPUT, offset=0, data=b"x")
    assert reply.status == Status.MODEL_INVALID and b"SHA-256" in reply.fields["message"]
    assert dev.close() == 0


def test_invoke_failure_is_reported(fake_device_binary):
    dev = Device(fake_device_binary, "--invoke-fails")
    load_input(dev.link, bytes(3072))
    with pytest.raises(DeviceError, match="INVOKE_FAILED"):
        invoke(dev.link, bytes(3072))
    assert dev.close() == 0
