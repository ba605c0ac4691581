"""Decoded weights outside the tensor arena: the region TFLM's `MicroInterpreter::SetDecompressionMemory` takes.

    python -m convert.decompression_region --artifact build/<name>-lut --out build/<name>-lut-region

TFLM's DECODE kernel (kernels/decode.cc) puts each output it decodes in the region when it fits there, else in the
arena, and resets the region's allocations before every op's Prepare and Invoke (micro_interpreter_graph.cc): the
region must hold the decoded outputs of one DECODE operator (each aligned to 16 bytes, MicroArenaBufferAlignment),
not their sum over the graph. So `region_bytes(model)` is the largest such operator, read from the `.tflite`.

The region pays only where it lives in memory the arena cannot use (a real STM32F405's 64 KiB CCM): in the same RAM,
arena + region is at least the arena that holds the decoded tensors itself, because the arena planner overlaps a
decoded tensor with activations that are dead by then and the region cannot.

`measure(model)` allocates the model in the TFLM host interpreter with the region and returns what the firmware
package states (`codegen.package_settings(..., decompression=...)`): region bytes, host arena, firmware arena. The
command writes a new artifact folder: the same model.tflite, model.json with a "decompression" section, the firmware
package regenerated with it (the firmware then declares the region and passes it to SetDecompressionMemory).
`fit(board, ...)` is the board verdict with the region either in the arena's RAM or in a separate memory.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from convert import lut

ALIGNMENT = 16  # MicroArenaBufferAlignment(): DECODE aligns each output it places in the region
_DTYPE_BYTES = {"int8": 1, "uint8": 1, "bool": 1, "int16": 2, "float16": 2, "int32": 4, "float32": 4, "int64": 8, "float64": 8}


def _align(value: int) -> int:
    return -(-value // ALIGNMENT) * ALIGNMENT


def decode_outputs(info) -> list[tuple[int, list[int]]]:
    """[(operator index, [bytes of each output])] of every DECODE operator of an `inspect_tflite.read` result."""
    out = []
    for operator in info.operators:
        if operator.op != lut.DECODE_OP:
            continue
        sizes = []
        for index in operator.outputs:
            tensor = info.tensors[index]
            if tensor.dtype not in _DTYPE_BYTES:
                raise ValueError(f"DECODE output {tensor.name!r} has dtype {tensor.dtype}, whose size this module does not know")
            elements = 1
            for dim in tensor.shape:
                elements *= int(dim)
            sizes.append(elements * _DTYPE_BYTES[tensor.dtype])
        out.append((operator.index, sizes))
    return out


def op_region_bytes(sizes: list[int]) -> int:
    """Region bytes one DECODE operator needs: its outputs one after another, each starting 16-byte aligned
    (the region itself is 16-byte aligned), as MicroContext::AllocateDecompressionMemory places them."""
    offset = 0
    for size in sizes:
        offset = _align(offset) + size
    return offset


def region_bytes(model) -> int:
    """The region that holds every DECODE output of `model` (bytes, path or `inspect_tflite.read` result); 0 when
    the model has no DECODE operator. Rounded up to 16 bytes, the buffer's alignment."""
    from convert import inspect_tflite

    info = model if hasattr(model, "operators") else inspect_tflite.read(model)
    return _align(max((op_region_bytes(sizes) for _, sizes in decode_outputs(info)), default=0))


def measure(model: bytes, region: int | None = None) -> dict:
    """What the firmware package states for a decompression region of `region` bytes (None: `region_bytes(model)`):
    {"region_bytes", "arena_host_bytes", "arena_bytes" (firmware: host + convert.boards' margin), "decoded_in_region"}.
    A region smaller than some DECODE output is measured as it is: those outputs fall back to the arena."""
    from convert import boards, inspect_tflite, tflm_host

    if region is not None and region < 0:
        raise ValueError(f"decompression region of {region} bytes: give 0 (none) or more")
    info = inspect_tflite.read(model)
    ops = decode_outputs(info)
    needed = _align(max((op_region_bytes(sizes) for _, sizes in ops), default=0))
    region = (needed if region is None else int(region)) if needed else 0
    usage = tflm_host.measure_arena(model, decompression_bytes=region)  # 0: no region, TFLM's own arena
    return {
        "region_bytes": region,
        "arena_host_bytes": usage.total,
        "arena_bytes": boards.arena_for_firmware(usage.total),
        "decoded_in_region": sum(op_region_bytes(sizes) <= region for _, sizes in ops) if region else 0,
        "decode_ops": len(ops),
        "needed_for_all_bytes": needed,
    }


def fit(board, model_bytes: int, arena_bytes: int, region: int, separate_bytes: int = 0) -> dict:
    """convert.boards.fit with a decompression region: in the arena's RAM when `separate_bytes` is 0, else in a
    separate memory of `separate_bytes` (a real STM32F405's CCM: 64 KiB), which the region must fit."""
    from convert import boards

    if separate_bytes:
        verdict = boards.fit(board, model_bytes, arena_bytes)
        region_left = separate_bytes - region
        verdict |= {"region_bytes": region, "region_memory": separate_bytes, "region_left": region_left}
        verdict["fits"] = verdict["fits"] and region_left >= 0
        return verdict
    verdict = boards.fit(board, model_bytes, arena_bytes + region)
    return verdict | {"region_bytes": region, "region_memory": None, "region_left": None}


def sweep(model: bytes, regions: list[int], board=None, separate_bytes: int = 0) -> list[dict]:
    """`measure` for each region size, with the board verdict (`fit`) when a board is given."""
    model_size = len(model)
    rows = []
    for size in regions:
        row = measure(model, size)
        if board is not None:
            verdict = fit(board, model_size, row["arena_bytes"], row["region_bytes"], separate_bytes if row["region_bytes"] else 0)
            row |= {"fits": verdict["fits"], "ram_left": verdict["ram_left"], "region_left": verdict["region_left"]}
        rows.append(row)
    return rows


def compress_to_fit(original: bytes, plans: list, board, separate_bytes: int, apply=None) -> tuple[bytes, dict]:
    """convert.compress's board fit with a decompression region in a separate memory of `separate_bytes` (a real
    STM32F405's CCM): the region gets min(what the model needs, `separate_bytes`) (the outputs that do not fit fall
    back to the arena); the loop is convert.compress_board_fit.shrink_until_fits. `plans`: convert.lut.plan's
    (changed in place, as convert.compress does); `apply(original, plans)`: the compressor (default
    convert.lut.compress). Returns (model, `measure`'s dict + fit). Raises NothingToCompress when no tensor can stay
    compressed."""
    from convert import lut
    from convert.compress_board_fit import shrink_until_fits

    def measured_fit(model: bytes):
        measured = measure(model, min(region_bytes(model), separate_bytes))
        verdict = fit(board, len(model), measured["arena_bytes"], measured["region_bytes"], separate_bytes)
        return verdict["fits"], measured | {"tensors_compressed": sum(p.compress for p in plans), "ram_left": verdict["ram_left"]}

    def kept_because(plan, result) -> str:
        return f"kept so the arena fits {board.key} with a {separate_bytes:,}-byte decompression region beside it"

    return shrink_until_fits(original, plans, board, apply or lut.compress, measured_fit, kept_because)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m convert.decompression_region",
        description="An artifact with DECODE operators -> the same artifact whose firmware decodes weights into a region "
        "outside the tensor arena (TFLM SetDecompressionMemory), its size and the smaller arena measured on the TFLM host.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--artifact", required=True, type=Path, help="artifact folder (python -m convert.compress wrote it)")
    parser.add_argument("--out", type=Path, help="the new artifact folder (replaced only when it holds an artifact)")
    parser.add_argument(
        "--sweep",
        type=int,
        nargs="+",
        default=None,
        help="instead of --out: measure the arena with each of these region sizes (0: none) and print a table",
    )
    parser.add_argument("--board", default=None, help="with --sweep: the board verdict for each region (convert.boards key)")
    parser.add_argument(
        "--separate-bytes",
        type=int,
        default=0,
        help="with --sweep/--fit: the region lives in a separate memory of this size (a real STM32F405's CCM: 65536); 0: in the "
        "arena's RAM",
    )
    parser.add_argument(
        "--fit",
        action="store_true",
        help="instead of --out: with --board and --separate-bytes, how many tensors of the artifact's compression source stay "
        "LUT-compressed when decoded weights go to the separate memory (convert.compress's fit, with the region)",
    )
    parser.add_argument(
        "--region-bytes",
        type=int,
        default=None,
        help="region size (None: the largest DECODE operator's outputs, so every decoded tensor goes there); a smaller "
        "one is measured as TFLM runs it: the outputs that do not fit are decoded into the arena",
    )
    return parser


def write_artifact(folder: Path, out: Path, region: int | None = None) -> dict:
    """Copy the artifact in `folder` to `out` with the region measured, recorded and in its firmware package."""
    from convert import artifact as artifact_module
    from convert import codegen
    from convert import inspect_tflite as inspect
    from convert.errors import BadInputError

    source = artifact_module.load_artifact(folder)
    if out.resolve() == folder.resolve():
        raise BadInputError(f"{out}: the output must be a new folder, not the source artifact")
    artifact_module.check_output_path(out)
    model = (folder / source["tflite_file"]).read_bytes()
    info = inspect.read(model)
    if region_bytes(info) == 0:
        raise BadInputError(
            f"{folder}: the model has no DECODE operator, nothing to decode: compress it first (python -m convert.compress)"
        )
    decompression = measure(model, region)
    if decompression["region_bytes"] == 0:
        raise BadInputError("--region-bytes 0 is no region: the source artifact is that firmware already")
    from model.provenance import command_line, git_sha, now_utc

    # this run made the new artifact: its provenance, not the source's
    made = {"created": now_utc(), "git_sha": git_sha(), "command": command_line()}
    artifact = dict(source) | made | {"name": out.resolve().name, "decompression": decompression}
    io = {"input": source["input"], "output": source["output"]}
    settings = codegen.package_settings(
        artifact["name"],
        io,
        source["labels"],
        source["preprocessing"],
        source["arena_bytes_for_firmware"],
        source["arena"]["total"],
        decompression=decompression,
    )
    provenance = {
        "model": f"{artifact['name']}, model.tflite {len(model)} bytes, SHA-256 {source['sha256']}",
        "source": f"{artifact_module.display_path(folder)}, decoded weights in a {decompression['region_bytes']:,}-byte region",
        "git": source.get("git_sha", "unknown"),
    }
    sources = codegen.generate_checked(model, settings, info.ops, provenance)
    indices = json.loads((folder / artifact_module.INDICES_FILE).read_text())
    note = (
        f"## Decompression region\n\nDecoded weights live in a {decompression['region_bytes']:,}-byte region outside the arena "
        f"(`python -m convert.decompression_region`): arena {decompression['arena_bytes']:,} B in the firmware."
    )
    artifact_module.publish(out, model, artifact, indices, sources, report_tail=note)  # all or nothing, as convert writes
    return artifact


def main(argv=None) -> int:
    from convert.compress_plan import NothingToCompress
    from convert.errors import BadInputError
    from model import exit_codes

    parser = build_parser()
    args = parser.parse_args(argv)
    if sum(map(bool, (args.out, args.sweep, args.fit))) != 1:
        parser.error("give one of --out (write an artifact), --sweep (a table of region sizes) or --fit")
    if args.fit and (not args.board or not args.separate_bytes):
        parser.error("--fit needs --board and --separate-bytes (the separate memory's size)")
    try:
        if args.sweep or args.fit:
            return _print_table(args)
        artifact = write_artifact(args.artifact, args.out, args.region_bytes)
    except NothingToCompress as error:
        print(f"error: {error}", file=sys.stderr)
        return exit_codes.REFUSED
    except (BadInputError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return exit_codes.BAD_INPUT
    d = artifact["decompression"]
    print(
        f"{args.out}: region {d['region_bytes']:,} B ({d['decoded_in_region']} of {d['decode_ops']} DECODE outputs fit), "
        f"arena {d['arena_host_bytes']:,} B host, {d['arena_bytes']:,} B firmware (without the region: "
        f"{artifact['arena']['total']:,} / {artifact['arena_bytes_for_firmware']:,} B)"
    )
    return exit_codes.OK


def _print_table(args) -> int:
    from convert import artifact as artifact_module
    from convert import boards

    source = artifact_module.load_artifact(args.artifact)
    board = boards.get(args.board) if args.board else None
    if args.fit:
        from convert import lut

        origin = Path(source.get("compression", {}).get("source_artifact", {}).get("path") or args.artifact)
        origin = origin if origin.is_absolute() else Path(__file__).resolve().parents[1] / origin
        original = (origin / "model.tflite").read_bytes()
        model, row = compress_to_fit(original, lut.plan(original), board, args.separate_bytes)
        print(
            f"{board.key} with a {args.separate_bytes:,}-byte separate region: {row['tensors_compressed']} tensors LUT-compressed, "
            f"model.tflite {len(model):,} B, region {row['region_bytes']:,} B ({row['decoded_in_region']} of {row['decode_ops']} "
            f"DECODE outputs in it), arena {row['arena_host_bytes']:,} B host / {row['arena_bytes']:,} B firmware, "
            f"{row['ram_left']:,} B of the RAM budget left"
        )
        return 0
    model = (args.artifact / source["tflite_file"]).read_bytes()
    where = f"a separate {args.separate_bytes:,}-byte memory" if args.separate_bytes else "the arena's RAM"
    print(
        f"{args.artifact}: model.tflite {len(model):,} B; region in {where}"
        + (f"; board {board.key}, RAM budget {board.arena_budget:,} B" if board else "")
    )
    print("| region | DECODE outputs in it | arena host | arena firmware | arena + region | fits |")
    print("|---:|---:|---:|---:|---:|---|")
    for row in sweep(model, args.sweep, board, args.separate_bytes):
        fits = (
            ""
            if board is None
            else (
                "yes"
                if row["fits"]
                else f"no ({row['ram_left']:,} B RAM left"
                + (f", {row['region_left']:,} B region memory left)" if row.get("region_left") is not None else ")")
            )
        )
        print(
            f"| {row['region_bytes']:,} | {row['decoded_in_region']} of {row['decode_ops']} | {row['arena_host_bytes']:,} | "
            f"{row['arena_bytes']:,} | {row['arena_bytes'] + row['region_bytes']:,} | {fits} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
