"""Per-layer view of a `.tflite`: each operator named after its Keras layer, with its MACs, joined with a device's
PROFILE records.

`model_layers(model_bytes)` lists the operators in execution order (TFLM runs a single subgraph's operators in
the flatbuffer's order, and the firmware's profiler records one event per operator in that order):
index, op, name (`fire3_expand3x3`, from the output tensor's name: the converter names tensors after the Keras
layers they came from), output shape, kernel (`3x3, 16->64`), MACs (convolutions: output pixels x output
channels x kernel height x width x input channels; other ops: 0) and, for a convolution, the CMSIS-NN path its
shapes select (`cmsis_nn_path`).

`join_profile(layers, records, timing, dropped)` pairs record i with operator i; a record whose tag is not the
operator's op, or a count that differs, makes the join fail with the reason (a profile from another model, or
short with no ops dropped), never a silently shifted table. A profile the firmware's profiler truncated (PROFILE's
`dropped`: the ops it had no room for) joins its records with the first operators when records + dropped is the
operator count; `truncation(dropped)` is the sentence every report then shows.

`profiler_cost(ticks_with, ticks_without, timing)`: the profiler's own cost, from the same input through
`Invoke()` with the profiler and without it (INVOKE's profile flag), in the timer's honest unit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# TFLite Padding enum: SAME = 0, VALID = 1
_SAME = 0


@dataclass(frozen=True)
class Layer:
    index: int
    op: str
    name: str
    output: tuple[int, ...]  # without the batch axis
    kernel: str  # "3x3, 16->64" for a convolution, "" otherwise
    macs: int
    cmsis_nn_path: str  # the CMSIS-NN function a convolution takes; "" for other ops

    def to_dict(self) -> dict:
        return asdict(self)


def cmsis_nn_path(kernel_hw: tuple[int, int], in_channels: int, stride: tuple[int, int], same_padding: bool, input_h: int) -> str:
    """Which function CMSIS-NN's `arm_convolve_wrapper_s8` picks for an int8 convolution, by the conditions it tests
    (`arm_nn_is_convolve_1x1`, `arm_nn_is_convolve_1x1_fast`, `arm_nn_is_convolve_1_x_n` in CMSIS-NN's
    arm_nnsupportfunctions.h). With GCC, `arm_convolve_1x1_s8_fast` computes through `arm_nn_mat_mult_nt_t_s8`
    (its buffered variant is compiled for Arm Compiler 6 only)."""
    kh, kw = kernel_hw
    # A 1x1 kernel has zero padding under SAME as under VALID.
    padded = same_padding and (kh > 1 or kw > 1)
    if kh == 1 and kw == 1 and not padded:
        if stride == (1, 1):
            return "1x1 fast: arm_convolve_1x1_s8_fast -> arm_nn_mat_mult_nt_t_s8"
        return "1x1 strided: arm_convolve_1x1_s8"
    if input_h == 1 and kh == 1 and (stride[1] * in_channels) % 4 == 0:
        return "1xN: arm_convolve_1_x_n_s8"
    return f"im2col {kh}x{kw}: arm_convolve_s8 -> arm_nn_mat_mult_kernel_s8_s16" + (
        f" ({in_channels}-channel input)" if in_channels < 4 else ""
    )


def _name(info, operator) -> str:
    from bench.parity.localize import layer_names

    tensor = info.tensors[operator.outputs[0]]
    names = layer_names(tensor.name)
    if names:
        return names[0]  # conv1 for conv1+conv1_bn+conv1_relu: the layer that computes, not its folded companions
    if operator.outputs[0] in info.outputs:
        return operator.op.lower()  # the model's output op (softmax) carries no layer name
    return tensor.name or f"{operator.op} #{operator.index}"


def model_layers(model_bytes: bytes) -> list[Layer]:
    from convert import inspect_tflite

    info = inspect_tflite.read(model_bytes)
    layers = []
    for operator in info.operators:
        out = info.tensors[operator.outputs[0]].shape[1:]
        kernel, path = "", ""
        macs = inspect_tflite.operator_macs(info, operator)
        if operator.op in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(operator.inputs) >= 2:
            data, weights = info.tensors[operator.inputs[0]], info.tensors[operator.inputs[1]]
            cout, kh, kw, cin = weights.shape
            if operator.op == "DEPTHWISE_CONV_2D":
                kernel = f"{kh}x{kw} depthwise, {data.shape[-1]}->{out[-1]}"
            else:
                kernel = f"{kh}x{kw}, {cin}->{cout}"
                options = operator.options
                stride = (int(options.get("strideH", 1)), int(options.get("strideW", 1)))
                path = cmsis_nn_path((kh, kw), cin, stride, options.get("padding", _SAME) == _SAME, data.shape[1])
        elif operator.op == "FULLY_CONNECTED" and len(operator.inputs) >= 2:
            weights = info.tensors[operator.inputs[1]]
            kernel = f"{weights.shape[1]}->{weights.shape[0]}"
        layers.append(Layer(operator.index, operator.op, _name(info, operator), tuple(out), kernel, int(macs), path))
    return layers


class ProfileMismatch(ValueError):
    """PROFILE records that do not line up with the model's operators."""


def truncation(dropped: int) -> str:
    return f"truncated: {dropped:,} ops not profiled (the firmware's profiler was full; OpProfiler::kMaxEvents)"


def join_profile(layers: list[Layer], records: list[dict], timing, dropped: int = 0) -> list[dict]:
    """[{layer fields, ticks, units (in timing.unit), macs_per_unit}] in execution order, one row per record (fewer
    than the operators when the profile is truncated: `dropped` > 0); raises ProfileMismatch."""
    if len(records) + dropped != len(layers):
        raise ProfileMismatch(
            f"{len(records)} PROFILE records"
            + (f" and {dropped} ops not profiled" if dropped else "")
            + f" for {len(layers)} operators: another model, or a profile truncated without the device saying so"
        )
    rows = []
    for layer, record in zip(layers[: len(records)], records, strict=True):
        # TFLM tags a custom op by its custom name alone ("TFLM_DECODE"); the reader says "CUSTOM:TFLM_DECODE"
        if record["tag"] and record["tag"] != layer.op.removeprefix("CUSTOM:"):
            raise ProfileMismatch(f"record {layer.index} is {record['tag']!r} but operator {layer.index} is {layer.op}: another model?")
        units = timing.convert(record["ticks"])
        rows.append(
            layer.to_dict()
            | {"ticks": int(record["ticks"]), "units": units, "macs_per_unit": layer.macs / units if layer.macs and units else None}
        )
    return rows


def profiler_cost(ticks_with: int, ticks_without: int, timing) -> dict:
    """The per-op profiler's cost in one Invoke(): ticks and units (timing.unit) with and without it, their
    difference and its share of the Invoke() without it."""
    cost = ticks_with - ticks_without
    return {
        "ticks_with": int(ticks_with),
        "ticks_without": int(ticks_without),
        "unit": timing.unit,
        "with": timing.convert(ticks_with),
        "without": timing.convert(ticks_without),
        "cost": timing.convert(cost),
        "share": cost / ticks_without if ticks_without else None,
    }
