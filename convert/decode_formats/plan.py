"""Per tensor of a model, which DECODE format stores it smallest (LUT, prune or Huffman), and applying that.

`plan(model, methods)` looks at the constant inputs of the filter operators (CONV_2D, DEPTHWISE_CONV_2D,
FULLY_CONNECTED): their int8 weights (every format) and int32 biases (prune only: LUT is planned for
weights by `convert.lut`, Huffman decodes int8/int16 only). It encodes each tensor in each allowed format
for its exact size and keeps the smallest, when that beats the raw bytes by more than the DECODE operator
and tensors it adds (`convert.lut.graph_overhead`). Prune and Huffman encodings are decoded again by the
Python ports of the C++ decoders (`prune.decode`, `huffman.decode`) and must give the tensor back bit for
bit before they are planned. `apply(model, plans)` rewrites the model as TFLM's own compressor does:
tflite_micro.compression's DECODE insertion (one DECODE before each consumer, the encoded data in the
tensor, a `<name>_ancillary` tensor, a `<name>_decoded` output with the original's quantization), then
its flatbuffer alignment; LUT tensors are encoded by its LUT compressor.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, field

import numpy as np

from convert import inspect_tflite as inspect
from convert import lut
from convert.decode_formats import EncodeError, huffman, prune

METHODS = ("lut", "prune", "huffman")
ROLES = ("weights", "bias")
WEIGHT_INPUT, BIAS_INPUT = 1, 2


@dataclass
class FormatPlan:
    index: int  # tensor index in subgraph 0
    name: str
    role: str  # "weights" or "bias"
    shape: list[int]
    dtype: str
    bytes_before: int
    sizes: dict[str, int] = field(default_factory=dict)  # method -> encoded + ancillary bytes
    refused: dict[str, str] = field(default_factory=dict)  # method -> why it cannot store this tensor
    method: str | None = None  # the chosen format, None: kept as it is
    lut_bits: int | None = None
    lut_axis: int | None = None  # the LUT's per-channel table axis (None: one table)
    compress: bool = False
    reason: str = ""

    @property
    def bytes_after(self) -> int:
        return self.sizes[self.method] if self.compress else self.bytes_before

    def to_dict(self) -> dict:
        return asdict(self) | {"bytes_after": self.bytes_after}


def _candidates(model: bytes) -> list[tuple[int, str]]:
    info = inspect.read(model)
    found: dict[int, str] = {}
    for op in info.operators:
        if op.op not in lut.FILTER_OPS:
            continue
        for position, role in ((WEIGHT_INPUT, "weights"), (BIAS_INPUT, "bias")):
            if len(op.inputs) > position and op.inputs[position] >= 0 and info.tensors[op.inputs[position]].constant:
                found.setdefault(op.inputs[position], role)
    wanted = {"weights": ("int8",), "bias": ("int32",)}
    return sorted((i, role) for i, role in found.items() if info.tensors[i].dtype in wanted[role])


def _lut_result(tensor, bits: int, axis: int | None):
    """TFLM's own LUT encoding of `tensor` (a model_editor.Tensor)."""
    from tflite_micro.tensorflow.lite.micro.compression import lut as tflm_lut
    from tflite_micro.tensorflow.lite.micro.compression import spec

    mode = spec.PerTensor() if axis is None else spec.PerChannel(axis=axis)
    return tflm_lut.LutCompressor().compress(tensor, spec.LookUpTableCompression(index_bitwidth=bits, mode=mode))


def _encode(method: str, array: np.ndarray, tensor_info):
    """(data, ancillary) of `array` in `method`; raises EncodeError, or ValueError if a decode disagrees."""
    zps, axis = list(tensor_info.zero_points) or None, tensor_info.quantized_dimension
    if method == "prune":
        encoded = prune.encode(array, zps, axis)
        back = prune.decode(encoded.data, encoded.ancillary, array.shape, array.dtype, zps, axis)
    elif method == "huffman":
        encoded = huffman.encode(array)
        back = huffman.decode(encoded.data, encoded.ancillary, array.size, array.dtype).reshape(array.shape)
    else:
        raise ValueError(method)
    if not np.array_equal(back.view(np.uint8), np.ascontiguousarray(array).view(np.uint8)):
        raise ValueError(f"the {method} encoding of {tensor_info.name} does not decode to it: an encoder bug")
    return encoded


def plan(model: bytes, methods=METHODS, max_bits: int = lut.MAX_INDEX_BITS, roles=ROLES) -> tuple[list[FormatPlan], dict]:
    """One FormatPlan per weight and bias tensor of the filter operators (`roles`: "weights", "bias"), and the
    encodings of the chosen ones ({tensor index: (data, ancillary)}; LUT ones are encoded by `apply`)."""
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    unknown = set(methods) - set(METHODS)
    if unknown or not methods:
        raise ValueError(f"methods {sorted(methods)}: choose from {', '.join(METHODS)}")
    info = inspect.read(model)
    graph = model_editor.read(model).subgraphs[0]
    lut_plans = {p.index: p for p in lut.plan(model, max_bits)} if "lut" in methods else {}
    plans, encodings = [], {}
    for index, role in _candidates(model):
        if role not in roles:
            continue
        tensor = info.tensors[index]
        array = np.asarray(graph.tensors[index].array)
        p = FormatPlan(index, tensor.name, role, list(array.shape), tensor.dtype, int(array.nbytes))
        found = {}
        for method in methods:
            try:
                if method == "lut":
                    lp = lut_plans.get(index)
                    if lp is None or lp.bits is None:
                        raise EncodeError(lp.reason if lp else "LUT is planned for int8 filter weights only")
                    result = _lut_result(graph.tensors[index], lp.bits, lp.axis)
                    p.sizes[method] = len(result.encoded_data) + len(result.ancillary_data)
                    p.lut_bits, p.lut_axis = lp.bits, lp.axis
                else:
                    found[method] = _encode(method, array, tensor)
                    p.sizes[method] = found[method].nbytes
            except EncodeError as why:
                p.refused[method] = str(why)
        overhead = lut.graph_overhead(tensor.name, max(1, len(tensor.scales)))
        if p.sizes:
            best = min(p.sizes, key=lambda m: (p.sizes[m], METHODS.index(m)))
            saved = p.bytes_before - p.sizes[best] - overhead
            p.method, p.compress = best, saved > 0
            if p.compress:
                p.reason = f"{best}: {p.bytes_before:,} -> {p.sizes[best]:,} B, saves about {saved:,} B"
                if best in found:
                    encodings[index] = (found[best].data, found[best].ancillary)
            else:
                p.reason = f"{best} ({p.sizes[best]:,} B) plus the DECODE operator (~{overhead} B) is not smaller than {p.bytes_before:,} B"
        else:
            p.reason = "; ".join(f"{m}: {why}" for m, why in p.refused.items())
        plans.append(p)
    return plans, encodings


def _align(model: bytes) -> bytes:
    """TFLM's flatbuffer alignment pass (the Python builder ignores the schema's force_align): a wheel tool
    that works on files."""
    from tflite_micro.tensorflow.lite.micro.tools import tflite_flatbuffer_align_wrapper

    with tempfile.TemporaryDirectory(prefix="squeezenet-mcu-align-") as folder:
        source, target = os.path.join(folder, "in.tflite"), os.path.join(folder, "out.tflite")
        with open(source, "wb") as f:
            f.write(model)
        tflite_flatbuffer_align_wrapper.align_tflite_model(source, target)
        with open(target, "rb") as f:
            return f.read()


def apply(model: bytes, plans: list[FormatPlan], encodings: dict) -> bytes:
    """`model` with every planned tensor in its format and DECODE operators inserted. Raises ValueError when
    nothing is to be compressed, RuntimeError when the result is not what was planned."""
    import warnings

    from tflite_micro.tensorflow.lite.micro.compression import compressor, decode_insert, model_editor

    chosen = [p for p in plans if p.compress]
    if not chosen:
        raise ValueError("no tensor is worth compressing")
    edited = model_editor.read(model)
    graph = edited.subgraphs[0]
    results = {}
    for p in chosen:
        if p.method == "lut":
            results[(0, p.index)] = _lut_result(graph.tensors[p.index], p.lut_bits, p.lut_axis)
        else:
            data, ancillary = encodings[p.index]
            results[(0, p.index)] = compressor.CompressionResult(encoded_data=data, ancillary_data=ancillary)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        decode_insert.insert_decode_operators(edited, results)
    result = _align(bytes(edited.build()))
    lut.require_compressed(result, chosen, caught)
    return result


def decoded_tensors(compressed: bytes, plans: list[FormatPlan]) -> dict[int, int]:
    """{original tensor index: index of a DECODE output holding it} in the compressed model: what the real
    decoder must reproduce element for element."""
    info = inspect.read(compressed)
    by_name = {t.name: t.index for t in info.tensors}
    return {p.index: by_name[f"{p.name}_decoded"] for p in plans if p.compress and f"{p.name}_decoded" in by_name}
