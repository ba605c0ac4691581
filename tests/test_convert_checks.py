"""convert/: the pieces (calibration indices, the board table, pre-flight checks, reading a .tflite) and
`python -m convert` with bad input: each refused with the fix named, and nothing left behind.

The tests that need a converted model use the session's tiny SqueezeNet (tests/convert_fixtures.py); the
artifact contract and the firmware package are in tests/test_convert.py.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from convert_fixtures import TINY, leftovers, needs_tflm, tiny_model

from convert import artifact as artifact_module
from convert import boards, preflight, quantize
from convert import inspect_tflite as inspect
from convert.__main__ import main
from convert.errors import BadInputError, PreflightError
from convert.inspect_tflite import OperatorInfo, TensorInfo, TfliteInfo
from model import exit_codes

pytest_plugins = ["convert_fixtures"]  # tiny_keras: made once per session


# --- pieces ----------------------------------------------------------------------------------------------------


def test_calibration_indices_are_seeded_distinct_and_sorted():
    a = quantize.calibration_indices(50_000, 500, 0)
    assert a == quantize.calibration_indices(50_000, 500, 0) != quantize.calibration_indices(50_000, 500, 1)
    assert len(set(a)) == 500 and a == sorted(a) and 0 <= a[0] and a[-1] < 50_000
    assert quantize.calibration_indices(10, 500, 0) == list(range(10))  # a small split is used whole
    with pytest.raises(BadInputError):
        quantize.calibration_indices(10, 0, 0)


def test_board_table_and_verdicts():
    assert list(boards.BOARDS) == ["netduinoplus2", "mps2-an500", "nucleo-h743zi", "nucleo-f767zi", "esp32", "esp32-s3"]
    assert boards.get("NUCLEO_H743ZI").key == "nucleo-h743zi" and boards.get("esp32s3").key == "esp32-s3"
    with pytest.raises(BadInputError, match="supported: netduinoplus2"):
        boards.get("arduino-uno")
    board = boards.get("netduinoplus2")
    assert boards.fit(board, board.model_budget, board.arena_budget)["fits"]
    verdict = boards.fit(board, board.model_budget + 1, board.arena_budget + 2)
    assert not verdict["fits_flash"] and not verdict["fits_ram"]
    assert boards.verdict_text(verdict) == "does not fit: flash short by 1 B, RAM short by 2 B"
    # The margin: 5 % with a 4 KiB floor, 16-byte aligned.
    assert boards.arena_for_firmware(102_816) == 107_968
    assert boards.arena_for_firmware(1000) == 5104


def test_board_budgets_are_the_firmware_builds_memory():
    """One fact in two files: the fit's flash and RAM are what the firmware links into (the board files the
    environments build with; for the QEMU boards the linker's regions, mcu/ports/<board>/board_memory.ld)."""
    from test_mcu_platform import memory_regions

    from bench.firmware.environments import MCU, environment_board

    for key, env in (("nucleo-h743zi", "check_nucleo_h743zi"), ("nucleo-f767zi", "check_nucleo_f767zi"), ("esp32", "check_esp32dev")):
        upload = environment_board(env)["upload"]
        assert (boards.get(key).flash, boards.get(key).ram) == (upload["maximum_size"], upload["maximum_ram_size"]), key
    s3 = environment_board("check_esp32-s3-devkitc-1")["upload"]
    assert (boards.get("esp32-s3").flash, boards.get("esp32-s3").ram) == (s3["maximum_size"], s3["maximum_ram_size"])
    for key, port in (("netduinoplus2", "qemu_stm32f405"), ("mps2-an500", "qemu_mps2_an500")):
        regions = memory_regions((MCU / "ports" / port / "board_memory.ld").read_text())
        assert (boards.get(key).flash, boards.get(key).ram) == (regions["FLASH"][1], regions["RAM"][1]), key


def _graph(ops: list[tuple[str, list[int], list[int], dict]], tensors: list[TensorInfo]) -> TfliteInfo:
    names = list(dict.fromkeys(op for op, *_ in ops))
    operators = [OperatorInfo(i, op, 1, tuple(ins), tuple(outs), opts) for i, (op, ins, outs, opts) in enumerate(ops)]
    return TfliteInfo([{"name": n, "version": 1} for n in names], operators, tensors, [0], [len(tensors) - 1], 1, "")


def _t(index, dtype="int8", scale=0.5, zero_point=-1, shape=(1, 4), constant=False) -> TensorInfo:
    return TensorInfo(index, f"model/t{index}", shape, dtype, (scale,), (zero_point,), 0, constant)


def test_preflight_catches_float_hybrid_unknown_ops_and_concat_mismatch():
    tensors = [_t(0), TensorInfo(1, "model/f1", (1, 4), "float32"), _t(2, constant=True), TensorInfo(3, "model/f3", (1, 4), "float32")]
    tensors += [_t(4), _t(5, scale=0.25), _t(6)]
    info = _graph(
        [
            ("DEQUANTIZE", [0], [1], {}),  # float op
            ("FULLY_CONNECTED", [1, 2], [3], {}),  # hybrid: float activations, int8 weights
            ("CUSTOM:Frobnicate", [0], [4], {}),  # no TFLM kernel
            ("CONCATENATION", [4, 5], [6], {}),  # input 5 has another scale
        ],
        tensors,
    )
    checks = {c.name: c for c in preflight.static_checks(info)}
    assert "#0 DEQUANTIZE (f1) is a float<->int8 conversion" in checks["no_float_ops"].detail
    assert "#1 FULLY_CONNECTED (f3) is a hybrid op" in checks["no_float_ops"].detail
    assert not checks["tflm_ops"].passed and "CUSTOM:Frobnicate" in checks["tflm_ops"].detail
    assert not checks["concat_quantization"].passed and "t5" in checks["concat_quantization"].detail
    with pytest.raises(PreflightError) as raised:
        preflight.require(list(checks.values()))
    assert {name for name, _ in raised.value.failures} == {"no_float_ops", "tflm_ops", "concat_quantization"}
    assert "must not be flashed" in str(raised.value)


def test_preflight_catches_softmax_scales_tflm_aborts_on():
    info = _graph([("SOFTMAX", [0], [1], {"beta": 1.0})], [_t(0, scale=7.8e-9), _t(1, scale=1 / 256, zero_point=-128)])
    check = preflight.check_softmax(info)
    assert not check.passed and "untrained" in check.detail
    fine = replace(info, tensors=[_t(0, scale=0.05), _t(1, scale=1 / 256, zero_point=-128)])
    assert preflight.check_softmax(fine).passed


def test_preflight_takes_filters_per_channel_or_per_tensor_but_not_in_between():
    def conv(scales: tuple) -> TfliteInfo:
        weights = TensorInfo(1, "model/w", (4, 3, 3, 2), "int8", scales, (0,) * len(scales), 0, True)
        return _graph([("CONV_2D", [0, 1], [2], {})], [_t(0), weights, _t(2)])

    assert preflight.check_weights(conv((0.1, 0.2, 0.3, 0.4))).passed
    per_tensor = preflight.check_weights(conv((0.1,)))
    assert per_tensor.passed and "1 of them, per tensor" in per_tensor.detail  # TFLM's conv kernels take one scale too
    two = preflight.check_weights(conv((0.1, 0.2)))
    assert not two.passed and "2 scales for 4 output channels" in two.detail


def test_preflight_refuses_a_real_float_model(tmp_path):
    import tensorflow as tf

    from model.squeezenet import squeezenet

    model = squeezenet("1.1", **TINY)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)  # no quantisation at all
    checks = {c.name: c for c in preflight.static_checks(inspect.read(converter.convert()))}
    assert not checks["int8_io"].passed and not checks["no_float_ops"].passed
    assert "CONV_2D" in checks["no_float_ops"].detail


def test_inspect_refuses_what_is_not_tflite(tmp_path):
    with pytest.raises(ValueError, match="TFL3"):
        inspect.read(b"not a model at all")


# --- the CLI and bad input -------------------------------------------------------------------------------------


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert "--board" in text and "--calibration-count" in text and "netduinoplus2" in text


def test_missing_model_file(tmp_path, capsys):
    assert main(["--model", str(tmp_path / "nope.keras"), "--data", "synthetic", "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "no such model file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_not_a_keras_file(tmp_path, capsys):
    fake = tmp_path / "model.keras"
    fake.write_text("hello")
    assert main(["--model", str(fake), "--data", "synthetic", "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "not a Keras 3 .keras archive" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not leftovers(tmp_path)


def test_output_path_that_is_a_file(tiny_keras, tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("precious")
    assert main(["--model", str(tiny_keras), "--data", "synthetic", "--out", str(out), "--quiet"]) == 2
    assert "output path is a file" in capsys.readouterr().err
    assert out.read_text() == "precious"


def test_output_folder_that_is_not_an_artifact(tiny_keras, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["--model", str(tiny_keras), "--data", "synthetic", "--out", str(out), "--quiet"]) == 2
    assert "not a conversion artifact" in capsys.readouterr().err and (out / "notes.txt").is_file()


def test_dataset_image_size_differs_from_the_model_input(tmp_path, capsys):
    import keras

    from model.squeezenet import squeezenet

    path = tmp_path / "m40.keras"
    squeezenet("1.1", **(TINY | {"input_size": 40})).save(path)
    keras.backend.clear_session()
    assert main(["--model", str(path), "--data", "synthetic", "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "32x32x3 images but the model takes 40x40x3" in err
    assert not (tmp_path / "out").exists() and not leftovers(tmp_path)


def test_unknown_board_and_wrong_label_count(tiny_keras, tmp_path, capsys):
    assert main(["--model", str(tiny_keras), "--data", "synthetic", "--out", str(tmp_path / "a"), "--board", "uno", "--quiet"]) == 2
    assert "unknown board 'uno'" in capsys.readouterr().err
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    assert main(["--model", str(tiny_keras), "--data", "synthetic", "--out", str(tmp_path / "b"), "--labels", str(labels), "--quiet"]) == 2
    assert "2 labels from --labels but the model has 10 outputs" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@needs_tflm
def test_untrained_softmax_is_refused_before_tflm_runs(tmp_path, capsys):
    path = tiny_model(tmp_path / "dead.keras", train=False, dead_logits=True)
    out = tmp_path / "build" / "dead"
    code = main(["--model", str(path), "--data", "synthetic", "--out", str(out), "--calibration-count", "20", "--quiet"])
    assert code == exit_codes.REFUSED
    err = capsys.readouterr().err
    assert "softmax_quantization" in err and "TFLM would abort" in err
    assert not out.exists() and not leftovers(out.parent)


@needs_tflm
def test_a_model_that_does_not_fit_the_chosen_board_is_refused(tiny_keras, tmp_path, monkeypatch):
    small = replace(boards.BOARDS["netduinoplus2"], flash=boards.BOARDS["netduinoplus2"].flash_reserved + 1000)
    monkeypatch.setitem(boards.BOARDS, "netduinoplus2", small)
    out = tmp_path / "build" / "tiny"
    with pytest.raises(PreflightError) as raised:
        artifact_module.convert_model(tiny_keras, "synthetic", out, board="netduinoplus2", calibration_count=20, progress=False)
    assert [name for name, _ in raised.value.failures] == ["board_fit"]
    assert "flash short by" in str(raised.value)
    assert not out.exists() and not leftovers(out.parent)


def test_a_calibration_indices_file_of_another_dataset_is_refused(tiny_keras, tmp_path):
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"indices": [1, 2], "dataset": {"fingerprint": "0" * 64}}))
    with pytest.raises(BadInputError, match="indices into dataset"):
        artifact_module.convert_model(tiny_keras, "synthetic", tmp_path / "x", calibration_indices=wrong, progress=False)
    assert not (tmp_path / "x").exists()
