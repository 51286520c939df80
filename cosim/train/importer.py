"""``cosim import``'s work: an ONNX graph to a deployed cosim model, with its accuracies.

:func:`import_onnx` reads and converts the graph (:mod:`cosim.train.onnx_graph`), measures
the float accuracy of the graph itself (the NumPy evaluator on the test set), builds the
trainer's network with the input normalization folded in (and measures it in float: it
differs from the graph only where an input offset meets a padded first convolution, or a
Clip's bound is exceeded), quantizes it after training
(:mod:`cosim.train.ptq`) and measures the quantized model with
:func:`cosim.model.forward.integer_forward` (the definition of its predictions); with
``finetune`` epochs it then runs cosim's quantization-aware training
(:func:`cosim.train.trainer.train`) from those weights and ranges and measures again.

Input scaling: cosim's datasets give ``x01`` in ``[0, 1]`` (:class:`cosim.quant.Preprocessing`,
pixels / 255 or / 16 for digits). The graph is assumed to take ``(x01 - mean) / std`` per
channel, with ``--input-mean``/``--input-std`` (default 0 and 1: the graph takes ``x01``).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cosim import model as mf
from cosim.datasets import Dataset
from cosim.errors import OnnxImportError
from cosim.model import integer_forward, predict
from cosim.quant import DEFAULT_HI, DEFAULT_W_MAX
from cosim.train.export import batch_inputs, evaluate, export_model, grids_summary
from cosim.train.network import IMPORTED, Network
from cosim.train.onnx_export import META_KEY, ExportError, model_from_export
from cosim.train.onnx_graph import (
    Converted,
    Graph,
    build_imported,
    convert,
    input_affine,
    read_graph,
    run_graph,
)
from cosim.train.ptq import calibrate
from cosim.train.scheme import Scheme
from cosim.train.unipolar import search_unipolar

IMPORT_SCHEMES = ("global", "per-layer")


@dataclass(frozen=True)
class ImportOptions:
    """The settings of one import (the ``cosim import`` flags)."""

    scheme: str = "global"
    w_bits: int = 4
    a_bits: int = 3
    in_bits: int = 8
    b_bits: int | None = None
    calibrate: int = 512
    method: str = "mse"
    finetune: int = 0
    lr: float = 2e-3
    batch_size: int = 32
    unipolar_fraction: float = 0.0
    input_mean: tuple[float, ...] | None = None
    input_std: tuple[float, ...] | None = None
    seed: int = 0
    grids: str = "graph"
    # a residual group's range (global, mse): "joint", "max", or "auto" (the one of the two
    # whose model classifies more calibration samples right)
    group_rule: str = "auto"

    def __post_init__(self) -> None:
        if self.grids not in ("graph", "calibrate"):
            raise OnnxImportError(f"grids {self.grids!r}: choose graph or calibrate")
        if self.group_rule not in ("auto", "joint", "max"):
            raise OnnxImportError(f"group_rule {self.group_rule!r}: choose auto, joint or max")
        if self.scheme not in IMPORT_SCHEMES:
            raise OnnxImportError(
                f"--scheme {self.scheme!r}: choose one of {', '.join(IMPORT_SCHEMES)}"
            )
        if self.calibrate < 1:
            raise OnnxImportError(f"--calibrate {self.calibrate} must be at least 1")
        if self.finetune < 0:
            raise OnnxImportError(f"--finetune {self.finetune} must be 0 or more epochs")
        if self.batch_size < 1:
            raise OnnxImportError(f"--batch-size {self.batch_size} must be at least 1")


@dataclass
class ImportOutcome:
    """The deployed model, the (rescaled, possibly fine-tuned) network and the report."""

    model: mf.Model
    net: Network | None  # None for a residual graph (not the trainer's network)
    report: dict[str, Any] = field(default_factory=dict)


def graph_accuracy(g: Graph, conv: Converted, dataset: Dataset, alpha: np.ndarray,
                   beta: np.ndarray, batch: int = 500) -> float:  # fmt: skip
    """Test accuracy of the graph itself (float64 NumPy) on ``alpha * x01 + beta``,
    undoing the graph's own leading normalization (it runs inside the graph)."""
    a0 = np.ones(conv.input_shape) if conv.alpha is None else conv.alpha
    b0 = np.zeros(conv.input_shape) if conv.beta is None else conv.beta
    a_in, b_in = alpha / a0, (beta - b0) / a0  # what the caller's --input-mean/std give
    prep = dataset.preprocessing
    correct = 0
    for i in range(0, len(dataset.x_test), batch):
        x01 = prep.unit(dataset.x_test[i : i + batch])
        out = run_graph(g, a_in * x01 + b_in)
        correct += int(np.sum(out.argmax(axis=1) == dataset.y_test[i : i + batch]))
    return correct / len(dataset.x_test)


def _accuracy(model: mf.Model, dataset: Dataset) -> float:
    return float(np.mean(predict(model, dataset.x_test) == dataset.y_test))


def _report(
    g: Graph,
    conv: Converted,
    dataset: Dataset,
    opts: ImportOptions,
    n_calibration: int,
    cal: dict[str, Any],
    float_acc: float,
    folded_acc: float,
    ptq_acc: float,
    residual_adds: int | None,
    masks: list[np.ndarray],
    t_convert: float,
    t_calibrate: float,
) -> dict[str, Any]:
    """The import report after post-training quantization (sequential and residual graphs);
    ``residual_adds`` (None: a sequential graph, no entry) follows ``ptq_accuracy``."""
    report: dict[str, Any] = {
        "graph": g.name,
        "dataset": dataset.name,
        "scheme": opts.scheme,
        "w_bits": opts.w_bits,
        "a_bits": opts.a_bits,
        "calibration_samples": n_calibration,
        "calibration": cal,
        "layers": [s.kind for s in conv.specs],
        "notes": list(conv.notes),
        "input_assumed": "x01 in [0, 1] per the dataset's preprocessing, then "
        "(x01 - input_mean) / input_std",
        "float_accuracy": float_acc,
        "float_accuracy_folded": folded_acc,
        "ptq_accuracy": ptq_acc,
    }
    if residual_adds is not None:
        report["residual_adds"] = residual_adds
    report["unipolar_filters"] = int(sum(int(m.sum()) for m in masks))
    report["convert_time_s"] = t_convert
    report["calibrate_time_s"] = t_calibrate
    report["n_test"] = len(dataset.x_test)
    return report


def _outcome(
    model: mf.Model,
    net: Network | None,
    report: dict[str, Any],
    dataset: Dataset,
    float_acc: float,
    t0: float,
) -> ImportOutcome:
    """The final model's test accuracy, grids and wall time into ``report`` (and the
    accuracies into the model's info), as the import's outcome."""
    report["test_accuracy"] = _accuracy(model, dataset)
    report["grids"] = grids_summary(model)
    report["wall_time_s"] = time.perf_counter() - t0
    model.info["test_accuracy"] = report["test_accuracy"]
    model.info["float_accuracy"] = float_acc
    return ImportOutcome(model, net, report)


def _adopt_export(
    g: Graph,
    conv: Converted,
    dataset: Dataset,
    opts: ImportOptions,
    net: Network | None,
    float_acc: float,
    t0: float,
) -> ImportOutcome | None:
    """A ``cosim export`` graph with its own grids (no calibration), or None (with a note in
    ``conv.notes``) where the options or the graph rule that out."""
    why = []
    if opts.input_mean is not None or opts.input_std is not None or conv.alpha is not None:
        why.append("an input normalization")
    if opts.finetune or opts.unipolar_fraction:
        why.append("--finetune/--unipolar-fraction")
    model = None
    if not why:
        try:
            model = model_from_export(g.meta, conv.specs, dataset.preprocessing, g.name)
        except ExportError as exc:
            why.append(str(exc))
    if model is None:
        conv.notes.append(f"a cosim export, calibrated anew ({'; '.join(why)})")
        return None
    model.info.update(
        dataset=dataset.name, imported_from=g.name, import_grids="graph (cosim export)"
    )
    acc = _accuracy(model, dataset)
    wl = model.weight_layers
    notes = [*conv.notes, "a cosim export: its grids and levels kept (no calibration; "
             "--scheme and the bit widths come from the export)"]  # fmt: skip
    report: dict[str, Any] = {
        "graph": g.name,
        "dataset": dataset.name,
        "scheme": model.scheme,
        "w_bits": wl[0].w_grid.bits if wl[0].w_grid else None,
        "a_bits": wl[0].out_grid.bits if wl[0].out_grid else None,
        "calibration_samples": 0,
        "calibration": {
            "method": "graph",
            "w_max": sorted({lay.w_grid.w_max for lay in wl if lay.w_grid}),
            "clipped_biases": 0,
        },
        "layers": [s.kind for s in conv.specs],
        "notes": notes,
        "float_accuracy": float_acc,
        "float_accuracy_folded": float_acc,
        "ptq_accuracy": acc,
        "test_accuracy": acc,
        "unipolar_filters": int(sum(int(lay.unipolar.sum()) for lay in wl)),
        "grids": grids_summary(model),
        "n_test": len(dataset.x_test),
        "wall_time_s": time.perf_counter() - t0,
    }
    model.info["test_accuracy"] = acc
    model.info["float_accuracy"] = float_acc
    return ImportOutcome(model, net, report)


def import_onnx(
    path: str | Path | Graph,
    dataset: Dataset,
    opts: ImportOptions,
    log: Any = None,
) -> ImportOutcome:
    """Import an ONNX graph (file or :class:`Graph`) for ``dataset``; see the module docstring."""
    t0 = time.perf_counter()
    g = path if isinstance(path, Graph) else read_graph(path)
    conv = convert(g, dataset.preprocessing.input_shape)
    alpha, beta = input_affine(
        conv,
        None if opts.input_mean is None else list(opts.input_mean),
        None if opts.input_std is None else list(opts.input_std),
    )
    if any(sp.kind == "add" for sp in conv.specs):
        float_acc = None
        if META_KEY in g.meta and opts.grids == "graph":  # a cosim export: its own grids
            float_acc = graph_accuracy(g, conv, dataset, alpha, beta)
            kept = _adopt_export(g, conv, dataset, opts, None, float_acc, t0)
            if kept is not None:
                return kept
        return _import_residual(g, conv, alpha, beta, dataset, opts, t0, log, float_acc)
    if opts.group_rule != "auto":
        conv.notes.append(f"--group-range {opts.group_rule} ignored: the graph has no residual Add")
    hi = DEFAULT_HI
    net, caps = build_imported(conv, alpha, beta, hi, g.name)
    t_convert = time.perf_counter() - t0
    float_acc = graph_accuracy(g, conv, dataset, alpha, beta)
    if META_KEY in g.meta and opts.grids == "graph":
        kept = _adopt_export(g, conv, dataset, opts, net, float_acc, t0)
        if kept is not None:
            return kept
    if dataset.preprocessing.in_bits != opts.in_bits:
        from dataclasses import replace

        dataset = replace(
            dataset, preprocessing=replace(dataset.preprocessing, in_bits=opts.in_bits)
        )
    fscheme = Scheme("float", net, opts.w_bits, opts.a_bits, opts.in_bits, opts.b_bits, hi)
    fscheme.apply(None)
    folded_acc, _ = evaluate(net, dataset, fscheme, dataset.x_test, dataset.y_test)
    rng = np.random.default_rng(opts.seed)
    n = len(dataset.x_train)
    idx = np.sort(rng.choice(n, size=min(n, opts.calibrate), replace=False))
    x_cal = batch_inputs(dataset, dataset.x_train[idx], fscheme)
    t1 = time.perf_counter()
    scheme = Scheme(
        opts.scheme, net, opts.w_bits, opts.a_bits, opts.in_bits, opts.b_bits, hi, DEFAULT_W_MAX
    )
    cal = calibrate(net, scheme, x_cal, caps, opts.method)
    masks = [np.zeros(lay.n_out, dtype=bool) for lay in net.hidden]
    if opts.unipolar_fraction > 0:
        masks = search_unipolar(
            net,
            opts.unipolar_fraction,
            batch_inputs(dataset, dataset.x_train[idx], scheme),
            dataset.y_train[idx],
        )
        scheme.apply(masks)
    t_calibrate = time.perf_counter() - t1
    info = {
        "dataset": dataset.name,
        "imported_from": g.name,
        "import": {k: v for k, v in asdict(opts).items() if v is not None},
    }
    model = export_model(net, scheme, masks, dataset, dict(info))
    ptq_acc = _accuracy(model, dataset)
    report = _report(g, conv, dataset, opts, len(idx), cal, float_acc, folded_acc, ptq_acc,
                     None, masks, t_convert, t_calibrate)  # fmt: skip
    if log is not None:
        log(f"float {100 * float_acc:.2f}%  post-training quantized {100 * ptq_acc:.2f}%")
    if opts.finetune > 0:
        model = _finetune(
            net, scheme.state(), scheme.hi_target, model, dataset, opts, rng, info, report, log
        )
    return _outcome(model, net, report, dataset, float_acc, t0)


def _finetune(
    net: Network,
    state: dict[str, Any],
    hi: float,
    model: mf.Model,
    dataset: Dataset,
    opts: ImportOptions,
    rng: np.random.Generator,
    info: dict[str, Any],
    report: dict[str, Any],
    log: Any = None,
) -> mf.Model:
    """``--finetune``: cosim's quantization-aware training from ``net`` and the calibrated
    ranges ``state`` (sequential or residual; ``hi`` the scheme's target range); fills the
    report's fine-tuning entries and returns the fine-tuned model (the architecture name of
    ``model`` kept)."""
    from dataclasses import replace

    from cosim.train.config import TrainConfig
    from cosim.train.trainer import train

    w_ref = float(np.exp(np.mean(np.log(state["w_max"]))))
    cfg = TrainConfig(
        model=IMPORTED,
        scheme=opts.scheme,
        w_bits=opts.w_bits,
        a_bits=opts.a_bits,
        in_bits=opts.in_bits,
        b_bits=opts.b_bits,
        epochs=opts.finetune,
        batch_size=opts.batch_size,
        lr=opts.lr,
        hi=float(hi),
        w_max=w_ref,
        unipolar_fraction=opts.unipolar_fraction,
        seed=opts.seed,
    )
    t2 = time.perf_counter()
    out = train(cfg, dataset, rng, init=(net, state))
    tuned = out.model
    if tuned.architecture != model.architecture:
        tuned = replace(tuned, architecture=model.architecture)
    tuned.info.update(info)
    report["finetune_epochs"] = opts.finetune
    report["finetune_accuracy"] = out.metrics["test_accuracy"]
    report["finetune_time_s"] = time.perf_counter() - t2
    report["unipolar_filters"] = out.metrics["unipolar_filters"]
    report["finetune_history"] = [
        {k: r[k] for k in ("epoch", "train_loss", "test_accuracy")} for r in out.history
    ]
    if log is not None:
        log(f"after {opts.finetune} fine-tuning epochs {100 * report['finetune_accuracy']:.2f}%")
    return tuned


def _import_residual(
    g: Graph,
    conv: Converted,
    alpha: np.ndarray,
    beta: np.ndarray,
    dataset: Dataset,
    opts: ImportOptions,
    t0: float,
    log: Any = None,
    float_acc: float | None = None,
) -> ImportOutcome:
    """The import of a graph with residual Adds (:mod:`cosim.train.residual_import`):
    post-training quantization, then (``--unipolar-fraction``, ``--finetune``) the trainer's
    residual network from it; the outcome's ``net`` is None without either. ``float_acc``:
    the graph's own accuracy where the caller measured it."""
    from dataclasses import replace

    from cosim.train.residual_import import build_residual_model, network_from_model

    t_convert = time.perf_counter() - t0
    if float_acc is None:
        float_acc = graph_accuracy(g, conv, dataset, alpha, beta)
    if dataset.preprocessing.in_bits != opts.in_bits:
        dataset = replace(
            dataset, preprocessing=replace(dataset.preprocessing, in_bits=opts.in_bits)
        )
    rng = np.random.default_rng(opts.seed)
    n = len(dataset.x_train)
    idx = np.sort(rng.choice(n, size=min(n, opts.calibrate), replace=False))
    x_cal = dataset.preprocessing.unit(dataset.x_train[idx])
    t1 = time.perf_counter()
    info = {
        "dataset": dataset.name,
        "imported_from": g.name,
        "import": {k: v for k, v in asdict(opts).items() if v is not None},
    }
    rules = [opts.group_rule]
    if opts.group_rule != "auto" and not (opts.scheme == "global" and opts.method == "mse"):
        conv.notes.append(
            f"--group-range {opts.group_rule} ignored: it chooses the range of a residual "
            "stage on the global scheme's shared grid with mse ranges"
        )
    if opts.group_rule == "auto":  # both where they differ; else the one that applies
        rules = ["joint", "max"] if opts.scheme == "global" and opts.method == "mse" else ["max"]
    built = []
    for k, rule in enumerate(rules):
        n_notes = len(conv.notes)
        shadow: list[tuple[np.ndarray, np.ndarray]] = []
        model, cal = build_residual_model(
            conv, alpha, beta, dataset, x_cal, opts.scheme, opts.w_bits, opts.a_bits,
            opts.in_bits, opts.b_bits, opts.method, f"onnx:{g.name}", dict(info), shadow,
            rule, folded=k == 0,
        )  # fmt: skip
        if k > 0:
            del conv.notes[n_notes:]  # the same folds, noted once
        cal["group_rule"] = rule
        if len(rules) > 1:  # the calibration samples' accuracy of the quantized model
            pred = integer_forward(model, dataset.x_train[idx]).predictions
            cal_acc = float(np.mean(pred == dataset.y_train[idx]))
        else:
            cal_acc = math.nan
        built.append((cal_acc, model, cal, shadow))
    if len(built) > 1:
        # the higher calibration accuracy; a tie keeps "joint" (the first)
        best = max(range(len(built)), key=lambda k: (built[k][0], -k))
        accs = {r: b[0] for r, b in zip(rules, built, strict=True)}
        folded_first = built[0][2]["float_accuracy_folded"]
        _, model, cal, shadow = built[best]
        cal["float_accuracy_folded"] = folded_first
        cal["group_rule_calibration_accuracy"] = accs
    else:
        _, model, cal, shadow = built[0]
    ptq_acc = _accuracy(model, dataset)
    net = None
    masks: list[np.ndarray] = []
    if opts.unipolar_fraction > 0 or opts.finetune > 0:
        net, state = network_from_model(model, shadow, f"onnx:{g.name}")
        masks = [np.zeros(lay.n_out, dtype=bool) for lay in net.hidden]
    if net is not None and opts.unipolar_fraction > 0 and opts.finetune == 0:
        # the search on the calibration samples, as for sequential graphs (the trainer's own
        # unipolar schedule does it with --finetune); a pair's filters are never candidates
        scheme = Scheme(opts.scheme, net, opts.w_bits, opts.a_bits, opts.in_bits,
                        opts.b_bits, model.input_hi)  # fmt: skip
        scheme.load_state(state)
        scheme.apply(None)
        masks = search_unipolar(
            net,
            opts.unipolar_fraction,
            batch_inputs(dataset, dataset.x_train[idx], scheme),
            dataset.y_train[idx],
        )
        model = export_model(net, scheme, masks, dataset, dict(info))
        model = replace(model, architecture=f"onnx:{g.name}")
    t_calibrate = time.perf_counter() - t1
    if net is not None and opts.unipolar_fraction > 0 and opts.finetune == 0:
        ptq_acc = _accuracy(model, dataset)
    if log is not None:
        log(f"float {100 * float_acc:.2f}%  post-training quantized {100 * ptq_acc:.2f}%")
    folded_acc = cal.pop("float_accuracy_folded")
    adds = sum(sp.kind == "add" for sp in conv.specs)
    report = _report(g, conv, dataset, opts, len(idx), cal, float_acc, folded_acc, ptq_acc,
                     adds, masks, t_convert, t_calibrate)  # fmt: skip
    if net is not None and opts.finetune > 0:
        model = _finetune(net, state, model.input_hi, model, dataset, opts, rng, info, report, log)
    return _outcome(model, net, report, dataset, float_acc, t0)
