"""``cosim train`` end to end, and every clear error it promises."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from cosim.cli import main
from cosim.errors import ModelFileError
from cosim.model import FORMAT_VERSION, load_model, read_npz

from .test_datasets import write_har_dir


def _run(capsys, *argv):
    code = main(["train", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short CLI run shared by the model-file tests."""
    d = tmp_path_factory.mktemp("cli")
    code = main(
        ["train", "--dataset", "digits", "--model", "mlp", "--scheme", "global", "--w-bits", "4",
         "--a-bits", "3", "--epochs", "3", "--out", str(d / "m.npz"), "--json", str(d / "m.json")]
    )  # fmt: skip
    assert code == 0
    return d


def test_cli_writes_model_json_and_summary(trained, capsys):
    m = load_model(trained / "m.npz")
    assert m.scheme == "global" and m.architecture == "mlp"
    metrics = json.loads((trained / "m.json").read_text())
    assert metrics["test_accuracy_source"] == "integer_forward"
    assert len(metrics["history"]) == 3 and "train_loss" in metrics["history"][0]
    assert not (trained / "m.ckpt.npz").exists()  # the checkpoint goes once the model is written
    with np.load(trained / "m.npz", allow_pickle=False) as z:  # never pickled
        assert "meta" in z.files and "L1.n_w" in z.files and "shadow.L0.W" in z.files


def test_cli_summary_table(tmp_path, capsys):
    code, out, err = _run(
        capsys, "--dataset", "digits", "--scheme", "per-layer", "--epochs", "1",
        "--out", str(tmp_path / "p.npz"),
    )  # fmt: skip
    assert code == 0
    assert "cosim train summary" in out and "test accuracy" in out and "integer_forward" in out
    assert "epoch   1/1" in err


def test_cli_resume_continues_from_checkpoint(tmp_path, capsys):
    args = ["--dataset", "digits", "--epochs", "3", "--out", str(tmp_path / "r.npz")]
    assert _run(capsys, *args)[0] == 0
    ref = load_model(tmp_path / "r.npz")
    # an interrupted run leaves its checkpoint; --resume finishes it with the same result
    from cosim.datasets import load_dataset
    from cosim.train.trainer import TrainConfig, train

    cfg = TrainConfig(epochs=3, batch_size=64, lr=2e-3)

    def stop(rec):
        if rec["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(
            cfg,
            load_dataset("digits"),
            np.random.default_rng(0),
            tmp_path / "r2.ckpt.npz",
            on_epoch=stop,
        )
    code, _, err = _run(capsys, *args[:-1], str(tmp_path / "r2.npz"), "--resume")
    assert code == 0 and "epoch   1/3" not in err and "epoch   2/3" in err
    res = load_model(tmp_path / "r2.npz")
    for a, b in zip(ref.weight_layers, res.weight_layers, strict=True):
        assert np.array_equal(a.n_w, b.n_w)


def test_resume_with_other_options_is_refused(tmp_path, capsys):
    from cosim.datasets import load_dataset
    from cosim.train.trainer import TrainConfig, train

    cfg = TrainConfig(epochs=2, batch_size=64, lr=2e-3)

    def stop(rec):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(
            cfg,
            load_dataset("digits"),
            np.random.default_rng(0),
            tmp_path / "x.ckpt.npz",
            on_epoch=stop,
        )
    code, _, err = _run(
        capsys,
        "--dataset",
        "digits",
        "--epochs",
        "2",
        "--w-bits",
        "3",
        "--out",
        str(tmp_path / "x.npz"),
        "--resume",
    )
    assert code == 2 and "different run" in err


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        (["--model", "resnet50"], "unknown model 'resnet50'"),
        (["--scheme", "per-channel"], "unknown scheme 'per-channel'"),
        (["--w-bits", "9"], "argument --w-bits: 9 is outside 1..8"),
        (["--w-bits", "0"], "argument --w-bits: 0 is outside 1..8"),
        (["--a-bits", "12"], "argument --a-bits: 12 is outside 1..8"),
        (["--in-bits", "0"], "argument --in-bits: 0 is outside 1..8"),
        (["--unipolar-fraction", "1.5"], "argument --unipolar-fraction: 1.5 is outside [0, 1]"),
        (["--dataset", "mnist"], "use --dataset mnist:DIR"),
        (["--optimizer", "rmsprop"], "unknown optimizer 'rmsprop'"),
        # was a ZeroDivisionError traceback (1e-300) and a divergence blamed on --lr (1e-30)
        (["--hi", "1e-300"], "argument --hi: 1e-300 is outside [0.001, 1000]"),
        (["--hi", "1e-30"], "argument --hi: 1e-30 is outside [0.001, 1000]"),
        (["--unipolar-scope", "dense"], "argument --unipolar-scope: invalid choice: 'dense'"),
        (
            ["--unipolar-scope", "conv", "--unipolar-fraction", "0.4"],
            "--unipolar-scope conv needs a model with convolution layers; mlp has none",
        ),
        (
            ["--model", "lenet5", "--unipolar-scope", "conv"],
            "--unipolar-scope conv has nothing to choose with --unipolar-fraction 0",
        ),
        (["--dataset", "digits", "--model", "lenet5"], "does not fit samples of shape (1, 8, 8)"),
    ],
)
def test_clear_errors(tmp_path, capsys, argv, message):
    code, _, err = _run(capsys, *argv, "--epochs", "1", "--out", str(tmp_path / "m.npz"))
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "m.npz").exists()


def test_path_without_expected_files(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    code, _, err = _run(
        capsys, "--dataset", f"har:{tmp_path / 'd'}", "--out", str(tmp_path / "m.npz")
    )
    assert code == 2 and "X_train.txt" in err and "train/X_train.txt" in err


def test_nan_data_is_refused(tmp_path, capsys):
    d = write_har_dir(tmp_path / "har", n_feat=8)
    f = d / "test" / "X_test.txt"
    f.write_text(f.read_text().replace(f.read_text().split()[0], "nan", 1))
    code, _, err = _run(capsys, "--dataset", f"har:{d}", "--out", str(tmp_path / "m.npz"))
    assert code == 2 and "NaN/inf" in err and "X_test.txt" in err


def test_har_mlp_trains(tmp_path, capsys):
    d = write_har_dir(tmp_path / "har", n_feat=12, n_train=60)
    code, _, _ = _run(
        capsys,
        "--dataset",
        f"har:{d}",
        "--epochs",
        "1",
        "--optimizer",
        "sgd",
        "--lr",
        "0.05",
        "--out",
        str(tmp_path / "h.npz"),
    )
    assert code == 0
    assert load_model(tmp_path / "h.npz").weight_layers[0].in_shape == (12,)


# ------------------------------------------------------------------------- model files
def test_corrupt_model_file(trained, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes((trained / "m.npz").read_bytes()[:1000])  # truncated
    with pytest.raises(ModelFileError, match="corrupt"):
        load_model(bad)
    bad.write_bytes(b"not a model at all")
    with pytest.raises(ModelFileError, match="corrupt"):
        load_model(bad)
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "missing.npz")


def _rewrite(src, dst, edit_meta=None, edit_arrays=None):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    if edit_meta:
        edit_meta(meta)
    if edit_arrays:
        edit_arrays(arrays)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(dst, **arrays)


def test_model_file_of_another_version(trained, tmp_path):
    dst = tmp_path / "v2.npz"
    _rewrite(trained / "m.npz", dst, lambda m: m.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(ModelFileError, match=f"format version {FORMAT_VERSION + 1}.*reads version"):
        load_model(dst)


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda a: a.update({"L1.n_w": a["L1.n_w"] + 1}), "off the weight grid"),  # odd -> even
        (lambda a: a.update({"L1.n_b": a["L1.n_b"] * 0 + 10_000}), "off the bias grid"),
        (lambda a: a.update({"L1.n_w": a["L1.n_w"][:, :-1]}), "do not match its geometry"),
        (lambda a: a.pop("L2.n_b"), "missing"),
        (lambda a: a.update({"L1.unipolar": np.ones(3, bool)}), "unipolar mask"),
    ],
)
def test_model_file_validation(trained, tmp_path, edit, message):
    dst = tmp_path / "e.npz"
    _rewrite(trained / "m.npz", dst, edit_arrays=edit)
    with pytest.raises(ModelFileError, match=message):
        load_model(dst)


def test_model_file_with_pickled_objects_is_refused(trained, tmp_path):
    dst = tmp_path / "p.npz"
    _rewrite(
        trained / "m.npz", dst, edit_arrays=lambda a: a.update({"x": np.array([{}], dtype=object)})
    )
    with zipfile.ZipFile(dst) as zf:
        assert "x.npy" in zf.namelist()
    with pytest.raises(ModelFileError, match="corrupt"):
        load_model(dst)


def test_global_model_with_differing_grids_is_refused(trained, tmp_path):
    def edit(meta):
        meta["layers"][2]["w_grid"]["w_max"] *= 2
        meta["layers"][2]["b_grid"]["step"] *= 2  # its bias row follows its own unit

    dst = tmp_path / "g.npz"
    _rewrite(trained / "m.npz", dst, edit)
    with pytest.raises(ModelFileError, match="grids differ"):
        load_model(dst)


def test_configure_is_import_light():
    code = (
        "import sys, argparse, cosim.train.command as c; c.configure(argparse.ArgumentParser());"
        "heavy = [m for m in ('numpy', 'sklearn', 'scipy', 'tqdm') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -------------------------------------------------------------------------- divergence
def test_lr_1e30_exits_2_and_writes_nothing(tmp_path, capsys):
    """Refused by the option parser (--lr is documented in (0, 10]) before any training; the
    divergence check of a learning rate inside that range is tested below."""
    out = tmp_path / "big.npz"
    argv = ["--dataset", "digits", "--epochs", "2", "--lr", "1e30", "--out", str(out)]
    code, _, err = _run(capsys, *argv)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("cosim train: error: argument --lr: 1e30 is outside (0, 10]")
    assert code == 2 and "Traceback" not in err
    assert not out.exists() and not (tmp_path / "big.ckpt.npz").exists()


def test_divergence_in_cli_keeps_the_checkpoint_and_resume_finishes(
    trained, tmp_path, capsys, monkeypatch
):
    """Epoch 2 diverges (its learning rate multiplied by 1e30): exit 2, one error line, no
    model, epoch 1's checkpoint intact; --resume then ends with the uninterrupted model."""
    import cosim.train.trainer as tr

    real_lr = tr.cosine_lr
    steps = -(-1438 // 64)  # digits: 1438 training samples, batch 64

    def exploding_lr(lr, step, total, warmup):
        return real_lr(lr, step, total, warmup) * (1e30 if step >= steps else 1.0)

    monkeypatch.setattr(tr, "cosine_lr", exploding_lr)
    out = tmp_path / "m.npz"
    ckpt = tmp_path / "m.ckpt.npz"
    argv = ["--dataset", "digits", "--epochs", "3", "--out", str(out)]
    code, stdout, err = _run(capsys, *argv)
    assert code == 2 and "Traceback" not in err and stdout == ""
    lines = err.strip().splitlines()
    errors = [ln for ln in lines if "error" in ln]
    assert errors == [lines[-1]] and lines[0].startswith("epoch   1/3"), err
    assert lines[-1].startswith("cosim train: error: training diverged in epoch 2/3: the ")
    assert "smaller" in lines[-1] and f"the checkpoint of epoch 1 is kept at {ckpt}" in lines[-1]
    assert not out.exists()
    arrays = read_npz(ckpt, "checkpoint")
    assert json.loads(str(arrays["meta"]))["state"]["epoch"] == 1
    assert all(np.all(np.isfinite(v)) for k, v in arrays.items() if k.startswith("p."))

    monkeypatch.undo()
    code, _, err = _run(capsys, *argv, "--resume")
    assert code == 0, err
    assert "epoch   1/3" not in err and "epoch   3/3" in err
    assert out.is_file() and not ckpt.exists()
    ref = load_model(trained / "m.npz")  # the same options, never interrupted
    for a, b in zip(ref.weight_layers, load_model(out).weight_layers, strict=True):
        assert np.array_equal(a.n_w, b.n_w) and np.array_equal(a.n_b, b.n_b)


def test_a_good_run_reports_finite_losses(trained):
    metrics = json.loads((trained / "m.json").read_text())
    assert all(
        np.isfinite(h["train_loss"]) and np.isfinite(h["test_loss"]) for h in metrics["history"]
    )
