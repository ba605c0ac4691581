"""What a device's tick count means, and the latency figures honestly derived from it.

HELLO reports `tick_hz`, `clock_hz` and `timer_source`; `timing(info)` turns them into a `Timing`:
- **emulator** (`timer_source` names `qemu-icount shift=N`): under `qemu-system-arm -icount shift=N` one guest
  instruction advances virtual time by 2^N ns, and the timer counts `tick_hz` of that virtual time, so
  instructions = ticks x 10^9 / (tick_hz x 2^N) exactly (netduinoplus2 at shift 0: 0.168 SysTick ticks per
  instruction). The unit is the instruction; efficiency is MACs per instruction. Virtual time is not board
  time: a real-chip latency is given only as an estimate, at the board's clock, for the cycles-per-instruction
  range `ESTIMATE_CPI` (QEMU models no pipeline, wait states or caches).
- **host** (the virtual device, `bench.virtual.device`): host nanoseconds of the TFLM host interpreter: host
  time, reported as host milliseconds, never as device time.
- **cycles** (a real board: DWT CYCCNT, the ESP32 cycle counter, or any timer with a known core clock):
  cycles = ticks x clock_hz / tick_hz, milliseconds at the reported clock, MACs per cycle.
- **ticks**: a timer this module cannot interpret (no clock, no known source): raw ticks only.

`latency_stats(ticks, info, macs)` gives the statistics of a run in that unit; `Timing.convert(ticks)` converts
one count (a PROFILE record, say).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

# Cycles per instruction assumed for a real Cortex-M4/M7 when an instruction count is turned into an estimated
# latency. 1.0 is the floor (every instruction one cycle; SMLAD, SXTB16 and most ALU operations are). 2.0 is an
# assumption, not a measurement: loads take 2 cycles unless pipelined, taken branches 2 to 4, and an STM32F405
# at 168 MHz reads flash (the weights) with 5 wait states behind its ART accelerator's small caches.
ESTIMATE_CPI = (1.0, 2.0)
ICOUNT = re.compile(r"icount\s+shift=(\d+)", re.IGNORECASE)
STATS = ("mean", "median", "p90", "p99", "min", "max", "std")


@dataclass(frozen=True)
class Timing:
    kind: str  # "emulator", "host", "cycles" or "ticks"
    unit: str  # "instructions", "host ns", "cycles" or "ticks": what `convert` returns
    tick_hz: int
    clock_hz: int
    source: str  # the timer source text from HELLO
    icount_shift: int | None = None

    @property
    def per_tick(self) -> float:
        """Units per tick."""
        if self.kind == "emulator":
            return 1e9 / (self.tick_hz * 2**self.icount_shift)
        if self.kind == "host":
            return 1e9 / self.tick_hz
        if self.kind == "cycles":
            return self.clock_hz / self.tick_hz
        return 1.0

    def convert(self, ticks: float) -> float:
        return float(ticks) * self.per_tick

    @property
    def efficiency(self) -> str | None:
        """The name of MACs per unit, or None where it means nothing (host time, raw ticks)."""
        return {"emulator": "MACs/instruction", "cycles": "MACs/cycle"}.get(self.kind)

    @property
    def label(self) -> str:
        """The unit as a table header says it, caveat included."""
        if self.kind == "emulator":
            return f"instructions (QEMU -icount shift={self.icount_shift}: instruction count, not time)"
        if self.kind == "host":
            return "host ms (virtual device: host time, not a device)"
        if self.kind == "cycles":
            return f"cycles ({self.source} at {self.clock_hz / 1e6:,.0f} MHz)"
        return f"ticks ({self.source or 'unknown timer'}, {self.tick_hz:,} Hz)"

    @property
    def note(self) -> str:
        if self.kind == "emulator":
            return (
                f"emulator instruction counts: {self.source}; instructions = ticks x 10^9 / ({self.tick_hz:,} Hz x 2^{self.icount_shift}); "
                "not real-board time"
            )
        if self.kind == "host":
            return "host nanoseconds of the TFLM host interpreter (virtual device): host time, not device time"
        if self.kind == "cycles":
            return f"core cycles ({self.source}, clock {self.clock_hz:,} Hz)"
        return f"raw ticks at {self.tick_hz:,} Hz of an unknown timer ({self.source!r})"


def timing(info: dict) -> Timing:
    """The meaning of a device's ticks, from its HELLO (DeviceInfo.to_dict())."""
    source = str(info.get("timer_source") or "")
    tick_hz, clock_hz = int(info.get("tick_hz") or 0), int(info.get("clock_hz") or 0)
    icount = ICOUNT.search(source)
    if icount and tick_hz:
        return Timing("emulator", "instructions", tick_hz, clock_hz, source, int(icount.group(1)))
    if info.get("virtual") or str(info.get("board", "")).startswith("virtual"):
        return Timing("host", "host ns", tick_hz or 1_000_000_000, 0, source or "host clock")
    if info.get("emulated"):
        # An emulator whose firmware does not say how its timer relates to instructions: raw ticks, no claim.
        return Timing("ticks", "ticks", tick_hz, clock_hz, source)
    if tick_hz and clock_hz:
        return Timing("cycles", "cycles", tick_hz, clock_hz, source)
    return Timing("ticks", "ticks", tick_hz, clock_hz, source)


def _stats(values: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(values.mean()),
        "median": float(np.median(values)),
        "p90": float(np.percentile(values, 90)),
        "p99": float(np.percentile(values, 99)),
        "min": float(values.min()),
        "max": float(values.max()),
        "std": float(values.std()),
    }


def real_chip_estimate(instructions: float, clock_hz: int, cpi: tuple[float, float] = ESTIMATE_CPI) -> dict | None:
    """Estimated real-chip milliseconds for an instruction count at `clock_hz`, for a CPI range; None without a clock."""
    if not clock_hz:
        return None
    return {
        "clock_hz": clock_hz,
        "cpi": list(cpi),
        "ms": [instructions * c / clock_hz * 1e3 for c in cpi],
        "note": "an estimate, not a measurement: instructions x cycles-per-instruction / clock",
    }


def latency_stats(ticks: list[int], info: dict, macs: int | None) -> dict:
    """Statistics of `Invoke()` over a run: raw ticks, the same in the timer's honest unit, milliseconds where they
    are real (a board at its clock; host time for the virtual device), MACs per unit, and for an emulator the
    estimated real-chip latency. Empty for no ticks."""
    t = np.asarray(ticks, dtype=np.float64)
    if not len(t):
        return {}
    tm = timing(info)
    per_inference = t * tm.per_tick
    out = {
        "count": len(t),
        "kind": tm.kind,
        "unit": tm.unit,
        "unit_label": tm.label,
        "unit_note": tm.note,
        "ticks": _stats(t),
        "per_inference": _stats(per_inference),
    }
    if tm.kind == "cycles":
        out["ms"] = _stats(t / tm.tick_hz * 1e3)
        out["clock_hz"] = tm.clock_hz
    elif tm.kind == "host":
        out["ms"] = _stats(t / tm.tick_hz * 1e3)
    if tm.efficiency and macs:
        out["macs_per_unit"] = float(macs / per_inference.mean())
        out["efficiency"] = tm.efficiency
    if tm.kind == "emulator":
        out["estimate"] = real_chip_estimate(out["per_inference"]["median"], tm.clock_hz)
    return out
