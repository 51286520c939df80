"""How close the ONNX exports of *residual* models are to cosim's forwards, and the round trip
(docs/import.md, "Exporting").

Without arguments: the random-weight blocks of tests/test_onnx_export.py imported on digits
(``cosim import``, 200 calibration samples; a pair block with a convolution after its Add and
a plain Add of two activations; global and per-layer W4A3, and the pair block at global
W4A8). With model files (any residual model, e.g. from ``cosim import resnet.onnx``): those,
on their dataset's first ``--limit`` test samples. For each: the float export against
float_forward of the dequantized model, the QDQ export against integer_forward (all
predictions, and those whose integer logits do not tie), both run by
onnx.reference.ReferenceEvaluator, and ``cosim import`` of each export (its grids kept)
against the model on the whole test set.

    PYTHONPATH=. .venv/bin/python benchmarks/onnx_export_residual.py [MODEL.npz ...] [--limit N]
"""

import argparse

import numpy as np

from cosim.datasets import load_dataset
from cosim.model import load_model, predict
from cosim.model.forward import float_forward, integer_forward
from cosim.train.importer import ImportOptions, import_onnx
from cosim.train.onnx_export import dequantized, export_onnx, run_onnx
from cosim.train.onnx_graph import graph_from_proto


def digits_models():
    from tests.test_onnx_export import plain_add_block
    from tests.test_residual import residual_block

    d = load_dataset("digits")
    graphs = {
        "pair": residual_block(np.random.default_rng(3), conv_after=True),
        "plain": plain_add_block(np.random.default_rng(4)),
    }
    for block, scheme, a in (("pair", "global", 3), ("pair", "per-layer", 3),
                             ("plain", "global", 3), ("plain", "per-layer", 3),
                             ("pair", "global", 8)):  # fmt: skip
        opts = ImportOptions(calibrate=200, scheme=scheme, a_bits=a)
        yield f"{block} block digits {scheme} A{a}", import_onnx(graph_from_proto(
            graphs[block], block), d, opts).model, d  # fmt: skip


def file_models(paths):
    for p in paths:
        m = load_model(p)
        yield f"{p} ({m.info.get('dataset')}, {m.scheme})", m, load_dataset(m.info["dataset"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*")
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    for name, m, d in file_models(args.models) if args.models else digits_models():
        x = d.x_test[: args.limit]
        x01 = d.preprocessing.unit(x)
        fl = float_forward(dequantized(m), x).predictions
        pf = run_onnx(export_onnx(m), x01, batch=250).argmax(1)
        ref = integer_forward(m, x)
        pq = run_onnx(export_onnx(m, quantized=True), x01, batch=250).argmax(1)
        top2 = np.sort(ref.logits, axis=1)[:, -2:]
        untied = top2[:, 1] > top2[:, 0]
        agree_untied = np.mean(pq[untied] == ref.predictions[untied])
        same = []
        for quantized in (False, True):
            g = graph_from_proto(export_onnx(m, quantized=quantized), "rt")
            got = import_onnx(g, d, ImportOptions()).model
            same.append(np.array_equal(predict(got, d.x_test), predict(m, d.x_test)))
        print(
            f"{name}, {len(x)} samples: float export = float_forward on "
            f"{100 * np.mean(pf == fl):.2f}%; QDQ export = integer reference on "
            f"{100 * np.mean(pq == ref.predictions):.2f}% ({100 * agree_untied:.2f}% "
            f"of the {100 * untied.mean():.1f}% untied); accuracy integer "
            f"{100 * np.mean(ref.predictions == d.y_test[: len(x)]):.2f}% QDQ "
            f"{100 * np.mean(pq == d.y_test[: len(x)]):.2f}%; round trip identical "
            f"predictions (float, QDQ): {same}",
            flush=True,
        )


if __name__ == "__main__":
    main()
