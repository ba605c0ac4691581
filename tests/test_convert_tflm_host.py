"""convert.tflm_host: the TFLM host interpreter in a worker process (arena, invoke, intermediates, crashes)."""

from __future__ import annotations

import numpy as np
import pytest

from convert import tflm_host
from convert.inspect_tflite import read

pytestmark = pytest.mark.skipif(not tflm_host.available(), reason="tflite-micro is not installed (Linux x86_64 wheels only)")

SMALL = dict(input_size=32, classes=10, base_e=16, incr_e=16, conv1_filters=8, batch_norm=True)


def _small_tflite(dead_logits: bool = False) -> bytes:
    import keras

    from convert.quantize import to_int8_tflite
    from model.data import load_dataset
    from model.squeezenet import squeezenet

    keras.utils.set_random_seed(1)
    model = squeezenet("1.1", **SMALL)
    if dead_logits:  # constant logits: a softmax input scale of ~1e-8, on which TFLM aborts in Prepare
        conv10 = model.get_layer("conv10")
        conv10.set_weights([np.zeros_like(w) for w in conv10.get_weights()])
    return to_int8_tflite(model, load_dataset("synthetic").train.images[:20], progress=False)


@pytest.fixture(scope="module")
def small() -> bytes:
    return _small_tflite()


@pytest.fixture(scope="module")
def inputs() -> np.ndarray:
    return np.random.default_rng(0).integers(-128, 128, (3, 32, 32, 3), dtype=np.int8)


def test_measure_arena(small):
    usage = tflm_host.measure_arena(small)
    assert usage.total == usage.head + usage.tail and usage.head > 0 and usage.tail > 0
    assert usage.arena_size == tflm_host.default_arena_size(len(small))
    assert {r["what"] for r in usage.records} >= {"TfLiteEvalTensor data", "Persistent buffer data"}
    assert usage.to_dict()["measured_by"] == "tflite-micro host interpreter"
    # The measured total is enough, and 16 bytes fewer is not: the figure is exact.
    assert tflm_host.measure_arena(small, arena_size=usage.total).total == usage.total
    with pytest.raises(tflm_host.TflmFailure) as failed:
        tflm_host.measure_arena(small, arena_size=usage.total - 16)
    assert failed.value.stage == "allocate" and "missing:" in failed.value.stderr_tail  # TFLM says how many bytes


def test_an_abort_inside_tflm_becomes_an_exception():
    dead = _small_tflite(dead_logits=True)
    with pytest.raises(tflm_host.TflmCrash) as crashed:
        tflm_host.measure_arena(dead)
    assert crashed.value.signal_name == "SIGABRT" and crashed.value.returncode < 0
    assert "crashed (signal SIGABRT)" in str(crashed.value)


def test_invoke_matches_litert_reference_kernels_bit_for_bit(small, inputs):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    outputs = tflm_host.invoke(small, inputs)
    assert outputs.shape == (3, 10) and outputs.dtype == np.int8
    reference = Interpreter(model_content=small, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    reference.allocate_tensors()
    index_in, index_out = reference.get_input_details()[0]["index"], reference.get_output_details()[0]["index"]
    for sample, output in zip(inputs, outputs, strict=True):
        reference.set_tensor(index_in, sample[None])
        reference.invoke()
        np.testing.assert_array_equal(reference.get_tensor(index_out)[0], output)


def test_invoke_preserving_returns_every_intermediate(small, inputs):
    info = read(small)
    result = tflm_host.invoke_preserving(small, inputs[:2])
    computed = [t.index for t in info.tensors if not t.constant]
    assert sorted(k for k in result if k != "outputs") == computed
    for index in computed:
        assert result[index].shape == (2, *info.tensors[index].shape)
    np.testing.assert_array_equal(result[info.outputs[0]][:, 0], result["outputs"])
    np.testing.assert_array_equal(result[info.inputs[0]][:, 0], inputs[:2])
    np.testing.assert_array_equal(result["outputs"], tflm_host.invoke(small, inputs[:2]))
    chosen = tflm_host.invoke_preserving(small, inputs[:1], tensors=[info.outputs[0]])
    assert set(chosen) == {"outputs", info.outputs[0]}


def test_requests_that_do_not_fit_the_model(small, inputs):
    with pytest.raises(ValueError, match="the model takes int8 batches of"):
        tflm_host.invoke(small, inputs.astype(np.float32))
    with pytest.raises(ValueError, match="out of range"):
        tflm_host.invoke_preserving(small, inputs[:1], tensors=[len(read(small).tensors)])
    with pytest.raises(tflm_host.TflmTimeout):
        tflm_host.invoke(small, inputs, timeout=0.001)


def test_parse_allocation_report():
    text = (
        "noise\n[RecordingMicroAllocator] Arena allocation total 102816 bytes\n"
        "[RecordingMicroAllocator] Arena allocation head 69632 bytes\n[RecordingMicroAllocator] Arena allocation tail 33184 bytes\n"
        "[RecordingMicroAllocator] 'NodeAndRegistration struct' used 2624 bytes with alignment overhead "
        "(requested 2624 bytes for 41 NodeAndRegistration structs)\n"
    )
    report = tflm_host.parse_allocation_report(text)
    assert report["totals"] == {"total": 102816, "head": 69632, "tail": 33184}
    assert report["records"] == [
        {"what": "NodeAndRegistration struct", "used": 2624, "requested": 2624, "count": 41, "unit": "NodeAndRegistration structs"}
    ]
