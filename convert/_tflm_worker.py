"""The worker process behind `convert.tflm_host`: runs one request against the TFLM host interpreter.

Run as `python _tflm_worker.py <request folder>`, never imported by the parent: the TFLM runtime aborts
the whole process on a failed CHECK inside a kernel (the int8 softmax of an untrained model does it, in
Prepare for a collapsed input scale, in Invoke for a near-uniform output over many classes), and only a
separate process turns that into an error the parent can report. It
imports numpy and tflite_micro and nothing of this repository, so it starts fast and cannot be broken
by the parent's imports.

The folder holds `model.tflite`, `request.json` and, for invocations, `inputs.npy`. The worker writes
`result.json` (and `outputs.npz`), or `error.json` with an exit status that says who failed (below).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

EXIT_OK = 0
EXIT_TFLM_ERROR = 3  # TFLM returned an error status (allocation, prepare or invoke failed)
EXIT_BAD_REQUEST = 4  # the request does not fit the model (input shape or dtype, tensor index)
EXIT_UNAVAILABLE = 5  # tflite_micro cannot be imported here


def _write(folder: Path, name: str, data: dict) -> None:
    (folder / name).write_text(json.dumps(data))


def _non_constant_tensors(model_bytes: bytes) -> list[int]:
    """Indices of the tensors computed at run time (not weights, biases or shapes) in subgraph 0."""
    from tflite_micro.python.tflite_micro import runtime

    model = runtime.convert_bytearray_to_object(bytearray(model_bytes))
    graph = model.subgraphs[0]
    buffers = model.buffers or []

    def constant(tensor) -> bool:
        buffer = buffers[tensor.buffer] if 0 < tensor.buffer < len(buffers) else None
        return buffer is not None and ((buffer.data is not None and len(buffer.data) > 0) or bool(getattr(buffer, "offset", 0)))

    return [index for index, tensor in enumerate(graph.tensors) if not constant(tensor)]


def _tensor_count(model_bytes: bytes) -> int:
    from tflite_micro.python.tflite_micro import runtime

    return len(runtime.convert_bytearray_to_object(bytearray(model_bytes)).subgraphs[0].tensors)


def run(folder: Path) -> int:
    request = json.loads((folder / "request.json").read_text())
    try:
        import numpy as np
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as error:
        _write(folder, "error.json", {"kind": "unavailable", "message": f"tflite_micro cannot be imported ({error})"})
        return EXIT_UNAVAILABLE

    model_bytes = (folder / "model.tflite").read_bytes()
    action = request["action"]
    preserve = action == "invoke" and request.get("preserve") is not None
    config = runtime.InterpreterConfig.kPreserveAllTensors if preserve else runtime.InterpreterConfig.kAllocationRecording
    wanted: list[int] = []
    if preserve:
        count = _tensor_count(model_bytes)
        wanted = _non_constant_tensors(model_bytes) if request["preserve"] == "all" else [int(i) for i in request["preserve"]]
        # GetTensor does not check its index: one past the end crashes the process instead of raising.
        bad = [i for i in wanted if not 0 <= i < count]
        if bad:
            _write(
                folder, "error.json", {"kind": "request", "message": f"tensor indices {bad} out of range: the model has {count} tensors"}
            )
            return EXIT_BAD_REQUEST

    try:
        interpreter = runtime.Interpreter.from_bytes(
            model_bytes,
            arena_size=int(request["arena_size"]),
            intrepreter_config=config,
            # DECODE outputs that fit go to this region, not the arena (TFLM's SetDecompressionMemory)
            alt_decompression_memory_size=int(request.get("decompression_bytes", 0)),
        )
    except RuntimeError as error:
        _write(folder, "error.json", {"kind": "tflm", "stage": "allocate", "message": str(error)})
        return EXIT_TFLM_ERROR
    if action == "measure":
        # Allocation runs every kernel's Prepare, which is where all arena memory is taken (TFLM does not
        # allocate during Invoke): the report printed now is the one an invocation would leave, and a model
        # whose Invoke aborts can still be measured. It goes to the C stderr, which the parent parses; the
        # marker lets it skip anything printed before (TFLM's own warnings, for instance).
        print("@@allocation-report", file=sys.stderr, flush=True)
        interpreter.print_allocations()
        _write(folder, "result.json", {"arena_size": int(request["arena_size"])})
        return EXIT_OK

    details = interpreter.get_input_details(0)
    input_shape = [int(d) for d in details["shape"]]
    input_dtype = np.dtype(details["dtype"])
    batch = np.load(folder / "inputs.npy", allow_pickle=False)
    if batch.dtype != input_dtype or list(batch.shape[1:]) != input_shape[1:]:
        message = f"inputs are {batch.dtype} {list(batch.shape)}; the model takes {input_dtype} batches of {input_shape[1:]}"
        _write(folder, "error.json", {"kind": "request", "message": message})
        return EXIT_BAD_REQUEST

    outputs, kept = [], {i: [] for i in wanted}
    try:
        for sample in batch:
            interpreter.set_input(sample[None], 0)
            interpreter.invoke()
            outputs.append(np.array(interpreter.get_output(0), copy=True)[0])
            for index in wanted:
                kept[index].append(np.array(interpreter.GetTensor(index, 0)["tensor_data"], copy=True))
    except RuntimeError as error:
        _write(folder, "error.json", {"kind": "tflm", "stage": "invoke", "message": str(error)})
        return EXIT_TFLM_ERROR

    arrays = {"outputs": np.stack(outputs)}
    arrays.update({f"tensor_{index}": np.stack(values) for index, values in kept.items()})
    np.savez(folder / "outputs.npz", **arrays)
    _write(folder, "result.json", {"tensors": wanted})
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1])))
