"""Run one encoded tensor through the real C++ DECODE operator of the TFLM host interpreter (tflite-micro wheel).

`decode_model(...)` is a one-operator .tflite: an unused int8 input (the interpreter wants one), then
DECODE(encoded, ancillary) -> the output tensor with the given shape, type and quantization, which is the
subgraph's output. `decode_on_host(...)` runs it in `convert.tflm_host`'s worker process (a bad encoding
can crash the decoder; the worker turns that into an error) and returns the decoded tensor.
`host_decodes(method)` says whether this wheel's DECODE knows a format, by decoding a small sample.
"""

from __future__ import annotations

import numpy as np

from convert.decode_formats import Encoded, huffman, prune

TFLITE_TYPES = {"int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64", "float32": "FLOAT32", "bool": "BOOL"}


def decode_model(encoded: Encoded, shape, dtype, zero_points=None, quantized_dimension: int = 0) -> bytes:
    from tflite_micro.tensorflow.lite.micro.compression import model_editor as me
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    from convert.decode_formats.plan import _align

    quantization = None
    if zero_points:
        quantization = me.Quantization(scales=[1.0] * len(zero_points), zero_points=list(zero_points), axis=quantized_dimension)
    x = me.Tensor(shape=(1, 1), dtype=schema.TensorType.INT8, name="unused_input")
    data = me.Tensor(shape=(len(encoded.data),), dtype=schema.TensorType.UINT8, data=encoded.data, name="encoded")
    ancillary = me.Tensor(shape=(len(encoded.ancillary),), dtype=schema.TensorType.UINT8, data=encoded.ancillary, name="ancillary")
    kind = getattr(schema.TensorType, TFLITE_TYPES[np.dtype(dtype).name])
    out = me.Tensor(shape=tuple(shape), dtype=kind, quantization=quantization, name="decoded")
    op = me.Operator(opcode=schema.BuiltinOperator.CUSTOM, custom_code="TFLM_DECODE", inputs=[data, ancillary], outputs=[out])
    graph = me.Subgraph(tensors=[x, data, ancillary, out], operators=[op], inputs=[x], outputs=[out])
    return _align(bytes(me.Model(subgraphs=[graph]).build()))


def decode_on_host(encoded: Encoded, shape, dtype, zero_points=None, quantized_dimension: int = 0) -> np.ndarray:
    """The TFLM host interpreter's DECODE output for `encoded`. Raises convert.tflm_host.TflmError."""
    from convert import tflm_host

    model = decode_model(encoded, shape, dtype, zero_points, quantized_dimension)
    arena = (1 << 20) + 2 * int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    result = tflm_host.invoke_preserving(model, np.zeros((1, 1), np.int8), tensors=[3], arena_size=arena, timeout=120)
    return np.asarray(result[3][0]).reshape(shape).view(np.dtype(dtype))


def _sample() -> np.ndarray:
    return np.array([[0, 3, 0, -7, 0, 0, 3, 0], [0, 0, 0, 3, 3, 0, -128, 127]], np.int8)


def host_decodes(method: str) -> bool:
    """Whether the installed tflite-micro wheel's DECODE decodes `method` ("prune" or "huffman") correctly."""
    from convert import tflm_host

    sample = _sample()
    encoded = prune.encode(sample) if method == "prune" else huffman.encode(sample)
    try:
        return bool(np.array_equal(decode_on_host(encoded, sample.shape, sample.dtype), sample))
    except tflm_host.TflmError:
        return False
