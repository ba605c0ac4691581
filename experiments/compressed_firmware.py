"""python -m experiments.compressed_firmware: what weight compression (TFLM's DECODE formats) buys and costs on an emulated board.

    python -m experiments.compressed_firmware --artifacts build/squeezenet_cifar10_cluster4bit \\
        build/squeezenet_cifar10_cluster4bit-lut-f405 --data ../shared/datasets/cifar10 --limit 20
    python -m experiments.compressed_firmware --environment qemu_mps2_an500 --artifacts build/squeezenet_v10_pruned6 \\
        build/squeezenet_v10_pruned6-best --data <folder of 224x224 test images> --limit 3
    python -m experiments.compressed_firmware --environment qemu_mps2_an500 --artifacts build/<clustered> \\
        build/<clustered>-lut build/<clustered>-lut-region --data ../shared/datasets/cifar10 --limit 5
        (-region: python -m convert.decompression_region, decoded weights outside the arena)

For each artifact in turn (the first is the baseline): build the --environment firmware around its package
(in --build-dir, apart from other builds),
split flash and RAM (mcu/tools/size_report.py), run it in QEMU and benchmark it over the serial protocol
(bench.on_device.run: outputs checked bit for bit against the TFLM host interpreter running the same model). Then a
table of flash saved against the instructions added (QEMU -icount: SysTick ticks converted to guest instructions
by bench.on_device.latency from the timer source the firmware reports), not wall time.
Writes --out/results.json and results.md, and each artifact's serial report under --out/<artifact name>/.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.firmware.environments import qemu_board
from bench.firmware.launch import qemu_command
from bench.pipeline.main_job import StageError, serial_endpoint, stage_firmware, tflm_tree
from model import exit_codes
from model.provenance import REPO_ROOT, command_line, git_sha, now_utc, write_json

ENVIRONMENTS = ("qemu_stm32f405", "qemu_mps2_an500")  # the QEMU environments of mcu/platformio.ini


def board_of(environment: str) -> dict:
    """QEMU machine, flash and RAM of an environment's board (bench.firmware.environments: mcu/platformio.ini's board file)."""
    spec = qemu_board(environment)
    return {
        "machine": spec["build"]["qemu_machine"],
        "name": spec["name"],
        "flash_bytes": int(spec["upload"]["maximum_size"]),
        "ram_bytes": int(spec["upload"]["maximum_ram_size"]),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.compressed_firmware",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--artifacts", nargs="+", type=Path, required=True, help="artifact folders; the first is the baseline")
    parser.add_argument("--data", required=True, help="image folder, 'cifar10' or 'synthetic' (the test split is sent)")
    parser.add_argument("--limit", type=int, default=20, help="test images per artifact (about 1 s each in QEMU)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports" / "compression-firmware", help="report folder")
    parser.add_argument("--environment", default="qemu_stm32f405", choices=ENVIRONMENTS, help="PlatformIO environment (QEMU board)")
    parser.add_argument("--build-dir", type=Path, default=None, help="PlatformIO build folder (None: PlatformIO's, mcu/.pio/build)")
    return parser


class MeasurementFailed(RuntimeError):
    """The QEMU run failed; `code` is its exit status (model.exit_codes)."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def run_on_qemu(artifact: Path, data: str, limit: int, out: Path, elf: Path, machine: str) -> dict:
    """The serial benchmark (bench.on_device.run) of `elf` on QEMU `machine`: outputs against the TFLM host, Invoke() counts,
    and the ELF's flash and RAM (its size report, mcu/tools/size_report.py)."""
    from bench.on_device.run import run_benchmark

    command = qemu_command(elf, machine)
    with serial_endpoint(command) as url:
        summary = run_benchmark([url], artifact, data, limit, 3, elf, out)
    board = summary["boards"][0]
    if board["status"] != "ok":
        raise MeasurementFailed(f"{artifact.name} on QEMU {machine}: {board['status']}: {board.get('error')}", exit_codes.DEVICE)
    hello = board.get("device") or {}
    return {
        "images": board["completed"],
        "arena_used_bytes": hello.get("arena_used_bytes"),
        "bit_identical": board["host_lsb"]["bit_identical"],
        "outputs_sha256": board["outputs_sha256"],
        "latency": board["latency"],
        "timer_source": hello.get("timer_source"),
        "memory": summary["memory"],
    }


def measure(artifact: Path, data: str, limit: int, out: Path, environment: str = "qemu_stm32f405", build_dir: Path | None = None) -> dict:
    model = json.loads((artifact / "model.json").read_text())
    folder = out / artifact.name
    folder.mkdir(parents=True, exist_ok=True)
    board = board_of(environment)
    print(f"== {artifact.name}: firmware build ({environment})", flush=True)
    firmware = stage_firmware(artifact, environment, build_dir)
    print(f"== {artifact.name}: QEMU {board['machine']}, {limit} images", flush=True)
    device = run_on_qemu(artifact, data, limit, folder, Path(firmware["elf"]), board["machine"])
    sizes = device["memory"]
    compression = model.get("compression") or {}
    return {
        "artifact": str(artifact),
        "tflite_bytes": model["tflite_bytes"],
        "sha256": model["sha256"],
        "compressed_tensors": compression.get("tensors_compressed", 0),
        "formats": compression.get("formats_used", ["lut"] if compression else []),
        "environment": environment,
        "flash_bytes": board["flash_bytes"],
        "flash": sizes["flash"],
        "flash_total": sizes["flash_total"],
        "ram_total": sizes["ram_total"],
        "arena": sizes["ram"]["arena"],
        "region": sizes["ram"].get("decompression", 0),  # decoded weights outside the arena (convert.decompression_region)
        "arena_used_bytes": device["arena_used_bytes"],
        "images": device["images"],
        "bit_identical": device["bit_identical"],
        "outputs_sha256": device["outputs_sha256"],
        "ticks_median": device["latency"]["ticks"]["median"],
        "unit": device["latency"]["unit"],
        "median": device["latency"]["per_inference"]["median"],
    }


def render(rows: list[dict], meta: dict) -> str:
    base = rows[0]
    flash_bytes = base["flash_bytes"]
    lines = [
        f"# Weight compression on {meta['board']}",
        "",
        f"`Invoke()` in {base['unit']} (QEMU -icount: an instruction count, not time), median over the images.",
        "Bit-identical: the board's int8 outputs against the TFLM host interpreter running the same `model.tflite`. "
        "Same as baseline: the board's outputs, all images together, byte for byte those of the baseline's firmware "
        "(SHA-256 of the outputs).",
        "",
        "RAM total: arena + decompression region + stack, data and bss; arena used: as the device reports it (HELLO).",
        "",
        "| artifact | compressed tensors (formats) | model.tflite | flash total | flash saved | RAM total (arena, region) "
        f"| arena used | median {base['unit']} | added | bit-identical | same as baseline |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        saved = base["flash_total"] - row["flash_total"]
        added = row["median"] / base["median"] - 1
        lines.append(
            f"| {Path(row['artifact']).name} | {row['compressed_tensors']}{formats_note(row)} | {row['tflite_bytes']:,} B | "
            f"{row['flash_total']:,} B ({100 * row['flash_total'] / flash_bytes:.1f} %) | {saved:,} B | "
            f"{row['ram_total']:,} B ({row['arena']:,}, {row.get('region', 0):,}) | {used_text(row)} | {row['median']:,.0f} "
            f"| {100 * added:+.2f} % "
            f"| {row['bit_identical']}/{row['images']} | {same_as(row, base)} |"
        )
    lines += ["", f"Command: `{meta['command']}`; git {meta['git_sha']}; {meta['created']}; TFLM tree {meta['tflm']}.", ""]
    return "\n".join(lines)


def same_as(row: dict, base: dict) -> str:
    if row is base:
        return "(baseline)"
    if not row.get("outputs_sha256") or not base.get("outputs_sha256"):
        return "?"  # a row recorded before the fingerprint
    if row["images"] != base["images"]:
        return f"? ({row['images']} images against {base['images']})"
    return "yes" if row["outputs_sha256"] == base["outputs_sha256"] else "**no**"


def used_text(row: dict) -> str:
    used = row.get("arena_used_bytes")
    return f"{used:,} B" if used is not None else "?"


def formats_note(row: dict) -> str:
    formats = row.get("formats") or []
    return f" ({', '.join(formats)})" if formats else ""


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if tflm_tree() is None:
        print("error: no TFLM tree: set TFLM_ROOT or make ~/.cache/squeezenet-mcu/tflm (docs/BENCHMARKS.md, TFLM tree)", file=sys.stderr)
        return 2
    for artifact in args.artifacts:
        if not (artifact / "model.json").is_file():
            print(f"error: {artifact} is not an artifact folder (no model.json): run python -m convert first", file=sys.stderr)
            return 2
    try:
        rows = [measure(artifact, args.data, args.limit, args.out, args.environment, args.build_dir) for artifact in args.artifacts]
    except MeasurementFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return error.code
    except StageError as error:  # the firmware build
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    board = board_of(args.environment)
    meta = {"command": command_line(), "git_sha": git_sha(), "created": now_utc(), "tflm": str(tflm_tree())}
    meta["board"] = f"{board['name']}, QEMU {board['machine']}"
    write_json(args.out / "results.json", meta | {"rows": rows})
    (args.out / "results.md").write_text(render(rows, meta))
    print(render(rows, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
