"""labgrid for real, on loopback: a labgrid coordinator and exporter (labgrid 26, .venv/labgrid) export two emulated
STM32F405 boards (QEMU's pty, served by the exporter's own ser2net as RFC 2217) with their identity as resource
metadata; bench.on_device.run acquires both places, runs, writes one report and releases them. The faults: a place taken
by someone else, a coordinator that is down, a ser2net that refuses RFC 2217's options behind a place, and an
exporter that goes away mid-run; each is a clear error, keeps its completed samples and hangs nothing.

Named test_serial_* so that it runs after tests/test_mcu_qemu.py, which builds the firmware it runs."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import test_serial_qemu
from conftest import in_ci
from test_serial_qemu import ARTIFACT, CIFAR

from bench.farm import place as labgrid_place
from bench.farm.loopback import exporter_config, loopback_farm
from bench.link import transport
from bench.on_device import run as bench_serial

IMAGES = 3
# The firmware tests/test_mcu_qemu.py builds; SQZ_TEST_ELF names another build of it (as in test_serial_rfc2217.py).
ELF = Path(os.environ.get("SQZ_TEST_ELF", test_serial_qemu.ELF))


def _require_labgrid() -> None:
    try:
        labgrid_place.labgrid_bin("labgrid-exporter")
    except FileNotFoundError as error:
        if in_ci():
            pytest.fail(f"CI=true: {error}")
        pytest.skip(str(error))


def test_place_urls_and_bad_input():
    assert labgrid_place.parse("labgrid://lab.example:4000/nucleo-h743zi-1") == ("lab.example:4000", "nucleo-h743zi-1")
    assert labgrid_place.parse("labgrid://lab.example/board0") == ("lab.example:20408", "board0")
    for bad in ("labgrid://lab.example/", "labgrid:///board0", "labgrid://h/a/b", "rfc2217://h:1/x"):
        with pytest.raises(ValueError, match=r"labgrid://<coordinator-host>\[:<port>\]/<place>"):
            labgrid_place.parse(bad)
    assert transport.describe("labgrid://h:1/p")["scheme"] == "labgrid"
    with pytest.raises(SystemExit) as exit_:  # a bad place name is a usage error (exit status 2), before any work
        bench_serial.main(["--place", "a/b", "--artifacts", "x", "--data", "synthetic"])
    assert exit_.value.code == 2
    config = json.loads(exporter_config(["/dev/pts/7"], "netduinoplus2"))
    assert config["board0"]["RawSerialPort"] == {"port": "/dev/pts/7", "speed": 115200}
    assert config["board0"]["BoardIdentity"]["mcu"] == "STM32F405"


def test_a_coordinator_that_is_down_fails_fast_and_says_so():
    _require_labgrid()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = labgrid_place.place_url(f"127.0.0.1:{s.getsockname()[1]}", "board0")
    started = time.monotonic()
    with pytest.raises(labgrid_place.PlaceUnavailable, match=r"no labgrid coordinator answers at .*start labgrid-coordinator"):
        labgrid_place.PlaceLease(url).acquire()
    assert time.monotonic() - started < 20


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    """Two emulated boards on one exporter, and a place `raw` whose NetworkSerialPort is a ser2net serving raw TCP."""
    if reason := test_serial_qemu._skip_reason() if ELF == test_serial_qemu.ELF else None:
        pytest.skip(reason)
    assert ELF.is_file(), f"SQZ_TEST_ELF={ELF}: no such file"
    _require_labgrid()
    if not shutil.which(transport.SER2NET):
        pytest.fail("needs Debian's ser2net (scripts/setup.sh installs it)") if in_ci() else pytest.skip("needs ser2net")
    elf = tmp_path_factory.mktemp("fw") / "firmware.elf"
    shutil.copy(ELF, elf)  # both boards run the same build even if mcu/.pio is rebuilt meanwhile
    with socket.socket() as uart:  # a stand-in UART behind the raw ser2net: accepts and stays silent
        uart.bind(("127.0.0.1", 0))
        uart.listen()
        held: list = []
        threading.Thread(target=lambda: held.append(uart.accept()), daemon=True).start()
        raw = transport.Connection("raw", f"socket://127.0.0.1:{uart.getsockname()[1]}", rfc2217=False)
        with transport.Ser2net([raw]) as server:
            extra = {"raw": {"NetworkSerialPort": {"host": "127.0.0.1", "port": server.connections[0].port, "protocol": "rfc2217"}}}
            with loopback_farm(elf, 2, extra_groups=extra) as running:
                yield running


@pytest.fixture(scope="module")
def inputs(farm):
    """The artifact and a few quantized test images, for bench.on_device.run.run_board (one board, no host references)."""
    from convert.artifact_reader import open_artifact
    from model.data import load_dataset

    artifact = open_artifact(ARTIFACT)
    images = load_dataset(str(CIFAR), progress=False).test.subset(list(range(IMAGES)))
    return artifact, artifact.input_q.quantize(images.images)


@pytest.mark.qemu
@pytest.mark.tflm
@pytest.mark.data
@pytest.mark.slow
def test_two_places_in_one_run_give_one_report_and_are_released(farm, tmp_path, capsys):
    out = tmp_path / "report"
    places = [a for p in farm.places[:2] for a in ("--place", p)]
    argv = [*places, "--coordinator", farm.coordinator, "--artifacts", str(ARTIFACT), "--data", str(CIFAR), "--limit", str(IMAGES)]
    code = bench_serial.main(argv + ["--warmup", "0", "--no-keras", "--no-progress", "--out", str(out)])
    summary = json.loads((out / "serial.json").read_text())
    boards = summary["boards"]
    if any(b["status"] == "refused" and "model SHA-256" in (b["error"] or "") for b in boards):
        pytest.skip(f"the built firmware carries another model than {ARTIFACT}: rebuild it (tests/test_mcu_qemu.py)")
    assert code == 0, capsys.readouterr()
    assert [b["transport"]["place"] for b in boards] == ["board0", "board1"]
    for k, b in enumerate(boards):
        t = b["transport"]
        assert t["scheme"] == "labgrid" and t["coordinator"] == farm.coordinator and t["released"] is True
        assert t["identity_agrees"] is True and t["labgrid"] == "26.0.1"
        assert t["identity"] == {"board": "netduinoplus2", "mcu": "STM32F405", "run_by": "qemu-system-arm -icount shift=0", "instance": k}
        assert t["serial"]["protocol"] == "rfc2217" and t["exporter"] == "loopback"
        assert b["host_lsb"]["bit_identical"] == IMAGES  # the outputs, bit for bit the TFLM host's (as the direct socket's)
    # Deterministic emulators: the same instruction counts on both boards, to the SysTick reads' granularity.
    assert max(abs(a - b) for a, b in zip(boards[0]["ticks"], boards[1]["ticks"], strict=True)) <= 2
    text = (out / "serial.md").read_text()
    assert "labgrid place `board0`" in text and "labgrid place `board1`" in text and "released" in text
    # Released: the places can be acquired again at once.
    for url in farm.urls[:2]:
        lease = labgrid_place.PlaceLease(url)
        assert lease.acquire().startswith("rfc2217://127.0.0.1:") and lease.release()


@pytest.mark.qemu
@pytest.mark.tflm
@pytest.mark.data
def test_a_place_taken_by_someone_else_is_refused_by_name(farm, inputs, monkeypatch):
    monkeypatch.setenv("LG_USERNAME", "someone-else")
    other = labgrid_place.PlaceLease(farm.urls[1])
    other.acquire()
    monkeypatch.delenv("LG_USERNAME")
    try:
        artifact, images = inputs
        result = bench_serial.run_board(farm.urls[1], artifact, images, 0, baud=115200, invoke_timeout_s=30, progress=None, log=print)
        assert result["status"] == "port unavailable" and result["completed"] == 0
        assert "already acquired by" in result["error"] and "someone-else" in result["error"] and "wait for its holder" in result["error"]
    finally:
        assert other.release()


@pytest.mark.qemu
@pytest.mark.tflm
@pytest.mark.data
def test_a_ser2net_that_refuses_rfc2217_behind_a_place_fails_fast(farm, inputs):
    artifact, images = inputs
    url = farm.urls[farm.places.index("raw")]
    started = time.monotonic()
    result = bench_serial.run_board(url, artifact, images, 0, baud=115200, invoke_timeout_s=30, progress=None, log=print)
    assert result["status"] == "port unavailable" and result["completed"] == 0
    assert "refused or ignored RFC 2217's options" in result["error"] and "place raw" in result["error"]
    assert result["transport"]["released"] is True and time.monotonic() - started < 30


@pytest.mark.qemu
@pytest.mark.tflm
@pytest.mark.data
def test_an_exporter_that_goes_away_mid_run_keeps_the_completed_samples(farm, inputs):
    """Last in this module: it stops the farm's exporter (and the ser2net it runs), as a lab machine going away."""
    artifact, images = inputs
    done: list[int] = []

    def progress(n: int) -> None:
        done.append(n)
        if len(done) == 1:
            farm.stop_exporter()

    started = time.monotonic()
    result = bench_serial.run_board(farm.urls[0], artifact, images, 0, baud=115200, invoke_timeout_s=30, progress=progress, log=print)
    assert result["status"] == "port unavailable", result
    assert result["completed"] >= 1 and len(result["ticks"]) == result["completed"]
    assert "the exporter of place board0" in result["error"] and "went away mid-run" in result["error"]
    assert time.monotonic() - started < 60
