"""Check an MLPerf Tiny runner session against the TFLM host interpreter: same images, same model, same outputs?

The runner's results.json (one entry per image: `file`, `class`, `infer.results`, the device's dequantised scores
with 3 decimals) is set against the TFLM host interpreter run on the same .bin files, quantised with the artifact's
input scale and zero point. A score with 3 decimals gives back the device's int8 output exactly when the output
scale is at least 0.002 (ResNet-8's and SqueezeNet's softmax: 1/256): q = round(score / scale) + zero_point.

`python -m bench.mlperf.results --session build/mlperf-runner/sessions/<time> --artifacts build/resnet8
--dataset build/mlperf-datasets/ic01` prints the device's top-1 (as the runner counts it), the host's, and how many
images are bit-identical; exit 0 when all are, 1 when any differs, 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def device_outputs(results: list[dict], scale: float, zero_point: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(files, labels, int8 outputs) from the runner's results.json entries that carry inference results."""
    rows = [r for r in results if isinstance(r, dict) and "file" in r and r.get("infer", {}).get("results")]
    if not rows:
        raise ValueError("no entries with infer results in results.json (an accuracy-mode session has one per image)")
    scores = np.array([r["infer"]["results"] for r in rows], dtype=np.float64)
    from model.preprocessing import quantize_int8  # the one quantizer: the device's scores back onto its int8 grid

    q = quantize_int8(scores, scale, zero_point)
    return [r["file"] for r in rows], np.array([int(r["class"]) for r in rows]), q


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Set an MLPerf Tiny runner session's outputs against the TFLM host interpreter.")
    parser.add_argument("--session", required=True, type=Path, help="the runner's sessions/<time> folder (holds results.json)")
    parser.add_argument("--artifacts", required=True, type=Path, help="the model's artifact folder (build/<name>)")
    parser.add_argument("--dataset", required=True, type=Path, help="the runner's dataset folder for the model (…/ic01)")
    args = parser.parse_args(argv)
    from convert import tflm_host
    from convert.artifact_reader import ArtifactError, open_artifact

    try:
        artifact = open_artifact(args.artifacts)
        results = json.loads((args.session / "results.json").read_text())
        out_q = artifact.output_q
        if out_q.scale < 0.002:
            raise ValueError(f"output scale {out_q.scale} is below 0.002: 3-decimal scores do not give the int8 outputs back")
        files, labels, device = device_outputs(results, out_q.scale, out_q.zero_point)
        pixels = np.stack([np.frombuffer((args.dataset / f).read_bytes(), np.uint8) for f in files])
        inputs = artifact.input_q.quantize(pixels.astype(np.float64)).reshape(len(files), *artifact.input_shape)
        host = tflm_host.invoke(artifact.model_bytes, inputs).reshape(len(files), -1)
    except (ArtifactError, OSError, ValueError, KeyError, tflm_host.TflmError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    same = np.all(device == host, axis=1)
    device_top1 = float(np.mean(np.argmax(device, axis=1) == labels))
    host_top1 = float(np.mean(np.argmax(host, axis=1) == labels))
    max_diff = int(np.max(np.abs(device.astype(int) - host.astype(int))))
    print(f"{args.session}: {len(files)} images; device top-1 {100 * device_top1:.1f}%, TFLM host top-1 {100 * host_top1:.1f}%")
    print(f"bit-identical to the TFLM host: {int(same.sum())}/{len(files)} (max |diff| {max_diff} LSB)")
    for f in [f for f, ok in zip(files, same, strict=True) if not ok][:10]:
        print(f"  differs: {f}")
    return 0 if same.all() else 1


if __name__ == "__main__":
    sys.exit(main())
