"""The long-lived TFLM interpreter behind bench.virtual.device, in its own process.

Run as `python virtual_device_worker.py <model.tflite> <arena bytes>`; never imported by the parent. TFLM
aborts the whole process on a failed CHECK inside a kernel, so the interpreter lives here and the virtual
device survives it (and reports it as the firmware would: a FAULT event). Imports numpy and tflite_micro
only, so it starts fast.

Pipe protocol (binary, little-endian), one request at a time:
- after start-up the worker writes `R` + u32 length + JSON {"input_shape", "input_dtype", "output_bytes"},
  or `E` + u32 length + message and exits;
- request: u32 length + the input tensor's bytes;
- reply: `O` + u64 nanoseconds of invoke() alone + u32 length + output bytes, or `E` + u32 length + message
  (an error status from TFLM; the worker goes on).
"""

from __future__ import annotations

import json
import struct
import sys
import time
from pathlib import Path


def _send(out, kind: bytes, body: bytes, ticks: int | None = None) -> None:
    head = kind + (struct.pack("<Q", ticks) if ticks is not None else b"") + struct.pack("<I", len(body))
    out.write(head + body)
    out.flush()


def main(argv: list[str]) -> int:
    out, inp = sys.stdout.buffer, sys.stdin.buffer
    try:
        import numpy as np
        from tflite_micro.python.tflite_micro import runtime

        interpreter = runtime.Interpreter.from_bytes(Path(argv[1]).read_bytes(), arena_size=int(argv[2]))
        details = interpreter.get_input_details(0)
        shape = [int(d) for d in details["shape"]]
        dtype = np.dtype(details["dtype"])
        output_bytes = int(np.asarray(interpreter.get_output(0)).nbytes)
    except (ImportError, RuntimeError, ValueError, OSError) as error:
        _send(out, b"E", str(error).encode())
        return 3
    _send(out, b"R", json.dumps({"input_shape": shape, "input_dtype": dtype.name, "output_bytes": output_bytes}).encode())
    expected = int(np.prod(shape)) * dtype.itemsize
    while True:
        head = inp.read(4)
        if len(head) < 4:
            return 0
        (length,) = struct.unpack("<I", head)
        data = inp.read(length)
        if length != expected:
            _send(out, b"E", f"input of {length} bytes; the model takes {expected}".encode())
            continue
        try:
            interpreter.set_input(np.frombuffer(data, dtype=dtype).reshape(shape), 0)
            started = time.perf_counter_ns()
            interpreter.invoke()
            ticks = time.perf_counter_ns() - started
            output = np.asarray(interpreter.get_output(0)).tobytes()
        except RuntimeError as error:
            _send(out, b"E", str(error).encode())
            continue
        _send(out, b"O", output, ticks)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
