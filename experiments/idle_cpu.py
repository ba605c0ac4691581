"""What an emulated board costs the host while it waits for input, and the ticks of its `Invoke()` meanwhile.

`tree_cpu_seconds(pid)` is the user + system CPU time of a process and all its descendants (Linux /proc), so
`cpu_share(pid, seconds)` measures a QEMU started through `pio run -t upload` or mcu/tools/qemu_launch.py as
a share of one host core: about 1.0 for firmware that polls its UART, close to 0 for firmware that sleeps
(WFI) until the UART's receive interrupt. It measures CPU time, not wall time, so a loaded host can only make
a busy board look less busy, never an idle one look busy.

    python -m experiments.idle_cpu --elf mcu/.pio/build/qemu_stm32f405/firmware.elf --seconds 10 --invokes 3

starts QEMU (netduinoplus2 unless --machine), handshakes, measures the idle share over --seconds, then runs
--invokes inferences on seeded pseudo-random int8 inputs with the per-op profiler and as many without it, and
prints one JSON object: the share, the ticks and their guest instructions (bench.on_device.latency), the profiler's
own cost. A firmware of protocol 1 (before INVOKE had its profile flag) is sent the empty INVOKE it
expects, so a build from before can be compared with one from after.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

from bench.firmware.launch import qemu_command
from model import exit_codes

ROOT = Path(__file__).resolve().parents[1]


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and its descendants alive now (0 for one that has gone)."""
    total, todo, hz = 0.0, [pid], os.sysconf("SC_CLK_TCK")
    while todo:
        p = todo.pop()
        try:
            # The command name (field 2) may hold spaces: the fields that follow start after its ')'.
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / hz  # utime, stime: fields 14 and 15 of proc(5)
        todo += _children(p)
    return total


def cpu_share(pid: int, seconds: float) -> float:
    """CPU time of the process tree over `seconds` of wall time, as a share of one core."""
    before, started = tree_cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (tree_cpu_seconds(pid) - before) / (time.monotonic() - started)


def _invoke_ticks(device, data: bytes, version: int, profile: bool) -> int:
    if version >= 2:
        return device.invoke(data, profile=profile).ticks
    from bench.link.frame import Frame, encode_frame
    from bench.link.protocol import Command

    device.upload(data)  # protocol 1: INVOKE had no payload and always profiled
    reply = device.send_raw(encode_frame(Frame(int(Command.INVOKE), 0, 1, b"")), timeout_s=600)
    if not getattr(reply, "ok", False):
        raise RuntimeError(f"protocol-1 INVOKE failed: {reply}")
    return int(reply.fields["ticks"])


def measure(url: str, pid: int, seconds: float, invokes: int, seed: int = 0) -> dict:
    from bench.link.device import Device
    from bench.link.ports import open_port
    from bench.on_device.latency import timing

    device = Device(open_port(url), url=url)
    try:
        device.wait_event("BOOT", timeout_s=120)
        info = device.hello()
        hello = info.to_dict()
        result: dict = {"board": info.board, "protocol_version": info.protocol_version, "idle_seconds": seconds}
        result["idle_cpu_share"] = cpu_share(pid, seconds)
        if invokes:
            device.invoke_timeout_s = 600.0
            rng = random.Random(seed)
            inputs = [bytes(rng.randrange(256) for _ in range(info.input.bytes)) for _ in range(invokes)]
            t = timing(hello)
            profiled = [_invoke_ticks(device, data, info.protocol_version, True) for data in inputs]
            result["profiled_ticks"] = profiled
            result["profiled_" + t.unit] = [round(t.convert(x)) for x in profiled]
            if info.protocol_version >= 2:
                bare = [_invoke_ticks(device, data, 2, False) for data in inputs]
                result["unprofiled_ticks"] = bare
                result["unprofiled_" + t.unit] = [round(t.convert(x)) for x in bare]
                cost = [p - b for p, b in zip(profiled, bare, strict=True)]
                result["profiler_cost_" + t.unit] = [round(t.convert(c)) for c in cost]
                result["profiler_cost_share"] = [c / b for c, b in zip(cost, bare, strict=True)]
        return result
    finally:
        device.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Host CPU of an idle emulated board (QEMU), and its Invoke() ticks with and without the profiler."
    )
    parser.add_argument("--elf", required=True, type=Path, help="firmware ELF, e.g. mcu/.pio/build/qemu_stm32f405/firmware.elf")
    parser.add_argument("--machine", default="netduinoplus2", help="QEMU machine (default: %(default)s; or mps2-an500)")
    parser.add_argument("--seconds", type=float, default=10.0, help="idle time measured, after the handshake (default: %(default)s)")
    parser.add_argument("--invokes", type=int, default=0, help="inferences with, then as many without, the profiler (default: none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pseudo-random int8 inputs (default: %(default)s)")
    args = parser.parse_args(argv)
    if not args.elf.is_file():
        parser.error(f"{args.elf}: no such ELF; build it first: pio run -d mcu -e qemu_stm32f405")
    from bench.firmware.launch import LaunchError, launched, serial_url

    command = qemu_command(args.elf, args.machine)
    try:
        with launched(command, serial_url, what="serial URL") as (process, url):
            result = measure(url, process.pid, args.seconds, args.invokes, args.seed)
    except LaunchError as error:
        print(f"error: {error}", file=sys.stderr)
        return exit_codes.DEVICE
    print(json.dumps(result | {"elf": str(args.elf), "machine": args.machine}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
