"""python -m convert.compress: an artifact of `python -m convert` -> a new artifact with weights compressed in TFLM's DECODE formats.

    python -m convert.compress --artifact build/squeezenet_cifar10_cluster4bit --out build/squeezenet_cifar10_cluster4bit-lut
    python -m convert.compress --artifact build/<pruned> --out build/<pruned>-best --method best
    python -m convert.compress --artifact build/<clustered> --out build/<clustered>-lut-f405 --board netduinoplus2 --split-filters

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
With --board, tensors are left uncompressed until that arena fits the board's RAM; with --split-filters too,
the layers whose decoded filter is too large are first split along their output channels (`convert.conv_split`:
the same outputs, byte for byte), so the filters stay compressed.

Only a clustered model compresses: an ordinary int8 model has ~100-250 distinct values per channel.
Cluster it first: python -m experiments.cluster --model X.keras --bits 4 ..., then python -m convert.

This module is the command line; the work is in convert.compress_artifact (the steps, the all-or-nothing
write), convert.compress_plan (which tensors, which format), convert.compress_board_fit (a board's RAM, layers split),
convert.compress_check (the lossless check) and convert.compress_report (the size tables).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from convert.compress_board_fit import NO_BOARD
from convert.compress_check import RANDOM_DATA
from convert.compress_plan import METHOD_CHOICES, NothingToCompress
from convert.compress_report import print_summary, size_header, size_rows, text_table
from convert.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_PREFLIGHT  # noqa: F401 (exit statuses shared with python -m convert)
from model import exit_codes, quiet_tensorflow

EXIT_NOTHING = exit_codes.REFUSED  # nothing worth compressing: nothing written


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
    parser.add_argument(
        "--split-filters",
        action="store_true",
        help="with a board: where a decoded filter would overflow its RAM, split the layer along its output channels into pieces "
        "that are decoded one at a time (bit-identical outputs: convert.conv_split), rather than leave the filter uncompressed",
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


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow()
    from convert import errors
    from convert.compress_artifact import compress_artifact
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
            split_filters=args.split_filters,
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
