"""python -m model.summary: the paper's Table 1 for any SqueezeNet this project builds.

    python -m model.summary --version 1.0 --input-size 227 --classes 1000 [--json]

One row per block (conv1, maxpool1, fire2 ... fire9, conv10, avgpool10): output size, the Fire module's
s1x1 / e1x1 / e3x3, parameters (biases and batch-norm statistics included) and MACs, counted as output
pixels x output channels x kernel area x input channels for every convolution.
"""

from __future__ import annotations

import argparse
import json
import re
import sys

from model import exit_codes, quiet_tensorflow
from model.cli import add_architecture_arguments, architecture_of

_BLOCK = re.compile(r"^(conv10|conv1|fire\d+|maxpool\d+|avgpool\d+)(?:_|$)")


def conv_macs(layer) -> int:
    """MACs of one Conv2D: output pixels x output channels x kernel area x input channels."""
    _, out_h, out_w, out_c = layer.output.shape
    in_c = layer.input.shape[-1]
    k_h, k_w = layer.kernel_size
    return int(out_h * out_w * out_c * k_h * k_w * in_c)


def summarize(model) -> dict:
    """Per-block rows and totals for a model built by `model.squeezenet.squeezenet`."""
    from keras import layers as keras_layers

    blocks: dict[str, dict] = {}
    for layer in model.layers:
        match = _BLOCK.match(layer.name)
        if not match:
            continue  # input, preprocess, dropout, predictions: no parameters, no MACs
        block = blocks.setdefault(match.group(1), {"block": match.group(1), "params": 0, "macs": 0, "filters": {}})
        block["params"] += int(layer.count_params())
        if isinstance(layer, keras_layers.Conv2D):
            block["macs"] += conv_macs(layer)
            role = layer.name[len(block["block"]) + 1 :] or "conv"
            block["filters"][role] = int(layer.filters)
        # The block's output is the last layer of it in graph order (concat, add, pool, relu).
        block["output"] = [int(d) for d in layer.output.shape[1:]]
    rows = []
    for block in blocks.values():
        filters = block.pop("filters")
        if block["block"].startswith("fire"):
            block.update(s1x1=filters.get("squeeze"), e1x1=filters.get("expand1x1", 0), e3x3=filters.get("expand3x3", 0))
        rows.append(block)
    totals = {"params": int(model.count_params()), "macs": sum(row["macs"] for row in rows)}
    return {"model": model.name, "input": [int(d) for d in model.input_shape[1:]], "layers": rows, "totals": totals}


def format_table(summary: dict) -> str:
    header = f"{'layer':<11} {'output':>13} {'s1x1/e1x1/e3x3':>15} {'parameters':>12} {'MACs':>14}"
    lines = [f"{summary['model']}, input {'x'.join(map(str, summary['input']))}", header, "-" * len(header)]
    for row in summary["layers"]:
        filters = f"{row['s1x1']}/{row['e1x1']}/{row['e3x3']}" if "s1x1" in row else ""
        output = "x".join(map(str, row["output"]))
        lines.append(f"{row['block']:<11} {output:>13} {filters:>15} {row['params']:>12,} {row['macs']:>14,}")
    lines.append("-" * len(header))
    totals = summary["totals"]
    lines.append(f"{'total':<11} {'':>13} {'':>15} {totals['params']:>12,} {totals['macs']:>14,}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model.summary", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-size", type=int, default=227)
    parser.add_argument("--classes", type=int, default=1000)
    add_architecture_arguments(parser)  # the builder's own defaults: v1.0 as in the paper
    parser.add_argument("--model", default=None, help="summarise this .keras file instead of building one")
    parser.add_argument("--json", action="store_true", help="print JSON (totals include params and macs)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow()
    if args.model:
        from model.metadata import ModelFileError, load_model

        try:
            model = load_model(args.model)
        except ModelFileError as error:
            print(f"error: {error}", file=sys.stderr)
            return exit_codes.BAD_INPUT
    else:
        from model.squeezenet import squeezenet

        try:
            model = squeezenet(input_size=args.input_size, classes=args.classes, **architecture_of(args))
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return exit_codes.BAD_INPUT
    summary = summarize(model)
    print(json.dumps(summary, indent=2) if args.json else format_table(summary))
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
