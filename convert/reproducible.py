"""python -m convert.reproducible: convert one Keras model under forced machine configurations and compare the bytes.

    python -m convert.reproducible --model model/pretrained/squeezenet_cifar10.keras --data ../shared/datasets/cifar10
    python -m convert.reproducible --model tiny.keras --data synthetic --count 20 --configs default one_thread isa_limits

Each configuration converts in its own process (the same `convert.quantize.to_int8_tflite` that `python -m convert`
runs, on the same calibration images: the first `--count` of the seeded draw) with:
- `default`: as `python -m convert` runs, every core;
- `one_thread`: TensorFlow's intra/inter-op pools at 1 thread, OMP_NUM_THREADS=1, the process pinned to one CPU;
- `isa_limits`: oneDNN limited to SSE4.1 (ONEDNN_MAX_CPU_ISA), oneDNN's TF ops off (TF_ENABLE_ONEDNN_OPTS=0) and
  AVX2/AVX-512/FMA hidden from glibc's dispatch (GLIBC_TUNABLES). Libraries that read CPUID themselves (cpuinfo, in
  ruy and XNNPACK) do not see these limits; the `qemu_*` configurations change CPUID itself;
- `qemu_haswell`, `qemu_sandybridge`: under Debian's qemu-x86_64 (package qemu-user) emulating a CPU without
  AVX-512 (Haswell: AVX2+FMA) or without AVX2 and FMA (Sandy Bridge: AVX). Slow (minutes for a tiny model).
Prints each configuration's SHA-256 and, where bytes differ from the first, the tensors whose quantisation differs.
Exit status (model.exit_codes): OK all equal, CHECK_FAILED bytes differ, BAD_INPUT no such model, FAILED a configuration could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from model import exit_codes, quiet_tensorflow

ROOT = Path(__file__).resolve().parents[1]
GLIBC_HIDE = "glibc.cpu.hwcaps=-AVX512F,-AVX512BW,-AVX512CD,-AVX512DQ,-AVX512VL,-AVX2,-FMA,-AVX_Fast_Unaligned_Load"
CONFIGS: dict[str, dict] = {
    "default": {"env": {}},
    "one_thread": {"env": {"SQZ_TF_THREADS": "1", "OMP_NUM_THREADS": "1", "SQZ_PIN_CPU": "1"}},
    "isa_limits": {"env": {"ONEDNN_MAX_CPU_ISA": "SSE41", "TF_ENABLE_ONEDNN_OPTS": "0", "GLIBC_TUNABLES": GLIBC_HIDE}},
    "qemu_haswell": {"env": {}, "qemu_cpu": "Haswell-v4"},
    "qemu_sandybridge": {"env": {}, "qemu_cpu": "SandyBridge"},
}
FAST_CONFIGS = ("default", "one_thread", "isa_limits")


class ReproError(RuntimeError):
    pass


def convert_here(model_path: Path, data: str, count: int, seed: int, out: Path, optimized_calibrator: bool = False) -> None:
    """The child's side: the conversion `python -m convert` runs, with the forced thread settings applied."""
    quiet_tensorflow()
    if os.environ.get("SQZ_PIN_CPU"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import tensorflow as tf

    if threads := os.environ.get("SQZ_TF_THREADS"):
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(int(threads))
    import keras

    from convert import calibration, quantize
    from model.data import load_dataset

    if optimized_calibrator:  # the converter's own statistics, as before convert/calibration.py: for comparison
        calibration.reference_calibration = contextlib.nullcontext

    dataset = load_dataset(data, progress=False)
    dataset.require_train("calibration")
    indices = quantize.calibration_indices(len(dataset.train.images), count, seed)
    model = keras.models.load_model(model_path)
    out.write_bytes(quantize.to_int8_tflite(model, dataset.train.images[indices], progress=False))


def run_config(name: str, args, folder: Path) -> Path:
    config = CONFIGS[name]
    out = folder / f"{name}.tflite"
    command = [sys.executable, "-m", "convert.reproducible", "--child", "--model", str(args.model), "--data", args.data]
    command += ["--count", str(args.count), "--seed", str(args.seed), "--out", str(out)]
    command += ["--optimized-calibrator"] if args.optimized_calibrator else []
    if cpu := config.get("qemu_cpu"):
        qemu = shutil.which("qemu-x86_64")
        if qemu is None:
            raise ReproError(f"{name} needs qemu-x86_64: apt-get install qemu-user")
        command = [qemu, "-cpu", cpu, *command]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **config["env"]}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode or not out.is_file():
        raise ReproError(f"{name}: the conversion failed (exit status {done.returncode}):\n{done.stderr[-2000:]}")
    return out


def quantisation(path: Path) -> dict[str, tuple]:
    """Tensor name -> (scales, zero points) of a .tflite."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(path.read_bytes()))
    out = {}
    for tensor in model.subgraphs[0].tensors:
        q = tensor.quantization
        if q is not None and q.scale is not None:
            out[tensor.name.decode()] = (tuple(float(s) for s in q.scale), tuple(int(z) for z in q.zeroPoint))
    return out


def differing_tensors(a: Path, b: Path) -> list[str]:
    qa, qb = quantisation(a), quantisation(b)
    return sorted(n for n in set(qa) | set(qb) if qa.get(n) != qb.get(n))


def compare(args) -> dict:
    calibrator = "optimized (the converter's own)" if args.optimized_calibrator else "reference kernels (convert/calibration.py)"
    results: dict = {"model": str(args.model), "data": args.data, "count": args.count, "seed": args.seed, "calibrator": calibrator}
    results["configs"] = {}
    with tempfile.TemporaryDirectory(prefix="squeezenet-mcu-repro-") as tmp:
        first = None
        for name in args.configs:
            path = run_config(name, args, Path(tmp))
            entry = {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "bytes": path.stat().st_size}
            if first is not None and entry["sha256"] != results["configs"][first]["sha256"]:
                entry["differing_tensors"] = differing_tensors(Path(tmp) / f"{first}.tflite", path)
            first = first or name
            results["configs"][name] = entry
            print(f"{name}: sha256 {entry['sha256']} ({entry['bytes']:,} bytes)"
                  + (f", quantisation differs in {len(entry['differing_tensors'])} tensors" if "differing_tensors" in entry else ""),
                  flush=True)  # fmt: skip
    results["equal"] = len({c["sha256"] for c in results["configs"].values()}) == 1
    return results


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m convert.reproducible",
        description="Convert one Keras model under forced thread counts and instruction-set limits; compare the bytes.",
        epilog="Exit status (model.exit_codes): OK all equal, CHECK_FAILED bytes differ, BAD_INPUT no such model, "
        "FAILED a configuration could not run.",
    )
    parser.add_argument("--model", type=Path, required=True, help="the .keras model")
    parser.add_argument("--data", required=True, help="calibration dataset (as python -m convert --data)")
    parser.add_argument("--count", type=int, default=500, help="calibration images (default: %(default)s, as python -m convert)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the calibration draw (default: %(default)s)")
    parser.add_argument("--configs", nargs="+", default=list(FAST_CONFIGS), choices=list(CONFIGS), help="default: %(default)s")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--optimized-calibrator",
        action="store_true",
        help="calibrate with the converter's own optimized-kernel statistics (as before convert/calibration.py), to compare",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.child:
        convert_here(args.model, args.data, args.count, args.seed, args.out, args.optimized_calibrator)
        return exit_codes.OK
    if not args.model.is_file():
        print(f"error: {args.model}: no such model (a .keras file)", file=sys.stderr)
        return exit_codes.BAD_INPUT
    try:
        results = compare(args)
    except ReproError as error:  # a configuration could not run: a step failed, not the input
        print(f"error: {error}", file=sys.stderr)
        return exit_codes.FAILED
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print("bytes equal across " + ", ".join(args.configs) if results["equal"] else "bytes DIFFER")
    return exit_codes.OK if results["equal"] else exit_codes.CHECK_FAILED


if __name__ == "__main__":
    sys.exit(main())
