"""Output files: cosim replaces only what is missing, empty or its own; writes are atomic,
follow the umask, serialize between processes, and every reader is bounded."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import struct
import subprocess
import sys
import textwrap
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from cosim.errors import CosimError, DataError, LibraryError
from cosim.fileio import (
    LIBRARY_MARKER,
    REPORT_MARKER,
    atomic_directory,
    atomic_path,
    check_output_dir,
    check_output_file,
    current_umask,
    is_cosim_file,
    npz_meta,
    npz_problem,
    open_regular,
    output_directory,
    png_metadata,
    png_software,
    read_json_bounded,
    save_npz_atomic,
    show_path,
    show_text,
    write_json_atomic,
    write_output_json,
    write_text_atomic,
)

ROOT = os.geteuid() == 0


def _tree(d: Path) -> dict[str, bytes | None]:
    """Every entry under ``d`` (files with their bytes), to show nothing was touched."""
    return {
        str(p.relative_to(d)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(d.rglob("*"))
    }


@pytest.fixture
def foreign(tmp_path):
    """A directory that is not cosim's: a thesis and notes."""
    d = tmp_path / "thesis"
    (d / "sub").mkdir(parents=True)
    (d / "thesis.tex").write_text("\\documentclass{article}")
    (d / "sub" / "notes.txt").write_text("notes")
    return d


def _library_dir(d: Path) -> Path:
    d.mkdir(parents=True)
    (d / LIBRARY_MARKER).write_text(json.dumps({"schema_version": 1, "cosim_version": "0"}))
    (d / "arrays.npz").write_bytes(b"")
    return d


def _lib(path):
    return check_output_dir(path, kind="library", marker=LIBRARY_MARKER)


def _report(path):
    return check_output_dir(path, kind="report", marker=REPORT_MARKER)


# ---------------------------------------------------------------------- check_output_dir
def test_output_dir_accepts_new_empty_and_own(tmp_path):
    assert _lib(tmp_path / "new") == tmp_path / "new"
    assert _lib(tmp_path / "a" / "b" / "c") == tmp_path / "a" / "b" / "c"
    (tmp_path / "empty").mkdir()
    assert _lib(tmp_path / "empty") == tmp_path / "empty"
    assert _lib(_library_dir(tmp_path / "lib")) == tmp_path / "lib"
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "fig.png").write_bytes(b"x")
    (rep / REPORT_MARKER).write_text(json.dumps({"written_by": "cosim 0.1.0"}))
    assert _report(rep) == rep
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "lib", "rep"]


def test_output_dir_accepts_a_report_with_cosims_report_json(tmp_path):
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "README.md").write_text("committed results")
    (rep / "report.json").write_text(json.dumps({"cosim_version": "0.1.0", "report_version": 1}))
    assert _report(rep) == rep
    (rep / "report.json").write_text(json.dumps({"title": "my own report"}))
    with pytest.raises(CosimError, match="is a non-empty directory that is not a cosim report"):
        _report(rep)


def test_committed_report_directory_is_accepted():
    committed = Path(__file__).parents[1] / "benchmarks" / "results" / "report"
    if not (committed / "report.json").is_file():
        pytest.skip("no committed report")
    assert _report(committed) == committed


def test_foreign_directory_is_refused_and_untouched(foreign):
    before = _tree(foreign)
    for check in (_lib, _report):
        with pytest.raises(CosimError) as exc:
            check(foreign)
        msg = str(exc.value)
        assert str(foreign) in msg and "\n" not in msg
        assert "not a cosim" in msg and "thesis.tex" in msg and "choose another path" in msg
    assert _tree(foreign) == before


@pytest.mark.parametrize("content", ["hello", "{}", '{"schema_version": 1}', "\xff"])
def test_a_foreign_file_named_like_the_marker_does_not_make_it_cosims(tmp_path, content):
    d = tmp_path / "d"
    d.mkdir()
    (d / LIBRARY_MARKER).write_text(content, encoding="latin-1")
    (d / "thesis.tex").write_text("x")
    with pytest.raises(CosimError, match="not a cosim library"):
        _lib(d)


def test_a_library_holding_foreign_files_is_not_replaced(tmp_path):
    d = _library_dir(tmp_path / "lib")
    (d / "notes.txt").write_text("mine")
    with pytest.raises(CosimError, match=r"also holds notes\.txt, which cosim did not write"):
        _lib(d)
    # a report is written into, not replaced: other files there are fine
    (d / REPORT_MARKER).write_text(json.dumps({"written_by": "cosim"}))
    assert _report(d) == d


def test_file_symlink_and_device_are_refused(tmp_path, foreign):
    f = tmp_path / "model.npz"
    f.write_bytes(b"data")
    with pytest.raises(CosimError, match=r"model\.npz is a file, not a directory"):
        _lib(f)
    with pytest.raises(CosimError, match="is a file, not a directory"):
        _report(f)
    assert f.read_bytes() == b"data"
    for target in (foreign, _library_dir(tmp_path / "lib"), tmp_path / "missing"):
        link = tmp_path / f"link-{target.name}"
        link.symlink_to(target)
        with pytest.raises(CosimError, match="is a symbolic link"):
            _lib(link)
        assert link.is_symlink()
    with pytest.raises(CosimError, match="is not a directory"):
        _lib("/dev/null")


def test_parent_that_is_a_file_or_unwritable(tmp_path, monkeypatch):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(CosimError, match=r"file is a file, not a directory"):
        _lib(f / "lib")
    with pytest.raises(CosimError, match=r"file is a file, not a directory"):
        _report(f / "a" / "b")
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if Path(p) == tmp_path else real_access(p, mode)
    )
    with pytest.raises(CosimError, match="no permission to write in"):
        _lib(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CosimError, match="no permission to write in"):
        _lib(tmp_path / "empty")


@pytest.mark.skipif(ROOT, reason="root may write anywhere")
def test_really_unwritable_parent(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(CosimError, match="no permission"):
            _lib(ro / "lib")
    finally:
        ro.chmod(0o700)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_a_directory_that_takes_no_files_is_refused_before_the_work(tmp_path):
    """access() says root may write in /proc, but no file can be created there: the probe
    finds out before any work (tests/test_fuzz.py sends every command's outputs there)."""
    with pytest.raises(CosimError, match="takes no new files"):
        check_output_file("/proc/cosim-out.json", kind="json")
    before = sorted(os.listdir(tmp_path))
    check_output_file(tmp_path / "new.json", kind="json")  # the probe leaves nothing behind
    assert sorted(os.listdir(tmp_path)) == before


def test_current_directory(tmp_path, foreign, monkeypatch):
    monkeypatch.chdir(foreign)
    for check in (_lib, _report):
        with pytest.raises(CosimError, match="not a cosim"):
            check(".")
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    with pytest.raises(CosimError, match="is the current directory or contains it"):
        _lib(".")
    assert _report(".") == Path(".")  # a report is written into ., not replaced
    lib = _library_dir(tmp_path / "lib")
    monkeypatch.chdir(lib)
    with pytest.raises(CosimError, match="is the current directory or contains it"):
        _lib(".")
    with pytest.raises(CosimError, match="is the current directory or contains it"):
        _lib(lib)
    assert empty.is_dir() and (lib / LIBRARY_MARKER).is_file()


def test_empty_path_is_an_error():
    with pytest.raises(CosimError, match="empty path"):
        _lib("")


# --------------------------------------------------------------------- check_output_file
def test_output_file_accepts_new_paths(tmp_path):
    for kind in ("json", "png", "model", "checkpoint"):
        assert check_output_file(tmp_path / f"x.{kind}", kind=kind) == tmp_path / f"x.{kind}"
        assert check_output_file(tmp_path / "new" / "dir" / "x", kind=kind)
    assert list(tmp_path.iterdir()) == []


def test_output_file_refuses_what_is_not_cosims(tmp_path, foreign):
    thesis = foreign / "thesis.tex"
    for kind in ("json", "png", "model", "checkpoint"):
        with pytest.raises(CosimError, match=r"exists and is not a .* that cosim wrote"):
            check_output_file(thesis, kind=kind)
        with pytest.raises(CosimError, match="is a directory"):
            check_output_file(foreign, kind=kind)
        with pytest.raises(CosimError, match="is not a regular file"):
            check_output_file("/dev/null", kind=kind)
        with pytest.raises(CosimError, match=r"thesis\.tex is a file, not a directory"):
            check_output_file(thesis / "m.npz", kind=kind)
    link = tmp_path / "out.json"
    link.symlink_to(thesis)
    with pytest.raises(CosimError, match="is a symbolic link"):
        check_output_file(link, kind="json")
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(CosimError, match="is a symbolic link"):
        check_output_file(dangling, kind="json")
    with pytest.raises(ValueError, match="unknown output file kind"):
        check_output_file(tmp_path / "x", kind="csv")


def test_json_written_by_cosim_is_recognised(tmp_path):
    out = tmp_path / "m.json"
    write_output_json(out, {"accuracy": np.float64(0.5), "written_by": "someone"})
    doc = json.loads(out.read_text())
    assert list(doc) == ["written_by", "accuracy"] and doc["written_by"].startswith("cosim ")
    assert check_output_file(out, kind="json") == out
    write_output_json(out, {"accuracy": 0.6})  # rewriting its own output
    assert json.loads(out.read_text())["accuracy"] == 0.6
    # the same file is not a model, and plain JSON is not cosim's
    with pytest.raises(CosimError, match="not a model file that cosim wrote"):
        check_output_file(out, kind="model")
    other = tmp_path / "other.json"
    write_json_atomic(other, {"accuracy": 0.5})
    with pytest.raises(CosimError, match="not a JSON output that cosim wrote"):
        write_output_json(other, {"a": 1})
    assert json.loads(other.read_text()) == {"accuracy": 0.5}
    with pytest.raises(TypeError, match="must be a dict"):
        write_output_json(tmp_path / "list.json", [1, 2])


def _meta_npz(path, meta, **arrays):
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    return path


def test_model_and_checkpoint_files_are_recognised(tmp_path):
    model = _meta_npz(tmp_path / "m.npz", {"format": "cosim-model", "format_version": 9})
    ckpt = _meta_npz(tmp_path / "m.ckpt.npz", {"checkpoint_version": 1}, x=np.zeros(3))
    assert check_output_file(model, kind="model") == model
    assert check_output_file(ckpt, kind="checkpoint") == ckpt
    with pytest.raises(CosimError, match="not a training checkpoint that cosim wrote"):
        check_output_file(model, kind="checkpoint")
    with pytest.raises(CosimError, match="not a model file that cosim wrote"):
        check_output_file(ckpt, kind="model")
    foreign = [
        _meta_npz(tmp_path / "f1.npz", {"format": "other"}),
        _meta_npz(tmp_path / "f2.npz", [1, 2]),
        tmp_path / "f3.npz",
        tmp_path / "f4.npz",
        tmp_path / "f5.npz",
    ]
    np.savez(foreign[2], meta=np.array([1.0, 2.0]))
    np.savez(foreign[3], x=np.zeros(2))
    with zipfile.ZipFile(foreign[4], "w") as zf:
        zf.writestr("meta.npy", b"not an npy file")
    assert npz_meta(foreign[0]) == {"format": "other"}
    for f in foreign[1:]:
        assert npz_meta(f) is None
    for f in foreign:
        with pytest.raises(CosimError, match="not a model file that cosim wrote"):
            check_output_file(f, kind="model")


def test_npz_meta_is_bounded_and_never_unpickles(tmp_path):
    big = tmp_path / "big.npz"
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as zf:
        # a compressed 'meta' that claims 64 MiB: refused from its zip header alone
        zf.writestr("meta.npy", b"\0" * (64 * 2**20))
    assert big.stat().st_size < 2**20
    assert npz_meta(big) is None
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, meta=np.array([{"format": "cosim-model"}], dtype=object))
    assert npz_meta(pickled) is None
    assert npz_meta("/dev/zero") is None and npz_meta(tmp_path) is None


def _png(chunks: list[tuple[bytes, bytes]]) -> bytes:
    out = b"\x89PNG\r\n\x1a\n"
    for ctype, data in chunks:
        crc = zlib.crc32(ctype + data) & 0xFFFFFFFF
        out += struct.pack(">I4s", len(data), ctype) + data + struct.pack(">I", crc)
    return out


def test_png_software_is_read_from_chunk_headers(tmp_path):
    ihdr = (b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    idat = (b"IDAT", zlib.compress(b"\0\0"))
    cases = {
        "text": ([ihdr, (b"tEXt", b"Software\0cosim 0.1.0"), idat, (b"IEND", b"")], "cosim 0.1.0"),
        "itxt": (
            [ihdr, idat, (b"iTXt", b"Software\0\0\0\0\0cosim \xc3\xa9"), (b"IEND", b"")],
            "cosim é",
        ),
        "other": ([ihdr, (b"tEXt", b"Software\0GIMP"), idat, (b"IEND", b"")], "GIMP"),
        "none": ([ihdr, (b"tEXt", b"Title\0cosim"), idat, (b"IEND", b"")], None),
    }
    for name, (chunks, want) in cases.items():
        p = tmp_path / f"{name}.png"
        p.write_bytes(_png(chunks))
        assert png_software(p) == want, name
        assert is_cosim_file(p, "png") == (want is not None and want.startswith("cosim"))
    # a chunk that claims more bytes than the file holds: not read, not a cosim file
    lying = tmp_path / "lying.png"
    lying.write_bytes(_png([ihdr])[:-4] + struct.pack(">I4s", 2**31 - 1, b"tEXt") + b"Soft")
    assert png_software(lying) is None
    assert png_software(tmp_path / "text.png") == "cosim 0.1.0"
    assert png_software("/dev/zero") is None


def test_matplotlib_png_with_png_metadata_is_cosims(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1), dpi=20)
    ax.plot([0, 1])
    ours, theirs = tmp_path / "ours.png", tmp_path / "theirs.png"
    with atomic_path(ours) as tmp:
        fig.savefig(tmp, format="png", metadata=png_metadata())
    fig.savefig(theirs, format="png")
    plt.close(fig)
    assert png_software(ours).startswith("cosim ")
    assert check_output_file(ours, kind="png") == ours
    with pytest.raises(CosimError, match="not a plot that cosim wrote"):
        check_output_file(theirs, kind="png")


# ------------------------------------------------------------------------ npz_problem
def _problem(path):
    with open(path, "rb") as fh:
        return npz_problem(fh, 2**20)


def test_npz_problem(tmp_path):
    ok = tmp_path / "ok.npz"
    np.savez(ok, a=np.arange(3.0), b=np.zeros((2, 2), dtype=np.int16))
    assert _problem(ok) is None
    empty = tmp_path / "empty.npz"
    np.savez(empty)
    assert _problem(empty) is None
    obj = tmp_path / "obj.npz"
    np.savez(obj, a=np.array([None, 1], dtype=object))
    assert "Python objects" in _problem(obj)
    big = tmp_path / "big.npz"
    np.savez(big, a=np.zeros(2**18))  # 2 MiB of arrays
    assert "exceed" in _problem(big)
    lying = tmp_path / "lying.npz"  # a header that claims 10**12 doubles, 24 bytes of data
    buf = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
    np.lib.format.write_array_header_1_0(buf, header)
    with zipfile.ZipFile(lying, "w") as zf:
        zf.writestr("a.npy", buf.getvalue() + bytes(24))
    assert "truncated" in _problem(lying)
    other = tmp_path / "other.npz"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("evil.py", "print(1)")
    assert "not an array" in _problem(other)
    text = tmp_path / "text.npz"
    text.write_text("not a zip")
    assert "not a zip" in _problem(text)


# ---------------------------------------------------------------------- atomic writing
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_writes_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        assert current_umask() == umask
        write_text_atomic(tmp_path / "new" / "a.txt", "x")
        write_json_atomic(tmp_path / "b.json", {})
        write_output_json(tmp_path / "c.json", {})
        save_npz_atomic(tmp_path / "d.npz", x=np.zeros(1))
        with atomic_directory(tmp_path / "lib", kind="library", marker=LIBRARY_MARKER) as tmp:
            (tmp / LIBRARY_MARKER).write_text(json.dumps({"cosim_version": "0"}))
    finally:
        os.umask(old)
    files = ["new/a.txt", "b.json", "c.json", "d.npz", "lib/library.json"]
    for f in files:
        assert stat.S_IMODE((tmp_path / f).stat().st_mode) == 0o666 & ~umask, f
    for d in ["new", "lib"]:
        assert stat.S_IMODE((tmp_path / d).stat().st_mode) == 0o777 & ~umask, d


def test_atomic_directory_replaces_only_its_own(tmp_path, foreign):
    def write(dest, text):
        with atomic_directory(dest, kind="library", marker=LIBRARY_MARKER) as tmp:
            (tmp / LIBRARY_MARKER).write_text(json.dumps({"cosim_version": text}))

    dest = tmp_path / "lib"
    write(dest, "1")
    write(dest, "2")
    assert json.loads((dest / LIBRARY_MARKER).read_text())["cosim_version"] == "2"
    before = _tree(foreign)
    with pytest.raises(CosimError, match="not a cosim library"):
        write(foreign, "3")
    assert _tree(foreign) == before
    # a foreign directory that appears while the library is built is not replaced either
    other = tmp_path / "other"
    with pytest.raises(CosimError, match="not a cosim library"):
        with atomic_directory(other, kind="library", marker=LIBRARY_MARKER) as tmp:
            (tmp / LIBRARY_MARKER).write_text(json.dumps({"cosim_version": "4"}))
            other.mkdir()
            (other / "mine.txt").write_text("mine")
    assert _tree(other) == {"mine.txt": b"mine"}
    # a failing write leaves neither its temporary directory nor the parents it created
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "x" / "y" / "lib", kind="library", marker=LIBRARY_MARKER):
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lib", "other", "thesis"]
    # an empty directory is replaced in place
    (tmp_path / "empty").mkdir()
    write(tmp_path / "empty", "5")
    assert (tmp_path / "empty" / LIBRARY_MARKER).is_file()


_STRESS = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from cosim.fileio import atomic_directory
    dest, go, n, me = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    while not go.exists():
        time.sleep(0.001)
    for i in range(n):
        with atomic_directory(dest, kind="stress", marker="m.json") as tmp:
            (tmp / "m.json").write_text(json.dumps({"written_by": "cosim", "who": me, "i": i}))
            (tmp / "payload").write_bytes(bytes(1000))
    """
)


def test_concurrent_writers_serialize_and_leave_nothing_behind(tmp_path):
    dest, go = tmp_path / "out" / "lib", tmp_path / "go"
    n = 200
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _STRESS, str(dest), str(go), str(n), str(k)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(2)
    ]
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["lib"]
    assert sorted(p.name for p in dest.iterdir()) == ["m.json", "payload"]
    doc = json.loads((dest / "m.json").read_text())
    assert doc["i"] == n - 1


def test_atomic_path_refuses_a_file_in_place_of_its_directory(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(CosimError, match="exists and is not a directory"):
        write_text_atomic(tmp_path / "f" / "g" / "x.txt", "y")
    assert (tmp_path / "f").read_text() == "x"


# ------------------------------------------------------------------- output_directory
def test_output_directory_undoes_only_what_it_created(tmp_path):
    new = tmp_path / "a" / "b" / "report"
    with pytest.raises(RuntimeError):
        with output_directory(new, kind="report", marker=REPORT_MARKER) as d:
            assert json.loads((d / REPORT_MARKER).read_text())["kind"] == "report"
            raise RuntimeError("invalid dataset")
    assert list(tmp_path.iterdir()) == []
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RuntimeError):
        with output_directory(empty, kind="report", marker=REPORT_MARKER):
            raise RuntimeError("boom")
    assert empty.is_dir() and list(empty.iterdir()) == []
    # work written before the failure is kept (with the marker: a rerun may resume)
    with pytest.raises(RuntimeError):
        with output_directory(new, kind="report", marker=REPORT_MARKER) as d:
            (d / "cache").mkdir()
            raise RuntimeError("late failure")
    assert sorted(p.name for p in new.iterdir()) == [REPORT_MARKER, "cache"]
    with output_directory(new, kind="report", marker=REPORT_MARKER) as d:
        (d / "report.md").write_text("done")
    assert (new / "report.md").is_file()


# ------------------------------------------------------------------ through the CLI
def _cli(argv, capsys):
    from cosim.cli import main

    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_characterize_never_replaces_what_is_not_a_library(tmp_path, foreign, capsys, monkeypatch):
    before = _tree(foreign)
    f = tmp_path / "model.npz"
    f.write_bytes(b"data")
    link = tmp_path / "link"
    link.symlink_to(foreign)
    for out, pattern in [
        (foreign, "is a non-empty directory that is not a cosim"),
        (f, "is a file, not a directory"),
        (f / "lib", "is a file, not a directory"),
        (link, "is a symbolic link"),
    ]:
        code, err = _cli(["characterize", "--quick", "--out", str(out)], capsys)
        assert code == 2 and pattern in err and str(out) in err, err
        assert err.startswith("cosim characterize: error: ") and err.count("\n") == 1
    monkeypatch.chdir(foreign)
    code, err = _cli(["characterize", "--quick", "--out", "."], capsys)
    assert code == 2 and "not a cosim" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    code, err = _cli(["characterize", "--quick", "--out", "."], capsys)
    assert code == 2 and "current directory" in err
    assert _tree(foreign) == before and f.read_bytes() == b"data" and link.is_symlink()
    assert empty.is_dir() and list(empty.iterdir()) == []


# ------------------------------------------------- odd paths and user text in messages
def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert msg and "\n" not in msg and "\r" not in msg, repr(msg)
    return msg


def test_show_text_escapes_what_would_break_a_line():
    assert show_text("plain/path with spaces-ünï") == "plain/path with spaces-ünï"
    assert show_text("new\nline") == "new\\nline"
    assert show_text("a\x00b\tc\r\u2028d") == "a\\x00b\\tc\\r\\u2028d"
    assert show_path(Path("x") / "a\nb") == "x/a\\nb"
    assert show_path(os.fsdecode(b"data-\xff")) == "data-\\udcff"
    assert show_path(b"a\nb") == "a\\nb"


NUL = "a\x00b"
LONG = "x" * 300  # longer than any file system's NAME_MAX (255 bytes)


@pytest.mark.parametrize("kind", ["json", "png", "model", "checkpoint"])
def test_output_file_that_no_file_can_have_is_one_line(tmp_path, kind):
    for path, pattern in [
        (tmp_path / NUL, r"a\\x00b.*NUL byte"),
        (str(tmp_path / NUL), r"a\\x00b.*NUL byte"),
        (tmp_path / LONG, "File name too long"),
        (tmp_path / LONG / "out", "File name too long"),
    ]:
        with pytest.raises(CosimError, match=pattern) as exc:
            check_output_file(path, kind=kind)
        assert str(tmp_path) in _one_line(exc)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("check", [_lib, _report])
def test_output_dir_that_no_directory_can_have_is_one_line(tmp_path, check):
    for path, pattern in [
        (tmp_path / NUL, r"a\\x00b.*NUL byte"),
        (tmp_path / LONG, "File name too long"),
        (tmp_path / LONG / "sub", "File name too long"),
    ]:
        with pytest.raises(CosimError, match=pattern) as exc:
            check(path)
        _one_line(exc)
    with pytest.raises(CosimError, match="NUL byte"):
        with output_directory(tmp_path / NUL, kind="report", marker=REPORT_MARKER):
            pass
    with pytest.raises(CosimError, match="NUL byte"):
        with atomic_directory(tmp_path / NUL, kind="library", marker=LIBRARY_MARKER):
            pass
    with pytest.raises(CosimError, match="NUL byte"):
        write_output_json(tmp_path / NUL, {"a": 1})
    assert list(tmp_path.iterdir()) == []


def test_readers_refuse_paths_no_file_can_have_with_the_callers_error(tmp_path):
    for path, pattern in [
        (tmp_path / NUL, r"a\\x00b holds a NUL byte"),
        (str(tmp_path / NUL), r"a\\x00b holds a NUL byte"),
        (tmp_path / LONG, r"cannot read library file .*x{300} \(File name too long\)"),
        (tmp_path / LONG / "library.json", r"\(File name too long\)"),
    ]:
        with pytest.raises(LibraryError, match=pattern) as exc:
            open_regular(path, max_bytes=100, what="library file", error=LibraryError)
        _one_line(exc)
        with pytest.raises(DataError, match=pattern.replace("library file", "file")) as exc:
            read_json_bounded(path, max_bytes=100, error=DataError)
        _one_line(exc)
        # the recognisers say "not cosim's" rather than raise
        for kind in ("json", "png", "model", "checkpoint"):
            assert is_cosim_file(path, kind) is False
        assert npz_meta(path) is None and png_software(path) is None


def test_messages_escape_newlines_in_paths_and_names(tmp_path):
    odd = tmp_path / "new\nline"
    odd.mkdir()
    (odd / "notes\nhere.txt").write_text("mine")
    (odd / "thesis.json").write_text("{}")
    for call, pattern in [
        (lambda: _lib(odd), r"new\\nline is a non-empty directory .*notes\\nhere\.txt"),
        (lambda: _report(odd / "thesis.json"), r"new\\nline/thesis\.json is a file"),
        (lambda: check_output_file(odd / "thesis.json", kind="json"), r"new\\nline/thesis"),
        (lambda: check_output_file(odd, kind="json"), r"new\\nline is a directory"),
        (lambda: check_output_file(odd / "thesis.json" / "x", kind="png"), r"new\\nline/"),
        (lambda: open_regular(odd / "gone\r", max_bytes=9), r"gone\\r does not exist"),
        (lambda: open_regular(odd, max_bytes=9), r"new\\nline is a directory"),
        (
            lambda: read_json_bounded(odd / "thesis.json", max_bytes=1),
            r"new\\nline/thesis\.json is 2 bytes",
        ),
    ]:
        with pytest.raises(CosimError, match=pattern) as exc:
            call()
        _one_line(exc)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ('{"x": 1' + "0" * 5000 + "}", r"integer of more than \d+ digits"),
        ('{"x": -' + "9" * 5000 + "}", r"integer of more than \d+ digits"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"a": [' * 50_000 + "]}" * 50_000, "nested too deeply"),
        ('{"a": 1,\n"b": }', r"is corrupt \(Expecting value: line 2"),
        ("\ufeff{}", "is corrupt"),
    ],
    ids=["5000-digit-int", "negative-5000-digit-int", "deep-lists", "deep-objects", "bad", "bom"],
)
def test_read_json_bounded_turns_every_parse_failure_into_the_callers_error(
    tmp_path, text, pattern
):
    f = tmp_path / "doc\n.json"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(LibraryError, match=pattern) as exc:
        read_json_bounded(f, max_bytes=2**20, what="library file", error=LibraryError)
    assert "doc\\n.json" in _one_line(exc)
    assert is_cosim_file(f, "json") is False  # "not cosim's", never an exception


def _npy(header: str, data: bytes = b"", version: int = 1) -> bytes:
    """A .npy member with the header text ``header`` taken as it is (padded as NumPy does)."""
    text = header.encode("latin-1")
    prefix = 10 if version == 1 else 12
    text += b" " * ((-(prefix + len(text) + 1)) % 64) + b"\n"
    size = struct.pack("<H", len(text)) if version == 1 else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + size + text + data


def _zip(tmp_path: Path, members: dict[str, bytes]) -> Path:
    path = tmp_path / "x.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for name, raw in members.items():
            zf.writestr(name, raw)
    return path


@pytest.mark.parametrize(
    ("header", "pattern"),
    [
        ("{'descr': '<i4', 'shape': (", "not a complete Python literal"),
        ("{'descr': '<i4', 'fortran_order': False, 'shape': (3,), ", "not a complete Python"),
        ("{'descr': '<i4', 'fortran_order': False, 'shape': (3L,), }", "damaged header"),
        ("{'descr': '<i4', 'fortran_order': False, 'shape': 'x' '\\d', }", "damaged header"),
        ("{'descr': '<i4', 'fortran_order': False, 'shape': (-3,), }", "negative dimension"),
        ("{'descr': '<i4', 'fortran_order': False, 'shape': (1e3,), }", "damaged header"),
        ("{'descr': '<i4', 'fortran_order': False, 'shape': " + "(" * 3000, "damaged header"),
        ("{'descr': '<i4', 'fortran_order': False, 'shape': " + "(" * 3000 + ")" * 3000 + "}",
         "damaged header"),
        ("{'descr': 'zz', 'fortran_order': False, 'shape': (3,), }", "damaged header"),
        ("{'descr': '<i4', 'fortran_order': 1, 'shape': (3,), }", "damaged header"),
        ("[1, 2]", "damaged header"),
        ("\u00ff", "damaged header"),
        ("{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }", "complex numbers"),
        ("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", "complex numbers"),
        ("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }", "records"),
        ("{'descr': '|V8', 'fortran_order': False, 'shape': (1,), }", "records"),
        ("{'descr': '<M8[s]', 'fortran_order': False, 'shape': (1,), }", "dates"),
        ("{'descr': '<m8[s]', 'fortran_order': False, 'shape': (1,), }", "dates"),
    ],
    ids=["incomplete", "unclosed-dict", "python2-long", "odd-escape", "negative", "float-dim",
         "deep-open", "deep", "bad-descr", "bad-order", "not-a-dict", "latin1", "complex128",
         "complex64", "record", "void", "datetime", "timedelta"],
)  # fmt: skip
def test_npz_problem_refuses_damaged_headers_and_non_real_arrays(tmp_path, header, pattern):
    """Nothing escapes and nothing is printed: every problem is one line."""
    for version in (1, 2):
        path = _zip(tmp_path, {"ok.npy": _npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", bytes(8)
        ), "bad\n.npy": _npy(header, bytes(64), version)})  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            problem = _problem(path)
        assert problem is not None and re.search(pattern, problem), problem
        assert "\n" not in problem and "'bad\\n.npy'" in problem, problem


def test_npz_problem_refuses_complex_arrays_numpy_wrote(tmp_path):
    path = tmp_path / "c.npz"
    np.savez(path, a=np.arange(3.0), b=np.array([1 + 2j, 3j]))
    assert _problem(path) == "array 'b.npy' holds complex numbers, not real ones"
    np.savez(path, a=np.arange(3.0), b=np.zeros(2, dtype=[("x", "<f8"), ("y", "<i4")]))
    assert "records" in _problem(path)
    np.savez(path, a=np.arange(3.0), b=np.array(["text"]), c=np.array([True]))
    assert _problem(path) is None


def test_npz_meta_with_a_damaged_header_is_none(tmp_path):
    bad = _zip(tmp_path, {"meta.npy": _npy("{'descr': '<U5', 'shape': (", b"x" * 20)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert npz_meta(bad) is None
        py2 = _zip(tmp_path, {"meta.npy": _npy(
            "{'descr': '<U2', 'fortran_order': False, 'shape': (1L,), }", b"{\0\0\0}\0\0\0"
        )})  # fmt: skip
        assert npz_meta(py2) is None
        beyond = _zip(tmp_path, {"meta.npy": _npy(
            "{'descr': '<U2', 'fortran_order': False, 'shape': (), }",
            (0x110000).to_bytes(4, "little") * 2,
        )})  # fmt: skip
        assert npz_meta(beyond) is None
        assert is_cosim_file(bad, "model") is False
    good = tmp_path / "good.npz"
    np.savez(good, meta=np.array(json.dumps({"format": "cosim-model"})))
    assert npz_meta(good) == {"format": "cosim-model"}
