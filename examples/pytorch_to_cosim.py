"""From PyTorch to the chip: a ResNet-style network trained in PyTorch, run on cosim's chip.

1. Train a small ResNet-style network on Fashion-MNIST in PyTorch (CPU): a stem convolution
   (BatchNorm, ReLU, 2x2 max pool), two residual stages of one basic block each
   (``relu(bn(conv(relu(bn(conv(x))))) + x)``, identity skips), a strided convolution
   between them, a global average pool and a linear head. The images are read by cosim's
   own loader (:mod:`cosim.datasets`, Debian's ``dataset-fashion-mnist`` IDX files) and
   given to the network as cosim's ``x01`` (pixels / 256, in ``[0, 1]``), so the import
   needs no ``--input-mean``/``--input-std``.
2. Export it with ``torch.onnx.export`` as PyTorch writes it by default (the dynamo
   exporter; its graph has ``ReduceMean`` for the global pool) and with the TorchScript
   exporter (``dynamo=False``; ``GlobalAveragePool``, ``Identity`` of weights).
3. ``cosim import`` both at global W4A3 (post-training quantization; the two must agree),
   then ``cosim import --finetune E`` (cosim's quantization-aware training from the imported
   weights, at the default ``--lr`` and ``--batch-size``). If the fine-tuning import fails,
   its error is printed and recorded and the example goes on with the post-training model.
4. ``cosim evaluate`` on the default chip (a committed surrogate library of the default
   card), every non-ideality on.

cosim imports **identity skips only** (the block's input added as it is); a projection
shortcut (a 1x1 convolution on the skip path, as in ResNet's down-sampling blocks) is
refused, so the stages change width with a plain strided convolution between the blocks.

Run (needs the ``pytorch`` extra, ``pip install -e '.[pytorch]'``, or a virtual environment
with ``torch==2.13.0``, ``onnx`` and ``onnxscript``; cosim's commands are run with
``--cosim-python``, default this interpreter, with the repository on ``PYTHONPATH``)::

    python examples/pytorch_to_cosim.py --json benchmarks/results/pytorch_to_cosim.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------ the network
def build_resnet(widths: tuple[int, int] = (16, 32)) -> Any:
    """The ResNet-style network (a ``torch.nn.Module``) for 1x28x28 inputs, 10 classes.

    ``stem``: Conv 3x3 (1 -> c1), BN, ReLU, MaxPool 2 (28 -> 14); ``stage1``: a basic block
    (c1); ``down``: Conv 3x3 stride 2 (c1 -> c2), BN, ReLU (14 -> 7); ``stage2``: a basic
    block (c2); AdaptiveAvgPool2d(1), flatten, Linear(c2, 10).
    """
    from torch import nn

    class BasicBlock(nn.Module):
        """``relu(bn2(conv2(relu(bn1(conv1(x))))) + x)``: an identity skip."""

        def __init__(self, c: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)
            self.relu = nn.ReLU()

        def forward(self, x: Any) -> Any:
            y = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(y)) + x)

    c1, c2 = widths

    class ResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(
                nn.Conv2d(1, c1, 3, padding=1, bias=False),
                nn.BatchNorm2d(c1),
                nn.ReLU(),
                nn.MaxPool2d(2),
            )
            self.stage1 = BasicBlock(c1)
            self.down = nn.Sequential(
                nn.Conv2d(c1, c2, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c2),
                nn.ReLU(),
            )
            self.stage2 = BasicBlock(c2)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(c2, 10)

        def forward(self, x: Any) -> Any:
            x = self.stage2(self.down(self.stage1(self.stem(x))))
            return self.fc(self.pool(x).flatten(1))

    return ResNet()


def train_torch(
    model: Any, x: np.ndarray, y: np.ndarray, epochs: int, seed: int, batch: int = 128
) -> list[float]:
    """AdamW with a one-cycle learning rate (peak 3e-3); returns the mean loss per epoch."""
    import torch

    g = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    steps = epochs * ((len(x) + batch - 1) // batch)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    loss_fn = torch.nn.CrossEntropyLoss()
    losses = []
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        total, n = 0.0, 0
        for i in range(0, len(x), batch):
            idx = perm[i : i + batch]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            n += len(idx)
        losses.append(total / n)
    model.eval()
    return losses


def torch_accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    """Test accuracy (fraction) of the float PyTorch model."""
    import torch

    model.eval()
    with torch.no_grad():
        pred = np.concatenate(
            [
                model(torch.from_numpy(x[i : i + 1000])).argmax(1).numpy()
                for i in range(0, len(x), 1000)
            ]
        )
    return float((pred == y).mean())


def export_onnx(model: Any, path: Path, dynamo: bool) -> tuple[list[str], list[str]]:
    """``torch.onnx.export`` with a dynamic batch axis; returns the graph's operator types
    and the exporter's warnings (recorded, not raised: the TorchScript exporter is
    deprecated)."""
    import onnx

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _export(model, path, dynamo)
    said = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught})
    return sorted({n.op_type for n in onnx.load(str(path)).graph.node}), said


def _export(model: Any, path: Path, dynamo: bool) -> None:
    import torch

    x = torch.zeros(2, 1, 28, 28)
    if dynamo:  # PyTorch's default exporter
        torch.onnx.export(
            model,
            (x,),
            str(path),
            input_names=["x"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            external_data=False,
        )
    else:  # the TorchScript exporter
        torch.onnx.export(
            model,
            (x,),
            str(path),
            dynamo=False,
            input_names=["x"],
            output_names=["logits"],
            dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
        )


# ------------------------------------------------------------------------------ cosim's CLI
def run_cosim(python: str, args: list[str]) -> tuple[int, str]:
    """Run ``python -m cosim ARGS`` with this repository first on ``PYTHONPATH``; echo it."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("COSIM_PROGRESS", "0")
    print("$ cosim " + " ".join(args), flush=True)
    proc = subprocess.run(
        [python, "-m", "cosim", *args], env=env, capture_output=True, text=True, check=False
    )
    out = proc.stdout + proc.stderr
    print("  " + "\n  ".join(out.strip().splitlines()[-14:]), flush=True)
    return proc.returncode, out


def cosim_import(python: str, onnx_path: Path, out: Path, extra: list[str]) -> dict:
    """``cosim import`` at global W4A3; its JSON report, or ``{"error": ...}``."""
    report = out.with_suffix(".json")
    args = ["import", str(onnx_path), "--dataset", "fashion-mnist", "--out", str(out),
            "--scheme", "global", "--w-bits", "4", "--a-bits", "3", "--json", str(report),
            *extra]  # fmt: skip
    t0 = time.perf_counter()
    rc, text = run_cosim(python, args)
    if rc != 0:
        return {"error": text.strip().splitlines()[-1] if text.strip() else f"exit {rc}"}
    rep = json.loads(report.read_text())
    rep["wall_s"] = time.perf_counter() - t0
    return rep


def cosim_evaluate(python: str, model: Path, library: Path, chips: int, extra: list[str]) -> dict:
    """``cosim evaluate`` of ``model`` on ``library``; its JSON."""
    js = model.with_name(model.stem + "-evaluate.json")
    args = ["evaluate", "--model", str(model), "--library", str(library), "--chips", str(chips),
            "--json", str(js), *extra]  # fmt: skip
    t0 = time.perf_counter()
    rc, text = run_cosim(python, args)
    if rc != 0:
        raise SystemExit(f"cosim evaluate failed:\n{text}")
    rep = dict(json.loads(js.read_text())["evaluation"])
    rep["command_wall_s"] = time.perf_counter() - t0
    return rep


def _acc(d: dict, *keys: str) -> float | None:
    for k in keys:
        if isinstance(d.get(k), (int, float)):
            return float(d[k])
    return None


# ------------------------------------------------------------------------------ main
def main(
    out_dir: str | Path | None = None,
    epochs: int = 3,
    finetune: int = 3,
    library: str | Path = ROOT / "tests" / "data" / "library-quick",
    chips: int = 3,
    train_limit: int | None = None,
    test_limit: int | None = None,
    cosim_python: str = sys.executable,
    seed: int = 0,
    threads: int | None = None,
) -> dict:
    """Train, export, import and evaluate; returns every measured number (fractions, s)."""
    import torch

    from cosim.datasets import load_dataset

    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="pt2cosim-"))
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    ds = load_dataset("fashion-mnist")
    x_tr = ds.preprocessing.unit(ds.x_train[:train_limit]).astype(np.float32)
    y_tr = ds.y_train[:train_limit].astype(np.int64)
    x_te = ds.preprocessing.unit(ds.x_test).astype(np.float32)
    y_te = ds.y_test.astype(np.int64)
    git = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    res: dict[str, Any] = {
        "cosim_commit": git.stdout.strip() or None,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "train_samples": len(x_tr),
        "test_samples": len(x_te),
        "epochs": epochs,
        "seed": seed,
    }

    print(f"training the ResNet-style network: {len(x_tr)} samples, {epochs} epochs, "
          f"{torch.get_num_threads()} threads", flush=True)  # fmt: skip
    model = build_resnet()
    res["parameters"] = int(sum(p.numel() for p in model.parameters()))
    t0 = time.perf_counter()
    res["train_loss"] = train_torch(model, x_tr, y_tr, epochs, seed)
    res["train_s"] = time.perf_counter() - t0
    res["float_accuracy_torch"] = torch_accuracy(model, x_te, y_te)
    print(f"  {res['train_s']:.0f} s; float test accuracy (PyTorch) "
          f"{100 * res['float_accuracy_torch']:.2f} %", flush=True)  # fmt: skip

    onnx_path = out / "resnet.onnx"
    res["onnx_ops"], res["export_warnings"] = export_onnx(model, onnx_path, dynamo=True)
    ts_path = out / "resnet-torchscript.onnx"
    res["onnx_ops_torchscript"], res["export_warnings_torchscript"] = export_onnx(
        model, ts_path, dynamo=False
    )
    print(f"exported: dynamo {res['onnx_ops']}; TorchScript {res['onnx_ops_torchscript']}")

    ptq = cosim_import(cosim_python, onnx_path, out / "ptq.npz", [])
    if "error" in ptq:
        raise SystemExit(f"cosim import failed: {ptq['error']}")
    ptq_ts = cosim_import(cosim_python, ts_path, out / "ptq-torchscript.npz", [])
    res["import_wall_s"] = ptq["wall_s"]
    res["float_accuracy_graph"] = _acc(ptq, "float_accuracy")
    res["ptq_accuracy"] = _acc(ptq, "ptq_accuracy")
    res["torchscript_export"] = {
        "float_accuracy_graph": _acc(ptq_ts, "float_accuracy"),
        "ptq_accuracy": _acc(ptq_ts, "ptq_accuracy"),
        "error": ptq_ts.get("error"),
    }
    chip_model = out / "ptq.npz"
    res["finetune_epochs"] = finetune
    if finetune > 0:
        ft = cosim_import(cosim_python, onnx_path, out / "finetuned.npz",
                          ["--finetune", str(finetune)])  # fmt: skip
        if "error" in ft:
            res["finetune_accuracy"] = None
            res["finetune_error"] = ft["error"]
        else:
            res["finetune_accuracy"] = _acc(ft, "finetune_accuracy")
            res["finetune_wall_s"] = ft["wall_s"]
            chip_model = out / "finetuned.npz"
    res["chip_model"] = chip_model.name
    limit = ["--limit", str(test_limit)] if test_limit else []
    ev = cosim_evaluate(cosim_python, chip_model, Path(library), chips, limit)
    res["library"] = os.path.relpath(Path(library).resolve(), ROOT)
    res["chips"] = chips
    res["chip_accuracy"] = _acc(ev, "accuracy_mean")
    res["chip_accuracy_std"] = _acc(ev, "accuracy_std")
    res["chip_samples"] = test_limit or len(x_te)
    res["energy_per_inference_j"] = _acc(ev, "energy_total_per_inference_j")
    res["evaluate_wall_s"] = ev["command_wall_s"]
    print_summary(res)
    return res


def print_summary(res: dict) -> None:
    def pct(v: float | None) -> str:
        return "   n/a" if v is None else f"{100 * v:6.2f} %"

    ft = res.get("finetune_accuracy")
    print("\nFashion-MNIST test accuracy, ResNet-style network (global W4A3 on the chip):")
    print(f"  float, PyTorch                        {pct(res['float_accuracy_torch'])}")
    print(f"  float, the exported ONNX graph        {pct(res['float_accuracy_graph'])}")
    print(f"  post-training quantized (W4A3)        {pct(res['ptq_accuracy'])}")
    if res["finetune_epochs"] > 0:
        note = "" if ft is not None else f"  ({res.get('finetune_error')})"
        print(f"  fine-tuned, {res['finetune_epochs']} epochs                 {pct(ft)}{note}")
    std = res.get("chip_accuracy_std") or 0.0
    print(f"  on the chip ({res['chip_model']}, {res['chips']} chips)  "
          f"{pct(res['chip_accuracy'])} ± {100 * std:.2f}")  # fmt: skip
    print(f"training {res['train_s']:.0f} s, import {res['import_wall_s']:.0f} s, "
          f"evaluate {res['evaluate_wall_s']:.0f} s")  # fmt: skip


def cli(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="working directory (default: a new temp dir)")
    ap.add_argument("--epochs", type=int, default=3, help="PyTorch training epochs")
    ap.add_argument("--finetune", type=int, default=3, help="cosim fine-tuning epochs (0: none)")
    ap.add_argument("--library", default=str(ROOT / "tests" / "data" / "library-quick"))
    ap.add_argument("--chips", type=int, default=3)
    ap.add_argument("--train-limit", type=int, default=None, help="first N training samples")
    ap.add_argument("--test-limit", type=int, default=None, help="evaluate: first N test samples")
    ap.add_argument("--cosim-python", default=sys.executable,
                    help="the Python that runs `-m cosim` (default: this one)")  # fmt: skip
    ap.add_argument("--threads", type=int, default=None, help="PyTorch threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write the results here")
    a = ap.parse_args(argv)
    res = main(a.out, a.epochs, a.finetune, a.library, a.chips, a.train_limit, a.test_limit,
               a.cosim_python, a.seed, a.threads)  # fmt: skip
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
        print(f"written {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
