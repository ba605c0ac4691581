"""python -m bench.serial end to end against the virtual device (TFLM host interpreter) on a tiny int8
artifact made here; two boards at once; a refused device; a reset mid-run; usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_artifact import make_tiny_artifact

from bench import serial as bench_serial
from bench.virtual_device import Server, make_device


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    """A tiny SqueezeNet trained briefly on the synthetic data and converted by the converter (~30 s)."""
    return make_tiny_artifact(tmp_path_factory.mktemp("serial"), epochs=3, calibration_count=32)


@pytest.fixture
def servers(artifact):
    started = []

    def start(**hooks) -> Server:
        server = Server(make_device(artifact, "tflm", **hooks)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_two_virtual_boards_bit_identical_with_everything_written(artifact, servers, tmp_path, capsys):
    urls = [servers().url, servers(reset_at={30}).url]
    out = tmp_path / "report"
    argv = ["--artifacts", str(artifact), "--data", "synthetic", "--limit", "12", "--warmup", "2", "--out", str(out), "--no-progress"]
    code = bench_serial.main(argv + sum((["--port", u] for u in urls), []))
    assert code == 0, capsys.readouterr()
    report = json.loads((out / "serial.json").read_text())
    assert len(report["boards"]) == 2
    for board in report["boards"]:
        assert board["status"] == "ok" and board["completed"] == 12 and board["device"]["virtual"]
        assert board["host_lsb"]["bit_identical"] == 12 and len(board["ticks"]) == 12
        assert board["latency"]["us"]["median"] > 0 and board["latency"]["unit_note"].startswith("host")
        assert any(p["a"] == "keras" for p in board["parity"])  # the float reference ran
    assert report["boards"][1]["resets"] == 1  # survived, nothing lost or repeated (12 completed, all identical)
    assert report["dataset"]["fingerprint"] and report["git_sha"] and report["artifact"]["model_sha256"]
    assert "bit-identical" in (out / "serial.md").read_text() and (out / "serial.png").read_bytes()[:4] == b"\x89PNG"


def test_a_device_with_another_model_is_refused_naming_both(artifact, tmp_path, capsys):
    server = Server(make_device(artifact, "checksum")).start()  # same shapes, another "model"
    try:
        argv = ["--port", server.url, "--artifacts", str(artifact), "--data", "synthetic", "--limit", "2", "--out", str(tmp_path / "r")]
        code = bench_serial.main(argv + ["--no-progress", "--no-keras"])
    finally:
        server.stop()
    assert code == bench_serial.EXIT_REFUSED
    err = capsys.readouterr().err
    assert "model SHA-256: device" in err and "artifact" in err


def test_usage_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench_serial.main(["--artifacts", "x", "--data", "synthetic"])  # no --port
    code = bench_serial.main(["--port", "loop://", "--artifacts", str(tmp_path / "none"), "--data", "synthetic"])
    assert code == bench_serial.EXIT_BAD_INPUT and "no such artifact folder" in capsys.readouterr().err


def test_latency_statistics():
    stats = bench_serial.latency_stats([100, 200, 300, 400], tick_hz=100, clock_hz=1000, macs=5000)
    assert stats["ticks"]["median"] == 250 and stats["us"]["min"] == 1e6 and stats["mac_per_cycle"] == pytest.approx(5000 / 2500)
