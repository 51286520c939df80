"""From a trained network to its results: network inputs, evaluation, the model file.

:func:`finish` exports the deployed model and measures it. The test accuracy of a quantized
model is computed with :func:`cosim.model.forward.integer_forward` on the exported model;
the training forward's accuracy and the fraction of identical predictions are reported
beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cosim import model as mf
from cosim.datasets import Dataset
from cosim.model import predict
from cosim.train.config import TrainConfig
from cosim.train.layers import (
    Add,
    AvgPool2D,
    Conv2D,
    Flatten,
    MaxPool2D,
    SignedAct,
    WeightLayer,
    softmax_xent,
)
from cosim.train.network import Network
from cosim.train.scheme import Scheme


@dataclass
class TrainOutcome:
    """What :func:`~cosim.train.trainer.train` returns: the exported model, the network,
    metrics and history."""

    model: mf.Model
    net: Network
    scheme: Scheme
    masks: list[np.ndarray]
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)


# -------------------------------------------------------------------------------- inputs
def batch_inputs(dataset: Dataset, raw: np.ndarray, scheme: Scheme) -> np.ndarray:
    """Network inputs of raw samples: input codes (quantized) or ``x01 * hi`` (float)."""
    prep = dataset.preprocessing
    if scheme.quantized:
        return prep.codes(raw, dtype=np.float32)
    return (prep.unit(raw) * scheme.hi_target).astype(np.float32)


def evaluate(
    net: Network, dataset: Dataset, scheme: Scheme, x: np.ndarray, y: np.ndarray, batch: int = 1000
) -> tuple[float, float]:
    """``(accuracy, mean loss)`` of the training forward (inference mode)."""
    correct, loss_sum = 0, 0.0
    for i in range(0, len(x), batch):
        logits = net.forward(batch_inputs(dataset, x[i : i + batch], scheme))
        loss, _ = softmax_xent(logits, y[i : i + batch])
        loss_sum += loss * len(logits)
        correct += int(np.sum(np.argmax(logits, axis=1) == y[i : i + batch]))
    return correct / len(x), loss_sum / len(x)


# -------------------------------------------------------------------------------- export
def export_model(
    net: Network,
    scheme: Scheme,
    masks: list[np.ndarray],
    dataset: Dataset,
    info: dict[str, Any] | None = None,
) -> mf.Model:
    """The deployed :class:`~cosim.model.Model` of a trained network.

    A residual network's Adds become :class:`~cosim.model.AddLayer` (their sources mapped
    to the model's layer indices); a hidden layer followed by a
    :class:`~cosim.train.layers.SignedAct` is written as the pair ``[W; -W]``, ``[b; -b]``
    (``2 C`` outputs, the Add after it ``pair``), whose ADC codes' difference is exactly the
    signed activation's codes.
    """
    scheme.apply(masks)
    shape = dataset.preprocessing.input_shape
    layers: list[mf.Layer] = []
    wi = 0
    n_weight = len(net.weight_layers)
    model_index: dict[int, int] = {}  # net.layers index -> the model layer giving its output
    for i, (lay, s_in, s_out) in enumerate(
        zip(net.layers, net.shapes, net.shapes[1:], strict=False)
    ):
        ins = _external(s_in)
        outs = _external(s_out)
        if isinstance(lay, WeightLayer):
            role = "hidden" if wi < n_weight - 1 else "head"
            uni = masks[wi] if wi < len(masks) else np.zeros(lay.n_out, dtype=bool)
            pair = i + 1 < len(net.layers) and isinstance(net.layers[i + 1], SignedAct)
            kw: dict[str, Any] = {}
            wshape: tuple[int, ...] = (lay.n_out, lay.fan_in)
            if isinstance(lay, Conv2D):
                kw = {"kernel": lay.kernel, "stride": lay.stride, "padding": lay.padding}
                wshape = (lay.n_out, lay.in_ch, lay.kernel, lay.kernel)
            if pair:  # never unipolar (Network.filters leaves pairs out)
                uni = np.zeros(2 * lay.n_out, dtype=bool)
                outs = (2 * outs[0], *outs[1:])
            if scheme.quantized:
                w_g, x_g, y_g, b_g = scheme.grids(wi)
                n_w = w_g.levels(lay.params["W"], uni[: lay.n_out]).reshape(wshape)
                n_b = b_g.levels(lay.params["b"])
                if pair:
                    n_w, n_b = np.concatenate([n_w, -n_w]), np.concatenate([n_b, -n_b])
                layers.append(
                    mf.WeightLayer(
                        lay.kind,
                        role,
                        ins,
                        outs,
                        uni.copy(),
                        **kw,
                        n_w=n_w,
                        n_b=n_b,
                        w_grid=w_g,
                        in_grid=x_g,
                        out_grid=y_g,
                        b_grid=b_g,
                    )
                )
            else:
                w = lay.params["W"].reshape(wshape).copy()
                b = lay.params["b"].copy()
                if pair:
                    w, b = np.concatenate([w, -w]), np.concatenate([b, -b])
                layers.append(mf.WeightLayer(lay.kind, role, ins, outs, uni.copy(), **kw, w=w, b=b))
            wi += 1
        elif isinstance(lay, Flatten):
            layers.append(mf.FlattenLayer(ins, outs))
        elif isinstance(lay, AvgPool2D | MaxPool2D):  # kinds avgpool2d, maxpool2d
            layers.append(mf.PoolLayer(lay.kind, lay.size, ins, outs))
        elif isinstance(lay, Add):
            g = None if lay.grids is None else lay.grids[2]
            ins = (2 * outs[0], *outs[1:]) if lay.pair else outs
            layers.append(mf.AddLayer(model_index[lay.source], lay.pair, ins, outs, g))
        # activation quantizers are part of their hidden weight layer (its out_grid)
        if layers:
            model_index[i] = len(layers) - 1
    del shape
    return mf.Model(
        scheme.name,
        net.arch,
        tuple(layers),
        dataset.preprocessing,
        float(scheme.hi_x[0]) if scheme.quantized else scheme.hi_target,
        dataset.n_classes,
        info or {},
    )


def _external(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else tuple(shape)


def finish(
    cfg: TrainConfig,
    dataset: Dataset,
    net: Network,
    scheme: Scheme,
    masks: list[np.ndarray],
    history: list[dict[str, Any]],
    wall: float,
) -> TrainOutcome:
    uni_on = cfg.unipolar_fraction > 0
    scheme.apply(masks if uni_on else None)
    acc_train_fwd, _ = evaluate(net, dataset, scheme, dataset.x_test, dataset.y_test)
    fwd_pred = np.concatenate(
        [
            np.argmax(
                net.forward(batch_inputs(dataset, dataset.x_test[i : i + 1000], scheme)), axis=1
            )
            for i in range(0, len(dataset.x_test), 1000)
        ]
    )
    info = {
        "dataset": dataset.name,
        "config": cfg.to_dict(),
        "epochs_trained": len(history),
    }
    model = export_model(
        net, scheme, masks if uni_on else [np.zeros_like(m) for m in masks], dataset, info
    )
    pred = predict(model, dataset.x_test)
    acc = float(np.mean(pred == dataset.y_test))
    n_filters = sum(len(m) for m in masks)
    conv = [isinstance(lay, Conv2D) for lay in net.hidden]
    n_conv = sum(len(m) for m, c in zip(masks, conv, strict=True) if c)
    uni_conv = sum(int(m.sum()) for m, c in zip(masks, conv, strict=True) if c) if uni_on else 0
    metrics = {
        "dataset": dataset.name,
        "model": cfg.model,
        "scheme": cfg.scheme,
        "w_bits": cfg.w_bits if scheme.quantized else None,
        "a_bits": cfg.a_bits if scheme.quantized else None,
        "unipolar_fraction": cfg.unipolar_fraction,
        "test_accuracy": acc,
        "test_accuracy_source": "integer_forward" if scheme.quantized else "float_forward",
        "test_accuracy_training_forward": acc_train_fwd,
        "prediction_agreement": float(np.mean(pred == fwd_pred)),
        "unipolar_filters": int(sum(m.sum() for m in masks)) if uni_on else 0,
        "hidden_filters": n_filters,
        "unipolar_scope": cfg.unipolar_scope,
        "unipolar_conv_filters": uni_conv,
        "conv_filters": n_conv,
        "grids": grids_summary(model),
        "n_train": len(dataset.x_train),
        "n_test": len(dataset.x_test),
        "wall_time_s": wall,
        "config": cfg.to_dict(),
        "history": history,
    }
    model.info["test_accuracy"] = acc
    return TrainOutcome(model, net, scheme, masks, metrics, history)


def grids_summary(model: mf.Model) -> list[dict[str, Any]]:
    out = []
    for lay in model.weight_layers:
        d: dict[str, Any] = {"kind": lay.kind, "role": lay.role}
        if lay.quantized:
            assert lay.w_grid is not None and lay.in_grid is not None
            assert lay.b_grid is not None
            d["w_grid"] = lay.w_grid.to_dict()
            d["in_grid"] = lay.in_grid.to_dict()
            d["out_grid"] = None if lay.out_grid is None else lay.out_grid.to_dict()
            d["b_grid"] = lay.b_grid.to_dict()
        d["unipolar_filters"] = int(lay.unipolar.sum())
        out.append(d)
    return out
