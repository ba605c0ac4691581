"""Splitting a CONV_2D along its output channels into pieces whose outputs are concatenated: the same
numbers, in smaller layers.

Why: TFLM's DECODE expands a compressed filter whole, into the arena, while its layer runs. SqueezeNet's
largest filters (fire8/9 expand3x3, 147,456 B) are larger than the 128 KiB of SRAM QEMU's netduinoplus2 (an
STM32F405) models, so a compressed model cannot fit there however the arena is planned. A convolution computes each output channel from its
own filter slice, bias and (per-channel) requantisation, independently of the other channels, so k
convolutions over slices of the filter, concatenated along the channel axis with the output's own
quantisation, give the original output byte for byte. Each piece's filter is then decoded, used and
dropped in turn, and the memory planner reuses the same bytes for the next piece.

`split(model, pieces)` rewrites a .tflite: `pieces` maps a filter tensor's name to a number of pieces.
When the layer's output feeds only a CONCATENATION along the channel axis (a Fire module's expand
layers), the pieces join that concatenation; otherwise a CONCATENATION is added that rebuilds the output
tensor. The pieces are read back and compared with the original's filter, bias and quantisation before
the model is returned. Piece tensors are named `<filter>/part<i>`; `source_name` maps them back.
"""

from __future__ import annotations

import copy

import numpy as np

PART = "/part"
CHANNEL_AXIS = 3  # NHWC: a CONV_2D's output channels


class SplitError(ValueError):
    """The model cannot be split as asked (no such filter, more pieces than channels, not a CONV_2D)."""


def source_name(tensor_name: str) -> str:
    """The original filter's name of a piece (`<filter>/part<i>`), or the name itself."""
    head, sep, tail = tensor_name.rpartition(PART)
    return head if sep and tail.isdigit() else tensor_name


def piece_bounds(channels: int, pieces: int) -> list[tuple[int, int]]:
    """[start, stop) output channels of each piece: as equal as the channel count allows."""
    edges = np.linspace(0, channels, pieces + 1).round().astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


def _conv_filter(op):
    """The constant filter tensor of a model_editor CONV_2D operator, else None: what can be split."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    if op.opcode != schema.BuiltinOperator.CONV_2D or len(op.inputs) < 2 or op.inputs[1] is None or op.inputs[1].buffer is None:
        return None
    return op.inputs[1]


def splittable_filters(model: bytes) -> dict[str, int]:
    """{filter tensor name: output channels} of the CONV_2D layers with a constant filter."""
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    filters = (_conv_filter(op) for op in model_editor.read(model).subgraphs[0].operators)
    return {f.name: int(f.shape[0]) for f in filters if f is not None}


def split(model: bytes, pieces: dict[str, int]) -> bytes:
    """`model` with the CONV_2D of each filter named in `pieces` split into that many pieces (1: unchanged).
    Raises SplitError when a name is not a CONV_2D filter or asks for more pieces than output channels,
    ValueError when the rewritten model does not read back as the original's slices."""
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    wanted = {name: count for name, count in pieces.items() if count > 1}
    channels = splittable_filters(model)
    for name, count in wanted.items():
        if name not in channels:
            raise SplitError(f"{name}: not the constant filter of a CONV_2D")
        if count > channels[name]:
            raise SplitError(f"{name}: {count} pieces asked, but the layer has {channels[name]} output channels")
    if not wanted:
        return model
    edited = model_editor.read(model)
    graph = edited.subgraphs[0]
    operators = []
    for op in graph.operators:
        weights = _conv_filter(op)
        name = weights.name if weights is not None else None
        if name not in wanted:
            operators.append(op)
            continue
        parts = _pieces_of(op, piece_bounds(channels[name], wanted[name]), graph)
        operators.extend(parts)
        _join(op.outputs[0], [p.outputs[0] for p in parts], graph, operators)
    graph.operators[:] = operators
    used = {id(t) for op in operators for t in [*op.inputs, *op.outputs] if t is not None}
    used |= {id(t) for t in [*graph.inputs, *graph.outputs]}
    graph.tensors[:] = [t for t in graph.tensors if id(t) in used]
    result = bytes(edited.build())
    _require_slices(model, result, wanted)
    return result


def _sliced(tensor, start: int, stop: int, name: str, model_editor):
    """A copy of a per-output-channel constant (filter or bias) holding channels [start, stop)."""
    piece = tensor.copy(name=name)
    piece.buffer = model_editor.Buffer(data=np.ascontiguousarray(tensor.array[start:stop]).tobytes())
    piece.shape = (stop - start, *tensor.shape[1:])
    q = tensor.quantization
    if q is not None and np.size(q.scales) > 1:
        zero_points = np.broadcast_to(np.atleast_1d(q.zero_points), np.shape(np.atleast_1d(q.scales)))
        piece.quantization = model_editor.Quantization(
            scales=[float(s) for s in np.atleast_1d(q.scales)[start:stop]],
            zero_points=[int(z) for z in zero_points[start:stop]],
            axis=q.axis,
        )
    return piece


def _pieces_of(op, bounds, graph) -> list:
    """The CONV_2D operators, one per [start, stop) channel range, that replace `op`."""
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    data, weights, bias = op.inputs[0], op.inputs[1], op.inputs[2] if len(op.inputs) > 2 else None
    output = op.outputs[0]
    parts = []
    for i, (start, stop) in enumerate(bounds):
        new_weights = _sliced(weights, start, stop, f"{weights.name}{PART}{i}", model_editor)
        new_bias = None if bias is None else _sliced(bias, start, stop, f"{bias.name}{PART}{i}", model_editor)
        new_output = output.copy(name=f"{output.name}{PART}{i}")
        new_output.buffer = None
        new_output.shape = (*output.shape[:-1], stop - start)
        graph.tensors.extend(t for t in (new_weights, new_bias, new_output) if t is not None)
        inputs = [data, new_weights] + ([new_bias] if len(op.inputs) > 2 else [])
        parts.append(model_editor.Operator(opcode=op.opcode, inputs=inputs, outputs=[new_output], _fb=copy.deepcopy(op._fb)))
    return parts


def _join(output, pieces: list, graph, operators: list) -> None:
    """Make `pieces` stand for `output`: spliced into its one consumer when that is a CONCATENATION along
    the channel axis (the same numbers, no extra copy), else a new CONCATENATION that writes `output`."""
    from tflite_micro.tensorflow.lite.micro.compression import model_editor
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    consumers = [op for op in graph.operators if any(t is output for t in op.inputs)]
    is_output = any(t is output for t in graph.outputs)
    if len(consumers) == 1 and not is_output and consumers[0].opcode == schema.BuiltinOperator.CONCATENATION:
        concat = consumers[0]
        options = concat._fb.builtinOptions
        rank = len(output.shape)
        if options is not None and options.axis % rank == CHANNEL_AXIS and options.fusedActivationFunction == 0:
            at = next(i for i, t in enumerate(concat.inputs) if t is output)
            concat.inputs[at : at + 1] = pieces
            return
    fb = schema.OperatorT()
    fb.builtinOptionsType = schema.BuiltinOptions.ConcatenationOptions
    fb.builtinOptions = schema.ConcatenationOptionsT()
    fb.builtinOptions.axis = CHANNEL_AXIS
    operators.append(model_editor.Operator(opcode=schema.BuiltinOperator.CONCATENATION, inputs=pieces, outputs=[output], _fb=fb))


def _require_slices(original: bytes, result: bytes, wanted: dict[str, int]) -> None:
    """Raise ValueError unless every split filter's pieces, read back from `result`, concatenate to the
    original's filter, bias and per-channel scales."""
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    before = {f.name: op for op in model_editor.read(original).subgraphs[0].operators if (f := _conv_filter(op)) is not None}
    after: dict[str, list] = {}
    for op in model_editor.read(result).subgraphs[0].operators:
        if (f := _conv_filter(op)) is not None and source_name(f.name) in wanted:
            after.setdefault(source_name(f.name), []).append(op)
    for name, count in wanted.items():
        parts = after.get(name, [])
        if len(parts) != count:
            raise ValueError(f"{name}: {len(parts)} pieces in the split model, {count} planned")
        for role in (1, 2):
            if len(before[name].inputs) <= role:
                continue
            whole = before[name].inputs[role]
            joined = np.concatenate([p.inputs[role].array for p in parts])
            scales = np.concatenate([np.atleast_1d(p.inputs[role].quantization.scales) for p in parts]) if whole.quantization else None
            if not np.array_equal(joined, whole.array) or (
                scales is not None and np.size(whole.quantization.scales) > 1 and not np.array_equal(scales, whole.quantization.scales)
            ):
                raise ValueError(f"{name}: the split pieces do not read back as the original's slices")
