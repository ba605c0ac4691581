"""The pass/fail gates of host parity, and the exit status they make.

- `bit_exact`: the TFLM host interpreter's output is bit-identical to LiteRT's reference kernels on every
  sample. It is the point of the check: with it, any difference later seen on a device is the device's.
- `int8_top1`: every int8 engine's top-1 is within `max_points` percentage points of the float model's.

A gate is "pass", "fail", "not evaluated" (an engine it needs was asked for but cannot run here, e.g.
tflite-micro on macOS), or "off" (switched off, or its engines were not asked for). An engine that
crashes fails the gates that need it: it did not compute what it must compute on the device.

Exit status (model.exit_codes): CHECK_FAILED when a gate fails, else INCOMPLETE when a gate could not be
evaluated, else OK.
"""

from __future__ import annotations

from model import exit_codes

EXIT_OK = exit_codes.OK
EXIT_GATE_FAILED = exit_codes.CHECK_FAILED
EXIT_BAD_INPUT = exit_codes.BAD_INPUT
EXIT_INCOMPLETE = exit_codes.INCOMPLETE


def _gate(name: str, requirement: str, status: str, measured: str | None = None, detail: str | None = None) -> dict:
    return {"name": name, "requirement": requirement, "status": status, "measured": measured, "detail": detail}


def _blocked(name: str, requirement: str, results: dict, needed: list[str]) -> dict | None:
    """The gate's verdict when one of the engines it needs did not produce outputs, else None."""
    for key in needed:
        result = results.get(key)
        if result is None:
            return _gate(name, requirement, "off", detail=f"the {key} engine was not asked for")
    for key in needed:
        result = results[key]
        if result.status == "failed":
            return _gate(name, requirement, "fail", detail=f"{result.title} failed: {result.message}")
    for key in needed:
        result = results[key]
        if result.status == "unavailable":
            return _gate(name, requirement, "not evaluated", detail=f"{result.title} is unavailable: {result.message}")
    return None


def evaluate(results: dict, metrics: dict, images: int, *, bit_exact: bool = True, max_top1_points: float | None = 1.0) -> list[dict]:
    """The gates' verdicts from the engines' `results` ({key: EngineResult}) and `metrics.compare`'s output."""
    gates = []
    requirement = "TFLM host output bit-identical to the LiteRT reference kernels on every sample"
    if not bit_exact:
        gates.append(_gate("bit_exact", requirement, "off", detail="switched off (--no-gate-bit-exact)"))
    else:
        gate = _blocked("bit_exact", requirement, results, ["litert", "tflm"])
        if gate is None:
            lsb = next(p["lsb"] for p in metrics["pairs"] if {p["a"], p["b"]} == {"litert", "tflm"})
            measured = f"{lsb['bit_identical']:,} of {images:,} bit-identical, max abs difference {lsb['max_abs_diff_lsb']} LSB"
            gate = _gate("bit_exact", requirement, "pass" if lsb["bit_identical"] == images else "fail", measured)
        gates.append(gate)

    name = "int8_top1"
    if max_top1_points is None:
        gates.append(_gate(name, "int8 top-1 within a set distance of float", "off", detail="switched off (--no-gate-top1)"))
        return gates
    requirement = (
        f"every int8 engine's top-1 within {max_top1_points:g} percentage point{'' if max_top1_points == 1 else 's'} of the float model's"
    )
    int8_keys = [key for key, result in results.items() if result.int8]
    if not int8_keys:
        gates.append(_gate(name, requirement, "off", detail="no int8 engine was asked for"))
        return gates
    gate = _blocked(name, requirement, results, ["keras"])
    if gate is None:
        scored = [key for key in int8_keys if results[key].ok]
        if not scored:
            broken = results[int8_keys[0]]
            status = "fail" if broken.status == "failed" else "not evaluated"
            gate = _gate(name, requirement, status, detail=f"no int8 engine produced outputs ({broken.title}: {broken.message})")
        else:
            float_top1 = metrics["engines"]["keras"]["top1"]
            deltas = {key: 100 * (metrics["engines"][key]["top1"] - float_top1) for key in scored}
            measured = ", ".join(f"{results[key].title}: {delta:+.2f} points" for key, delta in deltas.items())
            worst = max(abs(d) for d in deltas.values())
            gate = _gate(name, requirement, "pass" if worst <= max_top1_points else "fail", measured)
    gates.append(gate)
    return gates


def exit_status(gates: list[dict]) -> int:
    statuses = {gate["status"] for gate in gates}
    if "fail" in statuses:
        return EXIT_GATE_FAILED
    if "not evaluated" in statuses:
        return EXIT_INCOMPLETE
    return EXIT_OK


def verdict(gates: list[dict]) -> str:
    """One word for the report's first line: PASS, FAIL or INCOMPLETE."""
    return {EXIT_OK: "PASS", EXIT_GATE_FAILED: "FAIL", EXIT_INCOMPLETE: "INCOMPLETE"}[exit_status(gates)]
