#!/usr/bin/env python3
"""Flash and RAM split of a firmware from its ELF and linker map (the `size` target of the emulated boards).

Contract: flash = model array (symbol g_model_data) + TFLM and kernels (input sections from libtflm.a,
libesp_nn.a and the TFLM glue) + application (the project's own objects) + C/C++ runtime (newlib,
libgcc, libstdc++) + padding; RAM = arena (symbol sqz_tensor_arena) + stack (.stack) + data (.data) +
bss (.bss without the arena) + the decompression region (.sqz_decompression, when there is one). Prints a table;
--json writes the numbers. Standard library plus
arm-none-eabi-nm and arm-none-eabi-size. Exit status 1 when --max-tflm-kb is given and exceeded.

The flash total is what the ELF's flash sections hold (`arm-none-eabi-size -A`): the linker map lists constant
strings (`.rodata.str1.1` and the like) before the linker merges duplicates, so the map's parts add up to a
little more; that excess (`merged_strings`) is taken off the parts that hold such strings, in proportion.
PlatformIO's "Flash: used" figure sums only the sections of the builder's SIZEPROGREGEXP
(`PLATFORMIO_FLASH_SECTIONS`: no .init_array/.fini_array), so it is a few bytes lower (`platformio_flash`).
The capacities come from the linker script's MEMORY regions as the map records them (`regions`).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

FLASH_SECTIONS = {".isr_vector", ".text", ".rodata", ".ARM.extab", ".ARM.exidx", ".init_array", ".fini_array", ".preinit_array", ".data"}
RAM_SECTIONS = {".data", ".bss", ".stack"}
# What PlatformIO counts as flash for the QEMU boards: SIZEPROGREGEXP of mcu/platform/builder/main.py (a test checks).
PLATFORMIO_FLASH_SECTIONS = (".text", ".rodata", ".data", ".isr_vector", ".ARM.exidx", ".model")
MERGEABLE = re.compile(r"\.str\d+\.\d+$")  # string sections the linker merges (GNU as: .rodata.str1.1, .rodata.<f>.str1.4)
REGION = re.compile(r"^(?P<name>\w+)\s+(?P<origin>0x[0-9a-f]+)\s+(?P<length>0x[0-9a-f]+)", re.M)
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


def map_split(map_text: str, mergeable: dict | None = None) -> dict[str, dict[str, int]]:
    """{output section: {category: bytes}} from the memory map part of a GNU ld map file. When `mergeable` is
    given, it receives the same split of the string sections the linker merges (counted before merging)."""
    split: dict[str, dict[str, int]] = {}
    current = None
    pending = None  # a long input section name, printed on its own line before its address and size
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
        long_name = re.match(r"^ (\.\S+|COMMON)\s*$", line)
        if long_name:
            pending = long_name.group(1)
            continue  # a long input section name; its address, size and file follow on the next line
        entry = ENTRY.match(line)
        if entry and current:
            name, pending = entry.group("name") or pending, None
            size = int(entry.group("size"), 16)
            file = entry.group("file").strip()
            if size and not file.startswith("*"):
                bucket = split.setdefault(current, {})
                key = category(file)
                bucket[key] = bucket.get(key, 0) + size
                if mergeable is not None and name and MERGEABLE.search(name):
                    merged = mergeable.setdefault(current, {})
                    merged[key] = merged.get(key, 0) + size
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


def section_sizes(elf: Path, size_tool: str = "arm-none-eabi-size") -> dict[str, int]:
    """{section: bytes} of the ELF, as `size -A` prints them."""
    out = subprocess.run([size_tool, "-A", "-d", str(elf)], check=True, capture_output=True, text=True).stdout
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sizes


def memory_regions(map_text: str) -> dict[str, dict[str, int]]:
    """{region: {"origin", "length"}} from the map's "Memory Configuration" (the linker script's MEMORY)."""
    start = map_text.find("Memory Configuration")
    end = map_text.find("Linker script and memory map", start)
    if start < 0:
        return {}
    return {
        m.group("name"): {"origin": int(m.group("origin"), 16), "length": int(m.group("length"), 16)}
        for m in REGION.finditer(map_text[start:end])
        if m.group("name") != "default"
    }


def _take_off(buckets: dict[str, int], strings: dict[str, int], excess: int) -> dict[str, int]:
    """`buckets` less `excess` bytes, taken from the categories holding mergeable strings, in proportion."""
    buckets = dict(buckets)
    total = sum(strings.values())
    if excess <= 0 or not total:
        return buckets
    taken = {key: excess * size // total for key, size in strings.items()}
    taken[max(strings, key=strings.get)] += excess - sum(taken.values())
    for key, size in taken.items():
        buckets[key] -= size
    return buckets


def report(elf: Path, map_file: Path) -> dict:
    map_text = map_file.read_text()
    mergeable: dict[str, dict[str, int]] = {}
    split = map_split(map_text, mergeable)
    symbols = symbol_sizes(elf, {"g_model_data", "sqz_tensor_arena"})
    sections = section_sizes(elf)
    flash = {"model": 0, "tflm": 0, "application": 0, "runtime": 0, "padding": 0}
    merged_strings = 0
    for section, buckets in split.items():
        if section in FLASH_SECTIONS:
            excess = sum(buckets.values()) - sections.get(section, sum(buckets.values()))
            if excess > 0 and mergeable.get(section):
                merged_strings += excess
                buckets = _take_off(buckets, mergeable[section], excess)
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
    if section_totals.get(".sqz_decompression"):  # decoded weights outside the arena (src/app/engine.cc)
        ram["decompression"] = section_totals[".sqz_decompression"]
    return {
        "flash": flash,
        "flash_total": sum(flash.values()),
        "ram": ram,
        "ram_total": sum(ram.values()),
        "flash_sections": {s: sections[s] for s in sorted(FLASH_SECTIONS) if s in sections},
        "elf_flash_total": sum(sections.get(s, 0) for s in FLASH_SECTIONS),
        "platformio_flash": sum(sections.get(s, 0) for s in PLATFORMIO_FLASH_SECTIONS),
        "merged_strings": merged_strings,
        "regions": memory_regions(map_text),
    }


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
