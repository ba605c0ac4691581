"""Which int8 weight tensors TFLM's look-up-table (LUT) compression can shrink, and compressing them.

TFLM's LUT compression (the `tflite_micro.compression` module of the tflite-micro wheel) stores a tensor
as b-bit indices (b = 1..7) into value tables, one table per output channel here, and inserts a DECODE
operator (custom op "TFLM_DECODE") that expands it into the arena just before the operator that reads
it. It is lossless: the decoded tensor is bit for bit the original. It pays only when each channel holds
few distinct values: a channel with u distinct values needs ceil(log2 u) index bits per weight plus a
u-byte table, so an ordinary int8 model (about 100-250 distinct values per channel) gains nothing, while
a model clustered per output channel (`python -m experiments.cluster`, 2**bits values) shrinks to about
bits/8 of its weight bytes.

`plan(model)` decides per weight tensor (filters of CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED): the
smallest index width that holds the worst channel, and whether that saves bytes. `compress(model, plans)`
applies the plan. Tables follow the tensor's quantised dimension: the DECODE kernel of the TFLM tree
the firmware builds (tensorflow/lite/micro/kernels/decode_state_lut.cc) counts its channels from the
quantisation parameters, not from the table header, so the two must agree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from convert import inspect_tflite as inspect
from model.clustering import unique_counts

FILTER_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
DECODE_OP = "CUSTOM:TFLM_DECODE"
MAX_INDEX_BITS = 7  # the DECODE header's bit-width field holds 1..7
DCM_BYTES = 16  # the decode common metadata that opens every ancillary tensor
# What one compressed tensor adds to the flatbuffer besides its indices and tables: a DECODE operator,
# an ancillary tensor and a decoded-output tensor, both named after the original, the latter with a copy
# of its quantisation (a float32 scale and an int64 zero point per channel). An estimate, used only to
# skip tensors whose saving it would eat (fitted on SqueezeNet within 1%); real sizes are measured after.
GRAPH_OVERHEAD_BYTES = 128
QUANTIZATION_BYTES_PER_CHANNEL = 12


def graph_overhead(name: str, channels: int) -> int:
    return GRAPH_OVERHEAD_BYTES + 2 * len(name.encode()) + QUANTIZATION_BYTES_PER_CHANNEL * channels


@dataclass
class TensorPlan:
    index: int  # tensor index in subgraph 0
    name: str
    consumers: list[str]  # the operators reading it, e.g. "CONV_2D #12"
    shape: list[int]
    axis: int | None  # the per-channel table axis (the quantised dimension), None for one table
    tables: int
    max_unique: int  # distinct values in the worst channel (or the tensor, for one table)
    bits: int | None  # index bits that hold max_unique; None when more than MAX_INDEX_BITS are needed
    bytes_before: int  # the int8 data
    index_bytes: int
    table_bytes: int  # the ancillary tensor: header + value tables
    compress: bool
    reason: str

    @property
    def bytes_after(self) -> int:
        return self.index_bytes + self.table_bytes if self.compress else self.bytes_before

    def to_dict(self) -> dict:
        return asdict(self) | {"bytes_after": self.bytes_after}


def index_bits(unique: int) -> int:
    """The index width the compressor uses for `unique` values: the bit length of the largest index."""
    return max(1, (int(unique) - 1).bit_length())


def _weights(model: bytes) -> dict[int, np.ndarray]:
    """The constant int8 filter tensors of the filter ops, by tensor index, with their data."""
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    info = inspect.read(model)
    wanted = {op.inputs[1] for op in info.operators if op.op in FILTER_OPS and len(op.inputs) > 1 and op.inputs[1] >= 0}
    wanted = {i for i in wanted if info.tensors[i].constant and info.tensors[i].dtype == "int8"}
    graph = model_editor.read(model).subgraphs[0]
    return {i: np.asarray(graph.tensors[i].array) for i in sorted(wanted)}


def plan(model: bytes, max_bits: int = MAX_INDEX_BITS) -> list[TensorPlan]:
    """One TensorPlan per int8 filter tensor of `model` (.tflite bytes), in tensor order."""
    if not 1 <= max_bits <= MAX_INDEX_BITS:
        raise ValueError(f"max_bits={max_bits}: LUT indices are 1..{MAX_INDEX_BITS} bits")
    info = inspect.read(model)
    consumers: dict[int, list[str]] = {}
    for op in info.operators:
        for i in op.inputs:
            consumers.setdefault(i, []).append(f"{op.op} #{op.index}")
    plans = []
    for index, array in _weights(model).items():
        tensor = info.tensors[index]
        axis = tensor.quantized_dimension if tensor.per_channel else None
        entry = dict(index=index, name=tensor.name, consumers=consumers.get(index, []), shape=list(array.shape), axis=axis)
        entry |= dict(tables=0, max_unique=0, bits=None, bytes_before=int(array.size), index_bytes=0, table_bytes=0, compress=False)
        if axis is not None and axis not in (0, array.ndim - 1):
            plans.append(TensorPlan(**entry, reason=f"quantised along axis {axis}; the DECODE kernel takes axis 0 or the last"))
            continue
        counts = unique_counts(array, axis)
        tables, worst = len(counts), int(counts.max())
        bits = index_bits(worst)
        entry |= dict(tables=tables, max_unique=worst)
        if bits > max_bits:
            reason = f"{worst} distinct values in a channel need {bits} index bits, more than {max_bits}: nothing to gain"
            plans.append(TensorPlan(**entry, reason=reason))
            continue
        index_bytes = -(-array.size * bits // 8)
        table_bytes = DCM_BYTES + tables * worst  # every table is padded to the longest (int8: one byte a value)
        saved = array.size - index_bytes - table_bytes - graph_overhead(tensor.name, len(tensor.scales))
        entry |= dict(bits=bits, index_bytes=index_bytes, table_bytes=table_bytes, compress=saved > 0)
        if saved > 0:
            reason = f"{bits}-bit indices, {tables} table(s) of {worst} values: saves about {saved:,} B"
        else:
            reason = (
                f"{bits}-bit indices ({index_bytes:,} B) plus {tables} table(s) of {worst} values ({table_bytes:,} B) and the DECODE "
                f"operator would not be smaller than the {array.size:,} int8 bytes"
            )
        plans.append(TensorPlan(**entry, reason=reason))
    return plans


def compress(model: bytes, plans: list[TensorPlan]) -> bytes:
    """`model` with every tensor whose plan says so LUT-compressed (DECODE operators inserted). Raises
    ValueError when nothing is to be compressed, RuntimeError when the result is not what was planned."""
    import warnings

    from tflite_micro import compression
    from tflite_micro.tensorflow.lite.micro.compression import spec

    chosen = [p for p in plans if p.compress]
    if not chosen:
        raise ValueError("no tensor is worth compressing")
    builder = compression.SpecBuilder()
    for p in chosen:
        mode = spec.PerTensor() if p.axis is None else spec.PerChannel(axis=p.axis)
        builder.add_tensor(subgraph=0, tensor=p.index).with_lut(index_bitwidth=p.bits, mode=mode)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = bytes(compression.compress(model, builder.build()))
    require_compressed(result, chosen, caught)
    return result


def require_compressed(result: bytes, chosen, caught: list) -> None:
    """Raise RuntimeError unless every planned tensor (`.name`, `.index`) became uint8 indices in `result`.
    TFLM's compressor and DECODE inserter skip, with a warning (`caught`), a tensor whose buffer an uncompressed
    tensor shares; a plan that silently did not happen would misreport the sizes."""
    info = inspect.read(result)
    missed = [p.name for p in chosen if info.tensors[p.index].dtype != "uint8"]
    if missed:
        notes = "; ".join(str(w.message) for w in caught)
        raise RuntimeError(f"{len(missed)} planned tensor(s) were left uncompressed: {missed[:3]} ({notes})")
