"""experiments.compressed_firmware: its table's arithmetic and its refusal of bad input (the QEMU runs themselves are
measured in docs/EXPERIMENTS.md; they need a TFLM tree and two firmware builds)."""

from __future__ import annotations

from experiments import compressed_firmware


def row(name: str, tensors: int, flash: int, instructions: float) -> dict:
    return {
        "artifact": f"build/{name}",
        "compressed_tensors": tensors,
        "tflite_bytes": flash - 80_000,
        "flash_total": flash,
        "ram_total": 121_204,
        "arena": 107_968,
        "ticks_median": instructions * 0.168,
        "unit": "instructions",
        "median": instructions,
        "bit_identical": 20,
        "images": 20,
        "flash_bytes": 1024 * 1024,
    }


def test_the_table_states_flash_saved_and_instructions_added_against_the_first_artifact():
    meta = {"command": "python -m experiments.compressed_firmware ...", "git_sha": "abc", "created": "now", "tflm": "/tflm", "board": "b"}
    text = compressed_firmware.render([row("plain", 0, 900_000, 10_000_000), row("lut", 14, 830_000, 10_125_000)], meta)
    lines = [line for line in text.splitlines() if line.startswith("| lut")]
    assert len(lines) == 1 and "| 70,000 B |" in lines[0] and "+1.25 %" in lines[0] and "20/20" in lines[0]
    assert "median instructions" in text and "an instruction count, not time" in text and "| 10,125,000 |" in lines[0]


def test_a_folder_without_model_json_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(compressed_firmware, "tflm_tree", lambda: tmp_path)
    assert compressed_firmware.main(["--artifacts", str(tmp_path / "missing"), "--data", "synthetic"]) == 2
    assert "run python -m convert first" in capsys.readouterr().err


def test_each_qemu_environment_names_its_machine_and_memory():
    f405, an500 = (compressed_firmware.board_of(e) for e in compressed_firmware.ENVIRONMENTS)
    assert f405["machine"] == "netduinoplus2" and f405["flash_bytes"] == 1024 * 1024
    assert an500["machine"] == "mps2-an500" and an500["flash_bytes"] == 4 * 1024 * 1024


def test_the_table_names_the_decode_formats_of_each_artifact():
    meta = {"command": "c", "git_sha": "abc", "created": "now", "tflm": "/tflm", "board": "QEMU mps2-an500"}
    best = row("best", 24, 800_000, 11_000_000) | {"formats": ["huffman", "prune"], "flash_bytes": 4 * 1024 * 1024}
    text = compressed_firmware.render([row("plain", 0, 1_400_000, 10_000_000) | {"flash_bytes": 4 * 1024 * 1024}, best], meta)
    assert "| 24 (huffman, prune) |" in text and "+10.00 %" in text and "QEMU mps2-an500" in text


def test_the_table_states_the_decompression_region_and_the_arena_the_device_reports():
    meta = {"command": "c", "git_sha": "abc", "created": "now", "tflm": "/tflm", "board": "b"}
    plain = row("lut", 18, 645_676, 51_651_060) | {"arena": 203_280, "arena_used_bytes": 190_644}
    region = row("lut-region", 18, 645_788, 51_651_060) | {"arena": 111_920, "region": 147_456, "arena_used_bytes": 101_316}
    text = compressed_firmware.render([plain, region], meta)
    line = next(line for line in text.splitlines() if line.startswith("| lut-region"))
    assert "(111,920, 147,456)" in line and "| 101,316 B |" in line and "+0.00 %" in line
    assert "| ? |" in compressed_firmware.render([row("old", 0, 900_000, 10_000_000)], meta)  # a row recorded before the column


def test_the_table_says_whether_each_firmware_gave_the_baseline_firmware_s_outputs():
    meta = {"command": "c", "git_sha": "abc", "created": "now", "tflm": "/tflm", "board": "b"}
    rows = [
        row(name, 14, 830_000, 10_000_000) | {"outputs_sha256": digest}
        for name, digest in (("plain", "a1"), ("same", "a1"), ("other", "b2"))
    ]
    lines = {line.split(" |")[0][2:]: line for line in compressed_firmware.render(rows, meta).splitlines() if line.startswith("| ")}
    assert lines["plain"].endswith("| (baseline) |") and lines["same"].endswith("| yes |") and lines["other"].endswith("| **no** |")
    fewer = rows[1] | {"images": 10}
    assert "? (10 images against 20)" in compressed_firmware.render([rows[0], fewer], meta)
