"""python -m experiments.kernel_opt: the firmware built with other compiler flags for TFLM and CMSIS-NN, measured in one run.

Each variant is one `pio run` of the same environment and model package with SQZ_TFLM_OPTIMIZATION and
SQZ_CMSIS_NN_OPTIMIZATION set (mcu/scripts/tflm.py puts them last on those libraries' command lines; empty
means the environment's own flags: today's -Os build). All variants build in one build folder, one after
another, so that switching back and forth recompiles only what changed and the rest comes from PlatformIO's
build cache; each ELF and map is copied out. Then one QEMU per variant runs, and bench.on_device.run measures them
together: Invoke() in guest instructions (QEMU -icount; an instruction count, not time), the per-layer profile,
and every output against the TFLM host interpreter. mcu/tools/size_report.py gives flash and RAM.

Writes <out>/kernel_opt.json, <out>/kernel_opt.md (one row per variant) and <out>/serial/ (bench.on_device.run's report,
with the per-layer tables of every variant); prints the table. Exit status (model.exit_codes): OK when every variant ran and was
bit-identical to the TFLM host, CHECK_FAILED otherwise, BAD_INPUT for bad arguments, FAILED when a build fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.firmware.environments import UnknownEnvironment, qemu_board
from bench.firmware.launch import qemu_command
from model import exit_codes

ROOT = Path(__file__).resolve().parents[1]
MCU = ROOT / "mcu"
PIO = Path(sys.executable).parent / "pio"
FLAG_VARIABLES = ("SQZ_TFLM_OPTIMIZATION", "SQZ_CMSIS_NN_OPTIMIZATION")
BUILD_TIMEOUT_S = 3600


@dataclass(frozen=True)
class Variant:
    name: str
    tflm: str  # flags after TFLM's objects' own ("" = the environment's)
    cmsis_nn: str  # flags after CMSIS-NN's

    def environ(self) -> dict[str, str]:
        return dict(zip(FLAG_VARIABLES, (self.tflm, self.cmsis_nn), strict=True))


# The comparison (issue 13, item 4): build_flags alone (-Os: the firmware before this option existed,
# whatever platformio.ini now sets), then -O2 / -O3 on each library alone and on both.
VARIANTS = {
    v.name: v
    for v in (
        Variant("Os", "", ""),
        Variant("cmsis_nn-O2", "", "-O2"),
        Variant("cmsis_nn-O3", "", "-O3"),
        Variant("tflm-O2", "-O2", ""),
        Variant("tflm-O3", "-O3", ""),
        Variant("both-O2", "-O2", "-O2"),
        Variant("both-O3", "-O3", "-O3"),
    )
}


def parse_variant(text: str) -> Variant:
    """NAME:TFLM_FLAGS:CMSIS_NN_FLAGS, e.g. 'unrolled:-O2:-O3 -funroll-loops' (an empty field: the environment's)."""
    parts = text.split(":")
    if len(parts) != 3 or not parts[0].strip():
        raise argparse.ArgumentTypeError(f"--variant {text!r}: want NAME:TFLM_FLAGS:CMSIS_NN_FLAGS, e.g. 'fast:-O2:-O3'")
    return Variant(parts[0].strip(), parts[1].strip(), parts[2].strip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.kernel_opt",
        description="Build the firmware with other optimisation flags for TFLM and CMSIS-NN and measure every variant "
        "in one run on QEMU: instructions per Invoke(), MACs per instruction, flash, RAM, outputs against the TFLM host.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--artifacts", type=Path, default=ROOT / "build" / "squeezenet_cifar10", help="the converter's artifact folder")
    parser.add_argument(
        "--data", default=str(ROOT.parent / "shared" / "datasets" / "cifar10"), help="image folder, 'cifar10' or 'synthetic'"
    )
    parser.add_argument("--limit", type=int, default=3, help="images per variant (evenly spread over the test split)")
    parser.add_argument("--env", default="qemu_stm32f405", help="PlatformIO environment (a QEMU board)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from: {', '.join(VARIANTS)}")
    parser.add_argument(
        "--variant", type=parse_variant, action="append", default=[], help="one more: NAME:TFLM_FLAGS:CMSIS_NN_FLAGS; repeat"
    )
    parser.add_argument("--build-dir", type=Path, default=MCU / ".pio" / "build-kernel-opt", help="PLATFORMIO_BUILD_DIR of every variant")
    parser.add_argument("--jobs", type=int, default=2, help="compile jobs")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "kernel_opt", help="report folder")
    return parser


def chosen(args, parser) -> list[Variant]:
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {', '.join(unknown)}; known: {', '.join(VARIANTS)} (or add one with --variant)")
    variants = [VARIANTS[n] for n in names] + args.variant
    if len({v.name for v in variants}) != len(variants) or not variants:
        parser.error("give at least one variant, each name once")
    return variants


class BuildFailed(RuntimeError):
    """`pio run` of a variant failed; the message holds the end of its output."""


def build(variant: Variant, env: str, build_dir: Path, package: Path, jobs: int, out: Path) -> dict:
    """pio run with the variant's flags; returns its ELF and map (copied into out/<name>/) and the build facts."""
    environ = dict(os.environ, PLATFORMIO_BUILD_DIR=str(build_dir), PLATFORMIO_BUILD_JOBS=str(jobs), SQZ_MODEL_DIR=str(package))
    environ |= variant.environ()
    command = [str(PIO), "run", "-d", str(MCU), "-e", env, "-j", str(jobs)]
    print(f"building {variant.name} (TFLM {variant.tflm or 'env flags'}, CMSIS-NN {variant.cmsis_nn or 'env flags'})", file=sys.stderr)
    result = subprocess.run(command, capture_output=True, text=True, env=environ, timeout=BUILD_TIMEOUT_S)
    if result.returncode != 0:
        raise BuildFailed(f"building {variant.name} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    folder = build_dir / env
    target = out / variant.name
    target.mkdir(parents=True, exist_ok=True)
    for name in ("firmware.elf", "firmware.map"):
        shutil.copy2(folder / name, target / name)
    info = (folder / "generated" / "sqz_build_info.h").read_text()
    return {"elf": target / "firmware.elf", "build_info": info, "compiled": result.stdout.count("Compiling ")}


def measure(variants: list[Variant], builds: dict[str, dict], machine: str, args) -> dict:
    """One QEMU per variant, all measured by one bench.on_device.run run; returns its summary."""
    from bench.firmware.launch import announced, serial_url
    from bench.on_device.run import run_benchmark

    with contextlib.ExitStack() as stack:
        urls = []
        for v in variants:
            command = qemu_command(builds[v.name]["elf"], machine)
            urls.append(stack.enter_context(announced(command, serial_url, what="serial URL", timeout_s=120, cwd=ROOT)))
        return run_benchmark(
            urls, args.artifacts, args.data, args.limit, 0, None, args.out / "serial", invoke_timeout_s=900, keras=False, progress=False
        )


def rows(variants: list[Variant], builds: dict[str, dict], summary: dict) -> list[dict]:
    from bench.firmware.mcu_tools import load_tool

    size_report = load_tool("size_report")

    table = []
    for v, board in zip(variants, summary["boards"], strict=True):
        elf = builds[v.name]["elf"]
        size = size_report.report(elf, elf.with_suffix(".map"))
        latency = board.get("latency") or {}
        lsb = board.get("host_lsb") or {}
        table.append(
            {
                "variant": v.name,
                "tflm_flags": v.tflm,
                "cmsis_nn_flags": v.cmsis_nn,
                "status": board["status"],
                "error": board.get("error"),
                "build_flags": (board.get("device") or {}).get("build_flags"),
                "instructions": (latency.get("per_inference") or {}).get("median"),
                "unit": latency.get("unit"),
                "images": board.get("completed", 0),
                "bit_identical": lsb.get("bit_identical", 0),
                "flash_total": size["elf_flash_total"],
                "flash_tflm": size["flash"]["tflm"],
                "ram_total": size["ram_total"],
                "layers": [
                    {"index": r["index"], "name": r["name"], "op": r["op"], "macs": r["macs"], "instructions": r["units"]}
                    for r in board.get("layers") or []
                ],
            }
        )
    return table


def markdown(table: list[dict], macs: int | None) -> list[str]:
    base = table[0]["instructions"]
    lines = [
        "| variant | TFLM flags | CMSIS-NN flags | instructions / Invoke() | vs first | MACs / instruction | flash (ELF) | "
        "of which TFLM+CMSIS-NN | RAM | bit-identical to TFLM host |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in table:
        n = r["instructions"]
        eff = f"{macs / n:.3f}" if macs and n else "—"
        change = f"{(n / base - 1) * 100:+.1f} %" if n and base else "—"
        lines.append(
            f"| {r['variant']} | {r['tflm_flags'] or 'env'} | {r['cmsis_nn_flags'] or 'env'} | "
            f"{f'{n:,.0f}' if n else r['status']} | {change} | {eff} | {r['flash_total']:,} | {r['flash_tflm']:,} | "
            f"{r['ram_total']:,} | {r['bit_identical']}/{r['images']} |"
        )
    return lines


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    variants = chosen(args, parser)
    if args.limit < 1:
        parser.error("--limit takes a positive number")
    package = (args.artifacts / "firmware").resolve()
    if not (package / "model_data.cc").is_file():
        parser.error(f"{package} holds no firmware model package: run python -m convert ... --out {args.artifacts} first")
    if any(os.environ.get(v) is not None for v in FLAG_VARIABLES):
        print(f"note: {' and '.join(FLAG_VARIABLES)} are set per variant here; your values are ignored", file=sys.stderr)
    try:
        board = qemu_board(args.env)
    except UnknownEnvironment as error:
        parser.error(str(error))
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        builds = {v.name: build(v, args.env, args.build_dir.resolve(), package, args.jobs, args.out) for v in variants}
        summary = measure(variants, builds, board["build"]["qemu_machine"], args)
    except BuildFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return exit_codes.FAILED
    except KeyboardInterrupt:
        print("\ninterrupted: no report written", file=sys.stderr)
        return exit_codes.INTERRUPTED
    macs = summary.get("macs")
    table = rows(variants, builds, summary)
    head = f"{args.env}, model {summary['artifact'].get('model_sha256', '')[:16]}, {macs:,} MACs, {args.limit} images per variant"
    lines = [head + "; median Invoke() in guest instructions (QEMU -icount shift=0: a count, not time)", "", *markdown(table, macs)]
    lines += ["", "HELLO build flags per variant:", *[f"- {r['variant']}: `{r['build_flags']}`" for r in table]]
    (args.out / "kernel_opt.md").write_text("\n".join(lines) + "\n")
    report = {"env": args.env, "macs": macs, "git_sha": summary.get("git_sha"), "created": summary.get("created"), "variants": table}
    (args.out / "kernel_opt.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print("\n".join(lines))
    ok = all(r["status"] == "ok" and r["images"] == args.limit and r["bit_identical"] == r["images"] for r in table)
    return exit_codes.OK if ok else exit_codes.CHECK_FAILED


if __name__ == "__main__":
    sys.exit(main())
