"""Training checkpoints: the full state after an epoch, written atomically and restored.

A checkpoint holds the parameters, the optimizer state, the range variables, the unipolar
mask, the history and the generator's state, so a resumed run continues exactly where it
stopped and ends with the same model as an uninterrupted one. A run may change only its
learning rate when it resumes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from cosim import model as mf
from cosim.datasets import Dataset
from cosim.errors import ModelFileError
from cosim.fileio import dumps_json, save_npz_atomic
from cosim.train.config import TrainConfig
from cosim.train.network import Network
from cosim.train.scheme import Scheme

CHECKPOINT_VERSION = 1


def param_dict(net: Network) -> dict[str, np.ndarray]:
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
    arrays = {"p." + k: v for k, v in param_dict(net).items()}
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


def restore(
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
        for k, v in param_dict(net).items():
            a = arrays["p." + k]
            if a.shape != v.shape:
                raise ValueError(f"parameter {k} has shape {a.shape}, expected {v.shape}")
            v[...] = a
        params = param_dict(net)
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
