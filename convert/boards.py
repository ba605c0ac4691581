"""The supported boards' memory budgets, in one table, and the fit verdict for a converted model.

A model fits a board when
- flash: the `.tflite` bytes + the firmware's own code and data (`flash_reserved`) <= `flash`, and
- RAM: the firmware's tensor arena (`arena_bytes_for_firmware`) + the firmware's other RAM
  (`ram_reserved`: stack, runtime state, serial buffers) <= `ram`,
where `flash` is what one firmware image may occupy and `ram` is the largest RAM region one static
arena can be placed in (not the chip's total when RAM is split into banks). The reserves are estimates
for a TFLM firmware with these ops (TFLM + optimised kernels + the serial protocol); refine them from
the linker map of a real build (`mcu/`) when one exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from convert.errors import BadInputError

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Board:
    key: str  # what --board takes
    name: str
    mcu: str
    core: str
    flash: int  # bytes one firmware image may occupy
    ram: int  # bytes of the largest RAM region the arena can live in
    flash_reserved: int  # firmware code and constants besides the model
    ram_reserved: int  # firmware RAM besides the arena
    emulator: str | None  # QEMU machine, when the board is emulated
    notes: str

    @property
    def model_budget(self) -> int:
        return self.flash - self.flash_reserved

    @property
    def arena_budget(self) -> int:
        return self.ram - self.ram_reserved


# What a firmware needs besides the model, by family: (flash, RAM). Arm: TFLM with CMSIS-NN kernels for a handful
# of ops plus start-up code and the serial protocol is about 100 KB of flash; 128 KiB leaves room. 16 KiB of RAM
# covers an 8 KiB stack, the runtime's .data/.bss and the serial buffers. ESP-IDF brings FreeRTOS, drivers and
# esp-nn: more of both.
_RESERVED = {"arm": (128 * KIB, 16 * KIB), "esp": (320 * KIB, 32 * KIB)}


def _board(key: str, name: str, mcu: str, core: str, *, family: str, flash: int, ram: int, emulator: str | None = None, notes: str):
    flash_reserved, ram_reserved = _RESERVED[family]
    return Board(key, name, mcu, core, flash, ram, flash_reserved, ram_reserved, emulator, notes)


BOARDS: dict[str, Board] = {
    board.key: board
    for board in (
        _board(
            "netduinoplus2",
            "STM32F405 (QEMU netduinoplus2)",
            "STM32F405RG",
            "Cortex-M4F",
            family="arm",
            flash=1 * MIB,
            ram=128 * KIB,
            emulator="qemu-system-arm -M netduinoplus2",
            notes="1 MiB flash; SRAM1+SRAM2 are one 128 KiB region (the 64 KiB CCM is not counted: no DMA, stack only)",
        ),
        _board(
            "mps2-an500",
            "Arm MPS2 AN500 (QEMU mps2-an500)",
            "AN500 FPGA image",
            "Cortex-M7",
            family="arm",
            flash=4 * MIB,
            ram=4 * MIB,
            emulator="qemu-system-arm -M mps2-an500",
            notes="code in the 4 MiB ZBT SSRAM1 at 0x0, data in the 4 MiB ZBT SSRAM2/3 at 0x20000000",
        ),
        _board(
            "nucleo-h743zi",
            "NUCLEO-H743ZI",
            "STM32H743ZI",
            "Cortex-M7",
            family="arm",
            flash=2 * MIB,
            ram=512 * KIB,
            notes="2 MiB flash (two banks, one image may span both); 1 MiB RAM in banks, the largest is the 512 KiB AXI SRAM",
        ),
        _board(
            "nucleo-f767zi",
            "NUCLEO-F767ZI",
            "STM32F767ZI",
            "Cortex-M7",
            family="arm",
            flash=2 * MIB,
            ram=512 * KIB,
            notes="2 MiB flash; DTCM+SRAM1+SRAM2 are one contiguous 512 KiB region",
        ),
        _board(
            "esp32",
            "ESP32 (ESP32-DevKitC, 4 MB flash, no PSRAM)",
            "ESP32-D0WD",
            "Xtensa LX6",
            family="esp",
            flash=3 * MIB,
            ram=124_580,
            notes="flash: the 3 MiB app partition of huge_app.csv, which mcu/platformio.ini's esp32 environments use; "
            "RAM: dram0_0_seg as Arduino-ESP32 2.0.x's linker script leaves it (the arena is a static array); "
            "the rest of the ~320 KiB DRAM is heap",
        ),
        _board(
            "esp32-s3",
            "ESP32-S3 (ESP32-S3-DevKitC-1, 8 MB flash, no PSRAM)",
            "ESP32-S3",
            "Xtensa LX7",
            family="esp",
            flash=3 * MIB,
            ram=345_856,
            notes="flash: the 3 MiB app partition of huge_app.csv, as for the ESP32; "
            "RAM: dram0_0_seg of Arduino-ESP32 2.0.x's linker script (345,856 B, shared with IRAM code)",
        ),
    )  # fmt: skip
}

_ALIASES = {"stm32f405": "netduinoplus2", "mps2_an500": "mps2-an500", "an500": "mps2-an500", "esp32s3": "esp32-s3", "esp32dev": "esp32"}


def get(key: str) -> Board:
    """The board for a --board value (case-insensitive; '_' and '-' are interchangeable)."""
    normal = key.strip().lower().replace("_", "-")
    normal = _ALIASES.get(normal, _ALIASES.get(normal.replace("-", "_"), normal))
    if normal not in BOARDS:
        raise BadInputError(f"unknown board {key!r}; supported: {', '.join(BOARDS)}")
    return BOARDS[normal]


def fit(board: Board, model_bytes: int, arena_bytes: int) -> dict:
    """Whether a model of `model_bytes` with a firmware arena of `arena_bytes` fits `board`, with margins."""
    flash_left = board.model_budget - model_bytes
    ram_left = board.arena_budget - arena_bytes
    return {
        "board": board.key,
        "name": board.name,
        "flash": board.flash,
        "flash_reserved": board.flash_reserved,
        "model_bytes": model_bytes,
        "flash_left": flash_left,
        "fits_flash": flash_left >= 0,
        "ram": board.ram,
        "ram_reserved": board.ram_reserved,
        "arena_bytes": arena_bytes,
        "ram_left": ram_left,
        "fits_ram": ram_left >= 0,
        "fits": flash_left >= 0 and ram_left >= 0,
    }


def fit_all(model_bytes: int, arena_bytes: int) -> list[dict]:
    return [fit(board, model_bytes, arena_bytes) for board in BOARDS.values()]


def verdict_text(verdict: dict) -> str:
    """One line a person reads: 'fits' or what is short, by how many bytes."""
    if verdict["fits"]:
        return f"fits ({verdict['flash_left']:,} B flash and {verdict['ram_left']:,} B RAM to spare)"
    short = []
    if not verdict["fits_flash"]:
        short.append(f"flash short by {-verdict['flash_left']:,} B")
    if not verdict["fits_ram"]:
        short.append(f"RAM short by {-verdict['ram_left']:,} B")
    return "does not fit: " + ", ".join(short)


# The firmware's arena is the host measurement plus a margin, because the device is not the host:
# - the head (activation buffers) is planned identically, but optimised kernels (CMSIS-NN, esp-nn) ask
#   for scratch buffers the host's reference kernels do not (a few KiB for SqueezeNet's 3x3 convs);
# - the tail holds pointer-sized structs, 64-bit on the host and 32-bit on a microcontroller, so the host
#   figure overstates it (that part of the error is on the safe side).
# 5 % of the total, at least 4 KiB, rounded up to 16 bytes (the arena's alignment).
ARENA_MARGIN_PERCENT = 5
ARENA_MARGIN_MIN = 4 * KIB
ARENA_MARGIN_RULE = (
    f"host total + max({ARENA_MARGIN_MIN}, ceil({ARENA_MARGIN_PERCENT}% of it)), rounded up to a multiple of 16 "
    "(optimised-kernel scratch buffers; the host's 64-bit tail overstates a 32-bit device's)"
)


def arena_for_firmware(host_total: int) -> int:
    """The tensor arena size the firmware should declare for a model whose host arena is `host_total`."""
    margin = max(ARENA_MARGIN_MIN, -(-host_total * ARENA_MARGIN_PERCENT // 100))
    return -(-(host_total + margin) // 16) * 16
