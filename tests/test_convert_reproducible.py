"""Issue 15, item 4: the same Keras model converts to the same bytes under every thread count and instruction-set limit
that can be forced on this machine (convert.reproducible runs each in its own process), with the calibration
statistics from the reference kernels (convert/calibration.py). The CPUID-level check (qemu-x86_64 -cpu Haswell /
SandyBridge) is too slow for the suite: its figures are in docs/BENCHMARKS.md, "Reproducible conversion"."""

import json

import pytest

from convert import reproducible

pytestmark = pytest.mark.slow  # three conversions of a tiny model in subprocesses: ~35 s


@pytest.fixture(scope="module")
def tiny_untrained(tmp_path_factory):
    import keras

    from model.squeezenet import squeezenet

    keras.utils.set_random_seed(0)
    model = squeezenet("1.1", input_size=32, classes=10, base_e=16, incr_e=16, conv1_filters=16, batch_norm=True, dropout=0.0, name="tiny")
    path = tmp_path_factory.mktemp("repro") / "tiny.keras"
    model.save(path)
    return path


def test_bytes_equal_across_threads_and_isa_limits(tiny_untrained, tmp_path):
    report = tmp_path / "repro.json"
    status = reproducible.main(["--model", str(tiny_untrained), "--data", "synthetic", "--count", "20", "--json", str(report)])
    results = json.loads(report.read_text())
    assert list(results["configs"]) == list(reproducible.FAST_CONFIGS)
    assert status == 0 and results["equal"], results


def test_the_calibration_method_is_recorded_with_the_converter_settings():
    from convert import calibration, quantize

    assert quantize.converter_versions()["settings"]["calibration"] == calibration.METHOD


def test_a_missing_model_is_refused_with_exit_status_2(tmp_path, capsys):
    assert reproducible.main(["--model", str(tmp_path / "none.keras"), "--data", "synthetic"]) == 2
    assert "no such model" in capsys.readouterr().err
