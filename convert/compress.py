"""python -m convert.compress: an artifact of `python -m convert` -> a new artifact with TFLM look-up-table weight compression.

    python -m convert.compress --artifact build/squeezenet_cifar10_cluster4bit --out build/squeezenet_cifar10_cluster4bit-lut

Reads build/<name>/ (model.json checked against model.tflite), chooses per int8 weight tensor the
smallest LUT index width that holds its worst output channel (`convert.lut`), compresses the tensors
where that saves bytes (TFLM's DECODE operator expands them at run time), and writes --out in the same
artifact format: model.tflite, model.json (with a "compression" section), regenerated firmware/ sources,
report.md/json. Before anything is written, both models run in the TFLM host interpreter on
--check-images images and must give bit-identical outputs (LUT compression is lossless), and the
compressed model's arena is measured (the decoded weights of one layer at a time live in the arena).

Only a clustered model compresses: an ordinary int8 model has ~100-250 distinct values per channel.
Cluster it first: python -m model.cluster --model X.keras --bits 4 ..., then python -m convert.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from convert.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_PREFLIGHT  # noqa: F401 (exit statuses shared with python -m convert)

EXIT_NOTHING = 5
RANDOM_DATA = "random"
NO_BOARD = "none"


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
        epilog="Exit status: 0 done, 2 unusable input, 3 a pre-flight check of the compressed model failed, "
        "4 compression failed or changed the outputs, 5 nothing to compress (nothing written).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--artifact", required=True, type=Path, help="artifact folder written by python -m convert")
    parser.add_argument("--out", required=True, type=Path, help="the new artifact folder (replaced only when it holds an artifact)")
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
            "LUT compression is lossless, so this is a bug in the compressor or the DECODE kernel: do not use this model"
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


def _compress_to_fit(original: bytes, plans: list, board) -> tuple[bytes, object, int]:
    """Compress by `plans`; with a board, while the firmware arena is over its RAM budget, leave the
    largest compressed tensor uncompressed and try again (its decoded copy is what grows the arena).
    Returns (model bytes, ArenaUsage, firmware arena). Raises ConversionError or NothingToCompress."""
    from convert import boards, lut, preflight
    from convert.errors import ConversionError

    while True:
        try:
            compressed = lut.compress(original, plans)
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
            "This is an unclustered model. Cluster it first, then convert again: python -m model.cluster --model X.keras "
            "--data DATA --bits 4 --out DIR; python -m convert --model DIR/X_cluster4bit.keras ...; python -m convert.compress ..."
        )
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
) -> dict:
    """Compress the artifact in `folder` into the artifact folder `out`; returns the new model.json.
    Raises BadInputError, NothingToCompress, PreflightError or ConversionError; writes nothing then."""
    from convert import artifact as artifact_module
    from convert import boards, codegen, lut, preflight
    from convert import inspect_tflite as inspect
    from convert import report as report_module
    from convert.errors import BadInputError
    from model.provenance import command_line, git_sha, now_utc, software_versions

    started = time.perf_counter()
    folder, out = Path(folder), Path(out)
    source = artifact_module.load_artifact(folder)
    if out.resolve() == folder.resolve():
        raise BadInputError(f"{out}: the output must be a new folder, not the source artifact")
    artifact_module.check_output_path(out)
    if check_images < 1:
        raise BadInputError(f"--check-images {check_images}: need at least 1 image")
    original = (folder / source["tflite_file"]).read_bytes()

    plans = _select(lut.plan(original, max_bits), max_decoded_bytes)
    if not any(p.compress for p in plans):
        raise NothingToCompress(nothing_message(plans, max_bits), plans)
    chosen = source["board"].get("chosen") if board is None else (None if board == NO_BOARD else board)
    target = boards.get(chosen) if chosen else None
    compressed, usage, firmware_arena = _compress_to_fit(original, plans, target)
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
    checks.append(preflight.Check("lut_lossless", True, f"{identical['images']} images of {image_source['source']}: outputs bit-identical"))
    tflm_seconds = time.perf_counter() - t0

    name = name or out.resolve().name
    digest = hashlib.sha256(compressed).hexdigest()
    chosen_plans = [p for p in plans if p.compress]
    compression = {
        "method": "TFLM look-up-table (LUT) weights: DECODE operators (custom op TFLM_DECODE) expand each tensor before its layer",
        "library": f"tflite_micro.compression (tflite-micro {software_versions().get('tflite-micro')})",
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
        "source": f"{compression['source_artifact']['path']} (SHA-256 {source['sha256']}), LUT-compressed",
        "converter": f"TensorFlow {source['converter'].get('tensorflow', '?')}, full int8; tflite_micro.compression LUT",
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


def size_rows(plans: list, reasons: bool = False) -> list[list[str]]:
    from convert.preflight import short_name

    rows = []
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
    rows = size_rows([_plan(t) for t in c["tensors"]], reasons=True)
    lines = ["## LUT weight compression", ""]
    lines += [
        f"{c['tensors_compressed']} of {len(c['tensors'])} weight tensors compressed: weights {c['weight_bytes_before']:,} -> "
        f"{c['weight_bytes_after']:,} B, model.tflite {c['tflite_bytes_before']:,} -> {c['tflite_bytes_after']:,} B, "
        f"host arena {src['arena_total']:,} -> {artifact['arena']['total']:,} B. Source artifact `{src['path']}` "
        f"(SHA-256 {src['sha256'][:16]}...). Outputs bit-identical to it on {c['check']['images']} images "
        f"of {c['check']['data']['source']}.",
        "",
    ]
    lines += _table(SIZE_HEADER + ["note"], rows, "llrrrrl")
    return "\n".join(lines)


def print_summary(artifact: dict, out: Path) -> None:
    from convert import boards

    c = artifact["compression"]
    src = c["source_artifact"]
    rows = size_rows([_plan(t) for t in c["tensors"]])
    print(text_table(SIZE_HEADER, rows))
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
    from convert.lut import TensorPlan

    return TensorPlan(**{k: v for k, v in entry.items() if k != "bytes_after"})


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
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
        )
    except NothingToCompress as nothing:
        if not args.quiet and nothing.plans:
            print(text_table(SIZE_HEADER + ["why"], size_rows(nothing.plans, reasons=True), left=(0, len(SIZE_HEADER))))
        print(f"{args.artifact}: {nothing}", file=sys.stderr)
        return EXIT_NOTHING
    except (ConversionError, OSError) as error:
        return errors.report(error)
    if not args.quiet:
        print_summary(artifact, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
