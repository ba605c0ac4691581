"""python -m convert.compress: an artifact of `python -m convert` -> a new artifact with weights compressed in TFLM's DECODE formats.

    python -m convert.compress --artifact build/squeezenet_cifar10_cluster4bit --out build/squeezenet_cifar10_cluster4bit-lut
    python -m convert.compress --artifact build/<pruned> --out build/<pruned>-best --method best

--method lut (the default) is TFLM's look-up-table format, described below. prune and huffman are TFLM's
other two DECODE formats, encoded by this repository (`convert.decode_formats`: TFLM's Python for them is
a stub): a bitmask plus the non-zero values, and prefix codes with lookup tables; they pay for pruned or
clustered weights. best takes, per tensor, the smallest of the three (formats do not chain: a DECODE
input must be a constant tensor). The same lossless check and all-or-nothing write apply to all.

Reads build/<name>/ (model.json checked against model.tflite), chooses per int8 weight tensor the
smallest LUT index width that holds its worst output channel (`convert.lut`), compresses the tensors
where that saves bytes (TFLM's DECODE operator expands them at run time), and writes --out in the same
artifact format: model.tflite, model.json (with a "compression" section), regenerated firmware/ sources,
report.md/json. Before anything is written, both models run in the TFLM host interpreter on
--check-images images and must give bit-identical outputs (LUT compression is lossless), and the
compressed model's arena is measured (the decoded weights of one layer at a time live in the arena).

Only a clustered model compresses: an ordinary int8 model has ~100-250 distinct values per channel.
Cluster it first: python -m experiments.cluster --model X.keras --bits 4 ..., then python -m convert.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from convert.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_PREFLIGHT  # noqa: F401 (exit statuses shared with python -m convert)
from model import exit_codes, quiet_tensorflow

EXIT_NOTHING = exit_codes.REFUSED  # nothing worth compressing: nothing written
RANDOM_DATA = "random"
NO_BOARD = "none"
METHOD_CHOICES = ("lut", "prune", "huffman", "best")
METHOD_TEXT = {
    "lut": "TFLM look-up-table (LUT) weights: DECODE operators (custom op TFLM_DECODE) expand each tensor before its layer",
    "prune": "TFLM prune format (bitmask + non-zero values, convert.decode_formats.prune): DECODE operators expand each tensor",
    "huffman": "TFLM Huffman format (prefix codes + lookup tables, convert.decode_formats.huffman): DECODE operators expand each tensor",
    "best": "per tensor the smallest of TFLM's LUT, prune and Huffman formats (convert.decode_formats.plan): DECODE operators",
}


def methods_for(method: str) -> tuple[str, ...]:
    from convert.decode_formats.plan import METHODS

    return METHODS if method == "best" else (method,)


class NothingToCompress(Exception):
    """No weight tensor of the model gets smaller with LUT compression; `plans` says why for each."""

    def __init__(self, message: str, plans: list):
        self.plans = plans
        super().__init__(message)


def build_parser() -> argparse.ArgumentParser:
    from convert.lut import MAX_INDEX_BITS

    parser = argparse.ArgumentParser(
        prog="python -m convert.compress",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        epilog="Exit status (README, Exit codes): 0 done, 2 unusable input, 4 refused, nothing written (a pre-flight or "
        "lossless check of the compressed model failed, or nothing to compress), 5 compression failed.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--artifact", required=True, type=Path, help="artifact folder written by python -m convert")
    parser.add_argument("--out", required=True, type=Path, help="the new artifact folder (replaced only when it holds an artifact)")
    parser.add_argument(
        "--method",
        default="lut",
        choices=METHOD_CHOICES,
        help="DECODE format: lut, prune, huffman, or best (the smallest of the three for each tensor)",
    )
    parser.add_argument("--max-bits", type=int, default=MAX_INDEX_BITS, choices=range(1, MAX_INDEX_BITS + 1), help="widest LUT index")
    parser.add_argument(
        "--max-decoded-bytes",
        type=int,
        default=None,
        help="leave tensors larger than this uncompressed (None: no limit): each compressed tensor is decoded into the arena "
        "while its layer runs",
    )
    parser.add_argument(
        "--board",
        default=None,
        help="fit this board's RAM: leave the largest tensors uncompressed until the arena fits. None: the source artifact's "
        f"--board, if it had one; '{NO_BOARD}': compress everything that saves flash, whatever the arena",
    )
    parser.add_argument("--check-images", type=int, default=32, help="images both models must give bit-identical outputs on")
    parser.add_argument(
        "--data",
        default=None,
        help=f"dataset whose test images the check uses. None: the artifact's calibration dataset; '{RANDOM_DATA}': seeded noise",
    )
    parser.add_argument("--name", default=None, help="model name in the firmware and report; None: the --out folder's name")
    parser.add_argument("--quiet", action="store_true", help="no size table")
    return parser


def _check_images(artifact: dict, data: str | None, count: int) -> tuple:
    """(uint8 images, description): the first `count` test images of `data` (default: the dataset the
    artifact was calibrated on), or seeded noise for 'random'. Lossless means equal on any input; real
    images give realistic activations."""
    import numpy as np

    from convert.errors import BadInputError

    shape = artifact["input"]["shape"][1:]
    if data == RANDOM_DATA:
        images = np.random.default_rng(0).integers(0, 256, size=(count, *shape), dtype=np.uint8)
        return images, {"source": "random", "seed": 0, "images": count}
    source = data or artifact["calibration"]["dataset"]["source"]
    from model.data import DatasetError, load_dataset

    try:
        dataset = load_dataset(str(source), progress=False)
    except DatasetError as error:
        raise BadInputError(f"check images: {error}; pass --data DIR (or --data {RANDOM_DATA})") from error
    if list(dataset.test.images.shape[1:]) != list(shape):
        raise BadInputError(f"check images: {dataset.name} has {dataset.test.images.shape[1:]} images, the model takes {shape}")
    images = dataset.test.images[:count]
    return images, {"source": dataset.name, "fingerprint": dataset.fingerprint, "split": "test", "images": len(images)}


def check_decoded_tensors(original: bytes, compressed: bytes, plans: list, image) -> dict:
    """Every compressed tensor as the TFLM host's DECODE expands it (kept with kPreserveAllTensors while the
    model runs on one `image`, int8) against the original tensor, element for element. Raises ConversionError."""
    import numpy as np
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    from convert import tflm_host
    from convert.decode_formats.plan import decoded_tensors
    from convert.errors import ConversionError

    where = decoded_tensors(compressed, plans)
    if not where:
        raise ConversionError("no DECODE output found for the compressed tensors: the compressed model is not what was planned")
    try:
        kept = tflm_host.invoke_preserving(compressed, image, tensors=sorted(where.values()))
    except tflm_host.TflmError as error:
        message = f"the TFLM host interpreter could not run the compressed model to check its decoded tensors ({error})"
        raise ConversionError(message) from error
    graph = model_editor.read(original).subgraphs[0]
    bad = []
    for index, decoded in where.items():
        source = np.ascontiguousarray(np.asarray(graph.tensors[index].array))
        got = np.ascontiguousarray(np.asarray(kept[decoded][0]))
        if got.nbytes != source.nbytes or not np.array_equal(got.view(np.uint8).reshape(-1), source.view(np.uint8).reshape(-1)):
            bad.append(graph.tensors[index].name)
    if bad:
        message = f"TFLM's DECODE expands {len(bad)} tensor(s) to other values than the original's ({bad[:3]})"
        raise ConversionError(message + ": an encoder bug; nothing written")
    return {"tensors": len(where), "bit_identical": True}


def check_identical(original: bytes, compressed: bytes, images, io: dict) -> dict:
    """Run both models on `images` in the TFLM host interpreter; raise ConversionError unless every output
    byte agrees. Returns the outputs' summary."""
    import numpy as np

    from convert import tflm_host
    from convert.errors import ConversionError
    from model.preprocessing import quantize_input

    inputs = quantize_input(images, io["scale"], io["zero_point"])
    try:
        expected = tflm_host.invoke(original, inputs)
        got = tflm_host.invoke(compressed, inputs)
    except tflm_host.TflmError as error:
        raise ConversionError(f"the TFLM host interpreter could not run the models for the lossless check ({error})") from error
    if expected.shape != got.shape or not np.array_equal(expected, got):
        rows = np.flatnonzero((expected != got).reshape(len(inputs), -1).any(axis=1)) if expected.shape == got.shape else []
        raise ConversionError(
            f"the compressed model's outputs differ from the original's on {len(rows)} of {len(inputs)} images (first: {list(rows[:5])}); "
            "the DECODE formats are lossless, so this is a bug in the compressor or the DECODE kernel: do not use this model"
        )
    return {"images": int(len(inputs)), "bit_identical": True, "engine": tflm_host.MEASURED_BY}


def _select(plans: list, max_decoded_bytes: int | None) -> list:
    if max_decoded_bytes is None:
        return plans
    for p in plans:
        if p.compress and p.bytes_before > max_decoded_bytes:
            p.compress = False
            p.reason = f"decoded it would take {p.bytes_before:,} B of arena, over --max-decoded-bytes {max_decoded_bytes:,}"
    return plans


def _compress_to_fit(original: bytes, plans: list, board, apply=None) -> tuple[bytes, object, int]:
    """Compress by `plans`; with a board, while the firmware arena is over its RAM budget, leave the
    largest compressed tensor uncompressed and try again (its decoded copy is what grows the arena).
    Returns (model bytes, ArenaUsage, firmware arena). Raises ConversionError or NothingToCompress."""
    from convert import boards, lut, preflight
    from convert.errors import ConversionError

    apply = apply or lut.compress
    while True:
        try:
            compressed = apply(original, plans)
        except Exception as error:  # the compressor raises CompressionError and assorted others
            raise ConversionError(f"the TFLM compressor failed ({type(error).__name__}: {error})") from error
        check, usage = preflight.tflm_allocation_check(compressed)
        if usage is None:
            raise ConversionError(f"the TFLM host interpreter cannot allocate the compressed model: {check.detail}")
        firmware_arena = boards.arena_for_firmware(usage.total)
        if board is None or boards.fit(board, len(compressed), firmware_arena)["fits_ram"]:
            return compressed, usage, firmware_arena
        largest = max((p for p in plans if p.compress), key=lambda p: p.bytes_before)
        largest.compress = False
        largest.reason = (
            f"kept so the arena fits {board.key}: decoded, its {largest.bytes_before:,} B would push the firmware arena to "
            f"{firmware_arena:,} B (budget {board.arena_budget:,})"
        )
        if not any(p.compress for p in plans):
            message = f"nothing to compress within {board.key}'s RAM: every compressed tensor's decoded copy overflows it"
            raise NothingToCompress(message, plans)


def nothing_message(plans: list, max_bits: int) -> str:
    from convert.lut import MAX_INDEX_BITS

    if not plans:
        return "the model has no int8 convolution or fully-connected weights"
    worst = max(p.max_unique for p in plans)
    needs_bits = sum(p.bits is None for p in plans)
    message = (
        f"nothing to compress: none of the {len(plans)} weight tensors gets smaller with LUT compression "
        f"(up to {worst} distinct int8 values in an output channel; {needs_bits} tensor(s) would need more than {max_bits} index bits, "
        "the rest would spend on value tables what the indices save). "
    )
    if worst > 2**MAX_INDEX_BITS // 2:
        message += (
            "This is an unclustered model. Cluster it first, then convert again: python -m experiments.cluster --model X.keras "
            "--data DATA --bits 4 --out DIR; python -m convert --model DIR/X_cluster4bit.keras ...; python -m convert.compress ..."
        )
    return message


def _require_host_decoder(methods) -> None:
    """The lossless check runs the compressed model in the TFLM host interpreter; say so plainly if this
    tflite-micro wheel's DECODE does not know a format (the check must then run on the emulated board)."""
    from convert import tflm_host
    from convert.decode_formats.host_decoder import host_decodes
    from convert.errors import ConversionError

    if not tflm_host.available():
        raise ConversionError("the lossless check needs the TFLM host interpreter (pip install tflite-micro; Linux x86_64)")
    missing = [m for m in methods if m != "lut" and not host_decodes(m)]
    if missing:
        raise ConversionError(
            f"this tflite-micro wheel's DECODE does not decode the {', '.join(missing)} format, so the lossless check cannot run on "
            "the host; nothing written. Use --method lut, or a wheel whose DECODE has it (TFLM's decode_state_prune.cc / "
            "decode_state_huffman.cc), and check a board build with python -m experiments.compressed_firmware"
        )


def formats_nothing_message(plans: list, method: str) -> str:
    if not plans:
        return "the model has no constant weights or biases of convolution or fully-connected operators"
    refused = sum(bool(p.refused) and not p.sizes for p in plans)
    message = (
        f"nothing to compress with --method {method}: none of the {len(plans)} weight and bias tensors gets smaller "
        f"({refused} cannot be stored in the format at all; the rest would take as many bytes as they do now). "
    )
    if method == "prune":
        message += "The prune format pays only for tensors with many zero-point elements: prune the model first. "
    message += "An ordinary int8 model has ~100-250 distinct values per channel and no zeros to speak of: prune or cluster it first."
    return message


def compress_artifact(
    folder: Path | str,
    out: Path | str,
    *,
    max_bits: int = 7,
    max_decoded_bytes: int | None = None,
    board: str | None = None,
    check_images: int = 32,
    data: str | None = None,
    name: str | None = None,
    method: str = "lut",
) -> dict:
    """Compress the artifact in `folder` into the artifact folder `out`; returns the new model.json.
    Raises BadInputError, NothingToCompress, PreflightError or ConversionError; writes nothing then."""
    from convert import artifact as artifact_module
    from convert import boards, codegen, lut, preflight
    from convert import inspect_tflite as inspect
    from convert import report as report_module
    from convert.errors import BadInputError, ConversionError
    from model.provenance import command_line, git_sha, now_utc, software_versions

    started = time.perf_counter()
    folder, out = Path(folder), Path(out)
    source = artifact_module.load_artifact(folder)
    if out.resolve() == folder.resolve():
        raise BadInputError(f"{out}: the output must be a new folder, not the source artifact")
    artifact_module.check_output_path(out)
    if check_images < 1:
        raise BadInputError(f"--check-images {check_images}: need at least 1 image")
    if method not in METHOD_CHOICES:
        raise BadInputError(f"--method {method}: choose from {', '.join(METHOD_CHOICES)}")
    original = (folder / source["tflite_file"]).read_bytes()

    apply = None
    if method == "lut":
        plans = _select(lut.plan(original, max_bits), max_decoded_bytes)
        if not any(p.compress for p in plans):
            raise NothingToCompress(nothing_message(plans, max_bits), plans)
    else:
        from convert.decode_formats import plan as formats

        _require_host_decoder(methods_for(method))
        try:
            plans, encodings = formats.plan(original, methods_for(method), max_bits)
        except ValueError as error:  # an encoding the Python decoder port does not read back: nothing is written
            raise ConversionError(f"{error}; nothing written") from error
        plans = _select(plans, max_decoded_bytes)
        if not any(p.compress for p in plans):
            raise NothingToCompress(formats_nothing_message(plans, method), plans)

        def apply(model, chosen):
            return formats.apply(model, chosen, encodings)

    chosen = source["board"].get("chosen") if board is None else (None if board == NO_BOARD else board)
    target = boards.get(chosen) if chosen else None
    compressed, usage, firmware_arena = _compress_to_fit(original, plans, target, apply)
    compress_seconds = time.perf_counter() - started

    t0 = time.perf_counter()
    info = inspect.read(compressed)
    checks = preflight.static_checks(info)
    check, _ = preflight.tflm_allocation_check(compressed)
    checks.append(check)
    checks.append(preflight.tflm_allocation_check(compressed, arena_size=firmware_arena, name="tflm_firmware_arena")[0])
    if target is not None:
        checks.append(preflight.board_check(target, len(compressed), firmware_arena)[0])
    preflight.require(checks)
    images, image_source = _check_images(source, data, check_images)
    identical = check_identical(original, compressed, images, source["input"]) | {"data": image_source}
    from model.preprocessing import quantize_input

    first = quantize_input(images[:1], source["input"]["scale"], source["input"]["zero_point"])
    identical["decoded_tensors"] = check_decoded_tensors(original, compressed, plans, first)
    checks.append(
        preflight.Check(
            "lut_lossless" if method == "lut" else "decode_lossless",
            True,
            f"{identical['images']} images of {image_source['source']}: outputs bit-identical; "
            f"{identical['decoded_tensors']['tensors']} decoded tensors equal to the originals",
        )
    )
    tflm_seconds = time.perf_counter() - t0

    name = name or out.resolve().name
    digest = hashlib.sha256(compressed).hexdigest()
    chosen_plans = [p for p in plans if p.compress]
    compression = {
        "method": METHOD_TEXT[method],
        "format": method,
        "formats_used": sorted({getattr(p, "method", None) or "lut" for p in chosen_plans}),
        "library": f"tflite_micro.compression (tflite-micro {software_versions().get('tflite-micro')})"
        + ("" if method == "lut" else "; prune/Huffman encoders: convert.decode_formats"),
        "max_bits": max_bits,
        "max_decoded_bytes": max_decoded_bytes,
        "fitted_to_board": chosen,
        "source_artifact": {
            "path": artifact_module.display_path(folder),
            "sha256": source["sha256"],
            "tflite_bytes": source["tflite_bytes"],
            "arena_total": source["arena"]["total"],
            "arena_bytes_for_firmware": source["arena_bytes_for_firmware"],
        },
        "tensors_compressed": len(chosen_plans),
        "tensors": [p.to_dict() for p in plans],
        "weight_bytes_before": sum(p.bytes_before for p in plans),
        "weight_bytes_after": sum(p.bytes_after for p in plans),
        "tflite_bytes_before": len(original),
        "tflite_bytes_after": len(compressed),
        "check": identical,
        "firmware": "registers AddDecode (TFLM kernels/decode.cc, decode_state*.cc); no compile-time define needed",
    }
    artifact = dict(source)
    artifact.update(
        name=name,
        sha256=digest,
        tflite_bytes=len(compressed),
        ops=info.ops,
        op_histogram=info.op_histogram(),
        arena=usage.to_dict() | {"tflite_micro": software_versions().get("tflite-micro")},
        arena_bytes_for_firmware=firmware_arena,
        arena_margin={"bytes": firmware_arena - usage.total, "rule": boards.ARENA_MARGIN_RULE},
        board={"chosen": chosen, "verdicts": boards.fit_all(len(compressed), firmware_arena)},
        checks=[c.to_dict() for c in checks],
        compression=compression,
        created=now_utc(),
        git_sha=git_sha(),
        command=command_line(),
        software=software_versions(),
    )
    provenance = {
        "model": f"{name}, model.tflite {len(compressed)} bytes, SHA-256 {digest}",
        "source": f"{compression['source_artifact']['path']} (SHA-256 {source['sha256']}), compressed ({method})",
        "converter": f"TensorFlow {source['converter'].get('tensorflow', '?')}, full int8; "
        f"DECODE formats: {', '.join(compression['formats_used'])}",
        "git": artifact["git_sha"],
    }
    io = {"input": source["input"], "output": source["output"]}
    settings = codegen.package_settings(name, io, source["labels"], source["preprocessing"], firmware_arena, usage.total)
    sources = codegen.generate_checked(compressed, settings, info.ops, provenance)
    artifact["timings_s"] = {
        "convert": round(compress_seconds, 2),
        "tflm": round(tflm_seconds, 2),
        "total": round(time.perf_counter() - started, 2),
    }
    indices = json.loads((folder / artifact_module.INDICES_FILE).read_text())
    artifact_module.publish(out, compressed, artifact, indices, sources)
    (out / artifact_module.REPORT_MD).write_text(report_module.render_markdown(artifact) + "\n" + render_markdown(artifact) + "\n")
    return artifact


FORMAT_HEADER = ["tensor", "role", "shape", "raw B", "LUT B", "prune B", "Huffman B", "format", "after B"]


def size_header(plans: list) -> list[str]:
    return FORMAT_HEADER if plans and hasattr(plans[0], "sizes") else SIZE_HEADER


def size_rows(plans: list, reasons: bool = False) -> list[list[str]]:
    from convert.preflight import short_name

    rows = []
    if plans and hasattr(plans[0], "sizes"):  # convert.decode_formats.plan.FormatPlan
        for p in plans:
            sizes = [f"{p.sizes[m]:,}" if m in p.sizes else "-" for m in ("lut", "prune", "huffman")]
            after = f"{p.bytes_after:,}" if p.compress else "(kept)"
            rows.append([short_name(p.name), p.role, "x".join(map(str, p.shape)), f"{p.bytes_before:,}", *sizes, p.method or "-", after])
            rows[-1] += [p.reason] if reasons else []
        return rows
    for p in plans:
        bits = str(p.bits) if p.bits is not None else "-"
        after = f"{p.bytes_after:,}" if p.compress else "(kept)"
        rows.append([short_name(p.name), "x".join(map(str, p.shape)), str(p.max_unique), bits, f"{p.bytes_before:,}", after])
        rows[-1] += [p.reason] if reasons else []
    return rows


SIZE_HEADER = ["tensor", "shape", "max distinct/channel", "bits", "int8 B", "LUT B"]


def text_table(header: list[str], rows: list[list[str]], left: tuple[int, ...] = (0,)) -> str:
    """Columns padded to their widest cell; the `left` columns (names, reasons) left-aligned, numbers right."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(row):
        cells = zip(row, widths, strict=True)
        return "  ".join(str(c).ljust(w) if i in left else str(c).rjust(w) for i, (c, w) in enumerate(cells)).rstrip()

    return "\n".join(line(row) for row in [header, *rows])


def render_markdown(artifact: dict) -> str:
    """The report's LUT-compression section."""
    from convert.report import _table

    c = artifact["compression"]
    src = c["source_artifact"]
    plans = [_plan(t) for t in c["tensors"]]
    rows = size_rows(plans, reasons=True)
    title = "LUT weight compression" if c.get("format", "lut") == "lut" else f"Weight compression: TFLM DECODE formats ({c['format']})"
    lines = [f"## {title}", ""]
    decoded = c["check"].get("decoded_tensors")
    decoded_note = f"; {decoded['tensors']} decoded tensors equal to the originals." if decoded else "."
    lines += [
        f"{c['tensors_compressed']} of {len(c['tensors'])} tensors compressed: weights {c['weight_bytes_before']:,} -> "
        f"{c['weight_bytes_after']:,} B, model.tflite {c['tflite_bytes_before']:,} -> {c['tflite_bytes_after']:,} B, "
        f"host arena {src['arena_total']:,} -> {artifact['arena']['total']:,} B. Source artifact `{src['path']}` "
        f"(SHA-256 {src['sha256'][:16]}...). Outputs bit-identical to it on {c['check']['images']} images "
        f"of {c['check']['data']['source']}" + decoded_note,
        "",
    ]
    header = size_header(plans)
    lines += _table(header + ["note"], rows, "l" * (3 if header is FORMAT_HEADER else 2) + "r" * (len(header) - 3) + "l")
    return "\n".join(lines)


def print_summary(artifact: dict, out: Path) -> None:
    from convert import boards

    c = artifact["compression"]
    src = c["source_artifact"]
    plans = [_plan(t) for t in c["tensors"]]
    rows = size_rows(plans)
    print(text_table(size_header(plans), rows, left=(0, 1) if size_header(plans) is FORMAT_HEADER else (0,)))
    before, after = c["tflite_bytes_before"], c["tflite_bytes_after"]
    weights = (c["weight_bytes_before"], c["weight_bytes_after"])
    print(f"weights      {weights[0]:>10,} -> {weights[1]:>10,} B ({c['tensors_compressed']} of {len(rows)} tensors compressed)")
    print(f"model.tflite {before:>10,} -> {after:>10,} B ({100 * (after - before) / before:+.1f}%)")
    arena = (src["arena_total"], artifact["arena"]["total"])
    print(f"arena (host) {arena[0]:>10,} -> {arena[1]:>10,} B (a layer's decoded weights live in it while the layer runs)")
    print(f"arena (fw)   {src['arena_bytes_for_firmware']:>10,} -> {artifact['arena_bytes_for_firmware']:>10,} B")
    for verdict in artifact["board"]["verdicts"]:
        print(f"  {verdict['board']:<14} {boards.verdict_text(verdict)}")
    print(f"{out}: outputs bit-identical to the source on {c['check']['images']} images ({c['check']['data']['source']})")


def _plan(entry: dict):
    from convert.decode_formats.plan import FormatPlan
    from convert.lut import TensorPlan

    if "sizes" in entry:
        return FormatPlan(**{k: v for k, v in entry.items() if k != "bytes_after"})
    return TensorPlan(**{k: v for k, v in entry.items() if k != "bytes_after"})


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow()
    from convert import errors
    from convert.errors import ConversionError

    try:
        artifact = compress_artifact(
            args.artifact,
            args.out,
            max_bits=args.max_bits,
            max_decoded_bytes=args.max_decoded_bytes,
            board=args.board,
            check_images=args.check_images,
            data=args.data,
            name=args.name,
            method=args.method,
        )
    except NothingToCompress as nothing:
        if not args.quiet and nothing.plans:
            header = size_header(nothing.plans)
            print(text_table(header + ["why"], size_rows(nothing.plans, reasons=True), left=(0, len(header))))
        print(f"{args.artifact}: {nothing}", file=sys.stderr)
        return EXIT_NOTHING
    except (ConversionError, OSError) as error:
        return errors.report(error)
    if not args.quiet:
        print_summary(artifact, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
