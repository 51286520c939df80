"""The training loss."""

from __future__ import annotations

import numpy as np


def softmax_xent(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy and its gradient with respect to the logits."""
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    ez = np.exp(z)
    s = ez.sum(axis=1, keepdims=True)
    logp = z - np.log(s)
    n = len(y)
    loss = float(-logp[np.arange(n), y].mean())
    g = ez / s
    g[np.arange(n), y] -= 1.0
    g /= n
    return loss, g.astype(np.float32)
