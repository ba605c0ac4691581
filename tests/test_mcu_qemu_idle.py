"""The firmware on the emulated STM32F405 (QEMU netduinoplus2) as a host sees it between requests and around
Invoke(): idle, it costs the host next to no CPU (its main loop sleeps with WFI until the UART receive interrupt,
ports/cortex_m/uart_rx.c), and its per-op profiler's own cost is measured on the same input with and without it.

Same needs and fixtures as tests/test_mcu_qemu.py (its module: the model package, the build, the QEMU device)."""

from __future__ import annotations

import random

import test_mcu_qemu

from bench.link.protocol import Command, Message, Status, encode_request
from experiments.idle_cpu import cpu_share

# The same markers and fixtures (pytest finds fixtures by their names in this module)
pytestmark = test_mcu_qemu.pytestmark
artifact, firmware, device = test_mcu_qemu.artifact, test_mcu_qemu.firmware, test_mcu_qemu.device

IDLE_SECONDS = 5.0
# A firmware that polls its UART keeps one host core busy (1.0; about 0.5 measured on this loaded 2-core machine);
# one that sleeps uses well under 0.01. CPU time, not wall time, is measured: load can only lower the figure.
IDLE_SHARE_LIMIT = 0.2


def test_an_idle_board_costs_the_host_little_cpu(device):
    device.client.hello()
    share = cpu_share(device.process.pid, IDLE_SECONDS)  # pio -> qemu_launch.py -> qemu-system-arm, the whole tree
    assert share < IDLE_SHARE_LIMIT, f"QEMU used {share:.0%} of a core while the board waited for input"
    assert device.client.request(Command.HELLO).ok  # and a request wakes it


def test_the_profilers_own_cost_is_measured_and_changes_no_output(device, artifact):
    client = device.client
    data = random.Random(3).randbytes(client.hello().input.bytes)  # any int8 input will do
    profiled = client.invoke(data)
    profile = client.profile()
    assert profile.dropped == 0 and len(profile.records) == sum(artifact["op_histogram"].values())
    bare = client.invoke(data, profile=False)
    assert bare.output == profiled.output
    assert client.request(Command.PROFILE, first=0).status == Status.NOT_READY  # that INVOKE ran without it
    cost = profiled.ticks - bare.ticks
    # Two timer reads and two virtual calls per op: some tens of instructions each, a few ticks per op on QEMU
    # (0.168 ticks per instruction), nothing like the op itself.
    assert 0 < cost < 50 * len(profile.records), (profiled.ticks, bare.ticks)
    again = client.invoke(data)
    assert again.output == profiled.output and abs(again.ticks - profiled.ticks) <= 4  # repeats to a SysTick wrap's ticks


def test_requests_sent_during_an_invoke_all_get_their_replies(device):
    """Bytes that arrive while Invoke() runs wait in the receive ring (more than its 512 bytes: the interrupt is held
    off until the main loop makes room, and QEMU keeps the rest); every request then gets its reply, in order."""
    client = device.client
    data = random.Random(5).randbytes(client.hello().input.bytes)
    client.upload(data)
    frames = [encode_request(Command.INVOKE, 101, profile=0)]
    frames += [encode_request(Command.LOAD_INPUT, 102 + k, offset=256 * k, data=data[256 * k : 256 * (k + 1)]) for k in range(3)]
    frames.append(encode_request(Command.HELLO, 105))
    assert sum(map(len, frames[1:])) > 512
    replies = [client.send_raw(b"".join(frames), timeout_s=120)]
    replies += [client.next_frame(timeout_s=30) for _ in range(4)]
    assert all(isinstance(r, Message) and r.ok for r in replies), replies
    assert [(r.name, r.seq) for r in replies] == [("INVOKE", 101), *(("LOAD_INPUT", 102 + k) for k in range(3)), ("HELLO", 105)]
    assert replies[3].fields["received"] == 768
