"""The firmware's protocol core (mcu/src/protocol), compiled for the host with ASan/UBSan and a fake model,
driven through bench.link.device.Device, the production client, over the build's stdin/stdout pipes: valid sessions,
then malformed, truncated, oversized and random frames (sent raw, their replies read by Device's parser)."""

import random
import shutil
import subprocess
from pathlib import Path

import pytest
from host_process import HostProcess, PipePort

from bench.link import protocol
from bench.link.device import Device
from bench.link.errors import DeviceStatusError
from bench.link.protocol import Command, Message, Status

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL_SOURCES = sorted((ROOT / "mcu" / "src" / "protocol").glob("*.c"))
CC = shutil.which("gcc") or shutil.which("cc")
pytestmark = pytest.mark.skipif(CC is None, reason="needs a host C compiler (gcc)")


def build_fake_device(folder: Path) -> Path:
    """mcu/test/host/fake_device.c and the protocol core, built with the sanitizers; returns the binary."""
    binary = folder / "fake_device"
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover"]
    command = [CC, *flags, f"-I{ROOT / 'mcu/src/protocol'}", *map(str, PROTOCOL_SOURCES), str(ROOT / "mcu/test/host/fake_device.c")]
    subprocess.run([*command, "-o", str(binary)], check=True)
    return binary


@pytest.fixture(scope="module")
def fake_device_binary(tmp_path_factory):
    return build_fake_device(tmp_path_factory.mktemp("host"))


class FakeDevice(HostProcess):
    """The host build running, with `client`, a bench.link.device.Device on its pipes, past its BOOT event."""

    def __init__(self, binary, *args):
        super().__init__(binary, *args)
        self.client = Device(self.port)
        self.boot = self.client.wait_event("BOOT", timeout_s=5)


@pytest.fixture
def device(fake_device_binary):
    dev = FakeDevice(fake_device_binary)
    yield dev
    assert dev.close() == 0, "the host build crashed or a sanitizer fired"


def test_hello_layout_written_by_c_decodes_in_python(device):
    reply = device.client.request(Command.HELLO)
    assert reply.ok and reply.name == "HELLO"
    fields = reply.fields
    assert fields["protocol_version"] == protocol.VERSION and fields["input_chunk_max"] == protocol.LIMITS["input_chunk_max"]
    assert fields["input"]["dims"] == [1, 32, 32, 3] and fields["input"]["zero_point"] == -128 and fields["input"]["scale"] == 1.0
    assert fields["output"]["bytes"] == 10 and fields["board"] == "host_fake" and fields["model_sha256"][:4] == b"\xde\xad\xbe\xef"
    info = device.client.hello()
    assert (info.board, info.model_state, info.input.shape, info.output.bytes) == ("host_fake", "OK", (1, 32, 32, 3), 10)


def test_upload_invoke_profile(device):
    data = bytes(random.Random(1).randrange(256) for _ in range(3072))
    inference = device.client.invoke(data)
    assert inference.output == bytes((sum(data) + k) % 256 for k in range(10)) and inference.ticks == 5010
    profile = device.client.profile()
    assert profile.dropped == 0
    assert [r.tag for r in profile.records] == ["CONV_2D", "MAX_POOL_2D", "CONCATENATION", "MEAN", "SOFTMAX"]
    assert [r.ticks for r in profile.records] == [1000, 1001, 1002, 1003, 1004]
    assert device.client.stats.retries == 0 and device.client.stats.damaged_frames == 0


def test_input_is_consumed_by_invoke(device):
    device.client.invoke(bytes(3072))
    reply = device.client.request(Command.INVOKE, profile=1)
    assert reply.status == Status.INPUT_INCOMPLETE


def test_upload_rules(device):
    client = device.client
    assert client.request(Command.PROFILE, first=0).status == Status.NOT_READY
    assert client.request(Command.LOAD_INPUT, offset=0, data=bytes(257)).status == Status.CHUNK_TOO_LARGE
    assert client.request(Command.LOAD_INPUT, offset=100, data=bytes(10)).status == Status.BAD_OFFSET
    assert client.request(Command.LOAD_INPUT, offset=0, data=bytes(100)).fields["received"] == 100
    assert client.request(Command.LOAD_INPUT, offset=99, data=bytes(10)).status == Status.BAD_OFFSET
    reply = client.request(Command.LOAD_INPUT, offset=100, data=b"\x01" * 100)
    assert reply.fields == {"received": 200, "total": 3072, "crc32": protocol.crc32(bytes(100) + b"\x01" * 100)}
    assert client.request(Command.INVOKE, profile=1).status == Status.INPUT_INCOMPLETE
    assert client.request(Command.LOAD_INPUT, offset=200, data=bytes(2873)[:256]).ok
    assert client.request(Command.LOAD_INPUT, offset=0, data=bytes(0)).fields["received"] == 0
    client.upload(bytes(3072))  # raises unless the device's CRC of the whole tensor is ours
    whole = client.request(Command.LOAD_INPUT, offset=3072, data=b"")
    assert whole.fields == {"received": 3072, "total": 3072, "crc32": protocol.crc32(bytes(3072))}
    tail = client.request(Command.LOAD_INPUT, offset=0, data=bytes(256))
    assert tail.ok
    assert client.request(Command.LOAD_INPUT, offset=256, data=bytes(10)).ok


def test_past_the_end_chunk_refused(device):
    client = device.client
    for offset in range(0, 3072 - 128, 256):
        assert client.request(Command.LOAD_INPUT, offset=offset, data=bytes(min(256, 3072 - 128 - offset))).ok
    assert client.request(Command.LOAD_INPUT, offset=3072 - 128, data=bytes(129)).status == Status.CHUNK_TOO_LARGE
    assert client.request(Command.LOAD_INPUT, offset=3072 - 128, data=bytes(128)).fields["received"] == 3072


def _frame_body(command, seq, payload):
    return protocol.cobs_decode(protocol.encode_frame(protocol.Frame(command, 0, seq, payload))[:-1])


def test_malformed_and_truncated_frames_get_error_replies(device):
    client = device.client
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
        reply = client.send_raw(raw + b"\x00")
        assert isinstance(reply, Message), (raw[:20], reply)
        assert (reply.status, reply.seq) == (status, seq), raw[:20]
    assert client.request(Command.HELLO).ok


def test_random_garbage_never_breaks_the_device(device):
    rng = random.Random(5)
    client = device.client
    for _ in range(300):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 400)))
        raw = body.replace(b"\x00", b"")
        if not raw:
            continue
        reply = client.send_raw(raw + b"\x00")
        assert isinstance(reply, Message) and reply.status != Status.OK, (raw[:20], reply)
    assert client.request(Command.HELLO).ok


def test_model_refused_is_reported(fake_device_binary):
    dev = FakeDevice(fake_device_binary, "--no-model")
    hello = dev.client.request(Command.HELLO)
    assert hello.fields["model_state"] == protocol.ModelState.SHA256_MISMATCH
    reply = dev.client.request(Command.LOAD_INPUT, offset=0, data=b"x")
    assert reply.status == Status.MODEL_INVALID and b"SHA-256" in reply.fields["message"]
    with pytest.raises(DeviceStatusError, match="MODEL_INVALID") as refused:
        dev.client.upload(bytes(3072))
    assert refused.value.status == Status.MODEL_INVALID and "SHA-256" in refused.value.device_message
    assert dev.close() == 0


def test_invoke_failure_is_reported(fake_device_binary):
    dev = FakeDevice(fake_device_binary, "--invoke-fails")
    dev.client.upload(bytes(3072))
    with pytest.raises(DeviceStatusError, match="INVOKE_FAILED") as failed:
        dev.client.invoke(bytes(3072))
    assert (failed.value.status, failed.value.detail) == (Status.INVOKE_FAILED, 1)
    assert dev.close() == 0


def test_the_clients_retries_and_chunk_sizing_get_through_a_noisy_line_to_the_c_core(fake_device_binary):
    """bench.link.device.Device's recovery (retries, halved chunks, re-uploads) against the real C core: bytes damaged both
    ways on the pipes (bench.link.faults' damage, as faulty:// does on a socket), every output still the right one, and the
    core survives it (no sanitizer report)."""
    from types import SimpleNamespace

    import bench.link.faults as faults

    noise = SimpleNamespace(faults=faults.FaultCounters(corrupt=0.005, direction="both"), _random=random.Random(11))

    class NoisyPipePort(PipePort):
        def read(self, size: int = 1) -> bytes:
            return faults.Serial._damage(noise, super().read(size), "read")

        def write(self, data: bytes) -> int:
            super().write(faults.Serial._damage(noise, bytes(data), "write"))
            return len(data)

    dev = HostProcess(fake_device_binary)
    dev.port = NoisyPipePort(dev.process, "fake_device (noisy)")
    client = Device(dev.port, base_timeout_s=0.2)
    client.invoke_timeout_s = 1.0  # the fake answers in microseconds: a lost INVOKE is retried soon
    client.hello(timeout_s=30)
    rng = random.Random(2)
    for _ in range(10):
        data = rng.randbytes(3072)
        assert client.invoke(data).output == bytes((sum(data) + k) % 256 for k in range(10))
    assert noise.faults.corrupted > 0 and client.stats.retries > 0, (noise.faults, client.stats.to_dict())
    assert any("chunk now" in line for line in client.stats.log), client.stats.log[-10:]
    assert dev.close() == 0, "the host build crashed or a sanitizer fired"
