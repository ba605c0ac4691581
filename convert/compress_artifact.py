"""One artifact of `python -m convert` -> a new artifact with weights in TFLM's DECODE formats, all or nothing.

The steps, each in its own module: choose the tensors and formats (`convert.compress_plan`), compress to fit
the board's RAM (`convert.compress_board_fit`), run the pre-flight checks and the lossless check
(`convert.compress_check`), then write model.tflite, model.json, firmware/ and the report through
`convert.artifact.publish`, which replaces --out whole or leaves it as it was. Any failure before that
raises, and nothing is written.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path


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
    split_filters: bool = False,
) -> dict:
    """Compress the artifact in `folder` into the artifact folder `out`; returns the new model.json. With
    `split_filters`, layers whose decoded filter would overflow the board's RAM are split into pieces
    (`convert.compress_board_fit.split_to_fit`) rather than left uncompressed.
    Raises BadInputError, NothingToCompress, PreflightError or ConversionError; writes nothing then."""
    from convert import artifact as artifact_module
    from convert import boards, codegen, compress_plan, preflight
    from convert import inspect_tflite as inspect
    from convert.compress_board_fit import board_to_fit, compress_to_fit, split_to_fit
    from convert.compress_check import lossless_check, require_host_decoder
    from convert.compress_report import render_markdown
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
    if method not in compress_plan.METHOD_CHOICES:
        raise BadInputError(f"--method {method}: choose from {', '.join(compress_plan.METHOD_CHOICES)}")
    original = (folder / source["tflite_file"]).read_bytes()

    if method != "lut":
        require_host_decoder(compress_plan.methods_for(method))
    chosen, target = board_to_fit(source, board)
    if split_filters and target is None:
        raise BadInputError("--split-filters splits layers to fit a board's RAM: name the board (--board), or leave the flag out")
    if split_filters:

        def choose(model: bytes):
            return compress_plan.choose(model, method, max_bits, max_decoded_bytes)

        fit = split_to_fit(original, target, choose, floor=source["arena"].get("head"))
        planned, plans, compressed, usage, firmware_arena = fit.split_model, fit.plans, fit.compressed, fit.usage, fit.firmware_arena
        split_layers = fit.record()
    else:
        plans, apply = compress_plan.choose(original, method, max_bits, max_decoded_bytes)
        compressed, usage, firmware_arena = compress_to_fit(original, plans, target, apply)
        planned, split_layers = original, {}
    compress_seconds = time.perf_counter() - started

    t0 = time.perf_counter()
    info = inspect.read(compressed)
    checks = preflight.static_checks(info)
    checks.append(preflight.allocation_passed(usage))  # the fit allocated the compressed model already
    checks.append(preflight.tflm_allocation_check(compressed, arena_size=firmware_arena, name="tflm_firmware_arena")[0])
    if target is not None:
        checks.append(preflight.board_check(target, len(compressed), firmware_arena)[0])
    preflight.require(checks)
    identical, lossless = lossless_check(original, compressed, plans, source, data, check_images, method, planned=planned)
    checks.append(lossless)
    tflm_seconds = time.perf_counter() - t0

    name = name or out.resolve().name
    digest = hashlib.sha256(compressed).hexdigest()
    chosen_plans = [p for p in plans if p.compress]
    compression = {
        "method": compress_plan.METHOD_TEXT[method],
        "format": method,
        "formats_used": sorted({getattr(p, "method", None) or "lut" for p in chosen_plans}),
        "library": f"tflite_micro.compression (tflite-micro {software_versions().get('tflite-micro')})"
        + ("" if method == "lut" else "; prune/Huffman encoders: convert.decode_formats"),
        "max_bits": max_bits,
        "max_decoded_bytes": max_decoded_bytes,
        "fitted_to_board": chosen,
        "split_filters": split_layers,
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
    artifact_module.publish(out, compressed, artifact, indices, sources, report_tail=render_markdown(artifact))
    return artifact
