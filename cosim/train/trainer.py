"""The training loop: mini-batches, schedules, checkpoints, export to a model file.

:func:`train` runs a :class:`TrainConfig` on a :class:`~cosim.datasets.Dataset` with a
``np.random.Generator`` (weights, shuffling and the unipolar search draw from it, nothing
else is random). After every epoch it can write a checkpoint (atomically) holding the
parameters, the optimizer state, the range variables, the unipolar mask, the history and
the generator's state, so a resumed run continues exactly where it stopped and ends with
the same model as an uninterrupted one.

A run that diverges (a non-finite loss in any step, or non-finite parameters, ranges or test
loss at the end of an epoch) stops at once with :class:`~cosim.errors.TrainingDivergedError`:
the checkpoint of the last finite epoch stays as it was, and ``--resume`` with a smaller
learning rate continues from it (the learning rate is the one option a resumed run may
change).

The test accuracy of a quantized model is computed with
:func:`cosim.model.forward.integer_forward` on the exported model; the training forward's
accuracy and the fraction of identical predictions are reported beside it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cosim import model as mf
from cosim.datasets import Dataset
from cosim.errors import CosimError, ModelFileError, TrainingDivergedError
from cosim.fileio import dumps_json, save_npz_atomic
from cosim.model import predict
from cosim.progress import Bar
from cosim.quant import DEFAULT_HI, DEFAULT_W_MAX, GridError, _check_bits
from cosim.train.layers import Conv2D, Flatten, WeightLayer, softmax_xent
from cosim.train.network import Network, build_network, check_architecture
from cosim.train.optim import OPTIMIZERS, cosine_lr, make_optimizer
from cosim.train.scheme import SCHEMES, Scheme
from cosim.train.unipolar import (
    add_unipolar_penalty,
    penalty_strength,
    phases,
    project_unipolar,
    search_unipolar,
    transition,
)

CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (the seed included).

    Parameters
    ----------
    model
        Architecture: ``mlp``, ``lenet5`` or ``cnn6``.
    scheme
        ``float``, ``per-layer`` or ``global``.
    w_bits, a_bits
        Weight and activation precision, 1..8 (ignored by ``float``).
    in_bits
        Input DAC precision, 1..8.
    b_bits
        Bias precision (sign included); ``None``: ``w_bits + 2``.
    epochs, batch_size
        Training length and mini-batch size.
    optimizer, lr, momentum
        ``adam`` or ``sgd`` (momentum); peak learning rate (cosine schedule, one epoch of
        warm-up capped at 200 steps).
    unipolar_fraction
        Fraction of hidden filters made unipolar, 0..1.
    hi, w_max
        Target (initial) activation and weight ranges.
    range_penalty, unipolar_penalty
        Base strengths of the global scheme's range loss and of the unipolar loss.
    control_fraction
        Fraction of the epochs during which global control updates the ranges.
    seed
        Seed of the generator (recorded; :func:`train` takes the generator itself).
    """

    model: str = "mlp"
    scheme: str = "global"
    w_bits: int = 4
    a_bits: int = 3
    in_bits: int = 8
    b_bits: int | None = None
    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 2e-3
    momentum: float = 0.9
    unipolar_fraction: float = 0.0
    hi: float = DEFAULT_HI
    w_max: float = DEFAULT_W_MAX
    range_penalty: float = 1.0
    unipolar_penalty: float = 1.0
    control_fraction: float = 0.6
    seed: int = 0

    def __post_init__(self) -> None:
        check_architecture(self.model)
        if self.scheme not in SCHEMES:
            raise CosimError(f"unknown scheme {self.scheme!r}: choose one of {', '.join(SCHEMES)}")
        if self.optimizer not in OPTIMIZERS:
            raise CosimError(
                f"unknown optimizer {self.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}"
            )
        _check_bits(self.w_bits, "--w-bits")
        _check_bits(self.a_bits, "--a-bits")
        _check_bits(self.in_bits, "--in-bits")
        if self.b_bits is not None:
            _check_bits(self.b_bits, "--b-bits", 2, 16)
        if not 0.0 <= self.unipolar_fraction <= 1.0:
            raise GridError(f"--unipolar-fraction {self.unipolar_fraction} must lie in 0..1")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise CosimError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("lr", "hi", "w_max"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v > 0):
                raise CosimError(f"{name} must be a positive number, got {v}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainOutcome:
    """What :func:`train` returns: the exported model, the network, metrics and history."""

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
    """The deployed :class:`~cosim.model.Model` of a trained network."""
    scheme.apply(masks)
    shape = dataset.preprocessing.input_shape
    layers: list[mf.Layer] = []
    wi = 0
    n_weight = len(net.weight_layers)
    for lay, s_in, s_out in zip(net.layers, net.shapes, net.shapes[1:], strict=False):
        ins = _external(s_in)
        outs = _external(s_out)
        if isinstance(lay, WeightLayer):
            role = "hidden" if wi < n_weight - 1 else "head"
            uni = masks[wi] if wi < len(masks) else np.zeros(lay.n_out, dtype=bool)
            kw: dict[str, Any] = {}
            wshape: tuple[int, ...] = (lay.n_out, lay.fan_in)
            if isinstance(lay, Conv2D):
                kw = {"kernel": lay.kernel, "stride": lay.stride, "padding": lay.padding}
                wshape = (lay.n_out, lay.in_ch, lay.kernel, lay.kernel)
            if scheme.quantized:
                w_g, x_g, y_g, b_g = scheme.grids(wi)
                n_w = w_g.levels(lay.params["W"], uni).reshape(wshape)
                n_b = b_g.levels(lay.params["b"])
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
                layers.append(
                    mf.WeightLayer(
                        lay.kind,
                        role,
                        ins,
                        outs,
                        uni.copy(),
                        **kw,
                        w=lay.params["W"].reshape(wshape).copy(),
                        b=lay.params["b"].copy(),
                    )
                )
            wi += 1
        elif isinstance(lay, Flatten):
            layers.append(mf.FlattenLayer(ins, outs))
        elif lay.kind in ("avgpool2d", "maxpool2d"):
            layers.append(mf.PoolLayer(lay.kind, lay.size, ins, outs))  # type: ignore[attr-defined]
        # activation quantizers are part of their hidden weight layer (its out_grid)
    del shape
    return mf.Model(
        scheme.name,
        net.arch,
        tuple(layers),
        dataset.preprocessing,
        scheme.hi_target,
        dataset.n_classes,
        info or {},
    )


def _external(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else tuple(shape)


# ---------------------------------------------------------------------------- checkpoints
def _param_dict(net: Network) -> dict[str, np.ndarray]:
    return {
        f"L{i}.{k}": v for i, lay in enumerate(net.weight_layers) for k, v in lay.params.items()
    }


def save_checkpoint(
    path: Path,
    cfg: TrainConfig,
    dataset: Dataset,
    net: Network,
    opt: Any,
    scheme: Scheme,
    masks: list[np.ndarray],
    rng: np.random.Generator,
    state: dict[str, Any],
) -> None:
    """Write the full training state after an epoch (atomic)."""
    arrays = {"p." + k: v for k, v in _param_dict(net).items()}
    arrays.update({"o." + k: np.asarray(v) for k, v in opt.state.items()})
    arrays.update({f"m.{i}": m for i, m in enumerate(masks)})
    meta = {
        "checkpoint_version": CHECKPOINT_VERSION,
        "config": cfg.to_dict(),
        "dataset": dataset.name,
        "scheme_state": scheme.state(),
        "rng_state": rng.bit_generator.state,
        "state": state,
    }
    arrays["meta"] = np.array(dumps_json(meta))
    save_npz_atomic(path, **arrays)


def load_checkpoint(path: Path, cfg: TrainConfig, dataset: Dataset) -> tuple[dict, dict]:
    """Arrays and metadata of a checkpoint, checked to belong to this run.

    The run's options must equal the checkpoint's, except the learning rate: a run that
    diverged is resumed from its last good epoch with a smaller ``--lr``.
    """
    arrays = mf.read_npz(path, what="checkpoint")
    corrupt = f"checkpoint {path} is corrupt; delete it and train without --resume"
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (KeyError, ValueError, RecursionError) as exc:
        raise ModelFileError(f"checkpoint {path} is corrupt (no metadata); delete it") from exc
    if not isinstance(meta, dict):
        raise ModelFileError(corrupt)
    if meta.get("checkpoint_version") != CHECKPOINT_VERSION:
        raise ModelFileError(
            f"checkpoint {path} has version {meta.get('checkpoint_version')!r}, this cosim "
            f"writes {CHECKPOINT_VERSION}; delete it and train without --resume"
        )
    mine, theirs = cfg.to_dict(), meta.get("config")
    if not isinstance(theirs, dict) or not isinstance(meta.get("state"), dict):
        raise ModelFileError(corrupt)
    mine.pop("lr")
    theirs = {k: v for k, v in theirs.items() if k != "lr"}
    if theirs != mine or meta.get("dataset") != dataset.name:
        raise ModelFileError(
            f"checkpoint {path} belongs to a different run (other options or dataset); "
            "rerun with the same options, or delete it and train without --resume"
        )
    return arrays, meta


def _restore(
    path: Path,
    arrays: dict[str, np.ndarray],
    meta: dict[str, Any],
    net: Network,
    opt: Any,
    scheme: Scheme,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], int, bool, list[dict[str, Any]]]:
    """Load a checkpoint's state into the run; a malformed one is a ModelFileError."""
    try:
        for k, v in _param_dict(net).items():
            a = arrays["p." + k]
            if a.shape != v.shape:
                raise ValueError(f"parameter {k} has shape {a.shape}, expected {v.shape}")
            v[...] = a
        params = _param_dict(net)
        opt.state = {k[2:]: v.copy() for k, v in arrays.items() if k.startswith("o.")}
        for k, v in opt.state.items():  # Adam: "t", "m.<param>", "v.<param>"; SGD: "<param>"
            name = k[2:] if k[:2] in ("m.", "v.") else k
            if name in params and v.shape != params[name].shape:
                raise ValueError(f"optimizer state {k} has shape {v.shape}")
        masks = [arrays[f"m.{i}"].astype(bool) for i in range(len(net.hidden))]
        for m, lay in zip(masks, net.hidden, strict=True):
            if m.shape != (lay.n_out,):
                raise ValueError("a unipolar mask has the wrong shape")
        scheme.load_state(meta["scheme_state"])
        rng.bit_generator.state = meta["rng_state"]
        state = meta["state"]
        epoch, searched, history = int(state["epoch"]), bool(state["searched"]), state["history"]
        if not isinstance(history, list) or not 0 <= epoch == len(history):
            raise ValueError("its history does not match its epoch")
    except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
        raise ModelFileError(
            f"checkpoint {path} is corrupt ({exc}); delete it and train without --resume"
        ) from exc
    return masks, epoch, searched, list(history)


def _nonfinite(net: Network, scheme: Scheme) -> str | None:
    """The name of the first parameter or range holding NaN/inf, or None."""
    for i, lay in enumerate(net.weight_layers):
        for k, v in lay.params.items():
            if not np.all(np.isfinite(v)):
                return f"the parameters {k} of weight layer {i + 1}"
    for name in ("w_max", "hi_x", "hi_y"):
        if not np.all(np.isfinite(getattr(scheme, name))):
            return f"the range {name}"
    return None


def _diverged(
    cfg: TrainConfig,
    epoch: int,
    what: str,
    ckpt: Path | None,
    good_epoch: int | None,
) -> TrainingDivergedError:
    """The one-line error of a diverged run: where, what, and how to go on."""
    if ckpt is None:
        kept = "no checkpoint was written"
    elif good_epoch is None or good_epoch == 0:
        kept = "no epoch finished, so there is no checkpoint to resume from"
    else:
        kept = (
            f"the checkpoint of epoch {good_epoch} is kept at {ckpt}: rerun with a smaller "
            "--lr and --resume to continue from it"
        )
    return TrainingDivergedError(
        f"training diverged in epoch {epoch + 1}/{cfg.epochs}: {what}; the learning rate "
        f"(--lr {cfg.lr:g}) is most likely too large: retry with a smaller one (10x smaller, "
        f"or the default); no model was written, {kept}"
    )


# ------------------------------------------------------------------------------ training
def train(
    cfg: TrainConfig,
    dataset: Dataset,
    rng: np.random.Generator,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    blas_threads: int = 1,
) -> TrainOutcome:
    """Train ``cfg`` on ``dataset``; see the module docstring.

    Parameters
    ----------
    cfg
        The run's configuration.
    dataset
        Training and test data.
    rng
        The only source of randomness (weights, shuffling, unipolar calibration samples).
    checkpoint
        Where to write a checkpoint after every epoch (None: no checkpoints).
    resume
        Continue from ``checkpoint`` if it exists.
    on_epoch
        Called with each epoch's history record.
    blas_threads
        BLAS threads while training (default 1: the small GEMMs of these networks are
        fastest single-threaded, and a fixed count keeps float sums reproducible).

    Raises
    ------
    TrainingDivergedError
        When the loss of a step, or a parameter, range or the test loss after an epoch, is
        NaN/inf. The checkpoint keeps the last finite epoch; nothing else is written.
    ModelFileError
        When resuming from a checkpoint of another run, or a corrupt one.
    """
    from threadpoolctl import threadpool_limits

    # overflow/NaN warnings would only repeat, step after step, what the divergence check
    # reports once as a TrainingDivergedError
    with (
        threadpool_limits(limits=max(1, blas_threads), user_api="blas"),
        np.errstate(over="ignore", invalid="ignore"),
    ):
        return _train(cfg, dataset, rng, checkpoint, resume, on_epoch)


def _train(
    cfg: TrainConfig,
    dataset: Dataset,
    rng: np.random.Generator,
    checkpoint: str | Path | None,
    resume: bool,
    on_epoch: Callable[[dict[str, Any]], None] | None,
) -> TrainOutcome:
    t_start = time.perf_counter()
    net = build_network(cfg.model, dataset.preprocessing.input_shape, dataset.n_classes, rng)
    scheme = Scheme(
        cfg.scheme, net, cfg.w_bits, cfg.a_bits, cfg.in_bits, cfg.b_bits, cfg.hi, cfg.w_max
    )
    if scheme.quantized:  # start inside the weight range: He std capped at w_max / 2
        for lay in net.weight_layers:
            std = float(np.sqrt(2.0 / lay.fan_in))
            lay.params["W"] *= np.float32(min(1.0, 0.5 * cfg.w_max / std))
    if dataset.preprocessing.in_bits != cfg.in_bits:
        from dataclasses import replace

        dataset = replace(
            dataset, preprocessing=replace(dataset.preprocessing, in_bits=cfg.in_bits)
        )
    opt = make_optimizer(cfg.optimizer, cfg.lr, cfg.momentum)
    masks = [np.zeros(lay.n_out, dtype=bool) for lay in net.hidden]
    history: list[dict[str, Any]] = []
    start_epoch, searched = 0, False
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.exists() and not ckpt.is_file():
        raise ModelFileError(
            f"checkpoint path {ckpt} is not a regular file (a directory?); move it away or "
            "choose another --out"
        )
    good_epoch: int | None = None  # the epoch the checkpoint on disk holds, for this run
    if resume and ckpt is not None and ckpt.exists():
        arrays, meta = load_checkpoint(ckpt, cfg, dataset)
        masks, start_epoch, searched, history = _restore(ckpt, arrays, meta, net, opt, scheme, rng)
        good_epoch = start_epoch

    n = len(dataset.x_train)
    steps = math.ceil(n / cfg.batch_size)
    total = steps * cfg.epochs
    warmup = min(steps, 200)
    control_epochs = math.ceil(cfg.control_fraction * cfg.epochs)
    control_every = max(1, steps // 25)
    e_search, e_switch = phases(cfg.epochs, cfg.unipolar_fraction)
    params = _param_dict(net)
    w_norm = cfg.w_max

    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        lam_r = cfg.range_penalty * (epoch + 1) / cfg.epochs
        lam_u = penalty_strength(cfg.unipolar_penalty, epoch, e_search)
        scheme.set_act_penalty(lam_r)
        if cfg.unipolar_fraction > 0 and epoch >= e_search and not searched:
            scheme.apply(None)
            idx = rng.choice(n, size=min(n, 512), replace=False)
            masks = search_unipolar(
                net,
                cfg.unipolar_fraction,
                batch_inputs(dataset, dataset.x_train[idx], scheme),
                dataset.y_train[idx],
            )
            searched = True
        uni_on = cfg.unipolar_fraction > 0 and epoch >= e_search
        uni_final = uni_on and epoch >= e_switch
        if uni_final:
            project_unipolar(net, masks)
        scheme.apply(masks if uni_on else None, transition(epoch, 0, steps, e_search, e_switch))
        perm = rng.permutation(n)
        loss_sum, correct, pen_sum = 0.0, 0, 0.0
        with Bar(steps, desc=f"epoch {epoch + 1}/{cfg.epochs}") as bar:
            for s in range(steps):
                gstep = epoch * steps + s
                lr = cosine_lr(cfg.lr, gstep, total, warmup)
                idx = perm[s * cfg.batch_size : (s + 1) * cfg.batch_size]
                x = batch_inputs(dataset, dataset.x_train[idx], scheme)
                y = dataset.y_train[idx]
                logits = net.forward(x, train=True)
                loss, g = softmax_xent(logits, y)
                if not math.isfinite(loss):
                    what = f"the loss became {loss} in step {s + 1} of {steps}"
                    raise _diverged(cfg, epoch, what, ckpt, good_epoch)
                net.backward(g)
                pen = scheme.range_penalty(lam_r)
                if cfg.unipolar_fraction > 0:
                    pen += add_unipolar_penalty(net, masks, lam_u, w_norm)
                if not math.isfinite(pen):
                    what = f"the penalty terms of the loss became {pen} in step {s + 1} of {steps}"
                    raise _diverged(cfg, epoch, what, ckpt, good_epoch)
                grads = {
                    f"L{i}.{k}": v
                    for i, lay in enumerate(net.weight_layers)
                    for k, v in lay.grads.items()
                }
                opt.step(params, grads, lr)
                if uni_final:
                    project_unipolar(net, masks)
                mix = transition(epoch, s + 1, steps, e_search, e_switch)
                if scheme.quantized and epoch < control_epochs and s % control_every == 0:
                    scheme.control(masks if uni_on else None)
                    scheme.apply(masks if uni_on else None, mix)
                elif uni_on and not uni_final:
                    for lay in net.hidden:
                        lay.q.unipolar_mix = mix
                loss_sum += loss * len(y)
                pen_sum += pen * len(y)
                correct += int(np.sum(np.argmax(logits, axis=1) == y))
                bar.update(1)
                if s % 10 == 0:
                    bar.set_postfix(
                        loss=f"{loss:.3f}", acc=f"{correct / ((s * cfg.batch_size) + len(y)):.3f}"
                    )
        train_time = time.perf_counter() - t0
        bad = _nonfinite(net, scheme)
        if bad is not None:
            raise _diverged(cfg, epoch, f"{bad} became NaN/inf", ckpt, good_epoch)
        test_acc, test_loss = evaluate(net, dataset, scheme, dataset.x_test, dataset.y_test)
        if not math.isfinite(test_loss):
            raise _diverged(cfg, epoch, f"the test loss became {test_loss}", ckpt, good_epoch)
        rec = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / n,
            "train_accuracy": correct / n,
            "penalty": pen_sum / n,
            "test_loss": test_loss,
            "test_accuracy": test_acc,
            "lr": lr,
            "w_max": scheme.w_max.tolist(),
            "hi_x": scheme.hi_x.tolist(),
            "hi_y": scheme.hi_y.tolist(),
            "unipolar_filters": int(sum(m.sum() for m in masks)),
            "train_time_s": train_time,
            "time_s": time.perf_counter() - t0,
        }
        history.append(rec)
        if ckpt is not None:
            state = {"epoch": epoch + 1, "searched": searched, "history": history}
            save_checkpoint(ckpt, cfg, dataset, net, opt, scheme, masks, rng, state)
            good_epoch = epoch + 1
        if on_epoch is not None:
            on_epoch(rec)

    if cfg.unipolar_fraction > 0:
        project_unipolar(net, masks)
    return _finish(cfg, dataset, net, scheme, masks, history, time.perf_counter() - t_start)


def _finish(
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
        "grids": _grids_summary(model),
        "n_train": len(dataset.x_train),
        "n_test": len(dataset.x_test),
        "wall_time_s": wall,
        "config": cfg.to_dict(),
        "history": history,
    }
    model.info["test_accuracy"] = acc
    return TrainOutcome(model, net, scheme, masks, metrics, history)


def _grids_summary(model: mf.Model) -> list[dict[str, Any]]:
    out = []
    for lay in model.weight_layers:
        d: dict[str, Any] = {"kind": lay.kind, "role": lay.role}
        if lay.quantized:
            d["w_grid"] = lay.w_grid.to_dict()  # type: ignore[union-attr]
            d["in_grid"] = lay.in_grid.to_dict()  # type: ignore[union-attr]
            d["out_grid"] = None if lay.out_grid is None else lay.out_grid.to_dict()
            d["b_grid"] = lay.b_grid.to_dict()  # type: ignore[union-attr]
        d["unipolar_filters"] = int(lay.unipolar.sum())
        out.append(d)
    return out
