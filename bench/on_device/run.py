"""python -m bench.on_device: the on-device benchmark over serial: latency, memory, accuracy and parity.

For each `--port` (repeatable; boards run in parallel into one report): open it (any pyserial URL), HELLO,
refuse a device whose protocol, model SHA-256, shapes or quantization differ from the artifact, run
`--warmup` inferences, then upload / invoke / read back every selected image (input CRC echoed and
checked), read the per-op profile of the last inference, and compare the int8 outputs with the TFLM host
interpreter (bit-identical rate, max |difference| in LSB, flips) and with the Keras float model; both
references are also scored on the same images, so the device's top-1 sits beside theirs (with a Wilson
interval). Latency is reported in the unit the device's timer honestly measures (bench.on_device.latency): emulator
instructions, board cycles, or host time for the virtual device; per-layer rows join the profile with each
operator's name and MACs from the .tflite (bench.on_device.layers).

A device that resets mid-run is handshaken again and the run resumes at the sample in flight (completed
samples are kept, none repeated); a crash (FAULT event, HardFault or Guru Meditation text) ends that
board's run as a crash.

Writes OUT/serial.json, OUT/serial.md and OUT/serial.png. Exit status (README.md, "Exit codes"): 0 done and
bit-identical to the host, 1 done but outputs differ, 2 bad input (artifact, dataset, usage), 3 a board's
port unavailable, device silent, refused (other model or protocol), crashed or a protocol failure: stderr
and report.json give each board's status.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

from bench.link.device import DEFAULT_INVOKE_TIMEOUT_S, Device, verify
from bench.link.errors import (
    DeviceCrashed,
    DeviceStatusError,
    DeviceTimeout,
    DeviceWasReset,
    IncompatibleDevice,
    PortUnavailable,
    ProtocolFailure,
)
from bench.link.line import DEFAULT_BAUD, line_rate
from bench.link.ports import open_port
from bench.on_device.latency import latency_stats  # noqa: F401 - the statistics of a run, in the device timer's honest unit
from model import exit_codes, quiet_tensorflow

# The project's exit-code table (model.exit_codes). Every board problem (port unavailable, timeout, refused,
# crashed, protocol) is DEVICE; which one it was is printed on stderr per board and is the board's "status"
# in report.json.
EXIT_OK, EXIT_DIFFERS, EXIT_BAD_INPUT, EXIT_DEVICE = exit_codes.OK, exit_codes.CHECK_FAILED, exit_codes.BAD_INPUT, exit_codes.DEVICE
MAX_RESETS_PER_RUN = 5  # a board that keeps rebooting is broken, not unlucky


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.on_device", description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--port",
        action="append",
        default=[],
        help="pyserial URL: /dev/ttyUSB0, COM3, socket://h:p, rfc2217://h:p, or a labgrid place labgrid://<coordinator>/<place>; repeat",
    )
    parser.add_argument(
        "--place", action="append", default=[], help="a labgrid place on --coordinator (same as --port labgrid://...); repeat"
    )
    parser.add_argument(
        "--coordinator",
        default=os.environ.get("LG_COORDINATOR", "127.0.0.1:20408"),
        help="labgrid coordinator HOST:PORT for --place ($LG_COORDINATOR when set, as for labgrid-client)",
    )
    parser.add_argument("--artifacts", type=Path, required=True, help="the converter's artifact folder, e.g. build/squeezenet_cifar10")
    parser.add_argument("--data", required=True, help="image folder (test images alone will do), 'cifar10' or 'synthetic'")
    parser.add_argument("--limit", type=int, default=200, help="images (evenly spread over the test split)")
    parser.add_argument("--warmup", type=int, default=3, help="inferences run and discarded first")
    parser.add_argument("--elf", type=Path, help="firmware ELF (its .map beside it) for the flash and RAM split")
    parser.add_argument("--baud", type=int, default=DEFAULT_BAUD, help="UART baud rate (ignored by socket://)")
    parser.add_argument("--invoke-timeout", type=float, default=DEFAULT_INVOKE_TIMEOUT_S, help="seconds for the first inference")
    parser.add_argument("--no-keras", action="store_true", help="skip the Keras float reference")
    parser.add_argument("--no-progress", action="store_true", help="no progress (a bar on a terminal, else a line every 30 s)")
    parser.add_argument("--out", type=Path, help="report folder (default reports/<artifact>-<board>)")
    return parser


def run_board(url: str, artifact, inputs: np.ndarray, warmup: int, *, baud: int, invoke_timeout_s: float, progress, log) -> dict:
    """One board's run; never raises a BenchError: the result's `status` and `error` say what happened."""
    from bench.link.transport import describe

    result: dict = {"port": url, "transport": describe(url), "status": "ok", "error": None, "resets": 0, "outputs": None}
    outputs: dict[int, bytes] = {}
    ticks: dict[int, int] = {}
    upload_s, upload_bytes = 0.0, 0
    device = lease = None
    port_url = url
    started = time.monotonic()
    try:
        if url.startswith("labgrid://"):  # acquire the place; its exporter's serial port is what we open
            from bench.farm.place import PlaceLease

            lease = PlaceLease(url)
            port_url = lease.acquire()
            result["transport"] = lease.describe()
        device = Device(open_port(port_url, baud), url=port_url, baud=baud, log=log)
        device.invoke_timeout_s = invoke_timeout_s
        info = device.hello()
        verify(info, artifact)
        result["device"] = info.to_dict()
        if lease is not None and lease.agrees(info.board) is False:
            log(f"{url}: the place declares board {lease.info['identity'].get('board')!r}, the device says {info.board!r}")
        for i in range(warmup):
            device.invoke(inputs[i % len(inputs)].tobytes())
        i = 0
        while i < len(inputs):
            try:
                inference = device.invoke(inputs[i].tobytes())
            except DeviceWasReset as reset:
                result["resets"] += 1
                log(f"{url}: {reset}; handshaking again and repeating sample {i}")
                if result["resets"] > MAX_RESETS_PER_RUN:
                    raise ProtocolFailure(f"{url}: the device reset {result['resets']} times; check its power and firmware") from reset
                verify(device.hello(), artifact)
                continue
            outputs[i], ticks[i] = inference.output, inference.ticks
            upload_s += inference.upload_s
            upload_bytes += inference.upload_bytes
            i += 1
            if progress:
                progress(1)
        profile = device.profile()
        result["profile"] = [{"tag": r.tag, "ticks": r.ticks} for r in profile.records]
        result["profile_dropped"] = profile.dropped
        if profile.records:  # the profiler's own cost: the last input, measured with it in the loop, again without it
            last = len(inputs) - 1
            result["profiler_ticks"] = [ticks[last], device.invoke(inputs[last].tobytes(), profile=False).ticks]
    except PortUnavailable as error:
        explained = lease.explain(str(error), mid_run=device is not None) if lease and lease.info else str(error)
        result.update(status="port unavailable", error=explained)
    except IncompatibleDevice as error:
        result.update(status="refused", error=str(error))
    except DeviceCrashed as error:
        result.update(status="crashed", error=str(error))
    except DeviceTimeout as error:
        result.update(status="timeout", error=str(error))
    except (ProtocolFailure, DeviceStatusError, DeviceWasReset) as error:
        result.update(status="protocol failure", error=str(error))
    finally:
        if device is not None:
            result["link"] = device.stats.to_dict()
            device.close()
        if lease is not None:  # released whatever happened, so the place is free for the next user
            released = lease.release()
            agrees = lease.agrees(result["device"]["board"]) if "device" in result else None
            result["transport"] = lease.describe() | {"released": released, "identity_agrees": agrees}
    result["seconds"] = round(time.monotonic() - started, 2)
    result["completed"] = len(outputs)
    if outputs:
        result["outputs"] = np.stack([np.frombuffer(outputs[k], np.int8) for k in sorted(outputs)])
        result["ticks"] = [ticks[k] for k in sorted(ticks)]
        rate = line_rate(port_url, baud)
        result["upload"] = {
            "bytes_per_s": upload_bytes / upload_s if upload_s else None,
            "line_bytes_per_s": rate,
            "line_use": (upload_bytes / upload_s / rate) if rate and upload_s else None,
        }
    return result


def _memory(elf: Path | None) -> dict | None:
    if elf is None:
        return None
    from bench.firmware.mcu_tools import load_tool

    size_report = load_tool("size_report")
    map_file = elf.with_suffix(".map")
    if not map_file.is_file():
        map_file = elf.parent / "firmware.map"
    return size_report.report(elf, map_file) | {"elf": str(elf), "map": str(map_file)}


def run_benchmark(
    ports: list[str],
    artifacts: Path,
    data: str,
    limit: int | None = 200,
    warmup: int = 3,
    elf: Path | None = None,
    out: Path | None = None,
    *,
    baud: int = DEFAULT_BAUD,
    invoke_timeout_s: float = DEFAULT_INVOKE_TIMEOUT_S,
    keras: bool = True,
    progress: bool = True,
    log=None,
) -> dict:
    """The whole benchmark; returns the summary (also written to out/serial.json, .md, .png). Raises
    ArtifactError / DatasetError for unusable input; device problems are in each board's `status`."""
    from bench.parity import metrics
    from bench.parity.engines import KerasEngine, TflmEngine
    from convert.artifact_reader import check_dataset, open_artifact
    from model.data import load_dataset, spread_indices
    from model.provenance import git_sha, now_utc, software_versions

    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    artifact = open_artifact(artifacts)
    dataset = load_dataset(data, progress=False)
    check_dataset(artifact, dataset)
    indices = spread_indices(len(dataset.test), limit)
    images = dataset.test.subset(indices)
    inputs = artifact.input_q.quantize(images.images)

    from model.progress import progress as reporter

    bar = reporter(len(inputs) * len(ports), "serial benchmark", "images", enabled=None if progress else False)
    lock = threading.Lock()

    def advance(n: int) -> None:
        with lock:
            bar.update(n)

    results: list[dict] = [{}] * len(ports)

    def worker(k: int, url: str) -> None:
        results[k] = run_board(url, artifact, inputs, warmup, baud=baud, invoke_timeout_s=invoke_timeout_s, progress=advance, log=log)

    threads = [threading.Thread(target=worker, args=(k, url), daemon=True) for k, url in enumerate(ports)]
    for t in threads:
        t.start()
    host = TflmEngine(artifact.model_bytes, artifact.input_q)
    host.load()
    host_outputs = host.run(images.images)
    keras_outputs = None
    if keras:
        try:
            engine = KerasEngine(artifact.keras_path, artifact.keras_problem, artifact.input_shape, len(artifact.labels))
            engine.load()
            keras_outputs = engine.run(images.images)
        except Exception as error:  # noqa: BLE001 - the float reference is optional; the report says why it is absent
            log(f"Keras float reference unavailable: {error}")
    for t in threads:
        t.join()
    bar.close()

    from bench.on_device.latency import timing
    from bench.on_device.layers import ProfileMismatch, join_profile, model_layers, profiler_cost

    macs = artifact.meta.get("macs")
    layers = model_layers(artifact.model_bytes)
    boards = []
    for r in results:
        board = {k: v for k, v in r.items() if k != "outputs"}
        info = r.get("device") or {}
        if r.get("outputs") is not None:
            n = len(r["outputs"])
            got = r["outputs"]
            outputs = {"device": got, "tflm_host": host_outputs[:n]}
            int8 = {"device": True, "tflm_host": True}
            if keras_outputs is not None:
                outputs["keras"], int8["keras"] = keras_outputs[:n], False
            compared = metrics.compare(outputs, int8, images.labels[:n], len(artifact.labels), artifact.output_q)
            # Every engine on the images the device ran: the device's top-1 is comparable only with these.
            board["accuracy"] = {
                key: {"top1": e["top1"], "correct": e["correct"], "images": n, "ci95": metrics.wilson_interval(e["correct"], n)}
                for key, e in compared["engines"].items()
            }
            board["parity"] = compared["pairs"]
            board["host_lsb"] = metrics.lsb_differences(got, host_outputs[:n])
            # A fingerprint of the device's outputs: two firmwares (a model and its compressed copy) gave the same
            # bytes on the same images exactly when these agree.
            board["outputs_sha256"] = hashlib.sha256(np.ascontiguousarray(got).tobytes()).hexdigest()
            board["flips"] = metrics.flips(
                outputs, images.labels[:n], artifact.labels, indices[:n], images.files[:n] if images.files else []
            )
            board["latency"] = latency_stats(r["ticks"], info, macs)
        if r.get("profile"):
            try:
                board["layers"] = join_profile(layers, r["profile"], timing(info), r.get("profile_dropped", 0))
            except ProfileMismatch as error:
                board["layers_error"] = str(error)
        if r.get("profiler_ticks"):
            board["profiler_cost"] = profiler_cost(*r["profiler_ticks"], timing(info))
        boards.append(board)
    memory = _memory(elf)
    summary = {
        "format": "squeezenet-mcu/serial/1",
        "created": now_utc(),
        "git_sha": git_sha(),
        "software": software_versions("pyserial"),
        "artifact": artifact.describe(),
        "macs": macs,
        "dataset": {
            "name": dataset.name,
            "source": dataset.source,
            "fingerprint": dataset.fingerprint,
            "layout": dataset.layout,
            "split": "test",
            "split_images": len(dataset.test),
            "images": len(images),
        },
        "warmup": warmup,
        "memory": memory,
        "boards": boards,
        "keras_reference": keras_outputs is not None,
    }
    if out is None:
        name = (boards[0].get("device") or {}).get("board", "board").split()[0] if boards else "board"
        out = Path("reports") / f"{artifact.name}-{name}"
    from bench.on_device.report import write

    summary["paths"] = write(Path(out), summary)
    return summary


def exit_status(summary: dict) -> int:
    if any(b["status"] != "ok" for b in summary["boards"]):
        return EXIT_DEVICE
    identical = all(b.get("host_lsb", {}).get("bit_identical_rate") == 1.0 for b in summary["boards"])
    return EXIT_OK if identical else EXIT_DIFFERS


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1 or args.warmup < 0:
        parser.error("--limit takes a positive number, --warmup one >= 0")
    from bench.farm.place import parse, place_url

    try:
        ports = args.port + [place_url(args.coordinator, p) for p in args.place]
        for url in ports:
            if url.startswith("labgrid://"):
                parse(url)
    except ValueError as error:
        parser.error(str(error))
    if not ports:
        parser.error("give at least one --port or --place")
    quiet_tensorflow()
    from convert.artifact_reader import ArtifactError
    from model.data import DatasetError

    try:
        summary = run_benchmark(
            ports,
            args.artifacts,
            args.data,
            args.limit,
            args.warmup,
            args.elf,
            args.out,
            baud=args.baud,
            invoke_timeout_s=args.invoke_timeout,
            keras=not args.no_keras,
            progress=not args.no_progress,
        )
    except (ArtifactError, DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("\ninterrupted: no report written", file=sys.stderr)
        return exit_codes.INTERRUPTED
    for board in summary["boards"]:
        if board["status"] != "ok":
            print(f"{board['port']}: {board['status']}: {board['error']}", file=sys.stderr)
        else:
            from bench.on_device.report_format import latency_text

            lsb = board["host_lsb"]
            print(
                f"{board['port']}: {board['completed']:,} images, top-1 {100 * board['accuracy']['device']['top1']:.2f}% "
                f"(TFLM host on the same images {100 * board['accuracy']['tflm_host']['top1']:.2f}%), "
                f"bit-identical to TFLM host {lsb['bit_identical']:,}/{board['completed']:,}, Invoke() {latency_text(board['latency'])}"
            )
    print(f"report: {summary['paths']['markdown']}")
    return exit_status(summary)


if __name__ == "__main__":
    sys.exit(main())
