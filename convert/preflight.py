"""Pre-flight checks: what must hold before a converted model may go to a device.

Static checks read the flatbuffer (`convert.inspect_tflite`); the pipeline adds those that need more: the
TFLM host interpreter allocating the model (`tflm_allocation_check`, also at exactly the firmware's arena
size) and running one image (`tflm_invoke_check`), and the chosen board's budget (`board_check`).
Every check returns a `Check`; `require(checks)` raises one PreflightError listing every failure, so a
person sees all that is wrong at once, not one problem per run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from convert import boards, tflm_host
from convert.errors import PreflightError
from convert.inspect_tflite import TfliteInfo
from convert.tflm_ops import resolver_method

# Tensor types that an int8 TFLM graph may carry: int8 activations and weights, int32 biases and shape
# operands (MEAN's axes, RESHAPE's shape). A float type anywhere means a float or hybrid op.
_FLOAT_TYPES = {"float32", "float16", "float64", "bfloat16"}
_FILTER_OPS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3}  # op -> the filter's output-channel axis
# TFLM's int8 softmax (softmax_common.cc) aborts the process, via QuantizeMultiplierGreaterThanOne's
# CHECK, unless beta * input_scale * 2^(31 - 5) > 1; and it needs the output quantised as 1/256, -128.
_SOFTMAX_INTEGER_BITS = 5


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


def short_name(tensor_name: str) -> str:
    """The readable part of a converter tensor name ('model/fire2_concat_1/concat;...' -> 'fire2_concat_1/concat'):
    the first of the fused names, without the model's scope."""
    parts = tensor_name.split(";")[0].split("/")
    return "/".join(parts[1:]) if len(parts) > 1 else parts[0]


def _op_label(info: TfliteInfo, op) -> str:
    outputs = ", ".join(short_name(info.tensors[i].name) for i in op.outputs)
    return f"#{op.index} {op.op} ({outputs})"


def check_io(info: TfliteInfo) -> Check:
    problems = []
    for kind, indices in (("input", info.inputs), ("output", info.outputs)):
        for i in indices:
            tensor = info.tensors[i]
            if tensor.dtype != "int8":
                problems.append(f"{kind} {short_name(tensor.name)} is {tensor.dtype}, not int8")
            elif len(tensor.scales) != 1:
                problems.append(f"{kind} {short_name(tensor.name)} has {len(tensor.scales)} scales, not one")
    if len(info.inputs) != 1 or len(info.outputs) != 1:
        problems.append(f"{len(info.inputs)} inputs and {len(info.outputs)} outputs; the firmware expects one of each")
    detail = "; ".join(problems) or "one int8 input and one int8 output, each with one scale and zero point"
    return Check("int8_io", not problems, detail)


def check_no_float_ops(info: TfliteInfo) -> Check:
    problems = []
    for op in info.operators:
        float_in = [info.tensors[i] for i in op.inputs if i >= 0 and info.tensors[i].dtype in _FLOAT_TYPES]
        float_out = [info.tensors[i] for i in op.outputs if info.tensors[i].dtype in _FLOAT_TYPES]
        if not (float_in or float_out):
            continue
        # Hybrid: int8 weights with float activations (dynamic-range quantisation). QUANTIZE/DEQUANTIZE at
        # a float boundary mean float ops or float input/output around them.
        int8_weights = any(info.tensors[i].dtype == "int8" and info.tensors[i].constant for i in op.inputs if i >= 0)
        if op.op in ("QUANTIZE", "DEQUANTIZE"):
            kind = "a float<->int8 conversion"
        elif int8_weights and float_in:
            kind = "a hybrid op (float activations, int8 weights)"
        else:
            kind = "a float op"
        types = sorted({t.dtype for t in float_in + float_out})
        problems.append(f"{_op_label(info, op)} is {kind} ({'/'.join(types)} tensors)")
    detail = "; ".join(problems) or f"all {len(info.operators)} operators are integer-only"
    return Check("no_float_ops", not problems, detail)


def check_tflm_ops(info: TfliteInfo) -> Check:
    missing = [f"{op['name']} v{op['version']}" for op in info.ops if resolver_method(op["name"]) is None]
    if missing:
        detail = f"TFLM has no builtin kernel for: {', '.join(missing)}"
    else:
        detail = "every op has a TFLM kernel: " + ", ".join(op["name"] for op in info.ops)
    return Check("tflm_ops", not missing, detail)


def check_concat_quantization(info: TfliteInfo) -> Check:
    """TFLM's int8 CONCATENATION copies bytes: each input must share the output's scale and zero point."""
    problems, count = [], 0
    for op in info.operators:
        if op.op != "CONCATENATION":
            continue
        count += 1
        out = info.tensors[op.outputs[0]]
        for i in op.inputs:
            t = info.tensors[i]
            if t.scales != out.scales or t.zero_points != out.zero_points:
                problems.append(
                    f"{_op_label(info, op)}: input {short_name(t.name)} has scale {list(t.scales)}, zero point {list(t.zero_points)}; "
                    f"the output has {list(out.scales)}, {list(out.zero_points)}"
                )
    detail = "; ".join(problems) or f"all {count} concatenations share their output's scale and zero point"
    return Check("concat_quantization", not problems, detail)


def check_weights(info: TfliteInfo) -> Check:
    """Convolution filters int8, symmetric (TFLM's int8 kernels assume zero point 0), with one scale per output
    channel (what `python -m convert` writes) or one for the tensor (TFLM's conv kernels take both:
    conv_common.cc; experiments.compression_sizes --per-layer-sharing writes it)."""
    problems, count, per_tensor = [], 0, 0
    for op in info.operators:
        if op.op not in _FILTER_OPS:
            continue
        count += 1
        f = info.tensors[op.inputs[1]]
        channels = f.shape[_FILTER_OPS[op.op]] if f.shape else 0
        per_tensor += len(f.scales) == 1 and channels > 1
        if f.dtype != "int8":
            problems.append(f"{_op_label(info, op)}: filter is {f.dtype}")
        elif len(f.scales) not in (1, channels):
            problems.append(
                f"{_op_label(info, op)}: filter has {len(f.scales)} scales for {channels} output channels (not per channel, not per tensor)"
            )
        elif any(z != 0 for z in f.zero_points):
            problems.append(f"{_op_label(info, op)}: filter zero points are not all 0")
    scales = "per channel" if not per_tensor else f"per channel or, {per_tensor} of them, per tensor"
    detail = "; ".join(problems) or f"all {count} convolution filters are int8, {scales}, symmetric"
    return Check("per_channel_weights", not problems, detail)


def check_softmax(info: TfliteInfo) -> Check:
    problems = []
    for op in info.operators:
        if op.op != "SOFTMAX":
            continue
        t_in, t_out = info.tensors[op.inputs[0]], info.tensors[op.outputs[0]]
        if t_in.dtype != "int8" or not t_in.scales:
            continue  # not an int8 softmax: check_no_float_ops reports it
        beta = float(op.options.get("beta", 1.0))
        multiplier = beta * t_in.scales[0] * 2 ** (31 - _SOFTMAX_INTEGER_BITS)
        if multiplier <= 1.0:
            problems.append(
                f"{_op_label(info, op)}: input scale {t_in.scales[0]:.3g} is too small (beta x scale x 2^26 = {multiplier:.3g} <= 1); "
                "TFLM would abort in the softmax kernel's Prepare. The logits barely vary over the calibration set, "
                "which is what an untrained model gives: train it, or calibrate on real images"
            )
        if t_out.scales and (t_out.scales[0] != 1.0 / 256 or t_out.zero_points[0] != -128):
            problems.append(
                f"{_op_label(info, op)}: output is quantised ({t_out.scales[0]}, {t_out.zero_points[0]}); TFLM needs (1/256, -128)"
            )
    detail = "; ".join(problems) or "softmax quantisation is within what TFLM's int8 kernel accepts"
    return Check("softmax_quantization", not problems, detail)


def static_checks(info: TfliteInfo) -> list[Check]:
    """Every check that needs only the flatbuffer."""
    return [
        check_io(info),
        check_no_float_ops(info),
        check_tflm_ops(info),
        check_concat_quantization(info),
        check_weights(info),
        check_softmax(info),
    ]


def tflm_allocation_check(model: bytes, arena_size: int | None = None, *, name: str = "tflm_allocation", timeout: float | None = 600):
    """Allocate the model in the TFLM host interpreter (in a subprocess). Returns (Check, ArenaUsage or
    None): a crash, an abort or an allocation failure becomes a failed check carrying TFLM's own words."""
    try:
        usage = tflm_host.measure_arena(model, arena_size=arena_size, timeout=timeout)
    except tflm_host.TflmError as error:
        return Check(name, False, f"{type(error).__name__}: {error}"), None
    return allocation_passed(usage, name), usage


def allocation_passed(usage, name: str = "tflm_allocation") -> Check:
    """The passed check of an allocation already measured (tflm_host.ArenaUsage): no second host run for it."""
    detail = f"allocated in {usage.total:,} bytes (head {usage.head:,}, tail {usage.tail:,}) of a {usage.arena_size:,}-byte arena"
    return Check(name, True, detail)


# What to tell a person when TFLM aborts during Invoke: the one known cause for this model family.
_INVOKE_ABORT_HINT = (
    "TFLM aborts on a failed CHECK inside a kernel. Known case: the reference int8 SOFTMAX checks that the sum of "
    "exponentials stays below 2^9, which fails when hundreds of classes tie near the maximum, i.e. a near-uniform "
    "output over many classes, as an untrained 1000-class model gives"
)


def tflm_invoke_check(model: bytes, sample, timeout: float | None = 600) -> Check:
    """Run one int8 input (`sample`, without the batch axis) through the TFLM host interpreter."""
    try:
        output = tflm_host.invoke(model, sample[None], timeout=timeout)[0]
    except tflm_host.TflmCrash as error:
        return Check("tflm_invoke", False, f"TflmCrash: {error}\n{_INVOKE_ABORT_HINT}")
    except (tflm_host.TflmError, ValueError) as error:
        return Check("tflm_invoke", False, f"{type(error).__name__}: {error}")
    return Check("tflm_invoke", True, f"one calibration image ran; top class {int(output.argmax())} of {output.size}")


def board_check(board: boards.Board, model_bytes: int, arena_bytes: int) -> tuple[Check, dict]:
    verdict = boards.fit(board, model_bytes, arena_bytes)
    return Check("board_fit", verdict["fits"], f"{board.name}: {boards.verdict_text(verdict)}"), verdict


def require(checks: list[Check]) -> None:
    """Raise PreflightError naming every failed check; return quietly when all passed."""
    failed = [(c.name, c.detail) for c in checks if not c.passed]
    if failed:
        raise PreflightError(failed)
