"""The choice of what `python -m convert.compress` compresses: the DECODE format(s) of --method, which
weight tensors get smaller in them, --max-decoded-bytes, and the message when none does.

`choose` returns the per-tensor plans and the function that writes them into a model; the board fit
(`convert.compress_board_fit`) may still leave some of them out, and the lossless check
(`convert.compress_check`) decides whether anything is written.
"""

from __future__ import annotations

METHOD_CHOICES = ("lut", "prune", "huffman", "best")
METHOD_TEXT = {
    "lut": "TFLM look-up-table (LUT) weights: DECODE operators (custom op TFLM_DECODE) expand each tensor before its layer",
    "prune": "TFLM prune format (bitmask + non-zero values, convert.decode_formats.prune): DECODE operators expand each tensor",
    "huffman": "TFLM Huffman format (prefix codes + lookup tables, convert.decode_formats.huffman): DECODE operators expand each tensor",
    "best": "per tensor the smallest of TFLM's LUT, prune and Huffman formats (convert.decode_formats.plan): DECODE operators",
}


class NothingToCompress(Exception):
    """No weight tensor of the model gets smaller with LUT compression; `plans` says why for each."""

    def __init__(self, message: str, plans: list):
        self.plans = plans
        super().__init__(message)


def methods_for(method: str) -> tuple[str, ...]:
    from convert.decode_formats.plan import METHODS

    return METHODS if method == "best" else (method,)


def choose(original: bytes, method: str, max_bits: int, max_decoded_bytes: int | None) -> tuple[list, object]:
    """(plans, apply): per weight tensor of `original` whether and how it is compressed, and
    `apply(model, plans) -> bytes`. Raises NothingToCompress when no tensor gets smaller, ConversionError
    when an encoding does not read back. For a format other than lut, `convert.compress_check.require_host_decoder`
    must have passed first: planning it is wasted when the check cannot run."""
    from convert import lut
    from convert.errors import ConversionError

    if method == "lut":
        plans = limit_decoded_bytes(lut.plan(original, max_bits), max_decoded_bytes)
        if not any(p.compress for p in plans):
            raise NothingToCompress(nothing_message(plans, max_bits), plans)
        return plans, lut.compress

    from convert.decode_formats import plan as formats

    try:
        plans, encodings = formats.plan(original, methods_for(method), max_bits)
    except ValueError as error:  # an encoding the Python decoder port does not read back: nothing is written
        raise ConversionError(f"{error}; nothing written") from error
    plans = limit_decoded_bytes(plans, max_decoded_bytes)
    if not any(p.compress for p in plans):
        raise NothingToCompress(formats_nothing_message(plans, method), plans)

    def apply(model, chosen):
        return formats.apply(model, chosen, encodings)

    return plans, apply


def limit_decoded_bytes(plans: list, max_decoded_bytes: int | None) -> list:
    """Keep uncompressed every planned tensor larger than `max_decoded_bytes` (its decoded copy lives in the arena)."""
    if max_decoded_bytes is None:
        return plans
    for p in plans:
        if p.compress and p.bytes_before > max_decoded_bytes:
            p.compress = False
            p.reason = f"decoded it would take {p.bytes_before:,} B of arena, over --max-decoded-bytes {max_decoded_bytes:,}"
    return plans


def nothing_message(plans: list, max_bits: int) -> str:
    from convert.lut import MAX_INDEX_BITS

    if not plans:
        return "the model has no int8 convolution or fully-connected weights"
    worst = max(p.max_unique for p in plans)
    needs_bits = sum(p.bits is None for p in plans)
    message = (
        f"nothing to compress: none of the {len(plans)} weight tensors gets smaller with LUT compression "
        f"(up to {worst} distinct int8 values in an output channel; {needs_bits} tensor(s) would need more than {max_bits} index bits, "
        "the rest would spend on value tables what the indices save). "
    )
    if worst > 2**MAX_INDEX_BITS // 2:
        message += (
            "This is an unclustered model. Cluster it first, then convert again: python -m experiments.cluster --model X.keras "
            "--data DATA --bits 4 --out DIR; python -m convert --model DIR/X_cluster4bit.keras ...; python -m convert.compress ..."
        )
    return message


def formats_nothing_message(plans: list, method: str) -> str:
    if not plans:
        return "the model has no constant weights or biases of convolution or fully-connected operators"
    refused = sum(bool(p.refused) and not p.sizes for p in plans)
    message = (
        f"nothing to compress with --method {method}: none of the {len(plans)} weight and bias tensors gets smaller "
        f"({refused} cannot be stored in the format at all; the rest would take as many bytes as they do now). "
    )
    if method == "prune":
        message += "The prune format pays only for tensors with many zero-point elements: prune the model first. "
    message += "An ordinary int8 model has ~100-250 distinct values per channel and no zeros to speak of: prune or cluster it first."
    return message
