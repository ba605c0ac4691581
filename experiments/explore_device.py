"""The device stage of `python -m experiments.explore`: a point's int8 model on the emulated STM32F405.

For each point with an int8 artifact: build the qemu_stm32f405 firmware around its package (bench.pipeline.main_job's
firmware stage, into one build folder shared by the sweep, so TFLM's objects come from the build cache and only
the model recompiles), run a few test images on QEMU netduinoplus2 over the serial protocol (bench.pipeline.main_job's
device stage) and keep what the device costs: instructions per `Invoke()` (QEMU -icount: SysTick ticks converted
by bench.on_device.latency; an instruction count, not time), the arena the firmware declares and the arena TFLM used as
the device reports it, flash and RAM from the ELF, and whether the outputs are bit-identical to the TFLM host.

A point whose firmware does not link because the model or its arena overflows the chip is recorded as
"does not fit", with the linker's overflow, not as an error. Without a TFLM tree, QEMU or the compiler the
point is recorded as "not measured: <reason>" and measured by a later run that has them; a point "measured"
or "does not fit" is final and a re-run skips it.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from model.provenance import REPO_ROOT, git_sha, now_utc

ENVIRONMENT = "qemu_stm32f405"
TARGET = "QEMU netduinoplus2 (STM32F405, 1 MiB flash, 128 KiB SRAM), qemu_stm32f405 firmware (CMSIS-NN)"
DEFAULT_IMAGES = 5  # instruction counts repeat to a few ticks per image (docs/BENCHMARKS.md): a few images suffice
DEFAULT_BUILD_DIR = REPO_ROOT / "mcu" / ".pio" / "build-explore"
FINAL = ("measured", "does not fit")  # statuses a re-run keeps; "not measured" and "failed" are tried again
# GNU ld: "region `FLASH' overflowed by 123 bytes"
_OVERFLOW = re.compile(r"region [`']?(\w+)'? overflowed by (\d+) bytes")


@dataclass(frozen=True)
class DeviceStage:
    """How a sweep measures its points on the device; `unavailable` says why it cannot on this run (or None)."""

    images: int
    build_dir: Path
    data: str  # the dataset spec the device's test images come from
    unavailable: str | None


def stage_for(images: int, build_dir: Path, data: str) -> DeviceStage:
    return DeviceStage(images, Path(build_dir), data, unavailable_reason(images))


def unavailable_reason(images: int) -> str | None:
    """Why no point can be measured on the emulated STM32F405 on this machine, or None when it can."""
    if images == 0:
        return "--device-images 0"
    from bench.pipeline.main_job import tflm_tree
    from convert.tflm_tree import HOWTO

    if tflm_tree() is None:
        return f"no TFLM tree ({HOWTO})"
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc"):
        if shutil.which(tool) is None:
            return f"no {tool} on PATH (scripts/setup.sh installs it)"
    if not (Path(sys.executable).parent / "pio").is_file():
        return f"no PlatformIO beside {sys.executable} (scripts/setup.sh installs it into the venv)"
    return None


def not_measured(reason: str) -> dict:
    return {"status": "not measured", "reason": reason}


def wants(result: dict, stage: DeviceStage) -> bool:
    """Whether a finished point still needs the device stage: it has no final device figures and the stage can run."""
    return stage.unavailable is None and (result.get("device") or {}).get("status") not in FINAL


def measure_point(folder: Path, stage: DeviceStage, say) -> dict:
    """The device record of the point in `folder` (its int8 artifact is folder/int8)."""
    if stage.unavailable:
        return not_measured(stage.unavailable)
    artifact = folder / "int8"
    if not (artifact / "model.json").is_file():
        return not_measured(f"no int8 artifact in {artifact} (the int8 conversion failed, or the folder was removed)")
    return measure(artifact, stage, folder / "device", say)


def overflows(build_output: str) -> dict[str, int]:
    """The linker's overflow per memory region ({"flash": bytes, "ram": bytes}); empty when nothing overflowed."""
    found: dict[str, int] = {}
    for region, size in _OVERFLOW.findall(build_output):
        found[region.lower()] = max(found.get(region.lower(), 0), int(size))
    return found


def does_not_fit(model: dict, overflow: dict[str, int]) -> dict:
    why = ", ".join(f"{region.upper()} overflowed by {size:,} B" for region, size in sorted(overflow.items()))
    return {
        "status": "does not fit",
        "why": f"the firmware does not link: {why}",
        "overflow_bytes": overflow,
        "tflite_bytes": model["tflite_bytes"],
        "arena_bytes": model["arena_bytes_for_firmware"],
        "target": TARGET,
        "git_sha": git_sha(),
        "measured": now_utc(),
    }


def failed(error: str) -> dict:
    return {"status": "failed", "error": error, "target": TARGET, "measured": now_utc()}


def measure(artifact: Path, stage: DeviceStage, out: Path, say) -> dict:
    """Build, run and read back one artifact. A build or run failure is recorded ("failed"), not raised."""
    from bench.pipeline.main_job import FirmwareBuildFailed, StageError, stage_device, stage_firmware

    model = json.loads((artifact / "model.json").read_text())
    say(f"device: building the {ENVIRONMENT} firmware around it (build folder {stage.build_dir})")
    try:
        firmware = stage_firmware(artifact, ENVIRONMENT, stage.build_dir)
    except FirmwareBuildFailed as failure:
        overflow = overflows(failure.output)
        if overflow:
            record = does_not_fit(model, overflow)
            say(f"device: does not fit the STM32F405: {record['why']}")
            return record
        say("device: the firmware build failed; recorded, the sweep goes on")
        return failed(str(failure))
    say(f"device: {stage.images} test images on QEMU netduinoplus2")
    try:
        run = stage_device(artifact, stage.data, stage.images, out, Path(firmware["elf"]))
    except StageError as stop:  # bench.pipeline.main_job's stages stop with a message (QEMU did not start, say)
        return failed(str(stop))
    if run["status"] != "ok":
        say(f"device: {run['summary']}; recorded, the sweep goes on")
        return failed(run["summary"])
    latency, board, memory = run["latency"], run["board"], run["memory"]
    regions = memory.get("regions") or {}
    record = {
        "status": "measured",
        "target": TARGET,
        "images": run["images"],
        "bit_identical": run["bit_identical"],
        "max_abs_diff_lsb": run["max_abs_diff_lsb"],
        "device_top1": run["top1"],  # on these few images only: the sweep's accuracy is the TFLM host's on the test set
        "unit": latency["unit"],
        "unit_note": latency["unit_note"],
        "per_invoke": {k: latency["per_inference"][k] for k in ("median", "min", "max")},
        "ticks_median": latency["ticks"]["median"],
        "arena_bytes": board["arena_bytes"],
        "arena_used_bytes": board["arena_used_bytes"],
        "flash_total": memory["flash_total"],
        "flash_model": memory["flash"]["model"],
        "ram_total": memory["ram_total"],
        "flash_capacity": (regions.get("FLASH") or {}).get("length"),
        "ram_capacity": (regions.get("RAM") or {}).get("length"),
        "firmware": {k: board[k] for k in ("firmware_git_sha", "build_flags", "compiler", "kernels", "timer_source")},
        "tflm_tree": firmware["tflm"],
        "report": str(Path(run["report"]).resolve().relative_to(out.resolve().parent)),  # beside result.json
        "measured": now_utc(),
    }
    say(f"device: {line(record)}")
    return record


def line(record: dict | None) -> str:
    """One line of a point's device figures, for the progress output and the report's notes."""
    record = record or not_measured("no device stage ran")
    status = record["status"]
    if status == "measured":
        return (
            f"{record['per_invoke']['median']:,.0f} {record['unit']} per Invoke() (median of {record['images']}), arena "
            f"{record['arena_used_bytes']:,} B used of {record['arena_bytes']:,} B, flash {record['flash_total']:,} B, "
            f"RAM {record['ram_total']:,} B, {record['bit_identical']}/{record['images']} bit-identical to the TFLM host"
        )
    if status == "does not fit":
        return f"does not fit the STM32F405: {record['why']}"
    if status == "failed":
        return f"failed: {record['error'].splitlines()[0]}"
    return f"not measured: {record['reason']}"
