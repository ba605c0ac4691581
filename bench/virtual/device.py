"""python -m bench.virtual.device: the firmware's serial protocol served by a host process, for CI and for
trying the tools without a board.

`--listen socket://127.0.0.1:<port>` (port 0: a free one) accepts one client at a time on TCP, exactly as
QEMU exposes the emulated board's UART, and prints `serial: socket://127.0.0.1:<port>` when ready
(bench.virtual.server). The device answers as the firmware does (bench.virtual.session, its HELLO from
bench.virtual.identity).

Engines (bench.virtual.engines):
- `tflm` (default): the artifact's `model.tflite` in the TFLM host interpreter, in one long-lived worker
  process (bench/virtual/worker.py) so an abort inside TFLM becomes a FAULT event, as a HardFault
  does on a board. Ticks are host nanoseconds of `invoke()` alone (tick_hz 1e9, clock_hz 0: no cycles).
- `checksum`: no model; the output is `checksum_output(input)`, a cheap deterministic function, so a
  client's correctness can be checked over thousands of requests in seconds (fault-injection tests).

`make_device(artifacts, engine, **hooks)` builds the device for tests too (hooks: bench.virtual.session).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.virtual.engines import ChecksumEngine, EngineFault, TflmWorkerEngine
from bench.virtual.identity import checksum_identity, identity_from_artifact, tensor_fields
from bench.virtual.server import Server, parse_listen
from bench.virtual.session import VirtualDevice


def make_device(artifacts: Path | None, engine: str = "tflm", **hooks) -> VirtualDevice:
    """A VirtualDevice for an artifact folder (engine "tflm"), or the checksum engine (no artifact needed,
    though its tensor shapes follow the artifact's when one is given)."""
    if engine == "checksum":
        identity = checksum_identity()
        if artifacts is not None:
            real = identity_from_artifact(artifacts)
            identity = checksum_identity(real.input_shape, real.output_shape[-1])
        device_engine = ChecksumEngine(tensor_fields(identity.input_shape, 1, 0)["bytes"], identity.output_shape[-1])
        return VirtualDevice(identity, device_engine, **hooks)
    if artifacts is None:
        raise ValueError("the tflm engine needs --artifacts")
    from convert.artifact_reader import open_artifact
    from convert.tflm_host import default_arena_size

    identity = identity_from_artifact(artifacts)
    artifact = open_artifact(artifacts)
    tflite = artifact.folder / artifact.meta["tflite_file"]
    return VirtualDevice(identity, TflmWorkerEngine(tflite, default_arena_size(len(artifact.model_bytes))), **hooks)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.virtual.device", description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="socket://127.0.0.1:0", help="socket://<host>:<port>; port 0 picks a free one")
    parser.add_argument("--artifacts", type=Path, help="the converter's artifact folder, e.g. build/squeezenet_cifar10")
    parser.add_argument("--engine", choices=("tflm", "checksum"), default="tflm", help="tflm: the model; checksum: no model (tests)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        host, port = parse_listen(args.listen)
        device = make_device(args.artifacts, args.engine)
        server = Server(device, host, port)
    except (ValueError, OSError, EngineFault) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"virtual device ({device.identity.board}, model {device.identity.model_name}) ready", flush=True)
    print(f"serial: {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
