"""Engine speed and memory: LeNet-5 over the 10k Fashion-MNIST test images.

Measured in one run, on the same machine state:

* ``t_float``: a plain float32 NumPy forward pass of the same network (im2col + matmul,
  ReLU, average pooling), batch 1000, with single-threaded BLAS like the engine;
* ``t_engine``: ``cosim evaluate``'s engine with every non-ideality on, one chip instance
  (chip programming and the crossbar transfers included);
* each timed ``--repeat`` times (5), alternately, the fastest of each kept (other work on a
  shared machine only ever slows a run down);
* the same on ``--threads`` threads (the machine's cores): the engine's threads over sample
  batches against the float forward with that many BLAS threads;
* the ratio ``t_engine / t_float`` (target ≤ 3), images per second, peak resident memory
  (target ≤ 2 GB), and the speed-up per MAC operation over simulating the MAC unit in
  ngspice (the analog MAC unit's DC sweep per input vector plus one SAR conversion);
* a micro case, **program 784->128**: programming one chip's 784->128 dense layer (52 tiles
  of the default 64x64 card: device draws, the tiles' nodal IR-drop solves, the periphery
  instances; :meth:`Engine.chip` on that layer alone), the fastest of ``--repeat``, against
  a 1000-sample evaluation of that layer (its programming plus its analog pass over 1000
  Fashion-MNIST images), timed alternately (target: programming at most 100 ms). The MLP
  (784->128->64->10, global W4A3) is trained for one epoch on 2000 images and cached in
  ``--work``: the time depends on the layer's shape, not on how well it is trained.
  Measured (``--micro-only --library tests/data/library-quick``, shared 2-core machine, one
  BLAS thread): 0.40 s with one row-wise Cholesky-and-inverse elimination per tile; 0.12 s
  with the layer's tiles solved as one stack (:func:`cosim.nodal.transfer_blocks_stack`):
  ~0.09 s stacked solve (~0.035 s of it the 64 dense 65×65 products, ~0.025 s forming the
  rows' wordline couplings, ~0.01 s the closed-form wordline inverses, ~0.008 s the final
  solves), ~0.035 s device draws, generators and the 208 ADC instances. With ``--threads
  2`` the stacked solves are split over two threads (``Engine.threads``, which ``cosim
  evaluate --threads`` sets; the result does not depend on it): 0.098 s against 0.126 s
  single-threaded, measured alternately in one run with another job on one of the cores;
  0.088 s against 0.125 s in the committed ``benchmarks/results/engine.json`` (quiet machine).

Usage::

    python benchmarks/engine.py --model MODEL.npz --library LIB [--json OUT]

Without ``--model`` a LeNet-5 (global W4A3) is trained for one epoch first; without
``--library`` ``cosim characterize --quick`` builds one (both cached in ``--work``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def float_forward_lenet(model, x01: np.ndarray, batch: int = 1000) -> np.ndarray:
    """Plain float32 NumPy forward of the model's architecture (real-valued weights)."""
    from numpy.lib.stride_tricks import sliding_window_view

    from cosim.model import FlattenLayer, PoolLayer, WeightLayer

    layers = []
    for lay in model.layers:
        if isinstance(lay, WeightLayer):
            w = lay.weights().astype(np.float32)
            layers.append(
                ("w", lay, w.reshape(w.shape[0], -1).T.copy(), lay.biases().astype(np.float32))
            )
        else:
            layers.append(("p" if isinstance(lay, PoolLayer) else "f", lay, None, None))
    out = []
    for b0 in range(0, x01.shape[0], batch):
        h = x01[b0 : b0 + batch].astype(np.float32) * np.float32(model.input_hi)
        for kind, lay, w, b in layers:
            if kind == "w":
                if lay.kind == "conv2d":
                    k = lay.kernel
                    win = sliding_window_view(h, (k, k), axis=(2, 3))
                    n, c, ho, wo = win.shape[:4]
                    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * k * k)
                    h = (cols @ w + b).reshape(n, ho, wo, -1).transpose(0, 3, 1, 2)
                else:
                    h = h.reshape(h.shape[0], -1) @ w + b
                if lay.is_hidden:
                    np.maximum(h, 0, out=h)
            elif kind == "p":
                n, c, hh, ww = h.shape
                s = lay.size
                h = h.reshape(n, c, hh // s, s, ww // s, s).mean(axis=(3, 5))
            elif isinstance(lay, FlattenLayer):
                h = h.reshape(h.shape[0], -1)
        out.append(np.argmax(h, axis=1))
    return np.concatenate(out)


def ngspice_seconds_per_mac(library, model, x, jobs: int) -> dict:
    """Time of one MAC operation in ngspice: a tile's analog DC sweep plus its conversions."""
    from cosim.engine.config import EngineConfig
    from cosim.engine.verify import verify_spice

    # a fresh SPICE cache: a cached result would time a file read, not ngspice
    with tempfile.TemporaryDirectory(prefix="cosim-bench-spice-") as cache:
        t0 = time.perf_counter()
        v = verify_spice(model, library, x, EngineConfig(), 8, jobs=1, cache_dir=cache, seed=1)
        wall = time.perf_counter() - t0
    return {
        "wall_s": wall,
        "operations": v["n_operations"],
        "s_per_op": wall / v["n_operations"],
        "identical_fraction": v["identical_fraction"],
    }


def program_784_128(library, work: Path, repeat: int, threads: int = 1) -> dict:
    """The micro case "program 784->128" (see the module docstring): seconds to program
    the layer (fastest of ``repeat``) and to evaluate it on 1000 samples, and their ratio;
    with ``threads`` > 1 also the programming on that many threads (``Engine.threads``, as
    ``cosim evaluate --threads`` sets it), timed alternately with the single thread."""
    from dataclasses import replace

    from threadpoolctl import threadpool_limits

    from cosim.datasets import load_dataset
    from cosim.engine.config import EngineConfig
    from cosim.engine.core import Engine
    from cosim.engine.energy import LayerStats
    from cosim.engine.readnoise import ReadNoise
    from cosim.model import WeightLayer, load_model, save_model
    from cosim.train.trainer import TrainConfig, train

    ds = load_dataset("fashion-mnist")
    path = work / "mlp-w4a3.npz"
    if not path.is_file():
        small = replace(ds, x_train=ds.x_train[:2000], y_train=ds.y_train[:2000])
        cfg = TrainConfig(model="mlp", scheme="global", w_bits=4, a_bits=3, epochs=1)
        save_model(train(cfg, small, np.random.default_rng(0)).model, path)
    model = load_model(path)
    i = next(j for j, lay in enumerate(model.layers) if isinstance(lay, WeightLayer))
    lay = model.layers[i]
    assert isinstance(lay, WeightLayer) and lay.n_w is not None
    eng = Engine(model, library, EngineConfig())
    lmap = next(m for m in eng.maps if m.index == i)
    assert lay.n_w.shape == (128, 784), lay.n_w.shape
    eng.maps = [lmap]  # Engine.chip programs this layer only
    # the layer's input codes for 1000 images (a flatten precedes it: a plain reshape)
    codes = model.preprocessing.codes(ds.x_test[:1000]).reshape(1000, -1)

    def evaluate_layer() -> None:
        (state,) = eng.chip(0)
        # Engine._hidden: the layer's pass as Engine.forward runs it (the other layers are
        # not programmed here)
        eng._hidden(i, lay, codes, state, ReadNoise(eng.cfg.seed, 0), LayerStats("bench"))

    t_prog, t_eval, t_prog_threads = math.inf, math.inf, math.inf
    with threadpool_limits(limits=1):
        eng.chip(0)  # warm-up: imports, LAPACK handles
        for _ in range(repeat):
            eng.threads = 1
            t = time.perf_counter()
            eng.chip(0)
            t_prog = min(t_prog, time.perf_counter() - t)
            t = time.perf_counter()
            evaluate_layer()
            t_eval = min(t_eval, time.perf_counter() - t)
            if threads > 1:
                eng.threads = threads
                t = time.perf_counter()
                eng.chip(0)
                t_prog_threads = min(t_prog_threads, time.perf_counter() - t)
    out = {
        "program_784_128_tiles": len(lmap.tiles),
        "program_784_128_s": t_prog,
        "evaluate_784_128_1000_samples_s": t_eval,
        "program_784_128_over_evaluate": t_prog / t_eval,
    }
    if threads > 1:
        out["program_784_128_threads"] = threads
        out["program_784_128_threads_s"] = t_prog_threads
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--library", type=Path, default=None)
    ap.add_argument("--work", type=Path, default=Path("bench-work"))
    ap.add_argument("--limit", type=int, default=None, help="fewer test images (smoke runs)")
    ap.add_argument("--no-spice", action="store_true", help="skip the ngspice comparison")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of each (the fastest)")
    ap.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="also time both on this many threads (engine --threads, BLAS threads for the "
        "float forward); 1: single-threaded only",
    )
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--micro-only", action="store_true", help="only the micro case (program 784->128)"
    )
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    cosim = [sys.executable, "-m", "cosim"]
    if args.library is None:
        args.library = args.work / "library"
        if not (args.library / "library.json").is_file():
            subprocess.run(
                [*cosim, "characterize", "--quick", "--out", str(args.library)], check=True
            )
    if args.micro_only:
        from cosim.library import load_library

        res = program_784_128(load_library(args.library), args.work, args.repeat, args.threads)
        _print_and_write(res, args.json)
        return 0
    if args.model is None:
        args.model = args.work / "lenet5-w4a3.npz"
        if not args.model.is_file():
            subprocess.run(
                [
                    *cosim,
                    "train",
                    "--dataset",
                    "fashion-mnist",
                    "--model",
                    "lenet5",
                    "--scheme",
                    "global",
                    "--w-bits",
                    "4",
                    "--a-bits",
                    "3",
                    "--epochs",
                    "1",
                    "--out",
                    str(args.model),
                ],
                check=True,
            )

    from cosim.datasets import load_dataset
    from cosim.engine.config import EngineConfig
    from cosim.engine.evaluate import evaluate
    from cosim.library import load_library
    from cosim.model import load_model

    model = load_model(args.model)
    library = load_library(args.library)
    ds = load_dataset("fashion-mnist")
    x, y = ds.x_test, ds.y_test
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    x01 = np.clip(model.preprocessing.unit(x), 0.0, 1.0).astype(np.float32)

    from threadpoolctl import threadpool_limits

    # the engine runs BLAS single-threaded (many small products; threads only contend on a
    # shared 2-core machine); the reference runs under the same setting. The two are timed
    # alternately, --repeat times each, and the fastest of each is kept: on a shared machine
    # a run is only ever slowed down by other work, never sped up
    t_float, t_engine, r = math.inf, math.inf, None
    with threadpool_limits(limits=1):
        float_forward_lenet(model, x01[:1000])  # warm-up
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(args.repeat):
        with threadpool_limits(limits=1):
            t = time.perf_counter()
            pf = float_forward_lenet(model, x01)
            t_float = min(t_float, time.perf_counter() - t)
        t = time.perf_counter()
        r = evaluate(model, library, x, y, EngineConfig(chips=1))
        t_engine = min(t_engine, time.perf_counter() - t)
    rss_peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert r is not None
    # every core: the engine's threads over batches against NumPy's own BLAS threads
    t_float_n, t_engine_n = math.inf, math.inf
    if args.threads > 1:
        for _ in range(args.repeat):
            with threadpool_limits(limits=args.threads):
                t = time.perf_counter()
                float_forward_lenet(model, x01)
                t_float_n = min(t_float_n, time.perf_counter() - t)
            t = time.perf_counter()
            rn = evaluate(model, library, x, y, EngineConfig(chips=1), threads=args.threads)
            t_engine_n = min(t_engine_n, time.perf_counter() - t)
            assert rn.accuracy_mean == r.accuracy_mean  # the threads change nothing
    macs = sum(lay.conversions_per_inference for lay in r.layers)
    res = {
        "images": int(x.shape[0]),
        "repeat": args.repeat,
        "t_float32_forward_s": t_float,
        "t_engine_s": t_engine,
        "ratio_engine_over_float": t_engine / t_float,
        "images_per_s": x.shape[0] / t_engine,
        "peak_rss_gb": rss_peak_kb / 1024**2,
        "rss_before_engine_gb": rss_before / 1024**2,
        "engine_accuracy": r.accuracy_mean,
        "float_accuracy": float(np.mean(pf == y)),
        "conversions_per_image": macs,
    }
    if args.threads > 1:
        res.update(
            {
                "threads": args.threads,
                "t_float32_forward_threads_s": t_float_n,
                "t_engine_threads_s": t_engine_n,
                "ratio_engine_over_float_threads": t_engine_n / t_float_n,
            }
        )
    if not args.no_spice:
        sp = ngspice_seconds_per_mac(library, model, x[:64], jobs=1)
        eng_per_op = t_engine / (x.shape[0] * macs)
        res["ngspice_s_per_mac_op"] = sp["s_per_op"]
        res["engine_s_per_mac_op"] = eng_per_op
        res["speedup_per_mac_op"] = sp["s_per_op"] / eng_per_op
    res.update(program_784_128(library, args.work, args.repeat, args.threads))
    _print_and_write(res, args.json)
    return 0


def _print_and_write(res: dict, path: Path | None) -> None:
    for k, v in res.items():
        print(f"{k:>32}: {v:.4g}" if isinstance(v, float) else f"{k:>32}: {v}")
    if path:
        path.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
