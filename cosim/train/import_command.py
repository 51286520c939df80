"""``cosim import``: an ONNX network onto the chip's grids, written as a cosim model file.

Example::

    cosim import net.onnx --dataset digits --scheme global --w-bits 4 --a-bits 3 \\
        --calibrate 512 --finetune 2 --out net.npz --json net.json

``configure`` only touches argparse; ``run`` imports NumPy, onnx and the importer.
docs/import.md describes the method, the operators and the limits.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cosim import argcheck as ac
from cosim.train.arguments import add_bit_widths, add_lr, add_seed, add_unipolar_fraction


def _floats(text: str) -> tuple[float, ...]:
    """A comma-separated list of finite numbers (``0.485,0.456,0.406``)."""
    parts = [p for p in text.replace(" ", "").split(",") if p]
    if not parts:
        raise argparse.ArgumentTypeError(f"{text!r} holds no number")
    out = []
    for p in parts:
        try:
            v = float(p)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{p!r} is not a number") from None
        if v != v or v in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"{p!r} is not finite")
        out.append(v)
    return tuple(out)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``cosim import``'s arguments to ``parser``."""
    parser.add_argument("onnx", type=ac.path, help="the ONNX model file (.onnx)")
    parser.add_argument(
        "--dataset",
        required=True,
        help="the dataset the network was trained on: digits, digits28, fashion-mnist[:DIR], "
        "mnist:DIR, har:DIR, cifar10:DIR (its samples come as x01 in [0, 1])",
    )
    parser.add_argument("--out", required=True, help="model file to write (.npz)")
    parser.add_argument(
        "--scheme",
        default="global",
        choices=("global", "per-layer"),
        help="global (default: one shared X/Y/W/B grid set) or per-layer",
    )
    add_bit_widths(parser)
    parser.add_argument(
        "--calibrate",
        type=ac.integer(1, 10**7),
        default=512,
        help="training samples used to set the ranges (default 512)",
    )
    parser.add_argument(
        "--range-method",
        choices=("mse", "minmax"),
        default="mse",
        help="mse (default: ranges minimizing the quantization error) or minmax (naive)",
    )
    parser.add_argument(
        "--group-range",
        choices=("auto", "joint", "max"),
        default="auto",
        help="residual graphs, global scheme, mse: the range shared by a residual stage's "
        "tensors; joint (minimizes their summed relative error), max (the largest tensor's, "
        "nothing clipped) or auto (default: both, keeping the one right on more calibration "
        "samples)",
    )
    parser.add_argument(
        "--finetune",
        type=ac.integer(0, 100_000),
        default=0,
        help="epochs of cosim's quantization-aware training from the imported weights "
        "(default 0: post-training quantization only)",
    )
    add_lr(parser, 2e-3, "peak learning rate of the fine-tuning (default 2e-3)")
    parser.add_argument(
        "--batch-size",
        type=ac.integer(1, 100_000),
        default=32,
        help="mini-batch size of the fine-tuning (default 32; small datasets gain from "
        "smaller batches: more steps per epoch)",
    )
    add_unipolar_fraction(parser, "the hidden filters")
    parser.add_argument(
        "--input-mean",
        type=_floats,
        default=None,
        help="per-channel mean the network's inputs were normalized with, on x01 in [0, 1] "
        "(comma-separated, one value or one per channel; default 0)",
    )
    parser.add_argument(
        "--input-std",
        type=_floats,
        default=None,
        help="per-channel standard deviation of that normalization (default 1)",
    )
    add_seed(parser)
    parser.add_argument(
        "--recalibrate",
        action="store_true",
        help="for a graph written by cosim export: calibrate anew instead of keeping the "
        "exported grids and levels",
    )
    parser.add_argument("--json", default=None, help="also write the import report as JSON")


def run(args: argparse.Namespace) -> int:
    """Run ``cosim import``; returns the exit status."""
    from cosim.datasets import load_dataset, parse_spec
    from cosim.errors import CosimError
    from cosim.fileio import check_output_file, write_output_json
    from cosim.model import save_model
    from cosim.train.importer import ImportOptions, import_onnx

    parse_spec(args.dataset)
    out = Path(args.out)
    if not out.name or out.name in (".", ".."):
        raise CosimError(f"--out {args.out!r} names a directory; give a model file, e.g. m.npz")
    check_output_file(out, kind="model")
    if args.json:
        check_output_file(args.json, kind="json")
        if Path(args.json).absolute() == out.absolute():
            raise CosimError(f"--json {args.json} would overwrite the model; use another path")
    opts = ImportOptions(
        scheme=args.scheme,
        w_bits=args.w_bits,
        a_bits=args.a_bits,
        in_bits=args.in_bits,
        b_bits=args.b_bits,
        calibrate=args.calibrate,
        method=args.range_method,
        group_rule=args.group_range,
        finetune=args.finetune,
        lr=args.lr,
        batch_size=args.batch_size,
        unipolar_fraction=args.unipolar_fraction,
        input_mean=args.input_mean,
        input_std=args.input_std,
        seed=args.seed,
        grids="calibrate" if args.recalibrate else "graph",
    )
    dataset = load_dataset(args.dataset)
    outcome = import_onnx(
        args.onnx, dataset, opts, log=lambda s: print(s, file=sys.stderr, flush=True)
    )
    save_model(outcome.model, out)
    rep = dict(outcome.report)
    rep["model_file"] = str(out)
    if args.json:
        write_output_json(args.json, rep)
    print(summary(rep))
    return 0


def summary(r: dict) -> str:
    """A readable summary of an import report."""
    rows = [
        ("graph", r["graph"]),
        ("dataset", r["dataset"]),
        ("layers", " ".join(r["layers"])),
        ("scheme", f"{r['scheme']} W{r['w_bits']}A{r['a_bits']}"),
        (
            "calibration",
            f"{r['calibration_samples']} samples, {r['calibration']['method']} ranges, "
            f"w_max {', '.join(f'{w:.4g}' for w in r['calibration']['w_max'])}, "
            f"{r['calibration']['clipped_biases']} biases clipped",
        ),
    ]
    accs = r["calibration"].get("group_rule_calibration_accuracy")
    if accs:  # residual, global: the group range rule chosen on the calibration samples
        tried = ", ".join(f"{k} {100 * v:.1f}%" for k, v in accs.items())
        rows.append(
            ("residual group range", f"{r['calibration']['group_rule']} (calibration: {tried})")
        )
    rows += [
        ("float accuracy (graph)", f"{100 * r['float_accuracy']:.2f}%"),
        ("float accuracy (folded)", f"{100 * r['float_accuracy_folded']:.2f}%"),
        ("post-training quantized", f"{100 * r['ptq_accuracy']:.2f}%  (integer_forward)"),
    ]
    if "finetune_accuracy" in r:
        rows.append(
            (
                f"after {r['finetune_epochs']} fine-tuning epochs",
                f"{100 * r['finetune_accuracy']:.2f}%  (integer_forward)",
            )
        )
    if r.get("residual_adds"):
        how = "fine-tuned" if "finetune_accuracy" in r else "post-training quantization"
        rows.append(("residual adds", f"{r['residual_adds']} ({how})"))
    rows += [
        ("unipolar filters", str(r["unipolar_filters"])),
        ("wall time", f"{r['wall_time_s']:.1f} s"),
        ("model file", r.get("model_file", "")),
    ]
    rows += [("note", n) for n in r["notes"]]
    width = max(len(k) for k, _ in rows)
    lines = ["", "cosim import summary", "-" * (width + 40)]
    lines += [f"{k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines)
