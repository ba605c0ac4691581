"""Calibration statistics that do not depend on the machine: every tensor's min and max, measured with LiteRT's
reference kernels (plain single-threaded C++ loops, compiled once into the pinned wheel) instead of the
optimized kernels the TFLite calibrator runs.

Why: the converter calibrates by running the float model in a TFLite interpreter with its optimized kernels, whose
float results may depend on the CPU they run on (kernels chosen at run time by instruction set, summation order);
the min/max of each tensor sets its int8 scale and zero point, so the bytes of model.tflite would follow the CPU.
Min and max over the calibration images do not depend on the order they are taken in; the only machine-dependent
input left is the float activations, and the reference kernels compute those the same way on any x86-64 machine.

`reference_calibration()` patches the converter's `Calibrator.calibrate` for the duration of one conversion: the
calibrator runs as usual (it writes the statistics into the model where the quantizer reads them), then each
tensor's min/max is replaced by the reference kernels' one. docs/ARCHITECTURE.md ("Reproducible conversion") and
docs/BENCHMARKS.md record what was measured.
"""

from __future__ import annotations

import contextlib

import numpy as np

from convert.errors import ConversionError

METHOD = "min/max per tensor from LiteRT reference kernels (BUILTIN_REF), single-threaded, float32 activations"
# What the bytes of model.tflite still depend on (recorded in model.json): not the CPU, its thread count or oneDNN
# (measured with python -m convert.reproducible, docs/BENCHMARKS.md "Reproducible conversion").
BYTES_DEPEND_ON = [
    "the .keras model",
    "the calibration images (calibration_indices.json and the dataset fingerprint)",
    "the TensorFlow wheel (its converter and reference kernels) and Keras, as recorded here; x86-64 builds",
]


def reference_min_max(model_content: bytes, samples: list[list[np.ndarray]], tensor_indices: list[int]) -> dict[int, tuple[float, float]]:
    """Min and max of each tensor in `tensor_indices` over `samples` (one list of input arrays per sample), run
    on the float model `model_content` with the reference kernels."""
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(
        model_content=model_content,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF,
        experimental_preserve_all_tensors=True,  # intermediate tensors stay readable after Invoke
        num_threads=1,
    )
    interpreter.allocate_tensors()
    inputs = [d["index"] for d in interpreter.get_input_details()]
    low = {i: np.inf for i in tensor_indices}
    high = {i: -np.inf for i in tensor_indices}
    for sample in samples:
        if len(sample) != len(inputs):
            raise ConversionError(f"a calibration sample has {len(sample)} inputs, the model takes {len(inputs)}")
        for index, value in zip(inputs, sample, strict=True):
            interpreter.set_tensor(index, value)
        interpreter.invoke()
        for i in tensor_indices:
            values = interpreter.get_tensor(i)
            if values.size == 0:
                continue
            if not np.all(np.isfinite(values)):
                raise ConversionError(f"tensor {i} ({interpreter.get_tensor_details()[i]['name']}) is not finite in calibration")
            low[i] = min(low[i], float(values.min()))
            high[i] = max(high[i], float(values.max()))
    return {i: (low[i], high[i]) for i in tensor_indices if np.isfinite(low[i])}


def replace_statistics(calibrated: bytes, model_content: bytes, samples: list) -> bytes:
    """The calibrator's output `calibrated` with each tensor's min/max replaced by the reference kernels' one."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(calibrated)
    if len(model.subgraphs) != 1:
        raise ConversionError(f"reference calibration handles one subgraph; this model has {len(model.subgraphs)}")
    tensors = model.subgraphs[0].tensors
    with_stats = [
        i for i, t in enumerate(tensors) if t.quantization is not None and t.quantization.min is not None and len(t.quantization.min)
    ]
    if any(len(tensors[i].quantization.min) != 1 for i in with_stats):
        raise ConversionError("reference calibration expects one min/max per tensor (per-tensor activation statistics)")
    measured = reference_min_max(model_content, samples, with_stats)
    missing = sorted(set(with_stats) - set(measured))
    if missing:
        raise ConversionError(f"the reference kernels gave no values for tensors {missing[:5]} that the calibrator measured")
    for i in with_stats:
        low, high = measured[i]
        tensors[i].quantization.min = [np.float32(low)]
        tensors[i].quantization.max = [np.float32(high)]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


@contextlib.contextmanager
def reference_calibration():
    """While active, the TFLite converter's calibration statistics come from the reference kernels (see module doc)."""
    from tensorflow.lite.python.optimize import calibrator

    original = calibrator.Calibrator.calibrate

    def calibrate(self, dataset_gen):
        raw = list(dataset_gen())
        if any(not isinstance(s, list | tuple) for s in raw):  # checked before list() would turn a dict into its keys
            raise ConversionError("reference calibration takes list samples (one array per model input)")
        samples = [list(sample) for sample in raw]
        calibrated = original(self, lambda: iter(samples))
        return replace_statistics(bytes(calibrated), self._model_content, samples)

    calibrator.Calibrator.calibrate = calibrate
    try:
        yield
    finally:
        calibrator.Calibrator.calibrate = original
