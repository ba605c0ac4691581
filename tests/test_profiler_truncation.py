"""The per-op profiler tells the truth about itself: a profile with more ops than the profiler holds is reported as
truncated (firmware OpProfiler -> PROFILE's `dropped` -> bench.link.device / bench.on_device.layers -> serial.md), and
INVOKE's profile flag runs Invoke() without the profiler, so its own cost can be measured and reported."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import test_mcu_protocol_host
from test_serial_report import QEMU_HELLO, board, summary

from bench.link.protocol import Command, Status
from bench.on_device import latency, layers, report_markdown

ROOT = Path(__file__).resolve().parents[1]
FakeDevice = test_mcu_protocol_host.FakeDevice  # the C core on pipes, driven by bench.link.device.Device
fake_device_binary = test_mcu_protocol_host.fake_device_binary  # the fixture, found by its name here
GXX = shutil.which("g++")


@pytest.mark.tflm
@pytest.mark.skipif(GXX is None, reason="needs a host C++ compiler (g++)")
def test_firmware_profiler_counts_the_ops_it_has_no_room_for(tmp_path):
    from conftest import require_tflm_tree

    tree = require_tflm_tree()
    binary = tmp_path / "op_profiler"
    sources = [ROOT / "mcu/src/app/op_profiler.cc", ROOT / "mcu/test/host/op_profiler_main.cc"]
    flags = ["-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined", "-DSQZ_PROFILER_MAX_EVENTS=4"]
    subprocess.run([GXX, *flags, *map(str, sources), f"-I{ROOT / 'mcu/src/app'}", f"-I{tree}", "-o", str(binary)], check=True)
    lines = subprocess.run([str(binary), "6"], capture_output=True, text=True, check=True).stdout.splitlines()
    assert lines[0] == "count 4 dropped 2"
    assert lines[1:] == ["10 CONV_2D", "10 MAX_POOL_2D", "10 CONCATENATION", "10 CONV_2D"]
    full = subprocess.run([str(binary), "4"], capture_output=True, text=True, check=True).stdout.splitlines()
    assert full[0] == "count 4 dropped 0"


@pytest.fixture
def seven_op_device(fake_device_binary):
    """The C protocol core with a fake model of 7 ops whose profiler holds 5; `client` is a bench.link.device.Device."""
    dev = FakeDevice(fake_device_binary, "--ops", "7")
    yield dev
    assert dev.close() == 0, "the host build crashed or a sanitizer fired"


def test_truncated_profile_reaches_the_host_and_the_report(seven_op_device):
    client = seven_op_device.client
    client.hello()
    client.invoke(bytes(3072))
    profile = client.profile()
    assert len(profile.records) == 5 and profile.dropped == 2
    records = [{"tag": r.tag, "ticks": r.ticks} for r in profile.records]  # as bench.on_device.run keeps them
    ops = ["CONV_2D", "MAX_POOL_2D", "CONCATENATION", "MEAN", "SOFTMAX", "RESHAPE", "SOFTMAX"]  # the fake's 5 tags, then 2
    seven = [layers.Layer(i, op, f"layer{i}", (10,), "", 1000 * (op == "CONV_2D"), "") for i, op in enumerate(ops)]
    rows = layers.join_profile(seven, records, latency.timing(QEMU_HELLO), profile.dropped)
    assert [r["name"] for r in rows] == ["layer0", "layer1", "layer2", "layer3", "layer4"]
    b = board("cmsis_nn", 1.0) | {"layers": rows, "profile_dropped": profile.dropped}
    text = report_markdown.markdown(summary(b))
    assert "truncated: 2 ops not profiled" in text and "2 ops not profiled)" in text
    with pytest.raises(layers.ProfileMismatch, match="1 ops not profiled for 7 operators"):
        layers.join_profile(seven, records, latency.timing(QEMU_HELLO), 1)


def test_invoke_without_the_profiler_and_the_cost_in_the_report(seven_op_device):
    client = seven_op_device.client
    client.hello()
    data = bytes(range(256)) * 12
    profiled = client.invoke(data)
    bare = client.invoke(data, profile=False)
    assert bare.output == profiled.output and (profiled.ticks, bare.ticks) == (5010, 5000)
    assert client.request(Command.PROFILE, first=0).status == Status.NOT_READY  # the last INVOKE ran without it
    client.invoke(data)
    assert client.profile().dropped == 2
    assert client.request(Command.INVOKE, profile=2).status == Status.BAD_ARGUMENT
    cost = layers.profiler_cost(profiled.ticks, bare.ticks, latency.timing(QEMU_HELLO))
    assert cost["cost"] == pytest.approx(10 / 0.168) and cost["share"] == pytest.approx(0.002)
    text = report_markdown.markdown(summary(board("cmsis_nn", 1.0) | {"profiler_cost": cost}))
    assert "Profiler's own cost on qemu_stm32f405" in text and "29,821 instructions with the per-op profiler" in text
    assert "29,762 without it: 60 instructions (0.2000%)" in text
