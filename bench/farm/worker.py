"""Hold one labgrid place for bench.farm.place; runs in labgrid's own environment (.venv/labgrid, see
requirements-labgrid.txt), never in the project's. Standard library and labgrid only.

    .venv/labgrid/bin/python bench/farm/worker.py --coordinator 127.0.0.1:20408 --place board0

Acquires the place through labgrid's client session (the code behind `labgrid-client acquire`), waits until the
exporter serves its NetworkSerialPort (an exporter starts ser2net only once the place is acquired), and prints one
JSON line on stdout: {"event": "acquired", "serial": {host, port, speed, protocol}, "identity": {...}, ...} or
{"event": "error", "kind": "coordinator" | "place" | "taken" | "exporter", "message": ...} (then exits 1).
Then it reads commands from stdin: `status` prints {"event": "status", ...} (is the serial port still exported?),
`release` (or stdin closing: the benchmark ended or died) releases the place, prints {"event": "released"} and exits.
labgrid's own messages go to stderr, so stdout carries only these lines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time

SERIAL_CLASS = "NetworkSerialPort"  # what an exporter publishes for a RawSerialPort or USBSerialPort (its ser2net)
IDENTITY_CLASS = "BoardIdentity"  # a plain resource in the same exporter group: the board's declared identity
# model.exit_codes.DEVICE: this worker runs in labgrid's own environment (.venv/labgrid, python -P), where the
# project's packages are not importable; the error itself is the JSON line it emits.
EXIT_DEVICE = 3
SERVED_TIMEOUT_S = 15.0  # the exporter polls every 0.25 s and waits 0.5 s for ser2net to start


def emit(event: str, **fields) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def _resources(session, place) -> list[dict]:
    """The place's acquired resources as the coordinator describes them now (gone: cls None)."""
    out = []
    for exporter, group, cls, name in place.acquired_resources:
        entry = session.resources.get(exporter, {}).get(group, {}).get(name)
        data = entry.data if entry is not None else {}
        out.append(
            {
                "path": f"{exporter}/{group}/{cls}/{name}",
                "exporter": exporter,
                "group": group,
                "cls": data.get("cls"),
                "avail": bool(data.get("avail")),
                "params": data.get("params", {}),
            }
        )
    return out


def _identity(session, serial: dict) -> dict:
    group = session.resources.get(serial["exporter"], {}).get(serial["group"], {})
    for entry in group.values():
        if entry.data.get("cls") == IDENTITY_CLASS:
            return {k: v for k, v in entry.data.get("params", {}).items() if k != "extra"}
    return {}


def _served(session, place) -> dict | None:
    for r in _resources(session, place):
        if r["cls"] == SERIAL_CLASS and r["avail"] and r["params"].get("port"):
            return r
    return None


async def hold(session, name: str) -> int:
    from labgrid.remote.client import Error, ServerError
    from labgrid.util import labgrid_version

    try:
        with contextlib.redirect_stdout(sys.stderr):  # labgrid prints "acquired place ..." on stdout
            await session._acquire_place(name)
    except (Error, ServerError) as error:
        text = str(error)
        kind = "taken" if "already acquired" in text else "place" if "matches nothing" in text or "no matching" in text else "exporter"
        emit("error", kind=kind, message=text)
        return EXIT_DEVICE
    place = session.get_place(name)
    deadline = time.monotonic() + SERVED_TIMEOUT_S
    serial = _served(session, place)
    while serial is None and time.monotonic() < deadline and not session.stopping.is_set():
        await asyncio.sleep(0.05)
        serial = _served(session, place)
    if serial is None:
        await _release(session, name)
        emit(
            "error",
            kind="exporter",
            message=f"place {name} has no served {SERIAL_CLASS} within {SERVED_TIMEOUT_S:.0f} s "
            f"(resources: {[r['path'] for r in _resources(session, place)]}): is its exporter running, with ser2net installed?",
        )
        return EXIT_DEVICE
    params = serial["params"]
    emit(
        "acquired",
        place=name,
        acquired_by=place.acquired,
        tags=dict(place.tags),
        comment=place.comment,
        exporter=serial["exporter"],
        group=serial["group"],
        resource=serial["path"],
        serial={
            "host": params["host"],
            "port": params["port"],
            "speed": params.get("speed", 115200),
            "protocol": params.get("protocol", "rfc2217"),
        },
        device_path=(params.get("extra") or {}).get("path"),
        identity=_identity(session, serial),
        labgrid=labgrid_version(),
    )
    loop = asyncio.get_running_loop()
    while True:
        command = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if command == "status":
            emit("status", coordinator_connected=not session.stopping.is_set(), resources=_resources(session, session.get_place(name)))
            continue
        if command in ("release", ""):  # "": stdin closed, the benchmark is gone
            released = await _release(session, name)
            emit("released", ok=released)
            return 0


async def _release(session, name: str) -> bool:
    from labgrid.remote.client import Error, ServerError

    try:
        with contextlib.redirect_stdout(sys.stderr):
            await session._release_place(name)
        return True
    except (Error, ServerError) as error:
        print(f"release of {name} failed: {error}", file=sys.stderr)
        return False


async def define(session, definitions: list[str]) -> int:
    """Create places, each `NAME=MATCH` (labgrid-client create + add-match, in one session): a farm's set-up."""
    for definition in definitions:
        name, _, pattern = definition.partition("=")
        session.args = argparse.Namespace(place=name, patterns=[pattern])
        if name not in session.places:
            await session.add_place()
        await session.add_match()
    emit("defined", places=sorted(d.partition("=")[0] for d in definitions))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="labgrid_worker.py", description="Hold one labgrid place for bench.on_device.run (JSON lines on stdout)."
    )
    parser.add_argument("--coordinator", required=True, help="the coordinator, HOST:PORT (labgrid's default port is 20408)")
    parser.add_argument("--place", help="the place to acquire and hold, its exact name")
    parser.add_argument("--define", action="append", metavar="NAME=MATCH", help="instead: create place NAME matching MATCH; repeat")
    args = parser.parse_args(argv)
    if bool(args.place) == bool(args.define):
        parser.error("give --place (hold it) or --define (create places)")
    from labgrid.remote.client import ServerError, start_session

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    extra = {"args": argparse.Namespace(place=args.place, allow_unmatched=False, kick=False)}
    try:
        session = start_session(args.coordinator, extra=extra, loop=loop)
    except (ServerError, ConnectionError, OSError) as error:
        emit("error", kind="coordinator", message=f"no labgrid coordinator answers at {args.coordinator} ({error})")
        return EXIT_DEVICE
    try:
        if args.define:
            return loop.run_until_complete(define(session, args.define))
        if args.place not in session.places:
            known = ", ".join(sorted(session.places)) or "none"
            emit("error", kind="place", message=f"the coordinator at {args.coordinator} has no place {args.place!r} (places: {known})")
            return EXIT_DEVICE
        return loop.run_until_complete(hold(session, args.place))
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(session.stop())
            loop.run_until_complete(session.close())
        loop.close()


if __name__ == "__main__":
    sys.exit(main())
