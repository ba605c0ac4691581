"""python -m experiments.model_mutations: feed seeded mutations of a model.tflite to every host stage that reads one.

Each mutation (bit flips, a truncation, an overwritten run, two swapped regions; half of them aimed at the
flatbuffer's tables rather than its weight bytes) becomes a package built by hand: the artifact folder with the
mutated model.tflite and a model.json whose SHA-256 matches it, so the integrity check passes and only the
flatbuffer's soundness is on trial. Three consumers read it, as a user would run them:
  import          convert's import of an existing .tflite with its pre-flight checks (`convert --tflite`)
  parity          bench.parity.check's artifact reader, then the LiteRT and TFLM host engines on two images
  virtual-device  bench.virtual.device serving it, and the device client's HELLO + one inference
Each outcome is "refused" (a clear error: the library's own error type and message), "ran" (still a valid
model: it ran), "contained" (it passed every check, and the interpreter, which runs in a subprocess of its own
for this reason, died or hung on it: reported by name, nothing else lost), or a finding: "unclear" (another exception
type), "crashed" (the worker died) or "hung" (no answer within --timeout-s). The consumers run in a worker process
that is replaced after a crash or a hang, so this process never crashes or hangs. Writes <out>/mutations.json and
mutations.md; exit status 1 on a finding.

    python -m experiments.model_mutations --count 1000 --out reports/model_mutations
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from model import quiet_tensorflow

KINDS = ("bit flips", "truncation", "overwritten run", "swapped regions")
STAGES = ("import", "parity", "virtual-device")
OUTCOMES = ("refused", "ran", "contained", "unclear", "crashed", "hung")
FINDINGS = ("unclear", "crashed", "hung")


# ---- mutations -----------------------------------------------------------------------------------------


def weight_ranges(model: bytes) -> list[tuple[int, int]]:
    """[start, end) of each buffer's data: the weight bytes, where a change leaves the flatbuffer sound."""
    from ai_edge_litert import schema_py_generated as schema

    root = schema.Model.GetRootAsModel(model, 0)
    ranges = []
    for i in range(root.BuffersLength()):
        table = root.Buffers(i)._tab
        field = table.Offset(4)  # Buffer.data
        if field:
            start = table.Vector(field)
            ranges.append((start, start + table.VectorLen(field)))
    return ranges


def structure_offsets(size: int, weights: list[tuple[int, int]]) -> np.ndarray:
    inside = np.zeros(size, dtype=bool)
    for start, end in weights:
        inside[start:end] = True
    return np.flatnonzero(~inside)


def mutate(model: bytes, structure: np.ndarray, rng: np.random.Generator, kind: str) -> tuple[bytes, str]:
    """One mutation of `kind`; returns the bytes and a line saying what was done."""
    data = bytearray(model)
    size = len(data)

    def offset() -> int:
        return int(rng.choice(structure)) if rng.random() < 0.5 and len(structure) else int(rng.integers(0, size))

    if kind == "bit flips":
        spots = [(offset(), int(rng.integers(0, 8))) for _ in range(int(rng.integers(1, 9)))]
        for at, bit in spots:
            data[at] ^= 1 << bit
        return bytes(data), "flipped " + ", ".join(f"bit {b} of byte {a}" for a, b in spots)
    if kind == "truncation":
        keep = int(rng.integers(0, size))
        return bytes(data[:keep]), f"truncated to {keep} of {size} bytes"
    if kind == "overwritten run":
        at, length = offset(), int(rng.integers(1, 257))
        data[at : at + length] = rng.integers(0, 256, size=len(data[at : at + length]), dtype=np.uint8).tobytes()
        return bytes(data), f"overwrote {length} bytes at {at}"
    length = int(rng.integers(4, 1025))
    a, b = sorted(int(x) for x in (offset(), offset()))
    a, b = min(a, size - 2 * length), min(max(b, a + length), size - length)
    data[a : a + length], data[b : b + length] = data[b : b + length], data[a : a + length]
    return bytes(data), f"swapped {length} bytes at {a} and {b}"


def hand_built_package(source: Path, model: bytes, folder: Path) -> Path:
    """The artifact folder with `model` as its model.tflite and a model.json that states its SHA-256."""
    import hashlib

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    meta = json.loads((source / "model.json").read_text())
    for name in os.listdir(source):
        if name not in ("model.json", meta["tflite_file"]) and (source / name).is_file():
            shutil.copy2(source / name, folder / name)
    (folder / meta["tflite_file"]).write_bytes(model)
    meta["sha256"] = hashlib.sha256(model).hexdigest()
    meta["tflite_bytes"] = len(model)
    (folder / "model.json").write_text(json.dumps(meta))
    return folder


# ---- the worker: the consumers, each as a user meets it ------------------------------------------------------


def _outcome(expected: tuple[type, ...], call) -> dict:
    try:
        call()
        return {"outcome": "ran"}
    except expected as error:
        # the subprocess running the model died or was killed for hanging, not this one
        died = any(word in str(error) for word in ("died", "exit status -", "hung"))
        return {"outcome": "contained" if died else "refused", "error": f"{type(error).__name__}: {error}"[:300]}
    except Exception as error:  # a finding: the stage failed without saying why in its own terms
        return {"outcome": "unclear", "error": f"{type(error).__name__}: {error}"[:300]}


def stage_import(folder: Path, scratch: Path) -> dict:
    from convert.errors import BadInputError, PreflightError
    from convert.from_tflite import import_tflite

    labels = json.loads((folder / "model.json").read_text()).get("labels") or [str(i) for i in range(10)]
    out = scratch / "imported"
    shutil.rmtree(out, ignore_errors=True)
    return _outcome((BadInputError, PreflightError), lambda: import_tflite(folder / "model.tflite", out, labels=labels, progress=False))


def stage_parity(folder: Path, images: np.ndarray) -> dict:
    from bench.parity.engines import EngineFailure, EngineUnavailable, LiteRTEngine, TflmEngine
    from convert.artifact_reader import ArtifactError, open_artifact

    def run() -> None:
        artifact = open_artifact(folder)
        for engine in (LiteRTEngine(artifact.model_bytes, artifact.input_q), TflmEngine(artifact.model_bytes, artifact.input_q)):
            engine.load()
            engine.run(images)

    return _outcome((ArtifactError, EngineFailure, EngineUnavailable), run)


def stage_virtual_device(folder: Path, image: bytes) -> dict:
    from bench.link.device import Device
    from bench.link.errors import BenchError
    from bench.link.ports import open_port
    from bench.virtual.device import make_device
    from bench.virtual.engines import EngineFault
    from bench.virtual.server import Server
    from convert.artifact_reader import ArtifactError

    def run() -> None:
        server = Server(make_device(folder)).start()
        try:
            device = Device(open_port(server.url), url=server.url)
            try:
                device.hello()
                device.invoke(image)
            finally:
                device.close()
        finally:
            server.stop()

    return _outcome((ArtifactError, BenchError, EngineFault), run)


def worker() -> int:
    """Reads one JSON request a line ({"folder": ...}), answers one JSON line of stage outcomes."""
    quiet_tensorflow()
    scratch = Path(tempfile.mkdtemp(prefix="mutation-worker-"))
    for line in sys.stdin:
        folder = Path(json.loads(line)["folder"])
        shape = json.loads((folder / "model.json").read_text())["input"]["shape"]  # the unmutated model's
        images = np.random.default_rng(0).random((2, *shape[1:]), dtype=np.float32) * 255
        result = {
            "import": stage_import(folder, scratch),
            "parity": stage_parity(folder, images),
            "virtual-device": stage_virtual_device(folder, bytes(int(np.prod(shape)))),
        }
        print(json.dumps(result), flush=True)
    return 0


class Worker:
    """The worker process; `ask` returns its answer, or None after it died or missed the deadline (then replaced)."""

    def __init__(self):
        self.process = None

    def _start(self) -> None:
        command = [sys.executable, "-m", "experiments.model_mutations", "--worker"]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True
        )

    def ask(self, folder: Path, timeout_s: float) -> tuple[dict | None, str]:
        import select

        if self.process is None or self.process.poll() is not None:
            self._start()
        self.process.stdin.write(json.dumps({"folder": str(folder)}) + "\n")
        self.process.stdin.flush()
        ready = select.select([self.process.stdout], [], [], timeout_s)[0]
        line = self.process.stdout.readline() if ready else ""
        if line:
            return json.loads(line), ""
        why = "hung" if self.process.poll() is None else "crashed"
        detail = f"exit status {self.process.poll()}" if why == "crashed" else f"no answer in {timeout_s:.0f} s"
        self.close()
        return None, f"{why}: {detail}"

    def close(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 9)
        if self.process:
            self.process.wait()
        self.process = None


# ---- the run and its report ---------------------------------------------------------------------------------


def run(source: Path, count: int, seed: int, timeout_s: float, progress: bool) -> dict:
    model = (source / json.loads((source / "model.json").read_text())["tflite_file"]).read_bytes()
    structure = structure_offsets(len(model), weight_ranges(model))
    rng = np.random.default_rng(seed)
    worker_process, rows, started = Worker(), [], time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="mutations-"))
    try:
        for index in range(count):
            kind = KINDS[index % len(KINDS)]
            mutated, what = mutate(model, structure, rng, kind)
            folder = hand_built_package(source, mutated, scratch / "package")
            answer, failure = worker_process.ask(folder, timeout_s)
            if answer is None:  # which stage it was in is unknown: the finding is charged to all three
                answer = {stage: {"outcome": failure.split(":")[0], "error": failure} for stage in STAGES}
            rows.append({"index": index, "kind": kind, "mutation": what} | answer)
            if progress and (index + 1) % 25 == 0:
                tally = Counter(r[s]["outcome"] for r in rows for s in STAGES)
                print(f"[mutations] {index + 1}/{count} {dict(tally)} {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    finally:
        worker_process.close()
        shutil.rmtree(scratch, ignore_errors=True)
    counts = {stage: {o: sum(r[stage]["outcome"] == o for r in rows) for o in OUTCOMES} for stage in STAGES}
    return {
        "source": str(source),
        "model_bytes": len(model),
        "structure_bytes": int(len(structure)),
        "count": count,
        "seed": seed,
        "seconds": round(time.monotonic() - started, 1),
        "counts": counts,
        "by_kind": {k: {s: dict(Counter(r[s]["outcome"] for r in rows if r["kind"] == k)) for s in STAGES} for k in KINDS},
        "findings": [r for r in rows if any(r[s]["outcome"] in FINDINGS for s in STAGES)],
        "refusals": dict(
            Counter(
                r[s].get("error", "").split(":")[0] + ": " + _reason(r[s]) for r in rows for s in STAGES if r[s]["outcome"] == "refused"
            )
        ),
    }


def _reason(outcome: dict) -> str:
    """The first line of the error without its type, paths and numbers, so equal reasons count together."""
    import re

    text = outcome.get("error", "").split(": ", 1)[-1].splitlines()[0]
    text = re.sub(r"/\S+: ", "", text)
    return re.sub(r"\d+", "N", text)[:110]


def markdown(report: dict) -> str:
    lines = [
        f"# Mutated models: {report['count']} seeded mutations of {report['source']}/model.tflite",
        "",
        f"{report['model_bytes']:,} bytes, {report['structure_bytes']:,} of them outside the weight buffers; seed {report['seed']}; "
        f"{report['seconds']:.0f} s. Each mutation is a hand-built package: model.json states the mutated file's SHA-256.",
        "",
        "| stage | " + " | ".join(OUTCOMES) + " |",
        "|---|" + "---:|" * len(OUTCOMES),
    ]
    lines += [f"| {s} | " + " | ".join(str(report["counts"][s][o]) for o in OUTCOMES) + " |" for s in STAGES]
    lines += ["", f"Findings (unclear, crashed, hung): {len(report['findings'])}.", "", "| refusal | count |", "|---|---:|"]
    lines += [f"| {reason} | {n} |" for reason, n in sorted(report["refusals"].items(), key=lambda kv: -kv[1])[:20]]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments.model_mutations", description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifacts", type=Path, default=Path("build/squeezenet_cifar10"), help="the artifact folder to mutate")
    parser.add_argument("--count", type=int, default=1000, help="mutations (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout-s", type=float, default=120.0, help="a mutation whose stages take longer is a hang")
    parser.add_argument("--out", type=Path, default=Path("reports/model_mutations"))
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker:
        return worker()
    if not (args.artifacts / "model.json").is_file():
        print(f"error: {args.artifacts}/model.json: no artifact; run python -m convert ... --out {args.artifacts} first", file=sys.stderr)
        return 2
    report = run(args.artifacts, args.count, args.seed, args.timeout_s, not args.no_progress)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mutations.json").write_text(json.dumps(report, indent=1))
    (args.out / "mutations.md").write_text(markdown(report))
    print(markdown(report))
    return 1 if report["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
