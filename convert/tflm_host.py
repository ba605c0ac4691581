"""The TFLM host interpreter (tflite-micro's Python wheel), always run in a worker subprocess.

TFLM aborts the process on some models instead of returning an error: a failed CHECK inside a kernel. The
known cases are both the int8 softmax of an untrained model: in Prepare when the calibrated input scale
collapsed, in Invoke when the output is near-uniform over hundreds of classes. Every call here
therefore runs in a fresh `python convert/_tflm_worker.py` process, and whatever happens there comes back
as a result or as one of the exceptions below, with the worker's stderr tail attached. The pipeline
never dies with it.

API (`model` is the `.tflite` as bytes or a path; inputs and outputs are the model's int8 tensors):
- `measure_arena(model, arena_size=None) -> ArenaUsage`: allocate (which runs every kernel's Prepare) and
  read the RecordingMicroAllocator report: arena total, head, tail, per-kind records. TFLM takes no arena
  memory during Invoke, so this is the figure an inference needs. With `arena_size` given, success also
  proves the model allocates in exactly that many bytes. With `decompression_bytes`, DECODE outputs that fit
  go to a separate region of that size (TFLM's SetDecompressionMemory), outside the measured arena.
- `invoke(model, inputs) -> outputs`: run a batch (N, H, W, C) one image at a time -> (N, classes).
- `invoke_preserving(model, inputs, tensors="all") -> dict`: the same with
  `InterpreterConfig.kPreserveAllTensors`, returning every requested tensor's value per image
  ({tensor index: (N, *shape)}, plus "outputs"), so a parity check can find the first layer that differs.
  "all" means every tensor computed at run time; tensor indices are those of `convert.inspect_tflite`.
- `available()`: whether tflite-micro is installed (it ships for Linux x86_64 only).

Errors: `TflmUnavailable` (not installed), `TflmCrash` (the worker died: `signal_name` / `returncode`),
`TflmFailure` (TFLM returned an error status, e.g. the arena is too small: `stage` is "allocate" or
"invoke"), `TflmTimeout`; all are `TflmError`. A request that does not fit the model (wrong input shape
or dtype, tensor index out of range) raises ValueError.
"""

from __future__ import annotations

import importlib.util
import json
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

MEASURED_BY = "tflite-micro host interpreter"
_WORKER = Path(__file__).with_name("_tflm_worker.py")
_EXIT_TFLM_ERROR, _EXIT_BAD_REQUEST, _EXIT_UNAVAILABLE = 3, 4, 5
# Generous by default: the host has memory to spare, and a first measurement must not fail for want of
# bytes. Ten times the model is tflite-micro's own heuristic; the floor covers tiny models with big inputs.
_DEFAULT_ARENA_FLOOR = 16 * 1024 * 1024
_STDERR_TAIL = 2000


class TflmError(RuntimeError):
    """The TFLM host interpreter could not do what was asked. `stderr_tail` holds the worker's last words."""

    def __init__(self, message: str, stderr_tail: str = ""):
        self.stderr_tail = stderr_tail
        super().__init__(message + (f"\n--- TFLM stderr (tail) ---\n{stderr_tail.rstrip()}" if stderr_tail.strip() else ""))


class TflmUnavailable(TflmError):
    """tflite-micro is not installed (its wheels exist for Linux x86_64 only)."""


class TflmCrash(TflmError):
    """The worker process died instead of answering: an abort or segfault inside TFLM."""

    def __init__(self, message: str, returncode: int, stderr_tail: str = ""):
        self.returncode = returncode
        self.signal_name = _signal_name(returncode)
        super().__init__(message, stderr_tail)


class TflmFailure(TflmError):
    """TFLM returned an error status; `stage` is "allocate" (arena too small, bad model) or "invoke"."""

    def __init__(self, message: str, stage: str, stderr_tail: str = ""):
        self.stage = stage
        super().__init__(message, stderr_tail)


class TflmTimeout(TflmError):
    """The worker did not finish in time (it is killed)."""


@dataclass(frozen=True)
class ArenaUsage:
    """The RecordingMicroAllocator report: bytes of the arena used in all, in its head (the planned,
    reusable activation buffers) and in its tail (persistent: tensor structs, kernel data)."""

    total: int
    head: int
    tail: int
    arena_size: int  # the arena offered to the interpreter for this measurement
    records: list[dict] = field(default_factory=list)  # [{"what", "used", "requested", "count", "unit"}]

    def to_dict(self) -> dict:
        return asdict(self) | {"measured_by": MEASURED_BY}


def _signal_name(returncode: int) -> str | None:
    """SIGABRT for a process killed by signal 6 (returncode -6); None for a plain exit."""
    if returncode >= 0:
        return None
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return str(-returncode)


def available() -> bool:
    return importlib.util.find_spec("tflite_micro") is not None


def default_arena_size(model_bytes: int) -> int:
    return max(_DEFAULT_ARENA_FLOOR, 10 * model_bytes)


def _model_bytes(model: bytes | bytearray | Path | str) -> bytes:
    return Path(model).read_bytes() if isinstance(model, (str, Path)) else bytes(model)


def _tail(text: str) -> str:
    # TensorFlow-style log noise is not what a reader of a TFLM error wants to see first.
    lines = [line for line in text.splitlines() if not line.startswith(("WARNING: All log messages", "I0000", "W0000"))]
    return "\n".join(lines)[-_STDERR_TAIL:]


def _run(model: bytes, request: dict, inputs: np.ndarray | None, timeout: float | None) -> tuple[Path, str, tempfile.TemporaryDirectory]:
    """Run one worker request; return (folder, stderr, handle keeping the folder alive) or raise."""
    if not available():
        raise TflmUnavailable("tflite-micro is not installed here (pip install tflite-micro; wheels exist for Linux x86_64 only)")
    handle = tempfile.TemporaryDirectory(prefix="squeezenet-mcu-tflm-")
    folder = Path(handle.name)
    (folder / "model.tflite").write_bytes(model)
    (folder / "request.json").write_text(json.dumps(request))
    if inputs is not None:
        np.save(folder / "inputs.npy", inputs, allow_pickle=False)
    try:
        done = subprocess.run(
            [sys.executable, str(_WORKER), str(folder)], capture_output=True, text=True, errors="replace", timeout=timeout
        )
    except subprocess.TimeoutExpired as expired:
        handle.cleanup()
        stderr = expired.stderr.decode(errors="replace") if isinstance(expired.stderr, bytes) else (expired.stderr or "")
        raise TflmTimeout(f"the TFLM host interpreter did not finish within {timeout:g} s", _tail(stderr)) from None
    stderr = done.stderr
    if done.returncode == 0:
        return folder, stderr, handle
    error_file = folder / "error.json"
    error = json.loads(error_file.read_text()) if error_file.is_file() else None
    handle.cleanup()
    if done.returncode < 0 or error is None:
        how = f"signal {_signal_name(done.returncode)}" if done.returncode < 0 else f"exit status {done.returncode}"
        raise TflmCrash(f"the TFLM host interpreter crashed ({how})", done.returncode, _tail(stderr))
    if done.returncode == _EXIT_UNAVAILABLE:
        raise TflmUnavailable(error["message"], _tail(stderr))
    if done.returncode == _EXIT_BAD_REQUEST:
        raise ValueError(error["message"])
    raise TflmFailure(f"TFLM failed to {error.get('stage', 'run')} the model ({error['message']})", error.get("stage", ""), _tail(stderr))


_TOTALS = re.compile(r"\[RecordingMicroAllocator\] Arena allocation (total|head|tail) (\d+) bytes")
_RECORD = re.compile(
    r"\[RecordingMicroAllocator\] '([^']+)' used (\d+) bytes with alignment overhead \(requested (\d+) bytes for (\d+) ([^)]*)\)"
)


def parse_allocation_report(text: str) -> dict:
    """The totals and per-kind records of a RecordingMicroAllocator report (as printed to stderr)."""
    totals = {kind: int(value) for kind, value in _TOTALS.findall(text)}
    records = [
        {"what": what, "used": int(used), "requested": int(requested), "count": int(count), "unit": unit.strip()}
        for what, used, requested, count, unit in _RECORD.findall(text)
    ]
    return {"totals": totals, "records": records}


def measure_arena(
    model: bytes | bytearray | Path | str, *, arena_size: int | None = None, decompression_bytes: int = 0, timeout: float | None = 600
) -> ArenaUsage:
    """Allocate `model` in an arena of `arena_size` bytes (default: generous) and return the allocator's
    report. Raises TflmFailure (stage "allocate") when it does not fit in `arena_size`. `decompression_bytes` > 0:
    a decompression region of that size beside the arena (convert.decompression_region)."""
    data = _model_bytes(model)
    arena_size = int(arena_size or default_arena_size(len(data)))
    request = {"action": "measure", "arena_size": arena_size, "decompression_bytes": int(decompression_bytes)}
    folder, stderr, handle = _run(data, request, None, timeout)
    handle.cleanup()
    report = parse_allocation_report(stderr.split("@@allocation-report", 1)[-1])
    totals = report["totals"]
    if set(totals) != {"total", "head", "tail"}:
        raise TflmError("the TFLM allocation report was not found in the worker's output", _tail(stderr))
    return ArenaUsage(totals["total"], totals["head"], totals["tail"], arena_size, report["records"])


def invoke(model, inputs: np.ndarray, *, arena_size: int | None = None, timeout: float | None = None) -> np.ndarray:
    """Run each input of the batch `inputs` (N, *input shape without the batch axis, model dtype) and
    return the outputs stacked, (N, *output shape without the batch axis)."""
    return invoke_preserving(model, inputs, tensors=None, arena_size=arena_size, timeout=timeout)["outputs"]


def invoke_preserving(
    model, inputs: np.ndarray, *, tensors: str | list[int] | None = "all", arena_size: int | None = None, timeout: float | None = None
) -> dict:
    """Like `invoke`, and also return the value of each requested tensor after each image:
    {"outputs": (N, ...), <tensor index>: (N, *tensor shape)}. `tensors` is "all" (every tensor computed
    at run time), a list of indices, or None (outputs only, allocation-recording mode)."""
    data = _model_bytes(model)
    inputs = np.ascontiguousarray(inputs)
    if inputs.ndim < 2:
        raise ValueError(f"inputs of shape {inputs.shape}: expected a batch (N, ...)")
    request = {"action": "invoke", "arena_size": int(arena_size or default_arena_size(len(data))), "preserve": tensors}
    folder, _, handle = _run(data, request, inputs, timeout)
    try:
        with np.load(folder / "outputs.npz", allow_pickle=False) as stored:
            result: dict = {"outputs": stored["outputs"]}
            for index in json.loads((folder / "result.json").read_text())["tensors"]:
                result[int(index)] = stored[f"tensor_{index}"]
    finally:
        handle.cleanup()
    return result
