"""The report's numbers and names, one format of each, shared by serial.md (bench.on_device.report_markdown),
serial.png (bench.on_device.report_plot) and the pipeline's summary.md (bench.pipeline.summary).

Percentages everywhere, integers with thousands separators, a latency in its honest unit (bench.on_device.latency:
emulator instructions are not time; the virtual device's host time is not device time), a missing value as "—",
never a made-up zero.
"""

from __future__ import annotations

DASH = "—"


# ---- number formats: one of each, used everywhere ----


def _int(value) -> str:
    return DASH if value is None else f"{value:,.0f}"


def _num(value, digits: int = 2) -> str:
    return DASH if value is None else f"{value:,.{digits}f}"


def _eff(value) -> str:
    """MACs per instruction or cycle: three decimals (a reference-kernel layer does 0.012)."""
    return _num(value, 3)


def _pct(value, digits: int = 2) -> str:
    return DASH if value is None else f"{100 * value:.{digits}f}%"


def _ci(interval) -> str:
    return DASH if not interval else f"{100 * interval[0]:.1f}–{100 * interval[1]:.1f}%"


def _bytes(value) -> str:
    return DASH if value is None else f"{value:,} B"


def _capacity(value: int) -> str:
    return f"{value // (1024 * 1024)} MiB" if value % (1024 * 1024) == 0 else f"{value // 1024:,} KiB"


def _board(b: dict) -> str:
    return (b.get("device") or {}).get("board") or b["port"]


def _short(b: dict) -> str:
    return _board(b).split(" (")[0]


def latency_text(lat: dict) -> str:
    """One run's median `Invoke()` in its honest unit, for a log line or a summary cell."""
    if not lat:
        return DASH
    median = lat["per_inference"]["median"]
    if lat["kind"] == "emulator":
        text = f"{median / 1e6:,.2f} M instructions (QEMU instruction count, not time)"
        if lat.get("macs_per_unit"):
            text += f", {_eff(lat['macs_per_unit'])} MACs/instruction"
        return text
    if lat["kind"] == "cycles":
        clock = f"{lat['clock_hz'] / 1e6:,.0f} MHz"
        return f"{median:,.0f} cycles = {lat['ms']['median']:,.2f} ms at {clock}, {_eff(lat.get('macs_per_unit'))} MACs/cycle"
    if lat["kind"] == "host":
        return f"{lat['ms']['median']:,.2f} ms of host time (virtual device, not a board)"
    return f"{median:,.0f} ticks (unknown timer)"


def estimate_text(lat: dict) -> str:
    est = lat.get("estimate")
    if not est:
        return DASH
    lo, hi = est["ms"]
    return f"{lo:,.0f}–{hi:,.0f} ms"


def title(summary: dict) -> str:
    """The report's title: the model on its boards, with their kernels (serial.md's heading, serial.png's title)."""
    boards = ", ".join(dict.fromkeys(_board(b) for b in summary["boards"]))
    kernels = ", ".join(dict.fromkeys((b.get("device") or {}).get("kernels") or "?" for b in summary["boards"]))
    return f"{summary['artifact']['name']} on {boards}, kernels {kernels}"
