"""python -m experiments.compression_sizes: model sizes of the ImageNet-shaped SqueezeNets, float, int8 and LUT-compressed.

    python -m experiments.compression_sizes [--versions 1.0 1.1] [--bits 6 4] [--out reports/compression_sizes]
    python -m experiments.compression_sizes --versions 1.0 --bits --density 0.33 --pruned-bits 6 8 --out reports/compression_sizes_pruned

The analog of the SqueezeNet paper's Table 2 (fp32 4.8 MB; Deep Compression 8-bit 0.66 MB, 6-bit
0.47 MB) for sizes only: each version is built at 224x224x3 with 1000 classes and its random initial
weights (nothing is trained, so there is no accuracy to report), converted to full int8 (calibrated on
a few random images), and for each --bits clustered per output channel (model.clustering, k-means, no
fine-tuning) before the same conversion and TFLM's LUT compression (convert.lut). The byte counts depend
on the shapes and on the number of distinct values per channel, not on what the weights learned (the
trained CIFAR-10 model's own figures are in docs/EXPERIMENTS.md).

With --density, Deep Compression's order as well: magnitude pruning to that density per output channel
(model.pruning), then for each --pruned-bits below 8 k-means of the surviving weights (2**bits per channel),
int8 conversion, and each of TFLM's DECODE formats for the weights (convert.decode_formats: LUT, prune,
Huffman, and the smallest per tensor). Here the entropy of the values matters as well as their count, and
random initial weights are not trained ones: these sizes are an exercise, not a prediction.

Writes sizes.json and sizes.md into --out (when given) and prints the table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from model import exit_codes, quiet_tensorflow

PAPER = {"fp32": "4.8 MB", "Deep Compression 8-bit": "0.66 MB", "Deep Compression 6-bit": "0.47 MB"}
MIB = 1 << 20


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.compression_sizes",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--versions", nargs="+", default=["1.0", "1.1"], choices=["1.0", "1.1"])
    parser.add_argument("--bits", nargs="*", type=int, default=[6, 4], help="LUT index bits to cluster to (k = 2**bits per channel)")
    parser.add_argument("--density", type=float, default=None, help="also prune to this weight density (the paper: 0.33) and compress")
    parser.add_argument(
        "--pruned-bits", nargs="+", type=int, default=[6, 8], help="with --density: bits of weight sharing after pruning (8: int8 as it is)"
    )
    parser.add_argument(
        "--per-layer-sharing",
        action="store_true",
        help="with --density: share the survivors with one codebook per layer, as Deep Compression does, and convert with one "
        "int8 scale per weight tensor, so that the codebook stays one set of int8 values (default: per output channel, both)",
    )
    parser.add_argument(
        "--save-tflite",
        type=Path,
        default=None,
        help="write each pruned model without its softmax (for a board run) here, as v<version>_pruned_<bits>bit_logits.tflite",
    )
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--calibration-images", type=int, default=4, help="random images for int8 calibration (sizes do not depend on it)")
    parser.add_argument("--float-tflite", action="store_true", help="also convert to a float32 .tflite (one more conversion per version)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="folder for sizes.json and sizes.md")
    return parser


def float_tflite_bytes(model) -> int:
    import tempfile

    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="squeezenet-mcu-float-") as folder:
        shape = (1, *model.input_shape[1:])
        model.export(folder, format="tf_saved_model", verbose=False, input_signature=[tf.TensorSpec(shape, tf.float32)])
        return len(tf.lite.TFLiteConverter.from_saved_model(folder).convert())


def measure_version(version: str, args, calibration) -> dict:
    import keras

    from convert import lut
    from convert.quantize import to_int8_tflite
    from model.clustering import cluster_model
    from model.squeezenet import squeezenet

    keras.utils.set_random_seed(args.seed)
    model = squeezenet(version, input_size=args.input_size, classes=args.classes)
    initial = model.get_weights()
    params = int(model.count_params())
    row = {"version": version, "parameters": params, "fp32_param_bytes": 4 * params}
    started = time.monotonic()
    if args.float_tflite:
        row["fp32_tflite_bytes"] = float_tflite_bytes(model)
    int8 = to_int8_tflite(model, calibration, progress=False)
    row["int8_tflite_bytes"] = len(int8)
    row["int8_weight_bytes"] = sum(p.bytes_before for p in lut.plan(int8))
    row["lut"] = {}
    for bits in args.bits:
        model.set_weights(initial)
        cluster_model(model, bits)  # the layers LUT compression can shrink
        clustered = to_int8_tflite(model, calibration, progress=False)
        plans = lut.plan(clustered)
        compressed = lut.compress(clustered, plans)
        row["lut"][str(bits)] = {
            "tflite_bytes": len(compressed),
            "weight_bytes": sum(p.bytes_after for p in plans),
            "tensors_compressed": sum(p.compress for p in plans),
            "tensors": len(plans),
            "max_unique_per_channel": max(p.max_unique for p in plans),
        }
    if args.density is not None:
        row["pruned"] = {}
        for bits in args.pruned_bits:
            model.set_weights(initial)
            row["pruned"][str(bits)] = measure_pruned(model, bits, args, calibration, version)
    row["seconds"] = round(time.monotonic() - started, 1)
    print(f"squeezenet v{version}: {row['seconds']} s", file=sys.stderr, flush=True)
    return row


def save_logits_model(model, calibration, path: Path, per_channel: bool = True) -> None:
    """The same weights up to `avgpool10` (the logits), converted to int8: for running on a board. TFLM's int8
    softmax aborts (a failed CHECK on the sum of exponentials) when an untrained model's 1000 outputs nearly
    tie; the softmax has no parameters, so the sizes are those of the full model less the one operator."""
    import keras

    from convert.quantize import to_int8_tflite

    logits = keras.Model(model.inputs, model.get_layer("avgpool10").output, name=f"{model.name}_logits")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_int8_tflite(logits, calibration, progress=False, per_channel=per_channel))


def measure_pruned(model, bits: int, args, calibration, version: str) -> dict:
    """Prune `model` to args.density, share weights at `bits` (8: none), convert, and size every DECODE format."""
    from convert import lut
    from convert.decode_formats import plan as formats
    from convert.quantize import to_int8_tflite
    from model.pruning import cluster_survivors, prune_model

    per_layer = args.per_layer_sharing
    pruned = prune_model(model, args.density)
    if bits < 8:
        cluster_survivors(model, bits, per_layer=per_layer)
    int8 = to_int8_tflite(model, calibration, progress=False, per_channel=not per_layer)
    if args.save_tflite:
        name = f"v{version}_pruned_{bits}bit{'_per_layer' if per_layer else ''}_logits.tflite"
        save_logits_model(model, calibration, args.save_tflite / name, per_channel=not per_layer)
    entry = {"density": round(pruned["density"], 4), "kept_weights": pruned["kept"], "int8_tflite_bytes": len(int8)}
    # distinct int8 values of the worst output channel (per-channel scales) or tensor (per-tensor scales)
    entry["max_unique"] = max(p.max_unique for p in lut.plan(int8))
    for name, methods in (("lut", ("lut",)), ("prune", ("prune",)), ("huffman", ("huffman",)), ("best", formats.METHODS)):
        # Weights only: an untrained model's biases are all zero and would compress to bitmasks, flattering the figure.
        plans, encodings = formats.plan(int8, methods, roles=("weights",))
        chosen = [p for p in plans if p.compress]
        compressed = formats.apply(int8, plans, encodings) if chosen else int8
        entry[name] = {
            "tflite_bytes": len(compressed),
            "weight_bytes": sum(p.bytes_after for p in plans),
            "tensors_compressed": len(chosen),
            "tensors": len(plans),
            "formats": {m: sum(p.method == m for p in chosen) for m in formats.METHODS},
        }
    entry["int8_weight_bytes"] = sum(p.bytes_before for p in plans)
    return entry


def render_pruned(rows: list[dict], args) -> str:
    def mib(n: int) -> str:
        return f"{n / MIB:.3f}"

    header = ["model", "bits", "density", "int8 .tflite (weights)", "LUT", "prune", "Huffman", "smallest per tensor (formats)"]
    lines = ["| " + " | ".join(header) + " |", "|---|---:|---:|" + "---:|" * (len(header) - 3)]
    for r in rows:
        for bits, e in (r.get("pruned") or {}).items():
            int8 = f"{mib(e['int8_tflite_bytes'])} ({mib(e['int8_weight_bytes'])})"
            cells = [f"SqueezeNet v{r['version']}", bits, f"{100 * e['density']:.1f}%", int8]
            for name in ("lut", "prune", "huffman"):
                f = e[name]
                cells.append(f"{mib(f['tflite_bytes'])} ({mib(f['weight_bytes'])}; {f['tensors_compressed']}/{f['tensors']})")
            used = ", ".join(f"{m} {n}" for m, n in e["best"]["formats"].items() if n)
            cells.append(f"{mib(e['best']['tflite_bytes'])} ({mib(e['best']['weight_bytes'])}; {used})")
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Pruned to {args.density:.0%} density per output channel by magnitude (model.pruning), the survivors shared by "
        + (
            "one k-means codebook per layer and converted with one int8 scale per weight tensor (--per-layer-sharing)"
            if args.per_layer_sharing
            else "per-channel k-means"
        )
        + " (bits 8: not shared, int8 as converted), random initial weights, no fine-tuning: sizes only. MiB; whole .tflite files, "
        "in brackets the weight tensors alone (encoded data + ancillary tensors) and how many of the weight tensors are compressed. "
        "Biases are left as they are (an untrained model's are all zero). Smallest per tensor: convert.decode_formats.plan with "
        "LUT, prune and Huffman allowed (DECODE formats do not chain, so each tensor takes one).",
    ]
    return "\n".join(lines)


def render(rows: list[dict], args) -> str:
    def mib(n: int) -> str:
        return f"{n / MIB:.2f}"

    header = ["model", "parameters", "fp32, 4 B/param", "int8 .tflite (weights)"]
    header += ["fp32 .tflite"] if args.float_tflite else []
    header += [f"LUT {b}-bit .tflite (weights; tensors)" for b in args.bits]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for r in rows:
        cells = [f"SqueezeNet v{r['version']}", f"{r['parameters']:,}", mib(r["fp32_param_bytes"])]
        cells += [f"{mib(r['int8_tflite_bytes'])} ({mib(r['int8_weight_bytes'])})"]
        cells += [mib(r["fp32_tflite_bytes"])] if args.float_tflite else []
        for b in args.bits:
            lut = r["lut"][str(b)]
            cells.append(f"{mib(lut['tflite_bytes'])} ({mib(lut['weight_bytes'])}; {lut['tensors_compressed']}/{lut['tensors']})")
        lines.append("| " + " | ".join(cells) + " |")
    paper = ", ".join(f"{k} {v}" for k, v in PAPER.items())
    lines += [
        "",
        f"Sizes in MiB (2^20 bytes: the paper's unit, its fp32 4.8 MB is 1,248,424 x 4 bytes). {args.input_size}x{args.input_size}x3 "
        f"input, {args.classes} classes, random initial weights: sizes only, nothing is trained, no accuracy. LUT: per-output-channel "
        "k-means to 2**bits values, int8 conversion, TFLM LUT compression of each weight tensor where it saves bytes (tensors: "
        "compressed/all). Whole .tflite files; in brackets the weight tensors alone (int8 data, or LUT indices plus value tables). "
        "The rest is biases and per-channel quantisation parameters (a float32 scale and an int64 zero point per channel, twice: "
        "weights and biases), which compression does not touch.",
        "",
        f"Paper (SqueezeNet v1.0, Table 2): {paper}. Deep Compression also prunes before clustering (the paper: '33% sparsity') and "
        "stores the survivors sparsely: with --density, the pruned table measures that with "
        "TFLM's prune and Huffman DECODE formats (convert.decode_formats). Per-channel value tables (2**bits bytes per output channel) "
        "are why 6-bit gains little: a 1x1 convolution with 16-64 inputs per channel saves less than its 64-byte table.",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow()
    if not all(1 <= b <= 7 for b in args.bits):
        print("error: --bits must be 1..7 (TFLM's LUT index widths)", file=sys.stderr)
        return exit_codes.BAD_INPUT
    if args.density is not None and not (0 < args.density <= 1 and all(1 <= b <= 8 for b in args.pruned_bits)):
        print("error: --density must be in (0, 1] and --pruned-bits 1..8 (8: no weight sharing)", file=sys.stderr)
        return exit_codes.BAD_INPUT
    import numpy as np

    from model.provenance import command_line, now_utc, software_versions, write_json

    rng = np.random.default_rng(args.seed)
    calibration = rng.integers(0, 256, size=(args.calibration_images, args.input_size, args.input_size, 3), dtype=np.uint8)
    rows = [measure_version(version, args, calibration) for version in args.versions]
    table = render(rows, args) if args.bits else ""
    if args.density is not None:
        table += ("\n\n" if table else "") + render_pruned(rows, args)
    print(table)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        write_json(
            args.out / "sizes.json", {"rows": rows, "command": command_line(), "created": now_utc(), "software": software_versions()}
        )
        (args.out / "sizes.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
