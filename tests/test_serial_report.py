"""What the reports say, not only that they exist: the serial benchmark's units (bench.on_device.latency), per-layer join
(bench.on_device.layers), serial.md and serial.png, the pipeline's summary.md, the memory split against PlatformIO's figure,
and quiet progress in a redirected log. Fast: synthetic summaries, no device, no model."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest

from bench.firmware.mcu_tools import load_tool
from bench.on_device import latency, layers, report_format, report_markdown, report_plot
from bench.parity.metrics import wilson_interval
from bench.pipeline import summary as pipeline_summary

ROOT = Path(__file__).resolve().parents[1]
size_report = load_tool("size_report")

QEMU_HELLO = {
    "board": "qemu_stm32f405 (netduinoplus2, STM32F405RG Cortex-M4F)",
    "timer_source": "qemu-icount shift=0 SysTick",
    "tick_hz": 168_000_000,
    "clock_hz": 168_000_000,
    "kernels": "cmsis_nn",
    "emulated": True,
    "virtual": False,
}
MACS = 23_003_136


# ---- units ----


def test_emulator_ticks_are_converted_to_instructions_exactly():
    t = latency.timing(QEMU_HELLO)
    assert t.kind == "emulator" and t.unit == "instructions" and t.icount_shift == 0
    assert t.convert(3_360_000) == pytest.approx(20_000_000)  # the measured subs/bne loop
    stats = latency.latency_stats([11_228_376, 11_228_377], QEMU_HELLO, MACS)
    assert stats["per_inference"]["median"] == pytest.approx(66_835_577, abs=3)
    assert stats["macs_per_unit"] == pytest.approx(0.344, abs=0.001) and stats["efficiency"] == "MACs/instruction"
    assert "ms" not in stats  # no milliseconds of virtual time
    lo, hi = stats["estimate"]["ms"]
    assert stats["estimate"]["cpi"] == [1.0, 2.0] and lo == pytest.approx(397.8, abs=0.1) and hi == pytest.approx(2 * lo)
    assert "not time" in stats["unit_label"]


def test_older_timer_texts_and_other_shifts():
    legacy = QEMU_HELLO | {"timer_source": "SysTick, core clock (QEMU -icount shift=0: instruction-count ticks)"}
    assert latency.timing(legacy).kind == "emulator"
    assert latency.timing(QEMU_HELLO | {"timer_source": "qemu-icount shift=2 SysTick"}).convert(168) == pytest.approx(250)
    unknown = latency.timing(QEMU_HELLO | {"timer_source": "SysTick"})
    assert unknown.kind == "ticks" and unknown.convert(5) == 5  # an emulator that does not say: no claim


def test_boards_report_cycles_and_the_virtual_device_host_time():
    board = {"board": "nucleo_h743zi", "timer_source": "DWT CYCCNT", "tick_hz": 480_000_000, "clock_hz": 480_000_000}
    stats = latency.latency_stats([48_000_000], board, MACS)
    assert stats["kind"] == "cycles" and stats["ms"]["median"] == pytest.approx(100.0) and stats["efficiency"] == "MACs/cycle"
    assert "estimate" not in stats
    virtual = {"board": "virtual (host TFLM interpreter)", "virtual": True, "tick_hz": 1_000_000_000, "clock_hz": 0}
    stats = latency.latency_stats([12_000_000], virtual, MACS)
    assert stats["kind"] == "host" and stats["ms"]["median"] == pytest.approx(12.0) and "macs_per_unit" not in stats
    assert "host time" in stats["unit_label"]


def test_wilson_interval():
    lo, hi = wilson_interval(183, 200)
    assert lo == pytest.approx(0.868, abs=0.001) and hi == pytest.approx(0.946, abs=0.001)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0


# ---- per-layer join ----


def fake_layers() -> list[layers.Layer]:
    path = layers.cmsis_nn_path
    return [
        layers.Layer(0, "CONV_2D", "conv1", (32, 32, 48), "3x3, 3->48", 1_327_104, path((3, 3), 3, (1, 1), True, 32)),
        layers.Layer(1, "MAX_POOL_2D", "maxpool1", (16, 16, 48), "", 0, ""),
        layers.Layer(2, "CONV_2D", "fire2_squeeze", (16, 16, 16), "1x1, 48->16", 196_608, path((1, 1), 48, (1, 1), True, 16)),
        layers.Layer(3, "CONV_2D", "fire2_expand3x3", (16, 16, 64), "3x3, 16->64", 2_359_296, path((3, 3), 16, (1, 1), True, 16)),
    ]


def test_cmsis_nn_paths_follow_the_wrappers_conditions():
    paths = [layer.cmsis_nn_path for layer in fake_layers()]
    assert paths[0].startswith("im2col 3x3") and "3-channel input" in paths[0]
    assert paths[2].startswith("1x1 fast") and "arm_nn_mat_mult_nt_t_s8" in paths[2]
    assert paths[3].startswith("im2col 3x3") and "channel input" not in paths[3]
    assert layers.cmsis_nn_path((1, 1), 64, (2, 2), False, 8).startswith("1x1 strided")


def test_profile_records_join_by_position_and_a_mismatch_is_refused():
    records = [{"tag": "CONV_2D", "ticks": 1_680_000}, {"tag": "MAX_POOL_2D", "ticks": 16_800}]
    records += [{"tag": "CONV_2D", "ticks": 168_000}, {"tag": "CONV_2D", "ticks": 840_000}]
    rows = layers.join_profile(fake_layers(), records, latency.timing(QEMU_HELLO))
    assert [r["name"] for r in rows] == ["conv1", "maxpool1", "fire2_squeeze", "fire2_expand3x3"]
    assert rows[0]["units"] == pytest.approx(10_000_000) and rows[0]["macs_per_unit"] == pytest.approx(0.1327, abs=1e-4)
    assert rows[1]["macs_per_unit"] is None
    with pytest.raises(layers.ProfileMismatch, match="truncated"):
        layers.join_profile(fake_layers(), records[:3], latency.timing(QEMU_HELLO))
    with pytest.raises(layers.ProfileMismatch, match="another model"):
        layers.join_profile(fake_layers(), [records[1], *records[1:]], latency.timing(QEMU_HELLO))


# ---- serial.md and serial.png ----


MEMORY = {
    "flash": {"model": 830_760, "tflm": 58_250, "application": 8_235, "runtime": 8_377, "padding": 186},
    "flash_total": 905_808,
    "ram": {"arena": 107_968, "stack": 8_192, "data": 124, "bss": 4_920},
    "ram_total": 121_204,
    "flash_sections": {".data": 124, ".isr_vector": 64, ".rodata": 845_428, ".text": 60_172},
    "platformio_flash": 905_796,
    "merged_strings": 885,
    "regions": {"FLASH": {"origin": 0x08000000, "length": 1 << 20}, "RAM": {"origin": 0x20000000, "length": 128 << 10}},
    "elf": "firmware.elf",
    "map": "firmware.map",
}


def board(kernels: str, scale: float, status: str = "ok") -> dict:
    hello = QEMU_HELLO | {"kernels": kernels, "firmware_git_sha": "abc", "compiler": "gcc 12.2.1", "build_flags": "-Os"}
    hello |= {"arena_bytes": 107_968, "arena_used_bytes": 99_140}
    if status != "ok":
        return {"port": "socket://127.0.0.1:1", "status": status, "error": "no reply to HELLO", "completed": 0, "device": hello}
    ticks = [int(11_228_376 * scale)] * 4
    records = [{"tag": "CONV_2D", "ticks": int(t * scale)} for t in (1_680_000, 168_000, 840_000)]
    records.insert(1, {"tag": "MAX_POOL_2D", "ticks": int(16_800 * scale)})
    acc = {"top1": 0.915, "correct": 183, "images": 200, "ci95": wilson_interval(183, 200)}
    return {
        "port": "socket://127.0.0.1:5555",
        "status": "ok",
        "error": None,
        "completed": 200,
        "device": hello,
        "ticks": ticks,
        "latency": latency.latency_stats(ticks, hello, MACS),
        "layers": layers.join_profile(fake_layers(), records, latency.timing(hello)),
        "accuracy": {"device": acc, "tflm_host": acc, "keras": acc | {"top1": 0.92, "correct": 184}},
        "host_lsb": {"bit_identical": 200, "max_abs_diff_lsb": 0, "bit_identical_rate": 1.0},
        "parity": [{"a": "keras", "b": "device", "top1_agreement": 0.99, "prediction_flips": 2, "float": {"cos": 0.9997}}],
        "link": {"requests": 108_497, "retries": 34_576, "damaged_frames": 0},
        "upload": {"bytes_per_s": 4_400.0, "line_use": None},
        "seconds": 167.0,
    }


def summary(*boards) -> dict:
    return {
        "artifact": {"name": "squeezenet_cifar10", "model_sha256": "ab" * 32, "model_bytes": 830_760},
        "dataset": {"name": "CIFAR-10 (JPEG copy)", "fingerprint": "cd" * 32, "images": 200, "split_images": 10_000},
        "macs": MACS,
        "warmup": 3,
        "git_sha": "0123456789abcdef",
        "created": "2026-12-01T10:00:00+00:00",
        "memory": MEMORY,
        "boards": list(boards),
    }


def table_rows(text: str, header_start: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_serial_markdown_states_units_percent_layers_and_memory():
    text = report_markdown.markdown(summary(board("cmsis_nn", 1.0), board("reference", 27.9), board("cmsis_nn", 1.0, "timeout")))
    assert text.startswith("# Serial benchmark: squeezenet_cifar10 on qemu_stm32f405")
    assert "200 of 10,000 test images of CIFAR-10 (JPEG copy)" in text
    # accuracy: percent with a Wilson interval, references on the same images; a failed board shows its status, no zeros
    accuracy = table_rows(text, "| board | kernels | status | images | device top-1")
    assert "TFLM host top-1, same images" in accuracy[0] and "95% CI (Wilson)" in accuracy[0]
    assert "| 91.50% | 86.8–94.6% | 91.50% | 92.00% | 200/200 | 0 | 2 |" in accuracy[2]
    failed = accuracy[4]
    assert "**timeout**" in failed and "0.915" not in text and "n/a" not in text and "/0 |" not in failed
    # latency: the unit and its caveat in the header, the estimate labelled as one
    lat = table_rows(text, "| board | kernels | median instructions per inference")
    assert "QEMU count, not time" in lat[0] and "MACs/instruction (23,003,136 MACs)" in lat[0]
    assert "estimated real-chip latency at 168 MHz, 1.0–2.0 cycles/instruction (not measured)" in lat[0]
    assert "| 66,835,571 |" in lat[2] and "| 0.344 |" in lat[2] and "| 398–796 ms |" in lat[2]
    assert "ms at 168" not in text and "MAC/cycle" not in text
    # per layer: named, with MACs and both builds
    layer = table_rows(text, "| # | layer | op |")
    assert "cmsis_nn: instructions" in layer[0] and "reference: instructions" in layer[0] and "CMSIS-NN path" in layer[0]
    assert any("| fire2_expand3x3 | CONV_2D | 3x3, 16->64 | 16x16x64 | 2,359,296 |" in row for row in layer)
    assert "CONV_2D #" not in text
    # memory: against the capacity, PlatformIO's figure reconciled
    assert "| **total** | **905,808** | 884.6 | **86.4%**; 142,768 B free |" in text
    assert "PlatformIO's `Flash: used` line counts 905,796 B" in text and "885 B fewer in the ELF" in text
    assert "108,497 requests, 34,576 retries" in text


def test_the_figure_draws_for_one_board_two_builds_and_a_failed_one(tmp_path):
    for name, s in (
        ("one", summary(board("cmsis_nn", 1.0))),
        ("two", summary(board("cmsis_nn", 1.0), board("reference", 27.9))),
        ("failed", summary(board("cmsis_nn", 1.0, "timeout")) | {"memory": None}),
    ):
        report_plot.plot(s, tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_latency_text_never_calls_virtual_time_board_time():
    emulator = report_format.latency_text(latency.latency_stats([11_228_376], QEMU_HELLO, MACS))
    assert emulator == "66.84 M instructions (QEMU instruction count, not time), 0.344 MACs/instruction"


# ---- summary.md ----


def pipeline_run() -> dict:
    b = board("cmsis_nn", 1.0)
    device = {
        "target": "QEMU netduinoplus2 (STM32F405), instruction-count timing",
        "status": "ok",
        "images": 200,
        "bit_identical": 200,
        "max_abs_diff_lsb": 0,
        "accuracy": b["accuracy"],
        "latency": b["latency"],
        "board": {"board": QEMU_HELLO["board"], "kernels": "cmsis_nn"},
        "board_name": "the emulated STM32F405",
        "dataset": summary()["dataset"],
        "memory": MEMORY,
        "summary": "device ran",
        "seconds": 164.1,
        "report": "reports/x/device/serial.md",
    }
    parity = {
        "verdict": "PASS",
        "exit_status": 0,
        "top1": {"keras": 0.8813, "litert": 0.8803, "tflm": 0.8803},
        "correct": {"keras": 8813, "litert": 8803, "tflm": 8803},
        "dataset": {"name": "CIFAR-10 (JPEG copy)", "split": "test", "images": 10_000, "split_images": 10_000},
        "summary": "PASS",
        "seconds": 102.2,
    }
    convert = {"tflite_bytes": 830_760, "artifact": "build/squeezenet_cifar10", "summary": "converted", "seconds": 9.9}
    stages = {"convert": convert, "parity": parity, "device": device}
    return {"model": "squeezenet_cifar10", "git_sha": "0123456789abcdef", "created": "2026-12-01", "stages": stages}


def test_summary_is_one_comparable_table_with_a_verdict():
    text = pipeline_summary.render(pipeline_run())
    verdict = text.splitlines()[2]
    assert verdict.startswith("**PASS**") and "int8 costs 0.10 points of top-1 against float on 10,000 images" in verdict
    assert "200/200 outputs bit-identical" in verdict and "equals the host's on the same images (91.50%)" in verdict
    assert "not board time" in verdict
    rows = table_rows(text, "| engine | runs on | dataset | images | top-1 | 95% CI (Wilson) |")[2:]
    assert len(rows) == 6
    for row in rows:  # every accuracy names its dataset and image count, in percent, with an interval
        assert "CIFAR-10 (JPEG copy)" in row and re.search(r"\| (10,000|200) \| \d+\.\d\d% \| \d+\.\d–\d+\.\d% \|$", row), row
    assert "| Keras float | host, the device's images |" in text and "| **the emulated STM32F405**, int8 | device |" in text
    assert "66.84 M instructions (QEMU instruction count, not time), 0.344 MACs/instruction" in text
    assert "398–796 ms at 168 MHz for 1.0–2.0 cycles per instruction: an estimate, not a measurement" in text
    assert "| kernels | cmsis_nn |" in text and "flash 905,808 B of 1 MiB (86.4%)" in text and "RAM 121,204 B of 128 KiB (92.5%)" in text


# ---- memory split ----


def test_platformio_flash_sections_are_the_builders():
    builder = (ROOT / "mcu" / "platform" / "builder" / "main.py").read_text()
    regexp = re.search(r'SIZEPROGREGEXP=r"\^\(\?:(.*?)\)', builder).group(1)
    assert tuple(name.replace("\\", "") for name in regexp.split("|")) == size_report.PLATFORMIO_FLASH_SECTIONS


MAP = """Memory Configuration

Name             Origin             Length             Attributes
FLASH            0x08000000         0x00100000         xr
RAM              0x20000000         0x00020000         xrw
*default*        0x00000000         0xffffffff

Linker script and memory map

.rodata         0x0800eb50       0x60
 *(.rodata*)
 .rodata._ZN12_GLOBAL__N_112put_unsignedERNS_3OutEmj.str1.1
                0x0800eb50       0x20 /x/.pio/build/qemu_stm32f405/libtflm.a(debug_log.o)
 .rodata.str1.1
                0x0800eb70       0x20 .pio/build/qemu_stm32f405/src/app/app.o
 .rodata.table  0x0800eb90       0x20 .pio/build/qemu_stm32f405/src/app/app.o
"""


def test_map_split_finds_mergeable_strings_and_the_memory_regions():
    mergeable: dict = {}
    split = size_report.map_split(MAP, mergeable)
    assert split[".rodata"] == {"tflm": 0x20, "application": 0x40}
    assert mergeable[".rodata"] == {"tflm": 0x20, "application": 0x20}
    assert size_report.memory_regions(MAP) == {
        "FLASH": {"origin": 0x08000000, "length": 1 << 20},
        "RAM": {"origin": 0x20000000, "length": 128 << 10},
    }
    # 16 bytes merged away: taken from the parts holding strings, in proportion
    assert size_report._take_off(split[".rodata"], mergeable[".rodata"], 16) == {"tflm": 0x18, "application": 0x38}


# ---- quiet logs ----


def test_progress_in_a_redirected_log_is_periodic_lines(monkeypatch):
    from model import progress

    quiet = io.StringIO()
    progress.progress(5, "fast", stream=quiet, period_s=30).close()  # finished before its first line: silent
    assert quiet.getvalue() == ""
    clock = iter(range(0, 1000, 20))
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    stream = io.StringIO()
    reporter = progress.progress(10, "serial benchmark", "images", stream=stream, period_s=30)
    for _ in range(10):
        reporter.update(1)
    reporter.close()
    text = stream.getvalue()
    assert "\r" not in text and text.count("\n") < 10
    assert "serial benchmark: 2/10 images (20%), 40 s elapsed, about 160 s left" in text
    assert text.splitlines()[-1].endswith("(done)")


def test_a_long_silent_step_says_it_is_still_running(capsys):
    from bench.pipeline import main_job as pipeline

    script = "import time\nprint('Compiling a.o', flush=True)\ntime.sleep(0.7)\nprint('Compiling b.o')"
    code, output = pipeline.run_with_heartbeat([sys.executable, "-c", script], None, "firmware: building x", period_s=0.2)
    assert code == 0 and output.splitlines() == ["Compiling a.o", "Compiling b.o"]
    lines = capsys.readouterr().out.splitlines()
    pattern = r"firmware: building x: still running, \d+ s, [12] files compiled so far"
    assert len(lines) >= 2 and all(re.fullmatch(pattern, line) for line in lines)
