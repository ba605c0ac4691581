"""The virtual device and the typed client: the protocol served from bench.link.protocol's definition, the
client's retries under injected faults (1 % byte corruption over 2,000+ requests: no wrong result), reset
and crash detection, and the clear failures of a silent port, a noisy one and a busy one."""

from __future__ import annotations

import functools
import os
import random
import time

import pytest
import serial

from bench.link.device import Device
from bench.link.errors import BenchError, DeviceCrashed, DeviceTimeout, DeviceWasReset, PortUnavailable
from bench.link.ports import open_port
from bench.link.protocol import Command, Status
from bench.virtual.device import make_device
from bench.virtual.engines import checksum_output
from bench.virtual.server import Server


@pytest.fixture
def checksum_server(virtual_servers):
    """start(**hooks): a virtual board whose "model" is a checksum of its input."""
    return functools.partial(virtual_servers, None, "checksum")


@pytest.fixture
def pty():
    """(master fd, slave path) of a fresh pseudo-terminal: a port with nothing behind it that the test writes to."""
    master, slave = os.openpty()
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def _client(url: str, **kwargs) -> Device:
    return Device(open_port(url), url=url, **kwargs)


def test_hello_says_virtual_and_outputs_match_the_engine(checksum_server):
    server = checksum_server()
    client = _client(server.url)
    info = client.hello()
    assert info.virtual and info.board.startswith("virtual") and info.input.shape == (1, 32, 32, 3) and info.output.bytes == 10
    for seed in range(20):
        data = random.Random(seed).randbytes(3072)
        result = client.invoke(data)
        assert result.output == checksum_output(data, 10)
    assert client.profile().records == [] and client.stats.retries == 0
    client.close()


def test_device_rules_follow_the_protocol(checksum_server):
    client = _client(checksum_server().url)
    client.hello()
    assert client.request(Command.LOAD_INPUT, offset=7, data=b"x").status == Status.BAD_OFFSET
    assert client.request(Command.INVOKE, profile=1).status == Status.INPUT_INCOMPLETE
    assert client.request(Command.LOAD_INPUT, offset=0, data=b"x" * 257).status == Status.CHUNK_TOO_LARGE  # as the C core
    assert "SQZ BOOT" in client.reset()
    client.close()


@pytest.mark.slow
def test_one_percent_corruption_over_2000_requests_accepts_no_wrong_result(checksum_server):
    server = checksum_server()
    url = server.url.replace("socket://", "faulty://") + "?corrupt=0.01&drop=0.001&seed=7"
    client = _client(url, base_timeout_s=0.2)
    client.invoke_timeout_s = 1.0  # the checksum engine answers in microseconds: a lost INVOKE is retried soon
    client.hello(timeout_s=120)
    start = client.stats.requests
    rng = random.Random(1)
    accepted = wrong = failed = 0
    while client.stats.requests - start < 2000:
        data = rng.randbytes(3072)
        try:
            output = client.invoke(data).output
        except BenchError as error:  # allowed, as long as it says what failed
            assert str(error)
            failed += 1
            continue
        accepted += 1
        wrong += output != checksum_output(data, 10)
    faults = client.port.faults
    assert faults.corrupted > 500 and faults.dropped > 20  # the link really was that bad
    assert wrong == 0 and accepted >= 1 and client.stats.retries > 100
    assert failed <= accepted  # most inferences get through despite the noise
    client.close()


def test_reset_mid_run_is_detected_and_no_sample_is_lost_or_repeated(checksum_server):
    server = checksum_server(reset_at={40, 95})
    client = _client(server.url)
    client.hello()
    done: dict[int, bytes] = {}
    resets = 0
    i = 0
    while i < 10:
        data = random.Random(i).randbytes(3072)
        try:
            done[i] = client.invoke(data).output
        except DeviceWasReset:
            resets += 1
            client.hello()
            continue
        i += 1
    assert resets == 2 and sorted(done) == list(range(10))
    assert all(done[k] == checksum_output(random.Random(k).randbytes(3072), 10) for k in done)
    client.close()


def test_crash_is_reported_as_a_crash_not_a_timeout(checksum_server):
    client = _client(checksum_server(crash_at={5}).url)
    client.hello()
    with pytest.raises(DeviceCrashed, match="HardFault"):
        for seed in range(5):
            client.invoke(random.Random(seed).randbytes(3072))
    client.close()


def test_crash_banner_in_raw_text_is_a_crash():
    port = serial.serial_for_url("loop://", timeout=0.1)
    client = Device(port, url="loop://")
    port.write(b"\r\nGuru Meditation Error: Core  0 panic'ed (LoadProhibited)\r\n")
    with pytest.raises(DeviceCrashed, match="Guru Meditation"):
        client._next(time.monotonic() + 1)


def test_silent_port_fails_in_time_and_says_what_to_check(pty):
    _, path = pty
    client = _client(path)
    started = time.monotonic()
    with pytest.raises(DeviceTimeout, match="not a single byte"):
        client.hello(timeout_s=1.5)
    assert time.monotonic() - started < 4
    client.close()


def test_noise_suggests_the_baud_rate(pty):
    master, path = pty
    client = _client(path)
    os.write(master, bytes(random.Random(0).randrange(1, 256) for _ in range(300)) + b"\x00" + b"\xf0" * 50 + b"\x00")
    with pytest.raises(DeviceTimeout, match="baud"):
        client.hello(timeout_s=1.5)
    client.close()


def test_busy_port_says_so(pty):
    _, path = pty
    first = open_port(path)
    with pytest.raises(PortUnavailable, match="busy") as raised:
        open_port(path)
    assert raised.value.busy
    first.close()


def test_nothing_listening_names_what_to_start():
    server_port = Server(make_device(None, "checksum"))
    url = server_port.url
    server_port.stop()
    with pytest.raises(PortUnavailable, match="virtual_device|emulator"):
        open_port(url)
