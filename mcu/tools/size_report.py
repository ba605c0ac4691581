#!/usr/bin/env python3
"""Flash and RAM split of a firmware from its ELF and linker map (the `size` target of the emulated boards).

Contract: flash = model array (symbol g_model_data) + TFLM and kernels (input sections from libtflm.a,
libesp_nn.a and the TFLM glue) + application (the project's own objects) + C/C++ runtime (newlib,
libgcc, libstdc++) + padding; RAM = arena (symbol sqz_tensor_arena) + stack (.stack) + data (.data) +
bss (.bss without the arena). Prints a table; --json writes the numbers. Standard library plus
arm-none-eabi-nm. Exit status 1 when --max-tflm-kb is given and exceeded.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

FLASH_SECTIONS = {".isr_vector", ".text", ".rodata", ".ARM.exidx", ".init_array", ".fini_array", ".preinit_array", ".data"}
RAM_SECTIONS = {".data", ".bss", ".stack"}
ENTRY = re.compile(r"^\s(?P<name>\.\S+|COMMON)?\s*(?P<addr>0x[0-9a-f]+)\s+(?P<size>0x[0-9a-f]+)\s+(?P<file>\S.*)$")
OUTPUT = re.compile(r"^(?P<name>\.\S+)\s+0x[0-9a-f]+\s+0x[0-9a-f]+")


def category(path: str) -> str:
    if any(key in path for key in ("libtflm.a(", "libesp_nn.a(", "/tflm_glue/")):
        return "tflm"
    if "/model/" in path and "model_data" in path:
        return "model_object"
    if path.startswith(("/usr/", "/opt/")) or "arm-none-eabi" in path or path.endswith(".a)"):
        return "runtime"
    return "application"


def map_split(map_text: str) -> dict[str, dict[str, int]]:
    """{output section: {category: bytes}} from the memory map part of a GNU ld map file."""
    split: dict[str, dict[str, int]] = {}
    current = None
    in_map = False
    for line in map_text.splitlines():
        if line.startswith("Linker script and memory map"):
            in_map = True
            continue
        if not in_map:
            continue
        output = OUTPUT.match(line) or (re.match(r"^(\.\S+)\s*$", line) and re.match(r"^(?P<name>\.\S+)", line))
        if output and not line.startswith(" "):
            current = output.group("name")
            continue
        if re.match(r"^ (\.\S+|COMMON)\s*$", line):
            continue  # a long input section name; its address, size and file follow on the next line
        entry = ENTRY.match(line)
        if entry and current:
            size = int(entry.group("size"), 16)
            file = entry.group("file").strip()
            if size and not file.startswith("*"):
                bucket = split.setdefault(current, {})
                key = category(file)
                bucket[key] = bucket.get(key, 0) + size
        elif line.startswith(" *fill*") and current:
            parts = line.split()
            if len(parts) >= 3:
                bucket = split.setdefault(current, {})
                bucket["padding"] = bucket.get("padding", 0) + int(parts[2], 16)
    return split


def symbol_sizes(elf: Path, names: set[str], nm: str = "arm-none-eabi-nm") -> dict[str, int]:
    out = subprocess.run([nm, "-S", "--defined-only", str(elf)], check=True, capture_output=True, text=True).stdout
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] in names:
            sizes[parts[3]] = int(parts[1], 16)
    return sizes


def report(elf: Path, map_file: Path) -> dict:
    split = map_split(map_file.read_text())
    symbols = symbol_sizes(elf, {"g_model_data", "sqz_tensor_arena"})
    flash = {"model": 0, "tflm": 0, "application": 0, "runtime": 0, "padding": 0}
    for section, buckets in split.items():
        if section in FLASH_SECTIONS:
            for key, size in buckets.items():
                flash["application" if key == "model_object" else key] += size
    model = symbols.get("g_model_data", 0)
    flash["application"] -= model  # model_data.o holds the model array and its SHA-256
    flash["model"] = model
    section_totals = {s: sum(b.values()) for s, b in split.items()}
    arena = symbols.get("sqz_tensor_arena", 0)
    ram = {
        "arena": arena,
        "stack": section_totals.get(".stack", 0) or stack_from_map(map_file),
        "data": section_totals.get(".data", 0),
        "bss": section_totals.get(".bss", 0) - arena,
    }
    return {"flash": flash, "flash_total": sum(flash.values()), "ram": ram, "ram_total": sum(ram.values())}


def stack_from_map(map_file: Path) -> int:
    match = re.search(r"^\.stack\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)", map_file.read_text(), re.M)
    return int(match.group(1), 16) if match else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Flash and RAM split of a firmware ELF + map.")
    parser.add_argument("--elf", type=Path, required=True)
    parser.add_argument("--map", type=Path, required=True)
    parser.add_argument("--flash", type=int, default=0, help="flash size of the board, bytes (for the percentage)")
    parser.add_argument("--ram", type=int, default=0, help="RAM size of the board, bytes")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--max-tflm-kb", type=float, help="fail when TFLM and kernels take more flash than this")
    args = parser.parse_args(argv)
    numbers = report(args.elf, args.map)

    def table(title, parts, total, capacity):
        print(f"{title:<22}{'bytes':>10}{'KiB':>9}")
        for key, value in parts.items():
            print(f"  {key:<20}{value:>10}{value / 1024:>9.1f}")
        share = f"  ({100 * total / capacity:.1f}% of {capacity // 1024} KiB)" if capacity else ""
        print(f"  {'total':<20}{total:>10}{total / 1024:>9.1f}{share}")

    table("flash", numbers["flash"], numbers["flash_total"], args.flash)
    table("RAM", numbers["ram"], numbers["ram_total"], args.ram)
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2) + "\n")
    if args.max_tflm_kb is not None and numbers["flash"]["tflm"] > args.max_tflm_kb * 1024:
        print(f"TFLM and kernels take {numbers['flash']['tflm'] / 1024:.1f} KiB > {args.max_tflm_kb} KiB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
