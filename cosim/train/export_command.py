"""``cosim export``: a cosim model file as an ONNX graph (float, or QDQ-quantized).

Example::

    cosim export model.npz --out model.onnx [--quantized]

``configure`` only touches argparse; ``run`` imports NumPy, onnx and the exporter
(:mod:`cosim.train.onnx_export`). docs/import.md ("Exporting") describes the graphs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cosim import argcheck as ac


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``cosim export``'s arguments to ``parser``."""
    parser.add_argument("model", type=ac.path, help="the cosim model file (.npz)")
    parser.add_argument("--out", required=True, help="ONNX file to write (.onnx)")
    parser.add_argument(
        "--quantized",
        action="store_true",
        help="QuantizeLinear/DequantizeLinear around the activations and the weights "
        "(default: the float network of the dequantized weights)",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``cosim export``; returns the exit status."""
    from cosim.errors import CosimError
    from cosim.fileio import check_output_file, write_bytes_atomic
    from cosim.model import load_model
    from cosim.train.onnx_export import export_onnx

    out = Path(args.out)
    if not out.name or out.name in (".", ".."):
        raise CosimError(f"--out {args.out!r} names a directory; give a file, e.g. m.onnx")
    check_output_file(out, kind="onnx")
    model = load_model(args.model)
    proto = export_onnx(model, quantized=args.quantized)
    write_bytes_atomic(out, proto.SerializeToString())
    kind = "quantized (QDQ)" if args.quantized else "float"
    shape = list(model.preprocessing.input_shape)
    print(
        f"wrote {out}: {kind} ONNX of {model.architecture} ({model.scheme}), "
        f"{len(proto.graph.node)} nodes, input x01 {shape}"
    )
    return 0
