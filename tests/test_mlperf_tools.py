"""The host tools around MLPerf Tiny's runner: its dataset format (bench.mlperf.dataset), the shim that lets it find the
QEMU pty (bench.mlperf.runner), and the check of its results against the TFLM host (bench.mlperf.results). No runner,
no QEMU: the runner's own repository is not needed."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.mlperf import dataset as mlperf_dataset
from bench.mlperf import results as mlperf_results
from bench.mlperf import runner as mlperf_runner

ROOT = Path(__file__).resolve().parents[1]


def test_dataset_is_written_in_the_runners_format(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(30, 32, 32, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(3), 10)
    files = [f"test/{c}/{i:04d}.jpg" for c in ("a", "b", "c") for i in range(10)]
    folder = mlperf_dataset.write_dataset(images, labels, files, ["a", "b", "c"], tmp_path, per_class=4)
    assert folder == tmp_path / "ic01"
    # the runner's DataSet reads y_labels.csv with csv.DictReader(fieldnames=["file", "classes", "class", ...])
    rows = list(csv.DictReader((folder / "y_labels.csv").open(), fieldnames=["file", "classes", "class", "bytes_to_send", "stride"]))
    assert [r["file"] for r in rows[:4]] == ["a_0000.bin", "b_0000.bin", "c_0000.bin", "a_0002.bin"]
    assert len(rows) == 12 and {r["classes"] for r in rows} == {"3"} and [r["class"] for r in rows[:3]] == ["0", "1", "2"]
    assert (folder / "b_0005.bin").read_bytes() == images[15].tobytes()  # raw uint8 RGB, HWC, 3072 bytes
    with pytest.raises(ValueError, match="fewer than --per-class 11"):
        mlperf_dataset.select(labels, 3, 11)


def test_runner_path_options_are_taken_from_the_callers_directory(tmp_path):
    args = ["--dataset_path=data", "-d", "devices.yaml", "--mode=a", "--test_script=/abs/tests.yaml"]
    assert mlperf_runner.absolute_paths(args, tmp_path) == [
        f"--dataset_path={tmp_path / 'data'}",
        "-d",
        str(tmp_path / "devices.yaml"),
        "--mode=a",
        "--test_script=/abs/tests.yaml",
    ]
    assert mlperf_runner.option_value(args, ("--device_list", "-d")) == "devices.yaml"


def test_the_pty_is_listed_as_the_dut_the_device_list_names(tmp_path, monkeypatch):
    from serial.tools import list_ports

    assert mlperf_runner.dut_usb_id(ROOT / "bench" / "mlperf" / "devices_qemu.yaml") == (0x1209, 0x0001)
    bad = tmp_path / "devices.yaml"
    bad.write_text("- name: lpm01a\n  type: power\n")
    with pytest.raises(ValueError, match="type: dut"):
        mlperf_runner.dut_usb_id(bad)
    monkeypatch.setattr(list_ports, "comports", lambda include_links=False: [])
    mlperf_runner.advertise_port("/dev/pts/77", 0x1209, 0x0001, "QEMU netduinoplus2 UART (pty)")
    # what the runner's DeviceManager.scan keeps and matches: ports with a vid, by (vid, pid)
    ports = [p for p in list_ports.comports(True) if p.vid]
    assert [(p.device, p.vid, p.pid) for p in ports] == [("/dev/pts/77", 0x1209, 0x0001)]


def test_usb_scan_finds_nothing(monkeypatch):
    monkeypatch.setitem(sys.modules, "usb", None)  # as if pyusb were not installed: `import usb.core` fails
    monkeypatch.setitem(sys.modules, "usb.core", None)
    mlperf_runner.no_usb_devices()
    assert list(sys.modules["usb.core"].find(find_all=True)) == []
    assert sys.modules["usb.core"].find(idVendor=1) is None


def test_runner_results_give_back_the_int8_outputs():
    scale, zero_point = 1 / 256, -128
    q = np.array([[-128, 127, 0, -127, -112, 10, 100, -1, 5, 6], [-128] * 9 + [127]], dtype=np.int8)
    # as the firmware prints them (3 decimals) and the runner parses them (float)
    scores = [[float(f"{np.float32((int(v) + 128) / 256):.3f}") for v in row] for row in q]
    entries = [{"file": f"x{i}.bin", "class": str(i), "infer": {"results": s}} for i, s in enumerate(scores)]
    files, labels, device = mlperf_results.device_outputs([{"error": "error 1"}, *entries], scale, zero_point)
    assert files == ["x0.bin", "x1.bin"] and labels.tolist() == [0, 1] and device.tolist() == q.tolist()
    with pytest.raises(ValueError, match="no entries with infer results"):
        mlperf_results.device_outputs([{"error": "error 2"}], scale, zero_point)


def test_reply_wait_can_be_lengthened(tmp_path, monkeypatch):
    # a stand-in for the runner's serial_device module: its SerialDevice waits self._timeout (5 s) unless told otherwise
    (tmp_path / "serial_device.py").write_text(
        "class SerialDevice:\n    def __init__(self):\n        self._timeout = 5.0\n"
        "    def read_line(self, timeout=None):\n        return self._timeout if timeout is None else timeout\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "serial_device", raising=False)
    mlperf_runner.wait_at_least(40)
    device = sys.modules["serial_device"].SerialDevice()
    assert device.read_line() == 40 and device.read_line(timeout=30.0) == 40 and device.read_line(timeout=60) == 60
    monkeypatch.delitem(sys.modules, "serial_device")
