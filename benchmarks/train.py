"""Speed of ``cosim train``: one LeNet-5 epoch over the 60k Fashion-MNIST training images.

Prints the time of one training epoch (mini-batches of 128, quantized forward with STE,
backward, Adam, global control; test evaluation excluded) and its ratio to a *plain* float32
NumPy forward + backward + SGD step of the same network at the same batch size, written
below without any of cosim's machinery, timed in the same run on the same data.

    nice python benchmarks/train.py [--scheme global] [--blas-threads 1] [--json PATH]

Target: <= 60 s per epoch on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from threadpoolctl import threadpool_limits

from cosim.datasets import load_dataset
from cosim.fileio import write_json_atomic
from cosim.train.trainer import TrainConfig, train


# --------------------------------------------------------------- plain float32 LeNet-5
def _conv(x, w):
    """NHWC valid convolution by im2col; returns output and the columns."""
    k = 5
    n, h, wd, c = x.shape
    cols = sliding_window_view(x, (k, k), axis=(1, 2)).reshape(-1, c * k * k)
    return (cols @ w.T).reshape(n, h - k + 1, wd - k + 1, -1), cols


def _col2im(dcols, shape):
    n, h, w, c = shape
    k = 5
    ho, wo = h - k + 1, w - k + 1
    d = dcols.reshape(n, ho, wo, c, k, k)
    dx = np.zeros(shape, np.float32)
    for i in range(k):
        for j in range(k):
            dx[:, i : i + ho, j : j + wo, :] += d[..., i, j]
    return dx


def _pool(x):
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _unpool(d):
    return np.repeat(np.repeat(d, 2, axis=1), 2, axis=2) * np.float32(0.25)


def plain_epoch(x_all, y_all, batch, rng):
    """One epoch of plain float32 LeNet-5 training (forward, backward, SGD step)."""
    shapes = [(6, 25), (16, 150), (120, 256), (84, 120), (10, 84)]
    W = [(rng.standard_normal(s) * np.sqrt(2 / s[1])).astype(np.float32) for s in shapes]
    B = [np.zeros(s[0], np.float32) for s in shapes]
    lr = np.float32(0.01)
    for i in range(0, len(x_all), batch):
        x = x_all[i : i + batch]
        y = y_all[i : i + batch]
        n = len(y)
        z1, c1 = _conv(x, W[0])
        z1 += B[0]
        a1 = np.maximum(z1, 0)
        p1 = _pool(a1)
        z2, c2 = _conv(p1, W[1])
        z2 += B[1]
        a2 = np.maximum(z2, 0)
        p2 = _pool(a2)
        f = p2.transpose(0, 3, 1, 2).reshape(n, -1)
        z3 = f @ W[2].T + B[2]
        a3 = np.maximum(z3, 0)
        z4 = a3 @ W[3].T + B[3]
        a4 = np.maximum(z4, 0)
        z5 = a4 @ W[4].T + B[4]
        z5 -= z5.max(axis=1, keepdims=True)
        p = np.exp(z5)
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(n), y] -= 1
        d5 = p / n
        g = [None] * 5
        g[4] = (d5.T @ a4, d5.sum(0))
        d4 = (d5 @ W[4]) * (z4 > 0)
        g[3] = (d4.T @ a3, d4.sum(0))
        d3 = (d4 @ W[3]) * (z3 > 0)
        g[2] = (d3.T @ f, d3.sum(0))
        df = (d3 @ W[2]).reshape(n, 16, 4, 4).transpose(0, 2, 3, 1)
        d2 = _unpool(df) * (z2 > 0)
        d2m = d2.reshape(-1, 16)
        g[1] = (d2m.T @ c2, d2m.sum(0))
        dp1 = _col2im(d2m @ W[1], p1.shape)
        d1 = (_unpool(dp1) * (z1 > 0)).reshape(-1, 6)
        g[0] = (d1.T @ c1, d1.sum(0))
        for k in range(5):
            W[k] -= lr * g[k][0].astype(np.float32)
            B[k] -= lr * g[k][1].astype(np.float32)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scheme", default="global")
    ap.add_argument("--w-bits", type=int, default=4)
    ap.add_argument("--a-bits", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--blas-threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    ds = load_dataset("fashion-mnist")
    cfg = TrainConfig(
        model="lenet5",
        scheme=args.scheme,
        w_bits=args.w_bits,
        a_bits=args.a_bits,
        epochs=1,
        batch_size=args.batch_size,
    )
    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        out = train(cfg, ds, np.random.default_rng(0))
        cosim_s = out.history[0]["train_time_s"]
        x = (ds.x_train.astype(np.float32) / 128.0).transpose(0, 2, 3, 1)  # NHWC, [0, 2)
        t0 = time.perf_counter()
        plain_epoch(x, ds.y_train, args.batch_size, np.random.default_rng(0))
        plain_s = time.perf_counter() - t0
    res = {
        "what": "one LeNet-5 training epoch over 60000 Fashion-MNIST images",
        "scheme": args.scheme,
        "w_bits": args.w_bits,
        "a_bits": args.a_bits,
        "batch_size": args.batch_size,
        "blas_threads": args.blas_threads,
        "cosim_epoch_s": cosim_s,
        "plain_float32_epoch_s": plain_s,
        "ratio": cosim_s / plain_s,
        "test_accuracy_after_1_epoch": out.metrics["test_accuracy"],
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "numpy": np.__version__,
    }
    print(
        f"cosim train, LeNet-5 {args.scheme} W{args.w_bits}A{args.a_bits}, batch {args.batch_size}:"
    )
    print(f"  one epoch over 60000 images : {cosim_s:7.1f} s   (target <= 60 s on 2 cores)")
    print(f"  plain float32 NumPy epoch   : {plain_s:7.1f} s")
    print(f"  ratio                       : {res['ratio']:7.2f}x")
    if args.json:
        write_json_atomic(args.json, res)
    return res


if __name__ == "__main__":
    main()
