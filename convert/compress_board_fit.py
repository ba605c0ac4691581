"""The board fit of `python -m convert.compress`: which board's RAM the compressed model must fit, and
compressing so that it does.

A compressed tensor saves flash but costs RAM: TFLM's DECODE expands it into the arena while its layer
runs. `shrink_until_fits` is the one loop that decides whether a compressed model fits a board's RAM, and
what to give up when it does not: `compress_to_fit` gives up the largest compressed tensor first;
`split_to_fit` (`--split-filters`) first splits the layers of the largest decoded filters into pieces
(`convert.conv_split`), then gives up the tensors that save least.
"""

from __future__ import annotations

from dataclasses import dataclass

NO_BOARD = "none"  # --board none: compress everything that saves flash, whatever the arena


def board_to_fit(source: dict, board: str | None):
    """(board key or None, boards.Board or None): --board, else the board the source artifact was converted for."""
    from convert import boards

    chosen = source["board"].get("chosen") if board is None else (None if board == NO_BOARD else board)
    return chosen, (boards.get(chosen) if chosen else None)


def largest_decoded(plans: list):
    """The compressed tensor whose decoded copy is largest: what grows the activations' peak."""
    return max((p for p in plans if p.compress), key=lambda p: p.bytes_before)


def least_saving(plans: list):
    """The compressed tensor that saves the least flash: the cheapest DECODE operator (its state, node and
    tensors in the arena's persistent tail) to give up once decoded copies no longer set the peak."""
    return min((p for p in plans if p.compress), key=lambda p: p.bytes_before - p.bytes_after)


def apply_plans(apply, model: bytes, plans: list) -> bytes:
    from convert.errors import ConversionError

    try:
        return apply(model, plans)
    except Exception as error:  # the compressor raises CompressionError and assorted others
        raise ConversionError(f"the TFLM compressor failed ({type(error).__name__}: {error})") from error


def shrink_until_fits(original: bytes, plans: list, board, apply, measure, kept_because: str, give_up=largest_decoded):
    """The one loop that trades flash for RAM: compress by `plans` (`apply(original, plans)`), `measure(model)` ->
    (fits, result); while it does not fit, leave the tensor `give_up(plans)` uncompressed (by default the largest,
    whose decoded copy is what grows the RAM) and try again. `kept_because(plan, result)` is the reason recorded on
    the tensor given up. Returns (model bytes, result). Raises ConversionError (the compressor failed) or
    NothingToCompress."""
    from convert.compress_plan import NothingToCompress

    while True:
        compressed = apply_plans(apply, original, plans)
        fits, result = measure(compressed)
        if fits:
            return compressed, result
        victim = give_up(plans)
        victim.reason = kept_because(victim, result)  # while the plan still has its compressed size
        victim.compress = False
        if not any(p.compress for p in plans):
            message = f"nothing to compress within {board.key}'s RAM: every compressed tensor's decoded copy overflows it"
            raise NothingToCompress(message, plans)


def board_measure(board):
    """`measure(model)` -> (fits, (ArenaUsage, firmware arena)): the host allocation against `board`'s RAM
    budget (any size fits without a board). Raises ConversionError when the host cannot allocate the model."""
    from convert import boards, preflight
    from convert.errors import ConversionError

    def measure(compressed: bytes):
        check, usage = preflight.tflm_allocation_check(compressed)
        if usage is None:
            raise ConversionError(f"the TFLM host interpreter cannot allocate the compressed model: {check.detail}")
        firmware_arena = boards.arena_for_firmware(usage.total)
        return board is None or boards.fit(board, len(compressed), firmware_arena)["fits_ram"], (usage, firmware_arena)

    return measure


def decoded_copy(plan) -> str:
    return f"decoded, its {plan.bytes_before:,} B would push the firmware arena to"


def decode_state(plan) -> str:
    saved = plan.bytes_before - plan.bytes_after
    return f"it saved the least flash ({saved:,} B), and the DECODE operators' state pushed the firmware arena to"


def kept_to_fit(board, cause=decoded_copy):
    """`kept_because(plan, result)` for shrink_until_fits: why a tensor stays uncompressed on `board`, `cause(plan)`
    ending in the arena it led to."""

    def kept_because(plan, result) -> str:
        return f"kept so the arena fits {board.key}: {cause(plan)} {result[1]:,} B (budget {board.arena_budget:,})"

    return kept_because


def compress_to_fit(original: bytes, plans: list, board, apply=None) -> tuple[bytes, object, int]:
    """Compress by `plans`; with a board, while the firmware arena is over its RAM budget, leave the
    largest compressed tensor uncompressed and try again (its decoded copy is what grows the arena).
    Returns (model bytes, ArenaUsage, firmware arena). Raises ConversionError or NothingToCompress."""
    from convert import lut

    measure, kept_because = board_measure(board), kept_to_fit(board) if board else None
    compressed, (usage, firmware_arena) = shrink_until_fits(original, plans, board, apply or lut.compress, measure, kept_because)
    return compressed, usage, firmware_arena


@dataclass
class SplitFit:
    """What `split_to_fit` settled on: the split (uncompressed) model the plans index into, the plans, the
    compressed model, its arena, and the pieces per split filter (by the original filter's name)."""

    split_model: bytes
    plans: list
    compressed: bytes
    usage: object
    firmware_arena: int
    pieces: dict  # pieces per split filter, by the original filter's name
    channels: dict  # output channels of every splittable filter of the original

    def record(self) -> dict:
        """model.json's record of the layers split: {filter name: {pieces, output channels}}."""
        return {name: {"pieces": n, "output_channels": self.channels[name]} for name, n in sorted(self.pieces.items()) if n > 1}


# A bound on the split loop: each round splits one layer one piece further and costs a split, a compression and a
# host allocation (about 2 s for the CIFAR model, which needs 6 splits).
MAX_SPLIT_ROUNDS = 64


def split_to_fit(original: bytes, board, choose, floor: int | None = None) -> SplitFit:
    """Compress `original` to fit `board`, splitting convolutions (`convert.conv_split`) rather than leaving
    their filters uncompressed. `choose(model)` -> (plans, apply), as `compress_plan.choose`; `floor`: the
    uncompressed model's arena head on the TFLM host, when the caller has it (an artifact records it), else
    measured here.

    While the compressed model's planned activations (the arena's head) exceed the uncompressed model's, a
    decoded filter sets the peak: split the layer of the largest decoded filter one piece further and plan
    again. Once they do not, splitting cannot help: what is left over is the DECODE operators' own state in
    the arena's persistent tail, so give up the tensors that save the least flash until it fits. When the
    largest decoded tensor cannot split further (not a CONV_2D filter, or one channel a piece), give it up."""
    from convert import conv_split, tflm_host
    from convert.errors import ConversionError

    if floor is None:
        try:
            floor = tflm_host.measure_arena(original).head
        except tflm_host.TflmError as error:
            raise ConversionError(f"the TFLM host interpreter cannot allocate the model: {error}") from error
    channels = conv_split.splittable_filters(original)
    measure = board_measure(board)
    pieces: dict[str, int] = {}
    for _ in range(MAX_SPLIT_ROUNDS):
        tried = dict(pieces)  # what this round's model is split by
        model = conv_split.split(original, tried)
        plans, apply = choose(model)
        compressed = apply_plans(apply, model, plans)
        fits, (usage, firmware_arena) = measure(compressed)
        if fits:
            return SplitFit(model, plans, compressed, usage, firmware_arena, tried, channels)
        source = conv_split.source_name(largest_decoded(plans).name)
        if usage.head <= floor or pieces.get(source, 1) >= channels.get(source, 0):
            break  # at the activations' floor, or the peak's tensor is no filter that splits further
        pieces[source] = pieces.get(source, 1) + 1
    # At the floor what is over is DECODE's state: give up what saves least; above it, the decoded copy that sets it.
    give_up, cause = (least_saving, decode_state) if usage.head <= floor else (largest_decoded, decoded_copy)
    compressed, (usage, firmware_arena) = shrink_until_fits(model, plans, board, apply, measure, kept_to_fit(board, cause), give_up=give_up)
    return SplitFit(model, plans, compressed, usage, firmware_arena, tried, channels)
