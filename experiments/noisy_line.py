"""Time per image, retries and wrong results against byte corruption rate, through bench.link.faults in front of a device.

One connection (bench.link.ports.open_port, which registers faulty://) to one device (QEMU running the firmware, or
bench.virtual.device); for each rate the faulty:// port's corruption is set, a fresh `bench.link.device.Device`
handshakes and runs the same seeded random inputs. A clean pass first records each input's output: an output that
differs later is a wrong result accepted (the goal is 0).

    python -m experiments.noisy_line --elf mcu/.pio/build/qemu_stm32f405/firmware.elf --rates 0,0.001,0.003,0.01,0.03
    python -m experiments.noisy_line --port socket://127.0.0.1:5555 --images 5   # a device already running

Emulator figures are wall time on this host (the link's cost), not board time; the device's own time is not measured here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from bench.firmware.launch import LaunchError, qemu_command
from bench.link.device import HANDSHAKE_TIMEOUT_S, Device
from bench.link.errors import BenchError
from bench.link.ports import open_port
from model import exit_codes

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class RatePoint:
    """One rate's figures, a row of --json: four counters copied by name from bench.link.channel.LinkStats (field lists
    alike by shape, no logic shared), the rest measured here."""

    corrupt: float
    images: int = 0
    wrong: int = 0
    seconds: float = 0.0
    per_image_s: float | None = None
    retries: int = 0
    requests: int = 0
    damaged_frames: int = 0
    upload_restarts: int = 0
    bytes_damaged: int = 0
    bytes_through: int = 0
    error: str = ""
    final_chunk: int = 0
    log_tail: list[str] = field(default_factory=list)


def faulty_url(url: str, corrupt: float, seed: int) -> str:
    parts = urlsplit(url)
    if parts.scheme != "socket":
        raise ValueError(
            f"{url}: experiments.noisy_line fronts a socket://host:port device (QEMU, bench.virtual.device), not {parts.scheme}://"
        )
    return f"faulty://{parts.hostname}:{parts.port}?corrupt={corrupt}&seed={seed}&direction=both"


def run_rate(port, url: str, corrupt: float, inputs: list[bytes], reference: list[bytes] | None, budget_s: float, handshake_s: float):
    """Handshake and run `inputs` with `corrupt` set on the port; stop at the first error or after `budget_s`."""
    port.faults.corrupt = corrupt
    before = (port.faults.corrupted, port.faults.bytes)
    point, outputs = RatePoint(corrupt), []
    device = Device(port, url=url)
    started = time.monotonic()
    try:
        device.hello(handshake_s)
        for i, data in enumerate(inputs):
            if time.monotonic() - started > budget_s:
                point.error = f"stopped: {budget_s:.0f} s budget spent"
                break
            output = device.invoke(data, profile=False).output
            outputs.append(output)
            point.images += 1
            point.wrong += int(reference is not None and output != reference[i])
    except BenchError as error:
        point.error = f"{type(error).__name__}: {error}"
    point.seconds = time.monotonic() - started
    point.per_image_s = point.seconds / point.images if point.images else None
    s = device.stats
    point.retries, point.requests, point.damaged_frames, point.upload_restarts = s.retries, s.requests, s.damaged_frames, s.upload_restarts
    point.bytes_damaged, point.bytes_through = port.faults.corrupted - before[0], port.faults.bytes - before[1]
    point.final_chunk, point.log_tail = device.chunk, s.log[-5:]
    port.faults.corrupt = 0.0
    return point, outputs


def measure(
    url: str, rates: list[float], images: int, seed: int, budget_s: float, log=print, handshake_s: float = HANDSHAKE_TIMEOUT_S
) -> list[RatePoint]:
    port = open_port(faulty_url(url, 0.0, seed))
    try:
        probe = Device(port, url=url)
        size = probe.hello().input.bytes
        rng = np.random.default_rng(seed)
        inputs = [rng.integers(-128, 128, size, dtype=np.int8).tobytes() for _ in range(images)]
        clean, reference = run_rate(port, url, 0.0, inputs, None, float("inf"), handshake_s)
        if clean.error:
            raise BenchError(f"the clean reference pass failed: {clean.error}")
        points = []
        for corrupt in rates:
            point = clean if corrupt == 0 else run_rate(port, url, corrupt, inputs, reference, budget_s, handshake_s)[0]
            log(
                f"corrupt {corrupt:.2%}: {point.images}/{images} images, "
                + (f"{point.per_image_s:.2f} s/image, " if point.per_image_s else "")
                + f"{point.retries} retries, {point.wrong} wrong{', ' + point.error if point.error else ''}"
            )
            points.append(point)
        return points
    finally:
        port.close()


def table(points: list[RatePoint]) -> str:
    clean = next((p.per_image_s for p in points if p.corrupt == 0 and p.per_image_s), None)
    rows = [
        "| byte corruption | images | s/image (wall) | x clean | retries | damaged frames | wrong results | ended |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in points:
        ratio = f"{p.per_image_s / clean:.1f}" if clean and p.per_image_s else "-"
        per = f"{p.per_image_s:.2f}" if p.per_image_s else "-"
        rows.append(
            f"| {p.corrupt:.1%} | {p.images} | {per} | {ratio} | {p.retries} | {p.damaged_frames} | {p.wrong} "
            f"| {p.error[:200] or 'completed'} |"
        )
    return "\n".join(rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments.noisy_line", description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--elf", type=Path, help="firmware to run on QEMU netduinoplus2 (mcu/tools/qemu_launch.py)")
    where.add_argument("--port", help="socket://host:port of a device already serving (bench.virtual.device, QEMU)")
    parser.add_argument("--rates", default="0,0.001,0.003,0.01,0.03", help="byte corruption probabilities, comma-separated")
    parser.add_argument("--images", type=int, default=20, help="random inputs per rate (same ones at every rate)")
    parser.add_argument("--seed", type=int, default=1, help="seeds the inputs and the corruption")
    parser.add_argument("--budget-s", type=float, default=600.0, help="stop a rate after this many seconds")
    parser.add_argument("--json", type=Path, help="write the figures here")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rates = [float(r) for r in args.rates.split(",")]
    except ValueError:
        print(f"error: --rates {args.rates!r}: give probabilities such as 0,0.001,0.01", file=sys.stderr)
        return 2
    if any(not 0 <= r < 1 for r in rates) or args.images < 1:
        print("error: each rate must be in [0, 1) and --images at least 1", file=sys.stderr)
        return 2
    try:
        if args.port:
            points = measure(args.port, rates, args.images, args.seed, args.budget_s)
        else:
            from bench.firmware.launch import announced, serial_url

            with announced(qemu_command(args.elf), serial_url, what="serial URL") as url:
                points = measure(url, rates, args.images, args.seed, args.budget_s)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return exit_codes.BAD_INPUT
    except (BenchError, LaunchError, OSError) as error:  # the device, its port, or QEMU that did not start
        print(f"error: {error}", file=sys.stderr)
        return exit_codes.DEVICE
    print(table(points))
    if args.json:
        args.json.write_text(json.dumps([asdict(p) for p in points], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
