"""Optimizers (SGD with momentum, Adam) and the learning-rate schedule.

Optimizers update the full-precision shadow parameters in place from the gradients the
layers computed with their quantized values (straight-through). Their state is a dict of
arrays, saved in checkpoints so that a resumed run continues exactly.

Examples
--------
>>> p = {"w": np.ones(3, dtype=np.float32)}
>>> opt = Adam(lr=0.1)
>>> opt.step(p, {"w": np.ones(3, dtype=np.float32)}, lr=0.1)
>>> [round(float(v), 3) for v in p["w"]]
[0.9, 0.9, 0.9]
"""

from __future__ import annotations

import math

import numpy as np

OPTIMIZERS = ("adam", "sgd")


class SGD:
    """SGD with (heavy-ball) momentum: ``v = m v + g; p -= lr v``."""

    def __init__(self, lr: float, momentum: float = 0.9) -> None:
        self.lr = lr
        self.momentum = momentum
        self.state: dict[str, np.ndarray] = {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float) -> None:
        for k, p in params.items():
            v = self.state.get(k)
            if v is None:
                v = self.state[k] = np.zeros_like(p)
            v *= self.momentum
            v += grads[k]
            p -= np.float32(lr) * v


class Adam:
    """Adam (Kingma & Ba) with bias correction."""

    def __init__(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr = lr
        self.b1, self.b2, self.eps = beta1, beta2, eps
        self.state: dict[str, np.ndarray] = {"t": np.zeros((), dtype=np.int64)}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float) -> None:
        self.state["t"] = self.state["t"] + 1
        t = int(self.state["t"])
        c1 = 1 - self.b1**t
        c2 = 1 - self.b2**t
        a = np.float32(lr * math.sqrt(c2) / c1)
        for k, p in params.items():
            m = self.state.get("m." + k)
            if m is None:
                m = self.state["m." + k] = np.zeros_like(p)
                self.state["v." + k] = np.zeros_like(p)
            v = self.state["v." + k]
            g = grads[k]
            m *= np.float32(self.b1)
            m += np.float32(1 - self.b1) * g
            v *= np.float32(self.b2)
            v += np.float32(1 - self.b2) * (g * g)
            p -= a * m / (np.sqrt(v) + np.float32(self.eps))


def make_optimizer(name: str, lr: float, momentum: float = 0.9) -> SGD | Adam:
    """``"adam"`` or ``"sgd"`` (with momentum)."""
    if name == "adam":
        return Adam(lr)
    if name == "sgd":
        return SGD(lr, momentum)
    raise ValueError(f"unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")


def cosine_lr(lr0: float, step: int, total: int, warmup: int = 0, floor: float = 0.01) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay from ``lr0`` to ``floor * lr0``.

    Examples
    --------
    >>> cosine_lr(1.0, 0, 100), round(cosine_lr(1.0, 100, 100), 3)
    (1.0, 0.01)
    """
    if warmup and step < warmup:
        return lr0 * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr0 * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))
