"""The board fit of `python -m convert.compress`: which board's RAM the compressed model must fit, and
compressing so that it does.

A compressed tensor saves flash but costs RAM: TFLM's DECODE expands it into the arena while its layer
runs. `compress_to_fit` is the one place that decides whether a compressed model fits a board's RAM, and
what to give up when it does not (the largest compressed tensor first).
"""

from __future__ import annotations

NO_BOARD = "none"  # --board none: compress everything that saves flash, whatever the arena


def board_to_fit(source: dict, board: str | None):
    """(board key or None, boards.Board or None): --board, else the board the source artifact was converted for."""
    from convert import boards

    chosen = source["board"].get("chosen") if board is None else (None if board == NO_BOARD else board)
    return chosen, (boards.get(chosen) if chosen else None)


def shrink_until_fits(original: bytes, plans: list, board, apply, measure, kept_because: str):
    """The one loop that trades flash for RAM: compress by `plans` (`apply(original, plans)`), `measure(model)` ->
    (fits, result); while it does not fit, leave the largest compressed tensor uncompressed (its decoded copy is
    what grows the RAM) and try again. `kept_because(plan, result)` is the reason recorded on the tensor given up.
    Returns (model bytes, result). Raises ConversionError (the compressor failed) or NothingToCompress."""
    from convert.compress_plan import NothingToCompress
    from convert.errors import ConversionError

    while True:
        try:
            compressed = apply(original, plans)
        except Exception as error:  # the compressor raises CompressionError and assorted others
            raise ConversionError(f"the TFLM compressor failed ({type(error).__name__}: {error})") from error
        fits, result = measure(compressed)
        if fits:
            return compressed, result
        largest = max((p for p in plans if p.compress), key=lambda p: p.bytes_before)
        largest.compress = False
        largest.reason = kept_because(largest, result)
        if not any(p.compress for p in plans):
            message = f"nothing to compress within {board.key}'s RAM: every compressed tensor's decoded copy overflows it"
            raise NothingToCompress(message, plans)


def compress_to_fit(original: bytes, plans: list, board, apply=None) -> tuple[bytes, object, int]:
    """Compress by `plans`; with a board, while the firmware arena is over its RAM budget, leave the
    largest compressed tensor uncompressed and try again (its decoded copy is what grows the arena).
    Returns (model bytes, ArenaUsage, firmware arena). Raises ConversionError or NothingToCompress."""
    from convert import boards, lut, preflight
    from convert.errors import ConversionError

    def measure(compressed: bytes):
        check, usage = preflight.tflm_allocation_check(compressed)
        if usage is None:
            raise ConversionError(f"the TFLM host interpreter cannot allocate the compressed model: {check.detail}")
        firmware_arena = boards.arena_for_firmware(usage.total)
        return board is None or boards.fit(board, len(compressed), firmware_arena)["fits_ram"], (usage, firmware_arena)

    def kept_because(plan, result) -> str:
        return (
            f"kept so the arena fits {board.key}: decoded, its {plan.bytes_before:,} B would push the firmware arena to "
            f"{result[1]:,} B (budget {board.arena_budget:,})"
        )

    compressed, (usage, firmware_arena) = shrink_until_fits(original, plans, board, apply or lut.compress, measure, kept_because)
    return compressed, usage, firmware_arena
