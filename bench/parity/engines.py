"""The engines host parity compares, behind one contract, and a scheduler that keeps every core busy.

Contract of an engine:
- `load()` checks that it can run here and prepares what is shared between chunks; it raises
  `EngineUnavailable` (a package not installed, the model file absent) and the other engines still run.
- `run(pixels)` takes raw RGB pixels, uint8 (N, H, W, 3), as every stage of this project does, and returns
  (N, classes): float32 probabilities for the float engine, the raw int8 output tensor for int8 engines
  (their inputs are quantised with the scale and zero point read from the `.tflite`). It may be called
  from several threads at once and raises `EngineFailure` when the engine breaks (a TFLM crash).

Engines:
- `KerasEngine`: the Keras float model, batched. It parallelises itself (TensorFlow's thread pools), so it
  is `exclusive`: it runs alone, before the others.
- `LiteRTEngine`: `ai-edge-litert` with the reference op resolver (`BUILTIN_REF`), one image at a time:
  the plain C kernels that TFLM's reference kernels are meant to reproduce. One interpreter per chunk, as
  interpreters are not thread-safe; LiteRT releases the GIL in `invoke`, so threads do run in parallel.
- `TflmEngine`: the TFLM host interpreter (`tflite-micro`), through `convert.tflm_host`, which runs every
  call in a worker subprocess: an abort inside TFLM becomes an `EngineFailure`, never our death.

`run_engines(engines, pixels, workers)` loads each engine, runs the exclusive ones, then cuts the
images into chunks and runs every other engine's chunks interleaved on a pool of `workers` threads (a
TFLM chunk occupies its thread's core through its subprocess), with one progress bar per engine.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Per-image cost on this project's 2-core machine, for sizing chunks: small enough that the progress bars
# move and the pool's tail is short, large enough that a TFLM worker's ~0.3 s start-up is noise.
DEFAULT_CHUNK = {"keras": 500, "litert": 200, "tflm": 250}


class EngineUnavailable(RuntimeError):
    """The engine cannot run on this machine; the message says why and what to do. Others still run."""


class EngineFailure(RuntimeError):
    """The engine started and then failed (crashed, returned an error, produced the wrong shape)."""


class Engine:
    key = ""  # short name used in reports and options: "keras", "litert", "tflm"
    title = ""  # what a reader sees
    int8 = False
    exclusive = False  # True: parallelises itself, run alone rather than in the shared pool

    def load(self) -> None:
        raise NotImplementedError

    def run(self, pixels: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class KerasEngine(Engine):
    key, title, exclusive = "keras", "Keras float", True

    def __init__(self, keras_path, problem: str | None, input_shape: tuple[int, ...], classes: int, batch_size: int = 250):
        self.keras_path, self.problem = keras_path, problem
        self.input_shape, self.classes, self.batch_size = tuple(input_shape), classes, batch_size
        self.model = None

    def load(self) -> None:
        if self.problem:
            raise EngineUnavailable(self.problem)
        from model.metadata import ModelFileError, load_model

        try:
            self.model = load_model(self.keras_path)
        except ModelFileError as error:
            raise EngineUnavailable(str(error)) from error
        except ImportError as error:  # Keras or its backend not installed
            raise EngineUnavailable(f"Keras cannot be imported ({error}); pip install -r requirements.txt") from error
        shape = tuple(int(d) for d in self.model.input_shape[1:])
        if shape != self.input_shape or int(self.model.output_shape[-1]) != self.classes:
            raise EngineUnavailable(
                f"{self.keras_path} takes {shape} and gives {self.model.output_shape[-1]} classes, but the int8 model takes "
                f"{self.input_shape} and gives {self.classes}: not the model this artifact was converted from"
            )

    def run(self, pixels: np.ndarray) -> np.ndarray:
        from model.evaluate import predict

        return np.asarray(predict(self.model, pixels, batch_size=self.batch_size), dtype=np.float32)


def litert_interpreter(model_bytes: bytes, *, preserve_all_tensors: bool = False):
    """A LiteRT interpreter with the reference kernels, tensors allocated. Raises ImportError without ai-edge-litert."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_content=model_bytes,
        experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
        experimental_preserve_all_tensors=preserve_all_tensors,
        num_threads=1,
    )
    interpreter.allocate_tensors()
    return interpreter


LITERT_PROBE_TIMEOUT_S = 120.0
_LITERT_PROBE = """
import sys
from bench.parity.engines import litert_interpreter
try:
    interpreter = litert_interpreter(sys.stdin.buffer.read())
    interpreter.invoke()
except (RuntimeError, ValueError) as error:
    sys.stderr.write(str(error))
    sys.exit(1)
"""


def probe_litert(model_bytes: bytes, timeout_s: float = LITERT_PROBE_TIMEOUT_S) -> None:
    """Load, allocate and invoke once (on zeros) in a process of its own; raise EngineFailure if that fails.
    LiteRT verifies the flatbuffer's bounds, not its meaning: some sound-looking models make its allocation
    loop for ever or crash (measured: experiments.model_mutations), and parity must report that, not share its fate."""
    import subprocess

    command = [sys.executable, "-c", _LITERT_PROBE]
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""), TF_CPP_MIN_LOG_LEVEL="2")
    try:
        done = subprocess.run(command, input=model_bytes, capture_output=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise EngineFailure(f"LiteRT hung on the model: its probe process was killed after {timeout_s:.0f} s") from None
    if done.returncode < 0:
        raise EngineFailure(f"LiteRT died on the model: its probe process was killed by signal {-done.returncode}")
    if done.returncode != 0:
        text = done.stderr.decode(errors="replace").strip().splitlines()
        raise EngineFailure(f"LiteRT could not load the model ({text[-1] if text else f'exit status {done.returncode}'})")


class LiteRTEngine(Engine):
    key, title, int8 = "litert", "LiteRT reference kernels (int8)", True

    def __init__(self, model_bytes: bytes, input_q):
        self.model_bytes, self.input_q = model_bytes, input_q

    def load(self) -> None:
        try:
            import ai_edge_litert.interpreter  # noqa: F401  (the probe below needs it too)
        except ImportError as error:
            raise EngineUnavailable(f"ai-edge-litert is not installed ({error}); pip install ai-edge-litert") from error
        probe_litert(self.model_bytes)

    def run(self, pixels: np.ndarray) -> np.ndarray:
        inputs = self.input_q.quantize(pixels)
        try:
            interpreter = litert_interpreter(self.model_bytes)
            input_index = interpreter.get_input_details()[0]["index"]
            output_index = interpreter.get_output_details()[0]["index"]
            outputs = []
            for sample in inputs:
                interpreter.set_tensor(input_index, sample[None])
                interpreter.invoke()
                outputs.append(interpreter.get_tensor(output_index)[0].copy())
        except (RuntimeError, ValueError) as error:
            raise EngineFailure(f"LiteRT failed ({error})") from error
        return np.stack(outputs)


class TflmEngine(Engine):
    key, title, int8 = "tflm", "TFLM host interpreter (int8)", True

    def __init__(self, model_bytes: bytes, input_q, seconds_per_image_limit: float = 1.0):
        self.model_bytes, self.input_q = model_bytes, input_q
        self.seconds_per_image_limit = seconds_per_image_limit

    def load(self) -> None:
        from convert import tflm_host

        if not tflm_host.available():
            raise EngineUnavailable(
                "tflite-micro is not installed (pip install tflite-micro; its wheels exist for Linux x86_64 only, "
                "so on macOS and Windows parity runs without TFLM)"
            )

    def run(self, pixels: np.ndarray) -> np.ndarray:
        from convert import tflm_host

        inputs = self.input_q.quantize(pixels)
        # A hung worker must not hang the report: generous per image, plus its start-up.
        timeout = 60 + self.seconds_per_image_limit * len(inputs)
        try:
            return tflm_host.invoke(self.model_bytes, inputs, timeout=timeout)
        except tflm_host.TflmUnavailable as error:
            raise EngineUnavailable(str(error)) from error
        except tflm_host.TflmError as error:
            raise EngineFailure(str(error)) from error


@dataclass
class EngineResult:
    key: str
    title: str
    int8: bool
    status: str  # "ok", "unavailable" (cannot run here), "failed" (broke while loading or running)
    outputs: np.ndarray | None = None  # (N, classes), see the module docstring
    message: str | None = None
    busy_seconds: float = 0.0  # summed over chunks: the time one core spent on this engine
    chunks: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def describe(self, images: int) -> dict:
        return {
            "title": self.title,
            "int8": self.int8,
            "status": self.status,
            "message": self.message,
            "busy_seconds": round(self.busy_seconds, 2),
            "ms_per_image": round(1000 * self.busy_seconds / images, 2) if self.ok and images else None,
            "chunks": self.chunks,
        }


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size, n)) for start in range(0, n, size)]


def _timed(engine: Engine, pixels: np.ndarray) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    outputs = engine.run(pixels)
    return outputs, time.perf_counter() - started


def load_engines(engines: list[Engine], log=print) -> tuple[list[Engine], dict[str, EngineResult]]:
    """Load each engine; return those that can run, and a result per engine (status "ok" for those)."""
    runnable, results = [], {}
    for engine in engines:
        try:
            engine.load()
        except (EngineUnavailable, EngineFailure) as error:
            status = "unavailable" if isinstance(error, EngineUnavailable) else "failed"
            results[engine.key] = EngineResult(engine.key, engine.title, engine.int8, status, message=str(error))
            log(f"warning: {engine.title} is {status}; the other engines still run: {error}")
            continue
        results[engine.key] = EngineResult(engine.key, engine.title, engine.int8, "ok")
        runnable.append(engine)
    return runnable, results


class _Collector:
    """Chunk results in their slots, busy time, progress bars; the first failure of an engine ends it."""

    def __init__(self, engines: list[Engine], results: dict[str, EngineResult], plan: dict, progress: bool | None, log):
        from model.progress import progress as reporter

        self.results, self.log = results, log
        self.slots = {key: [None] * len(spans) for key, spans in plan.items()}
        width = max((len(e.title) for e in engines), default=0)
        total = {key: spans[-1][1] if spans else 0 for key, spans in plan.items()}
        # A bar per engine on a terminal; periodic lines in a redirected log (model.progress).
        self.bars = {
            e.key: reporter(total[e.key], e.title.ljust(width), "img", enabled=progress, position=i, leave=True)
            for i, e in enumerate(engines)
        }

    def done(self, engine: Engine, slot: int, span: tuple[int, int], outputs: np.ndarray, seconds: float) -> None:
        self.slots[engine.key][slot] = outputs
        self.results[engine.key].busy_seconds += seconds
        self.results[engine.key].chunks += 1
        self.bars[engine.key].update(span[1] - span[0])

    def fail(self, engine: Engine, error: Exception) -> None:
        result = self.results[engine.key]
        if result.ok:
            result.status, result.message = "failed", str(error)
            self.log(f"warning: {engine.title} failed; the other engines go on: {error}")

    def close(self, n: int) -> None:
        for bar in self.bars.values():
            bar.close()
        for key, slots in self.slots.items():
            result = self.results[key]
            if not result.ok:
                continue
            if any(slot is None for slot in slots):  # interrupted: some chunks never ran
                result.status, result.message = "failed", "did not finish"
                continue
            result.outputs = np.concatenate(slots)
            if len(result.outputs) != n:
                result.status, result.message = "failed", f"returned {len(result.outputs)} outputs for {n} images"


def run_engines(
    engines: list[Engine],
    pixels: np.ndarray,
    *,
    workers: int | None = None,
    chunk_sizes: dict[str, int] | None = None,
    progress: bool | None = None,
    log=print,
) -> dict[str, EngineResult]:
    """Run every engine on `pixels` (uint8, (N, H, W, 3)) and return {key: EngineResult}, in `engines`' order.

    Never raises for an engine's sake: a missing or broken engine is a result with its status and message,
    and the others still run. `progress`: True or False, or None for bars only on a terminal.
    KeyboardInterrupt propagates (chunks not yet started are cancelled).
    """
    workers = workers or default_workers()
    sizes = DEFAULT_CHUNK | (chunk_sizes or {})
    n = len(pixels)
    runnable, results = load_engines(engines, log)
    plan = {e.key: _chunks(n, sizes.get(e.key, 250)) for e in runnable}
    collector = _Collector(runnable, results, plan, progress, log)
    try:
        for engine in (e for e in runnable if e.exclusive):
            for slot, (start, stop) in enumerate(plan[engine.key]):
                try:
                    outputs, seconds = _timed(engine, pixels[start:stop])
                except (EngineFailure, EngineUnavailable) as error:
                    collector.fail(engine, error)
                    break
                collector.done(engine, slot, (start, stop), outputs, seconds)
        pooled = [[(e, slot, span) for slot, span in enumerate(plan[e.key])] for e in runnable if not e.exclusive]
        _run_pooled(_interleave(pooled), pixels, workers, collector)
    finally:
        collector.close(n)
    return results


def _run_pooled(tasks: list, pixels: np.ndarray, workers: int, collector: _Collector) -> None:
    """Run (engine, slot, span) tasks on `workers` threads, in order. Interleaved tasks keep every engine
    advancing together, so the pool ends on one small chunk rather than on one engine's whole backlog."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="parity") as pool:
        futures = {pool.submit(_timed, engine, pixels[span[0] : span[1]]): (engine, slot, span) for engine, slot, span in tasks}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    engine, slot, span = futures[future]
                    if not collector.results[engine.key].ok:
                        continue  # failed earlier: its other chunks do not count
                    try:
                        outputs, seconds = future.result()
                    except (EngineFailure, EngineUnavailable) as error:
                        collector.fail(engine, error)
                        for other in pending:  # its remaining chunks would only fail again
                            if futures[other][0] is engine:
                                other.cancel()
                        continue
                    collector.done(engine, slot, span, outputs, seconds)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _interleave(groups: list[list]) -> list:
    merged = []
    for index in range(max((len(g) for g in groups), default=0)):
        merged.extend(g[index] for g in groups if index < len(g))
    return merged
