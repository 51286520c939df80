"""The training loop: mini-batches, schedules, the unipolar phases, divergence checks.

:func:`train` runs a :class:`~cosim.train.config.TrainConfig` on a
:class:`~cosim.datasets.Dataset` with a ``np.random.Generator`` (weights, shuffling and the
unipolar search draw from it, nothing else is random). After every epoch it can write a
checkpoint (:mod:`cosim.train.checkpoint`), so a resumed run continues exactly where it
stopped and ends with the same model as an uninterrupted one; at the end it exports and
measures the model (:mod:`cosim.train.export`).

A run that diverges (a non-finite loss in any step, or non-finite parameters, ranges or test
loss at the end of an epoch) stops at once with :class:`~cosim.errors.TrainingDivergedError`:
the checkpoint of the last finite epoch stays as it was, and ``--resume`` with a smaller
learning rate continues from it (the learning rate is the one option a resumed run may
change).

The names callers imported from this module before it was split (:class:`TrainConfig`,
:class:`TrainOutcome`, :func:`batch_inputs`, :func:`evaluate`, :func:`export_model`,
:func:`save_checkpoint`, :func:`load_checkpoint`) stay importable from here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cosim.datasets import Dataset
from cosim.errors import ModelFileError, TrainingDivergedError
from cosim.progress import Bar
from cosim.train.checkpoint import (
    CHECKPOINT_VERSION,
    load_checkpoint,
    param_dict,
    restore,
    save_checkpoint,
)
from cosim.train.config import TrainConfig
from cosim.train.export import TrainOutcome, batch_inputs, evaluate, export_model, finish
from cosim.train.layers import softmax_xent
from cosim.train.network import Network, build_network
from cosim.train.optim import cosine_lr, make_optimizer
from cosim.train.scheme import Scheme
from cosim.train.unipolar import (
    add_unipolar_penalty,
    penalty_strength,
    phases,
    project_unipolar,
    search_unipolar,
    transition,
)

__all__ = [
    "CHECKPOINT_VERSION",
    "TrainConfig",
    "TrainOutcome",
    "batch_inputs",
    "evaluate",
    "export_model",
    "load_checkpoint",
    "save_checkpoint",
    "train",
]


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
    init: tuple[Network, dict[str, Any]] | None = None,
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
    init
        Start from a given network and scheme ranges (:meth:`Scheme.state`) instead of a
        fresh ``cfg.model``: fine-tuning an imported network (``cosim import --finetune``;
        ``cfg.model`` is then ``"imported"``). The network is trained in place.

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
        return _train(cfg, dataset, rng, checkpoint, resume, on_epoch, init)


def _train(
    cfg: TrainConfig,
    dataset: Dataset,
    rng: np.random.Generator,
    checkpoint: str | Path | None,
    resume: bool,
    on_epoch: Callable[[dict[str, Any]], None] | None,
    init: tuple[Network, dict[str, Any]] | None = None,
) -> TrainOutcome:
    t_start = time.perf_counter()
    if init is not None:
        net = init[0]
    else:
        net = build_network(cfg.model, dataset.preprocessing.input_shape, dataset.n_classes, rng)
    scheme = Scheme(
        cfg.scheme, net, cfg.w_bits, cfg.a_bits, cfg.in_bits, cfg.b_bits, cfg.hi, cfg.w_max
    )
    if init is not None:
        scheme.load_state(init[1])
    elif scheme.quantized:  # start inside the weight range: He std capped at w_max / 2
        for lay in net.weight_layers:
            std = float(np.sqrt(2.0 / lay.fan_in))
            lay.params["W"] *= np.float32(min(1.0, 0.5 * cfg.w_max / std))
    if dataset.preprocessing.in_bits != cfg.in_bits:
        from dataclasses import replace

        dataset = replace(
            dataset, preprocessing=replace(dataset.preprocessing, in_bits=cfg.in_bits)
        )
    opt = make_optimizer(cfg.optimizer, cfg.lr, cfg.momentum)
    scheme.set_act_l1(cfg.act_l1)
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
        masks, start_epoch, searched, history = restore(ckpt, arrays, meta, net, opt, scheme, rng)
        good_epoch = start_epoch

    n = len(dataset.x_train)
    steps = math.ceil(n / cfg.batch_size)
    total = steps * cfg.epochs
    warmup = min(steps, 200)
    control_epochs = math.ceil(cfg.control_fraction * cfg.epochs)
    control_every = max(1, steps // 25)
    e_search, e_switch = phases(cfg.epochs, cfg.unipolar_fraction)
    params = param_dict(net)
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
                scope=cfg.unipolar_scope,
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
                if cfg.act_l1 > 0:
                    pen += sum(a.last_l1 for a in net.acts)
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
                scheme.clip_weights()
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
    return finish(cfg, dataset, net, scheme, masks, history, time.perf_counter() - t_start)
