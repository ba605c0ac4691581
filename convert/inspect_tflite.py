"""Read what a `.tflite` holds: operators with versions, tensors with types and quantisation, inputs, outputs.

Everything the artifact states about the converted model (input/output scale and zero point, the op list
the firmware registers, the op histogram) is read here from the flatbuffer itself, never carried over
from the conversion settings. The schema comes from LiteRT's generated Python module, which needs only
the `flatbuffers` package: reading a model does not import TensorFlow.

    python -m convert.inspect_tflite build/<name>/model.tflite   # prints a summary
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # schema TensorType in lower case: "int8", "int32", "float32", ...
    scales: tuple[float, ...] = ()
    zero_points: tuple[int, ...] = ()
    quantized_dimension: int = 0
    constant: bool = False  # has data in the file (weights, biases, shapes) rather than being computed

    @property
    def per_channel(self) -> bool:
        return len(self.scales) > 1


@dataclass(frozen=True)
class OperatorInfo:
    index: int
    op: str  # builtin name, e.g. "CONV_2D", or "CUSTOM:<code>" for a custom op
    version: int
    inputs: tuple[int, ...]  # tensor indices; -1 marks an omitted optional input
    outputs: tuple[int, ...]
    options: dict = field(default_factory=dict)  # the builtin options' scalar fields, e.g. {"beta": 1.0}


@dataclass
class TfliteInfo:
    ops: list[dict]  # [{"name", "version"}] in the model's operator-code order: what a resolver must register
    operators: list[OperatorInfo]
    tensors: list[TensorInfo]
    inputs: list[int]
    outputs: list[int]
    subgraphs: int
    description: str

    def op_histogram(self) -> dict[str, int]:
        """How many times each op runs, most frequent first."""
        return dict(Counter(op.op for op in self.operators).most_common())

    def io_details(self, tensor_index: int) -> dict:
        """One input or output as model.json states it: name, shape, dtype, scale and zero point."""
        tensor = self.tensors[tensor_index]
        details = {"name": tensor.name, "shape": list(tensor.shape), "dtype": tensor.dtype}
        if len(tensor.scales) == 1:
            details.update(scale=float(tensor.scales[0]), zero_point=int(tensor.zero_points[0]))
        else:  # not quantised (or per-axis): pre-flight rejects such an input/output; say so plainly here
            details.update(scale=None, zero_point=None)
        return details

    def to_dict(self) -> dict:
        return {
            "ops": self.ops,
            "op_histogram": self.op_histogram(),
            "inputs": [self.io_details(i) for i in self.inputs],
            "outputs": [self.io_details(i) for i in self.outputs],
            "subgraphs": self.subgraphs,
            "operators": [asdict(op) for op in self.operators],
            "tensors": [asdict(t) for t in self.tensors],
        }


def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def _enum_names(enum_class) -> dict[int, str]:
    return {value: name for name, value in vars(enum_class).items() if not name.startswith("_") and isinstance(value, int)}


def _scalar_options(options) -> dict:
    if options is None:
        return {}
    return {k: v for k, v in vars(options).items() if isinstance(v, (bool, int, float))}


def verify(data: bytes) -> None:
    """Raise ValueError unless `data` passes the flatbuffers verifier over the TFLite schema (LiteRT's C++
    verifier, the one its interpreter runs before it builds anything). The Python schema reader below follows
    offsets unchecked: a root offset past the end, or a vector length of 2^31 in a mutated file, would make it
    raise deep inside, read garbage, or loop for hours."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:  # LiteRT's interpreter unusable here: the index checks of read() still run
        return
    try:
        Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    except ValueError as error:
        if "not a valid Flatbuffer" in str(error):
            why = "truncated, or an offset, size or table out of bounds"
            raise ValueError(f"the flatbuffer fails the TFLite schema verifier ({why})") from None
        # Anything else happened after verification (an op LiteRT lacks, such as TFLM's DECODE): not our concern here


def _check_indices(graph, tensors: int, opcodes: int) -> None:
    """The verifier checks bounds, not meaning: indices into the model's own tables are checked here."""
    for name, values in (("input", graph.inputs), ("output", graph.outputs)):
        if values is None or any(not 0 <= int(i) < tensors for i in values):
            raise ValueError(f"the subgraph's {name} list names a tensor that does not exist ({tensors} tensors)")
    for index, op in enumerate(graph.operators or []):
        if not 0 <= op.opcodeIndex < opcodes:
            raise ValueError(f"operator {index} names operator code {op.opcodeIndex}, of {opcodes}")
        for i in [*(op.inputs if op.inputs is not None else ()), *(op.outputs if op.outputs is not None else ())]:
            if not -1 <= int(i) < tensors:  # -1: an optional input left out
                raise ValueError(f"operator {index} names tensor {int(i)}, of {tensors}")


def read(model: bytes | bytearray | Path | str) -> TfliteInfo:
    """Parse a `.tflite` (bytes or a path). Raises ValueError for bytes that are not a sound TFLite model."""
    data = Path(model).read_bytes() if isinstance(model, (str, Path)) else bytes(model)
    schema = _schema()
    # Bytes 4..8 of a TFLite flatbuffer are its file identifier; checking it first turns "some other file"
    # into a clear error instead of a flatbuffers exception from deep inside the parser.
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ValueError("not a TFLite flatbuffer (file identifier TFL3 missing)")
    verify(data)
    root = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    if not root.subgraphs:
        raise ValueError("the TFLite model has no subgraph")
    builtin_names = _enum_names(schema.BuiltinOperator)
    type_names = {value: name.lower() for value, name in _enum_names(schema.TensorType).items()}

    op_names, ops = [], []
    for code in root.operatorCodes:
        # Codes below 127 live in the deprecated int8 field; newer ones in builtinCode (the schema's rule).
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin == schema.BuiltinOperator.CUSTOM:
            name = f"CUSTOM:{(code.customCode or b'').decode(errors='replace')}"
        else:
            name = builtin_names.get(builtin, f"BUILTIN_{builtin}")
        op_names.append(name)
        ops.append({"name": name, "version": int(code.version)})

    graph = root.subgraphs[0]
    _check_indices(graph, len(graph.tensors or []), len(op_names))
    buffers = root.buffers or []
    tensors = []
    for index, tensor in enumerate(graph.tensors or []):
        quant = tensor.quantization
        scales = tuple(float(s) for s in quant.scale) if quant is not None and quant.scale is not None else ()
        zero_points = tuple(int(z) for z in quant.zeroPoint) if quant is not None and quant.zeroPoint is not None else ()
        buffer = buffers[tensor.buffer] if 0 < tensor.buffer < len(buffers) else None
        constant = buffer is not None and ((buffer.data is not None and len(buffer.data) > 0) or bool(getattr(buffer, "offset", 0)))
        tensors.append(
            TensorInfo(
                index=index,
                name=(tensor.name or b"").decode(errors="replace"),
                shape=tuple(int(d) for d in (tensor.shape if tensor.shape is not None else ())),
                dtype=type_names.get(tensor.type, f"type{tensor.type}"),
                scales=scales,
                zero_points=zero_points,
                quantized_dimension=int(quant.quantizedDimension) if quant is not None else 0,
                constant=constant,
            )
        )

    operators = []
    for index, op in enumerate(graph.operators or []):
        operators.append(
            OperatorInfo(
                index=index,
                op=op_names[op.opcodeIndex],
                version=ops[op.opcodeIndex]["version"],
                inputs=tuple(int(i) for i in (op.inputs if op.inputs is not None else ())),
                outputs=tuple(int(i) for i in (op.outputs if op.outputs is not None else ())),
                options=_scalar_options(op.builtinOptions),
            )
        )
    return TfliteInfo(
        ops=ops,
        operators=operators,
        tensors=tensors,
        inputs=[int(i) for i in graph.inputs],
        outputs=[int(i) for i in graph.outputs],
        subgraphs=len(root.subgraphs),
        description=(root.description or b"").decode(errors="replace"),
    )


def operator_macs(info: TfliteInfo, operator: OperatorInfo) -> int:
    """Multiply-accumulates of one operator: each weight use of CONV_2D (output pixels x output channels x kernel
    height x width x input channels), DEPTHWISE_CONV_2D (output elements x kernel area) and FULLY_CONNECTED (input
    features x output features per row); other ops count 0, as the paper and model.summary count them."""
    if operator.op not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") or len(operator.inputs) < 2:
        return 0
    out = info.tensors[operator.outputs[0]].shape
    weights = info.tensors[operator.inputs[1]].shape
    if operator.op == "FULLY_CONNECTED":
        rows = math.prod(out[:-1]) if len(out) > 1 else 1
        return int(rows * weights[0] * weights[1])
    _, kh, kw, cin = weights
    per_output = kh * kw if operator.op == "DEPTHWISE_CONV_2D" else kh * kw * cin
    return int(math.prod(out) * per_output)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m convert.inspect_tflite", description="Summarise a .tflite: ops, inputs, outputs.")
    parser.add_argument("model", type=Path)
    parser.add_argument("--json", action="store_true", help="print everything, tensors included, as JSON")
    args = parser.parse_args(argv)
    try:
        info = read(args.model)
    except (OSError, ValueError) as error:
        print(f"error: {args.model}: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
        return 0
    print(f"{args.model}: {len(info.operators)} operators, {len(info.tensors)} tensors, {info.subgraphs} subgraph(s)")
    for kind, indices in (("input", info.inputs), ("output", info.outputs)):
        for i in indices:
            d = info.io_details(i)
            print(f"  {kind} {d['name']}: {d['dtype']} {d['shape']}, scale {d['scale']}, zero point {d['zero_point']}")
    print("  ops: " + ", ".join(f"{op['name']} v{op['version']}" for op in info.ops))
    print("  histogram: " + ", ".join(f"{name} x{count}" for name, count in info.op_histogram().items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
