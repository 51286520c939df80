"""How close the ONNX exports are to cosim's forwards (docs/import.md, "Exporting").

Trains an MLP on digits (10 epochs) and a LeNet-5 on digits28 (3 epochs), global and
per-layer W4A3, seed 0, and on the 359 test samples compares: the integer reference
(cosim.model.forward.integer_forward), the float network of the dequantized weights
(float_forward), the float export and the QDQ export run by onnx.reference.ReferenceEvaluator.

    PYTHONPATH=. .venv/bin/python benchmarks/onnx_export_agreement.py
"""

import numpy as np

from cosim.datasets import load_dataset
from cosim.model.forward import float_forward, integer_forward
from cosim.train.config import TrainConfig
from cosim.train.onnx_export import dequantized, export_onnx, run_onnx
from cosim.train.trainer import train

for arch, ds, ep in (("mlp", "digits", 10), ("lenet5", "digits28", 3)):
    d = load_dataset(ds)
    for scheme in ("global", "per-layer"):
        cfg = TrainConfig(model=arch, scheme=scheme, epochs=ep)
        m = train(cfg, d, np.random.default_rng(0)).model
        x01, y = d.preprocessing.unit(d.x_test), d.y_test
        ref = integer_forward(m, d.x_test).predictions
        fl = float_forward(dequantized(m), d.x_test).predictions
        pf = run_onnx(export_onnx(m), x01).argmax(1)
        pq = run_onnx(export_onnx(m, quantized=True), x01).argmax(1)
        print(
            f"{arch} {ds} {scheme}: integer {100 * np.mean(ref == y):.2f}%  "
            f"float(dequantized) {100 * np.mean(fl == y):.2f}%  "
            f"float export {100 * np.mean(pf == y):.2f}% (= float_forward on "
            f"{100 * np.mean(pf == fl):.2f}%)  QDQ export {100 * np.mean(pq == y):.2f}% "
            f"(= integer reference on {100 * np.mean(pq == ref):.2f}%)",
            flush=True,
        )
