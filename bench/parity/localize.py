"""The first layer at which LiteRT's reference kernels and TFLM part ways, for samples whose outputs differ.

`localize(model_bytes, info, inputs, sample_indices, known_layers=None)` re-runs the given samples (int8
model inputs, already quantised) with every intermediate tensor kept: LiteRT with
`experimental_preserve_all_tensors`, TFLM with `InterpreterConfig.kPreserveAllTensors` (through
`convert.tflm_host.invoke_preserving`, in a worker subprocess). Both interpreters execute a single
subgraph's operators in the flatbuffer's order, so walking the operators in that order and comparing
each one's output tensors finds, per sample, the first operator whose output differs while everything it
read was still identical: the operator that computes differently, not one that inherited a difference.

Tensors are named by the converter after the Keras layers they came from (`model/fire2_expand1x1_1/
convolution;...`, several layers when the converter fused them); `layer_names` turns such a name back
into Keras layer names, exactly when the Keras model's layer names are given, else by stripping the
`_<n>` suffix the export adds.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

_EXPORT_SUFFIX = re.compile(r"_\d+$")


def _layer_of(part: str, known: dict[str, int]) -> str | None:
    scopes = part.split("/")[1:]  # scopes[0] is the model's own scope
    if not known:
        return _EXPORT_SUFFIX.sub("", scopes[0]) if scopes else None
    for scope in scopes:
        for candidate in (scope, _EXPORT_SUFFIX.sub("", scope)):
            if candidate in known:
                return candidate
    return None


def layer_names(tensor_name: str, known_layers: list[str] | None = None) -> list[str]:
    """The Keras layers a converter tensor name refers to, in the model's order (fused ones included)."""
    known = {name: i for i, name in enumerate(known_layers or [])}
    found: list[str] = []
    for part in tensor_name.split(";"):
        name = _layer_of(part, known)
        if name and name not in found:
            found.append(name)
    # The converter names a fused op after its last layer first (relu;bn;conv): put them in graph order.
    return sorted(found, key=known.__getitem__) if known else found[::-1]


def describe_tensor(info, tensor_index: int, op: str, known_layers: list[str] | None = None) -> str:
    """A reader's name for an operator's output: its Keras layers joined by '+', else the tensor name."""
    tensor = info.tensors[tensor_index]
    names = layer_names(tensor.name, known_layers)
    if names:
        return "+".join(names)
    if tensor_index in info.outputs:
        final = known_layers[-1] if known_layers else None
        return f"{final} ({op}, the model output)" if final else f"{op} (the model output)"
    return tensor.name


def _litert_tensors(model_bytes: bytes, inputs: np.ndarray, wanted: list[int]) -> dict[int, np.ndarray]:
    from bench.parity.engines import litert_interpreter

    interpreter = litert_interpreter(model_bytes, preserve_all_tensors=True)
    input_index = interpreter.get_input_details()[0]["index"]
    kept: dict[int, list] = {i: [] for i in wanted}
    for sample in inputs:
        interpreter.set_tensor(input_index, sample[None])
        interpreter.invoke()
        for index in wanted:
            kept[index].append(np.array(interpreter.get_tensor(index), copy=True))
    return {index: np.stack(values) for index, values in kept.items()}


def localize(model_bytes: bytes, info, inputs: np.ndarray, sample_indices: list[int], known_layers: list[str] | None = None) -> dict:
    """Find the first differing operator for each sample of `inputs` (int8, (K, H, W, C)); `sample_indices`
    are their indices in the split, for the report. Never raises for an engine's sake: an engine that fails
    here gives {"error": ...}.

    Returns {"samples": [{"index", "operator", "op", "layer", "tensor", "elements_differing", "elements",
    "max_abs_diff_lsb"} or {"index", "operator": None, "note"}], "first_differing_layers": [{"layer",
    "operator", "op", "samples"}]} with the layers most often first.
    """
    from convert import tflm_host

    wanted = sorted({t for op in info.operators for t in op.outputs if t >= 0 and not info.tensors[t].constant})
    try:
        reference = _litert_tensors(model_bytes, inputs, wanted)
    except (ImportError, RuntimeError, ValueError) as error:
        return {"error": f"LiteRT could not re-run the samples with all tensors kept ({error})"}
    try:
        micro = tflm_host.invoke_preserving(model_bytes, inputs, tensors=wanted)
    except (tflm_host.TflmError, ValueError) as error:
        return {"error": f"TFLM could not re-run the samples with all tensors kept ({error})"}

    samples = []
    for k, index in enumerate(sample_indices):
        entry = {"index": int(index), "operator": None, "note": "no intermediate tensor differs (only the final output read differs)"}
        for op in info.operators:
            for tensor in op.outputs:
                if tensor not in reference or tensor not in micro:
                    continue
                a = reference[tensor][k].reshape(-1).astype(np.int64)
                b = micro[tensor][k].reshape(-1).astype(np.int64)
                if a.shape != b.shape:
                    entry = {"index": int(index), "operator": op.index, "op": op.op, "note": f"tensor sizes differ: {a.size} and {b.size}"}
                elif np.array_equal(a, b):
                    continue
                else:
                    diff = np.abs(a - b)
                    entry = {
                        "index": int(index),
                        "operator": op.index,
                        "op": op.op,
                        "layer": describe_tensor(info, tensor, op.op, known_layers),
                        "tensor": info.tensors[tensor].name,
                        "elements_differing": int(np.count_nonzero(diff)),
                        "elements": int(diff.size),
                        "max_abs_diff_lsb": int(diff.max()),
                    }
                break
            else:
                continue
            break
        samples.append(entry)

    counted = Counter((s["operator"], s.get("op"), s.get("layer")) for s in samples if s["operator"] is not None)
    first = [{"layer": layer, "operator": operator, "op": op, "samples": n} for (operator, op, layer), n in counted.most_common()]
    return {"samples": samples, "first_differing_layers": first}
