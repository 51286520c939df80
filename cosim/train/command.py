"""``cosim train``: train a network for NVM crossbars and write a model file.

Example::

    cosim train --dataset digits --model mlp --scheme global --w-bits 4 --a-bits 3 \\
        --out runs/mlp.npz --json runs/mlp.json

``configure`` only touches argparse; ``run`` imports NumPy and the trainer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cosim import argcheck as ac
from cosim.train.arguments import add_bit_widths, add_lr, add_seed, add_unipolar_fraction

#: The names of :data:`cosim.train.config.RECIPES` (kept here so ``configure`` imports no
#: NumPy; a test checks they agree).
RECIPE_NAMES = ("bao",)

#: Per-architecture defaults: epochs, batch size, learning rate.
DEFAULTS = {
    "mlp": (30, 64, 2e-3),
    "lenet5": (15, 128, 2e-3),
    "cnn6": (20, 64, 1e-3),
}


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``cosim train``'s arguments to ``parser``."""
    parser.add_argument(
        "--dataset",
        default="digits",
        help="digits (default, bundled), digits28 (a 28x28 stand-in for MNIST), "
        "fashion-mnist[:DIR], mnist:DIR, har:DIR, cifar10:DIR",
    )
    parser.add_argument(
        "--model",
        default="mlp",
        help="mlp (default), lenet5 or cnn6",
    )
    parser.add_argument(
        "--recipe",
        default=None,
        choices=sorted(RECIPE_NAMES),
        help="a paper's training conditions: bao (Bao et al. 2022: --scheme fixed, --optimizer "
        "sgd, --lr 0.01, --batch-size 200, weights clipped at +-0.25; unlike the paper, which "
        "states neither, SGD keeps momentum 0.9 and the cosine schedule); explicit options "
        "override it",
    )
    parser.add_argument(
        "--scheme",
        default=None,
        help="float, per-layer (standard STE), global (default: shared X/Y/W/B grids) or fixed "
        "(Bao et al.: inputs in [0, 1], activations clipped at --hi, weights at +-0.25)",
    )
    parser.add_argument(
        "--hi",
        type=ac.real(1e-3, 1e3),
        default=None,
        help="activation clip level in [0.001, 1000] (default 2; with --scheme fixed the hidden "
        "activations' range, with global the target of the shared range)",
    )
    parser.add_argument(
        "--act-l1",
        type=ac.real(0.0, 10.0),
        default=0.0,
        help="activation L1 strength in [0, 10] (default 0: off): adds act-l1 x the hidden "
        "activations per sample in units of their range; useful 1e-5 .. 1e-2",
    )
    add_bit_widths(parser)
    add_unipolar_fraction(parser, "the --unipolar-scope filters")
    parser.add_argument(
        "--unipolar-scope",
        choices=("hidden", "conv"),  # cosim.train.network.UNIPOLAR_SCOPES (no NumPy here)
        default="hidden",
        help="filters the unipolar search chooses among and the fraction counts: hidden (every"
        " hidden filter, default) or conv (convolution filters only, as García-Redondo et al.)",
    )
    parser.add_argument(
        "--epochs",
        type=ac.integer(1, 100_000),
        default=None,
        help="training epochs, 1..100000 (default: mlp 30, lenet5 15, cnn6 20)",
    )
    parser.add_argument(
        "--batch-size",
        type=ac.integer(1, 1_000_000),
        default=None,
        help="samples per training batch, 1..1000000 (default: mlp 64, lenet5 128, cnn6 64)",
    )
    parser.add_argument(
        "--optimizer",
        default=None,
        help="adam (default) or sgd (momentum 0.9)",
    )
    add_lr(
        parser,
        None,
        "peak learning rate (cosine decay), in (0, 10]; a run whose loss diverges stops "
        "with an error and keeps its last good checkpoint",
    )
    add_seed(parser)
    parser.add_argument("--out", required=True, help="model file to write (.npz)")
    parser.add_argument("--json", default=None, help="also write metrics and history as JSON")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint beside --out"
    )
    parser.add_argument(
        "--blas-threads",
        type=ac.workers,
        default=1,
        help="BLAS threads (default 1: the small GEMMs of these networks run fastest so)",
    )


def checkpoint_path(out: str | Path) -> Path:
    """The checkpoint written beside a model file: ``X.npz`` -> ``X.ckpt.npz``."""
    out = Path(out)
    return out.with_name(out.stem + ".ckpt.npz")


def run(args: argparse.Namespace) -> int:
    """Run ``cosim train``; returns the exit status."""
    import numpy as np

    from cosim.datasets import load_dataset, parse_spec
    from cosim.errors import CosimError
    from cosim.fileio import check_output_file, write_output_json
    from cosim.model import save_model
    from cosim.train.config import recipe
    from cosim.train.network import check_architecture
    from cosim.train.trainer import TrainConfig, train

    check_architecture(args.model)
    parse_spec(args.dataset)
    out = Path(args.out)
    if not out.name or out.name in (".", ".."):
        raise CosimError(f"--out {args.out!r} names a directory; give a model file, e.g. m.npz")
    ckpt = checkpoint_path(out)
    # Every output is checked before training starts (minutes of work must not end in
    # an unwritable path), and none may replace a file cosim did not write.
    check_output_file(out, kind="model")
    check_output_file(ckpt, kind="checkpoint")
    if args.json:
        check_output_file(args.json, kind="json")
        if Path(args.json).absolute() in (out.absolute(), ckpt.absolute()):
            raise CosimError(f"--json {args.json} would overwrite the model; use another path")
    epochs, batch, lr = DEFAULTS[args.model]
    base: dict = {"scheme": "global", "optimizer": "adam", "lr": lr, "batch_size": batch}
    if args.recipe is not None:
        base.update(recipe(args.recipe))
    chosen = {
        k: getattr(args, k)
        for k in ("scheme", "optimizer", "lr", "batch_size", "hi")
        if getattr(args, k) is not None
    }
    cfg = TrainConfig(
        model=args.model,
        w_bits=args.w_bits,
        a_bits=args.a_bits,
        in_bits=args.in_bits,
        b_bits=args.b_bits,
        epochs=args.epochs if args.epochs is not None else epochs,
        unipolar_fraction=args.unipolar_fraction,
        unipolar_scope=args.unipolar_scope,
        seed=args.seed,
        act_l1=args.act_l1,
        **{**base, **chosen},
    )
    dataset = load_dataset(args.dataset)

    def report(rec: dict) -> None:
        print(
            f"epoch {rec['epoch']:3d}/{cfg.epochs}  loss {rec['train_loss']:.4f}  "
            f"train {100 * rec['train_accuracy']:6.2f}%  test {100 * rec['test_accuracy']:6.2f}%"
            f"  ({rec['time_s']:.1f} s)",
            file=sys.stderr,
            flush=True,
        )

    outcome = train(
        cfg,
        dataset,
        np.random.default_rng(cfg.seed),
        ckpt,
        resume=args.resume,
        on_epoch=report,
        blas_threads=args.blas_threads,
    )
    shadow = {
        f"L{i}.{k}": v
        for i, lay in enumerate(outcome.net.weight_layers)
        for k, v in lay.params.items()
    }
    save_model(outcome.model, out, extra_arrays=shadow)
    metrics = dict(outcome.metrics)
    metrics["model_file"] = str(out)
    metrics["command"] = _command_line(args)
    if args.json:
        write_output_json(args.json, metrics)
    ckpt.unlink(missing_ok=True)
    print(summary_table(metrics))
    return 0


def _command_line(args: argparse.Namespace) -> str:
    """The ``cosim train`` command that reproduces this run (every option spelled out)."""
    parts = ["cosim train"]
    for key, value in vars(args).items():
        if key in ("command", "resume") or value is None or value is False:
            continue
        if key == "act_l1" and value == 0.0:  # off: the default, as before the option
            continue
        flag = "--" + key.replace("_", "-")
        parts.append(flag if value is True else f"{flag} {value}")
    return " ".join(parts)


def summary_table(m: dict) -> str:
    """A readable summary of a training run's metrics."""
    rows = [
        ("dataset", m["dataset"]),
        ("model", m["model"]),
        ("scheme", m["scheme"]),
        (
            "weights / activations",
            "float" if m["w_bits"] is None else f"W{m['w_bits']}A{m['a_bits']}",
        ),
        (
            "unipolar filters",
            f"{m['unipolar_filters']} of {m['hidden_filters']} "
            f"(fraction {m['unipolar_fraction']:g}"
            + (
                f" of the {m['conv_filters']} convolution filters: "
                f"{m['unipolar_conv_filters']} chosen)"
                if m.get("unipolar_scope") == "conv"
                else ")"
            ),
        ),
        ("epochs", str(len(m["history"]))),
        ("test accuracy", f"{100 * m['test_accuracy']:.2f}%  ({m['test_accuracy_source']})"),
        (
            "training forward",
            f"{100 * m['test_accuracy_training_forward']:.2f}%  "
            f"(identical predictions: {100 * m['prediction_agreement']:.2f}%)",
        ),
        ("train / test samples", f"{m['n_train']} / {m['n_test']}"),
        ("wall time", f"{m['wall_time_s']:.1f} s"),
        ("model file", m.get("model_file", "")),
    ]
    q = [g for g in m["grids"] if "w_grid" in g]
    if q:
        g0 = q[0]
        same = all(g["w_grid"] == g0["w_grid"] for g in q)
        rows.insert(
            4,
            (
                "grids",
                f"W w_max={g0['w_grid']['w_max']:.4g} ({'shared' if same else 'first layer'}), "
                f"Y hi={q[0]['out_grid']['hi']:.4g}, B bits={g0['b_grid']['bits']}"
                if g0["out_grid"]
                else "",
            ),
        )
    width = max(len(k) for k, _ in rows)
    lines = ["", "cosim train summary", "-" * (width + 40)]
    lines += [f"{k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines)
