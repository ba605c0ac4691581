"""TFLM's op table, the one the converter, the code generator and the firmware build all read.

For each builtin op TFLM has a kernel for: the `MicroMutableOpResolver` method that registers it; its int8-only
registration (`tflite::Register_<OP>_INT8()`), the kernels/*.h that declares it and the kernel sets in which that is
a kernel of its own; the kernel source stems (tensorflow/lite/micro/kernels/<stem>.cc, or kernels/<set>/<stem>.cc).

Transcribed from tflite-micro's tensorflow/lite/micro/micro_mutable_op_resolver.h and kernels/*.h (August 2026 tree;
the tflite-micro dev wheel pinned in requirements.txt is of the same line; esp-tflite-micro's headers are the same);
tests/test_op_table.py checks every entry against the trees. Every `AddXxx()` method that registers a builtin is
here; signal-processing and vendor registrations (AddEthosU, AddWindow, ...) are custom ops and deliberately absent.
The one custom op listed is TFLM's own DECODE ("TFLM_DECODE", registered by AddDecode), which the weight
compression of `convert.compress` inserts.

Why the int8-only registrations: a generic kernel links its int16, int4 and float paths too. In every kernel set the
headers declare `Register_<OP>_INT8()`, but only where `int8_sets` names the set (CMSIS_NN defined) is it a kernel of
its own; elsewhere it is an inline alias of the generic one. `kernels` empty means not transcribed: the firmware
build then compiles every kernel (slower, the same firmware: the linker drops unused ones).

Standard library only: mcu/scripts/tflm.py imports this module inside SCons's Python.
"""

from __future__ import annotations

from dataclasses import dataclass

REFERENCE, CMSIS_NN_SET, ESP_NN = "reference", "cmsis_nn", "esp_nn"
KERNEL_SETS = (REFERENCE, CMSIS_NN_SET, ESP_NN)  # custom_tflm_kernels values (mcu/platformio.ini)
CMSIS_NN = (CMSIS_NN_SET,)
# kernel files every model needs, whatever its ops
ALWAYS_KERNEL_STEMS = ("kernel_util", "micro_tensor_utils")


@dataclass(frozen=True)
class Op:
    method: str  # MicroMutableOpResolver method, e.g. "AddConv2D"
    int8: str | None = None  # int8-only registration function in namespace tflite, e.g. "Register_CONV_2D_INT8"
    int8_header: str | None = None  # the kernels/<stem>.h declaring `int8` (micro_mutable_op_resolver.h omits some)
    int8_sets: tuple[str, ...] = ()  # kernel sets in which `int8` is a kernel of its own, not an alias
    kernels: tuple[str, ...] = ()  # kernel source stems; () = not transcribed


def _cmsis_nn_int8(name: str, method: str, header: str, kernels: tuple[str, ...] = ()) -> Op:
    """An op whose `Register_<NAME>_INT8()` is a kernel of its own in CMSIS-NN (an alias elsewhere)."""
    return Op(method, int8=f"Register_{name}_INT8", int8_header=header, int8_sets=CMSIS_NN, kernels=kernels)


# builtin operator name (schema BuiltinOperator; a custom op as "CUSTOM:<name>") -> its TFLM facts
OPS: dict[str, Op] = {
    "ABS": Op("AddAbs"),
    "ADD": _cmsis_nn_int8("ADD", "AddAdd", "add", ("add", "add_common")),
    "ADD_N": Op("AddAddN"),
    "ARG_MAX": Op("AddArgMax"),
    "ARG_MIN": Op("AddArgMin"),
    "ASSIGN_VARIABLE": Op("AddAssignVariable"),
    "AVERAGE_POOL_2D": _cmsis_nn_int8("AVERAGE_POOL_2D", "AddAveragePool2D", "pooling", ("pooling", "pooling_common")),
    "BATCH_MATMUL": _cmsis_nn_int8("BATCH_MATMUL", "AddBatchMatMul", "batch_matmul"),
    "BATCH_TO_SPACE_ND": Op("AddBatchToSpaceNd"),
    "BROADCAST_ARGS": Op("AddBroadcastArgs"),
    "BROADCAST_TO": Op("AddBroadcastTo"),
    "CALL_ONCE": Op("AddCallOnce"),
    "CAST": Op("AddCast"),
    "CEIL": Op("AddCeil"),
    "CONCATENATION": Op("AddConcatenation", kernels=("concatenation",)),
    "CONV_2D": _cmsis_nn_int8("CONV_2D", "AddConv2D", "conv", ("conv", "conv_common")),
    "COS": Op("AddCos"),
    "CUMSUM": Op("AddCumSum"),
    # named as convert.inspect_tflite names a custom op; decode_state.cc references every decoder type
    "CUSTOM:TFLM_DECODE": Op(
        "AddDecode", kernels=("decode", "decode_state", "decode_state_lut", "decode_state_huffman", "decode_state_prune")
    ),
    "DEPTH_TO_SPACE": Op("AddDepthToSpace"),
    "DEPTHWISE_CONV_2D": _cmsis_nn_int8(
        "DEPTHWISE_CONV_2D", "AddDepthwiseConv2D", "depthwise_conv", ("depthwise_conv", "depthwise_conv_common")
    ),
    "DEQUANTIZE": Op("AddDequantize", kernels=("dequantize", "dequantize_common")),
    "DIV": Op("AddDiv"),
    "DYNAMIC_UPDATE_SLICE": Op("AddDynamicUpdateSlice"),
    "ELU": Op("AddElu"),
    "EMBEDDING_LOOKUP": Op("AddEmbeddingLookup"),
    "EQUAL": Op("AddEqual"),
    "EXP": Op("AddExp"),
    "EXPAND_DIMS": Op("AddExpandDims"),
    "FILL": Op("AddFill"),
    "FLOOR": Op("AddFloor"),
    "FLOOR_DIV": Op("AddFloorDiv"),
    "FLOOR_MOD": Op("AddFloorMod"),
    "FULLY_CONNECTED": _cmsis_nn_int8(
        "FULLY_CONNECTED", "AddFullyConnected", "fully_connected", ("fully_connected", "fully_connected_common")
    ),
    "GATHER": Op("AddGather"),
    "GATHER_ND": Op("AddGatherNd"),
    "GREATER": Op("AddGreater"),
    "GREATER_EQUAL": Op("AddGreaterEqual"),
    "HARD_SWISH": Op("AddHardSwish"),
    "IF": Op("AddIf"),
    "L2_NORMALIZATION": Op("AddL2Normalization"),
    "L2_POOL_2D": Op("AddL2Pool2D"),
    "LEAKY_RELU": Op("AddLeakyRelu"),
    "LESS": Op("AddLess"),
    "LESS_EQUAL": Op("AddLessEqual"),
    "LOG": Op("AddLog"),
    "LOG_SOFTMAX": Op("AddLogSoftmax"),
    "LOGICAL_AND": Op("AddLogicalAnd"),
    "LOGICAL_NOT": Op("AddLogicalNot"),
    "LOGICAL_OR": Op("AddLogicalOr"),
    "LOGISTIC": Op("AddLogistic", kernels=("logistic", "logistic_common")),
    "MAX_POOL_2D": _cmsis_nn_int8("MAX_POOL_2D", "AddMaxPool2D", "pooling", ("pooling", "pooling_common")),
    "MAXIMUM": _cmsis_nn_int8("MAXIMUM", "AddMaximum", "maximum_minimum"),
    "MEAN": Op("AddMean", kernels=("reduce", "reduce_common")),
    "MINIMUM": _cmsis_nn_int8("MINIMUM", "AddMinimum", "maximum_minimum"),
    "MIRROR_PAD": Op("AddMirrorPad"),
    "MUL": _cmsis_nn_int8("MUL", "AddMul", "mul", ("mul", "mul_common")),
    "NEG": Op("AddNeg"),
    "NOT_EQUAL": Op("AddNotEqual"),
    "PACK": Op("AddPack"),
    "PAD": _cmsis_nn_int8("PAD", "AddPad", "pad", ("pad",)),
    "PADV2": Op("AddPadV2"),
    "PRELU": Op("AddPrelu"),
    "QUANTIZE": Op("AddQuantize", kernels=("quantize", "quantize_common")),
    "READ_VARIABLE": Op("AddReadVariable"),
    "REDUCE_ALL": Op("AddReduceAll"),
    "REDUCE_MAX": Op("AddReduceMax"),
    "REDUCE_MIN": Op("AddReduceMin"),
    "RELU": Op("AddRelu", kernels=("activations", "activations_common")),
    "RELU6": Op("AddRelu6", kernels=("activations", "activations_common")),
    "RESHAPE": Op("AddReshape", kernels=("reshape", "reshape_common")),
    "RESIZE_BILINEAR": Op("AddResizeBilinear"),
    "RESIZE_NEAREST_NEIGHBOR": Op("AddResizeNearestNeighbor"),
    "REVERSE_V2": Op("AddReverseV2"),
    "ROUND": Op("AddRound"),
    "RSQRT": Op("AddRsqrt"),
    "SELECT_V2": Op("AddSelectV2"),
    "SHAPE": Op("AddShape"),
    "SIN": Op("AddSin"),
    "SLICE": Op("AddSlice"),
    "SOFTMAX": _cmsis_nn_int8("SOFTMAX", "AddSoftmax", "softmax", ("softmax", "softmax_common")),
    "SPACE_TO_BATCH_ND": Op("AddSpaceToBatchNd"),
    "SPACE_TO_DEPTH": Op("AddSpaceToDepth"),
    "SPLIT": Op("AddSplit"),
    "SPLIT_V": Op("AddSplitV"),
    "SQRT": Op("AddSqrt"),
    "SQUARE": Op("AddSquare"),
    "SQUARED_DIFFERENCE": Op("AddSquaredDifference"),
    "SQUEEZE": Op("AddSqueeze"),
    "STRIDED_SLICE": Op("AddStridedSlice"),
    "SUB": Op("AddSub"),
    "SUM": Op("AddSum"),
    "SVDF": _cmsis_nn_int8("SVDF", "AddSvdf", "svdf"),
    "TANH": Op("AddTanh"),
    "TRANSPOSE": _cmsis_nn_int8("TRANSPOSE", "AddTranspose", "transpose"),
    "TRANSPOSE_CONV": _cmsis_nn_int8("TRANSPOSE_CONV", "AddTransposeConv", "transpose_conv"),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": _cmsis_nn_int8(
        "UNIDIRECTIONAL_SEQUENCE_LSTM", "AddUnidirectionalSequenceLSTM", "unidirectional_sequence_lstm"
    ),
    "UNPACK": Op("AddUnpack"),
    "VAR_HANDLE": Op("AddVarHandle"),
    "WHILE": Op("AddWhile"),
    "ZEROS_LIKE": Op("AddZerosLike"),
}

# builtin operator name -> MicroMutableOpResolver method (the preflight check's view of OPS)
RESOLVER_METHODS: dict[str, str] = {name: op.method for name, op in OPS.items()}


def resolver_method(op_name: str) -> str | None:
    """The resolver method for a builtin op, or None when TFLM has no kernel for it (custom ops included)."""
    return RESOLVER_METHODS.get(op_name)


def kernel_header(stem: str) -> str:
    """The include path of kernels/<stem>.h."""
    return f"tensorflow/lite/micro/kernels/{stem}.h"


def int8_only_kernel_sets() -> tuple[str, ...]:
    """The kernel sets in which some op has an int8-only kernel of its own: the firmware build defines
    SQZ_INT8_ONLY_KERNELS for them, which selects the int8-only branch of the generated RegisterModelOps."""
    return tuple(s for s in KERNEL_SETS if any(s in op.int8_sets for op in OPS.values()))


def kernel_stems(op_names: list[str]) -> list[str] | None:
    """The kernel source stems the ops need, sorted, with ALWAYS_KERNEL_STEMS; None (compile every kernel) when
    an op's kernels are not transcribed. Raises KeyError for an op not in OPS."""
    ops = [OPS[name] for name in op_names]
    if not ops or any(not op.kernels for op in ops):
        return None
    return sorted({stem for op in ops for stem in op.kernels} | set(ALWAYS_KERNEL_STEMS))
