"""python -m convert --tflite: an existing full-int8 model (MLPerf Tiny's ResNet-8, which no one here trained) made into
the same artifact, refused with a clear error when it is not such a model, and run bit-exact on the emulated board."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convert import inspect_tflite
from convert.__main__ import main as convert_main
from convert.errors import BadInputError, PreflightError
from convert.from_tflite import import_tflite, layer_costs
from model.data import CIFAR10_LABELS

ROOT = Path(__file__).resolve().parents[1]
RESNET8 = ROOT.parent / "shared" / "models" / "mlperf_tiny_ic_resnet8_int8.tflite"


@pytest.fixture
def resnet8() -> Path:
    if not RESNET8.is_file():
        pytest.skip(f"needs {RESNET8} (../shared/models)")
    return RESNET8


def test_resnet8_becomes_an_artifact_with_its_costs_read_from_the_graph(resnet8, tmp_path):
    out = tmp_path / "resnet8"
    assert convert_main(["--tflite", str(resnet8), "--labels", str(write_labels(tmp_path)), "--out", str(out), "--quiet"]) == 0
    meta = json.loads((out / "model.json").read_text())
    assert meta["tflite_bytes"] == 98_496 and (out / "model.tflite").read_bytes() == resnet8.read_bytes()
    assert meta["source_model"]["kind"] == "tflite" and meta["calibration"]["count"] == 0
    assert meta["input"]["scale"] == 1.0 and meta["input"]["zero_point"] == -128
    # ResNet-8: 9 convolutions and one dense layer; MLPerf Tiny quotes about 12.5 M MACs.
    assert meta["macs"] == 12_501_632 and meta["parameters"] == 77_708
    assert sum(1 for row in meta["layers"] if row["macs"]) == 10
    report = (out / "report.md").read_text()
    assert "imported full-int8 model" in report and "taken as it is" in report
    assert "#include" in (out / "firmware" / "model_op_resolver.h").read_text()


def test_layer_costs_count_conv_and_dense_macs(resnet8):
    info = inspect_tflite.read(resnet8)
    rows = {row["block"]: row for row in layer_costs(info)}
    first = rows["activation/Relu (CONV_2D)"]  # 3x3x3 -> 16 channels at 32x32
    assert first["macs"] == 32 * 32 * 16 * 3 * 3 * 3 and first["params"] == 16 * 3 * 3 * 3 + 16
    assert rows["dense/MatMul (FULLY_CONNECTED)"]["macs"] == 64 * 10


def write_labels(folder: Path) -> Path:
    path = folder / "labels.txt"
    path.write_text("\n".join(CIFAR10_LABELS) + "\n")
    return path


def test_bad_models_are_refused_before_anything_is_written(resnet8, tmp_path, tiny_float_tflite, capsys):
    good = resnet8.read_bytes()
    cases = {
        "not-a-model.tflite": (b"PK\x03\x04 this is a zip file" * 10, "not a TFLite flatbuffer"),
        "truncated.tflite": (good[: len(good) // 3], "truncated, or an offset"),
        "float.tflite": (tiny_float_tflite, "float"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        out = tmp_path / f"out-{name}"
        with pytest.raises((BadInputError, PreflightError), match=message):
            import_tflite(path, out, labels=CIFAR10_LABELS[:2] if name == "float.tflite" else CIFAR10_LABELS, progress=False)
        assert not out.exists() and not list(tmp_path.glob(f".out-{name}.tmp-*"))
    with pytest.raises(BadInputError, match="3 labels but the model has 10 outputs"):
        import_tflite(resnet8, tmp_path / "x", labels=CIFAR10_LABELS[:3], progress=False)
    assert convert_main(["--tflite", str(resnet8), "--out", str(tmp_path / "y")]) == 2
    assert "needs --labels FILE" in capsys.readouterr().err


@pytest.fixture
def tiny_float_tflite() -> bytes:
    """A float model with 2 outputs: what a user gets from the converter without full-int8 settings."""
    import keras
    import tensorflow as tf

    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3), keras.layers.GlobalAveragePooling2D()])
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


@pytest.mark.qemu
@pytest.mark.tflm
@pytest.mark.data
def test_resnet8_runs_bit_exact_on_the_emulated_stm32f405(resnet8, tmp_path, cifar10_dir):
    from conftest import require_tflm_tree

    from bench.pipeline import main_job as pipeline

    require_tflm_tree()
    build = tmp_path / "resnet8"
    import_tflite(resnet8, build, labels=CIFAR10_LABELS, board="netduinoplus2", progress=False)
    # Apart from the SqueezeNet firmware's build, in a fixed folder inside mcu/: object paths are then the same in
    # every clone, so a fresh clone takes TFLM's objects from the build cache instead of compiling them again.
    firmware = pipeline.stage_firmware(build, build_dir=ROOT / "mcu" / ".pio" / "build-resnet8")
    result = pipeline.stage_device(build, str(cifar10_dir), 5, tmp_path / "report", Path(firmware["elf"]))
    assert result["status"] == "ok", result
    assert result["images"] == result["bit_identical"] == 5
