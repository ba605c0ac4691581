"""python -m bench.compressed_firmware: what LUT weight compression buys and costs on the emulated STM32F405.

    python -m bench.compressed_firmware --artifacts build/squeezenet_cifar10_cluster4bit \\
        build/squeezenet_cifar10_cluster4bit-lut-f405 --data ../shared/datasets/cifar10 --limit 20

For each artifact in turn (the first is the baseline): build the qemu_stm32f405 firmware around its package,
split flash and RAM (mcu/tools/size_report.py), run it in QEMU and benchmark it over the serial protocol
(bench.serial: outputs checked bit for bit against the TFLM host interpreter running the same model). Then a
table of flash saved against the instructions added (QEMU -icount: SysTick ticks converted to guest instructions
by bench.latency from the timer source the firmware reports), not wall time.
Writes --out/results.json and results.md, and each artifact's serial report under --out/<artifact name>/.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from bench.pipeline import stage_device, stage_firmware, tflm_tree
from model.provenance import REPO_ROOT, command_line, git_sha, now_utc, write_json

FLASH_BYTES = 1024 * 1024  # STM32F405RG
RAM_BYTES = 128 * 1024


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.compressed_firmware",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--artifacts", nargs="+", type=Path, required=True, help="artifact folders; the first is the baseline")
    parser.add_argument("--data", required=True, help="image folder, 'cifar10' or 'synthetic' (the test split is sent)")
    parser.add_argument("--limit", type=int, default=20, help="test images per artifact (about 1 s each in QEMU)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports" / "compression-firmware", help="report folder")
    return parser


def measure_sizes(elf: Path, out: Path) -> dict:
    numbers = out / "size.json"
    tool = REPO_ROOT / "mcu" / "tools" / "size_report.py"
    command = [sys.executable, str(tool), "--elf", str(elf), "--map", str(elf.with_suffix(".map"))]
    completed = subprocess.run([*command, "--json", str(numbers)], capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)} failed:\n{completed.stdout}{completed.stderr}")
    return json.loads(numbers.read_text())


def measure(artifact: Path, data: str, limit: int, out: Path) -> dict:
    model = json.loads((artifact / "model.json").read_text())
    folder = out / artifact.name
    folder.mkdir(parents=True, exist_ok=True)
    print(f"== {artifact.name}: firmware build", flush=True)
    firmware = stage_firmware(artifact)
    sizes = measure_sizes(Path(firmware["elf"]), folder)
    print(f"== {artifact.name}: QEMU, {limit} images", flush=True)
    device = stage_device(artifact, data, limit, folder, Path(firmware["elf"]))
    if device.get("status") != "ok":
        raise SystemExit(f"error: {artifact.name} on QEMU: {device['summary']}")
    return {
        "artifact": str(artifact),
        "tflite_bytes": model["tflite_bytes"],
        "sha256": model["sha256"],
        "compressed_tensors": (model.get("compression") or {}).get("tensors_compressed", 0),
        "flash": sizes["flash"],
        "flash_total": sizes["flash_total"],
        "ram_total": sizes["ram_total"],
        "arena": sizes["ram"]["arena"],
        "images": device["images"],
        "bit_identical": device["bit_identical"],
        "ticks_median": device["latency"]["ticks"]["median"],
        "unit": device["latency"]["unit"],
        "median": device["latency"]["per_inference"]["median"],
    }


def render(rows: list[dict], meta: dict) -> str:
    base = rows[0]
    lines = [
        "# LUT weight compression on the emulated STM32F405 (QEMU netduinoplus2)",
        "",
        f"`Invoke()` in {base['unit']} (QEMU -icount: an instruction count, not time), median over the images.",
        "Bit-identical: the board's int8 outputs against the TFLM host interpreter running the same `model.tflite`.",
        "",
        f"| artifact | LUT tensors | model.tflite | flash total | flash saved | RAM total (arena) | median {base['unit']} | added "
        "| bit-identical |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        saved = base["flash_total"] - row["flash_total"]
        added = row["median"] / base["median"] - 1
        lines.append(
            f"| {Path(row['artifact']).name} | {row['compressed_tensors']} | {row['tflite_bytes']:,} B | {row['flash_total']:,} B "
            f"({100 * row['flash_total'] / FLASH_BYTES:.1f} %) | {saved:,} B | {row['ram_total']:,} B ({row['arena']:,}) "
            f"| {row['median']:,.0f} | {100 * added:+.2f} % | {row['bit_identical']}/{row['images']} |"
        )
    lines += ["", f"Command: `{meta['command']}`; git {meta['git_sha']}; {meta['created']}; TFLM tree {meta['tflm']}.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if tflm_tree() is None:
        print("error: no TFLM tree: set TFLM_ROOT or make ~/.cache/squeezenet-mcu/tflm (docs/BENCHMARKS.md, TFLM tree)", file=sys.stderr)
        return 2
    for artifact in args.artifacts:
        if not (artifact / "model.json").is_file():
            print(f"error: {artifact} is not an artifact folder (no model.json): run python -m convert first", file=sys.stderr)
            return 2
    rows = [measure(artifact, args.data, args.limit, args.out) for artifact in args.artifacts]
    meta = {"command": command_line(), "git_sha": git_sha(), "created": now_utc(), "tflm": str(tflm_tree())}
    write_json(args.out / "results.json", meta | {"rows": rows})
    (args.out / "results.md").write_text(render(rows, meta))
    print(render(rows, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
