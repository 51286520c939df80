"""Fuzzing in the test suite (issue 9, section 6): hostile cards, model files, libraries and
command lines, generated with hypothesis.

Properties
----------
Loaders (:func:`~cosim.card.load_card`, :func:`~cosim.model.load_model`,
:func:`~cosim.library.load_library`) fed a mutated valid input either return a *valid* object
(every field finite and in range, usable, round-tripping where documented) or raise their own
:class:`~cosim.errors.CosimError` subclass (``CardError``, ``ModelFileError``,
``LibraryError``) whose message is one line. Nothing else escapes, no warning is printed and
nothing hangs.

Commands (:func:`cosim.cli.main`, in-process, with random flags drawn from the real parser
and hostile values) exit 0, or exit 2 with exactly one line on stderr
(``cosim CMD: error: ...``). No exception escapes (argparse's ``SystemExit`` is the exit
status), nothing hangs, and no file outside the command's own outputs changes: a sentinel
directory of user files (foreign files and directories, a FIFO, links, the input cards,
models and libraries) is compared before and after every example.

Bounds
------
Every call runs under a wall-clock alarm (SIGALRM) and an address-space limit (RLIMIT_AS), so
a hang or a runaway allocation fails its example instead of stalling or exhausting the
machine. Commands never start long work: ``characterize`` and ``report`` always get a bad
card as their last ``--card`` (nothing is simulated), ``train`` and ``evaluate`` either get a
bad last input (dataset, model) or run on tiny ones (digits, one epoch; at most 20 test
samples, at most 3 chips, sweeps of at most 3 points, no ``--verify-spice``).

Examples are derandomized (the same ones every run; no example database). Linux only
(SIGALRM, /proc, FIFOs). The library tests mutate the committed quick library
(``committed_library``); nothing here runs ngspice.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import datetime as dt
import hashlib
import io
import json
import math
import os
import re
import resource
import shutil
import signal
import stat
import struct
import tomllib
import traceback
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from cosim.card import Card, default_card_text, load_card, parse_card
from cosim.cli import build_parser, main
from cosim.errors import CardError, LibraryError, ModelFileError
from cosim.library import BlockValidation, SurrogateLibrary, load_library
from cosim.model import SCHEMES, Model, PoolLayer, WeightLayer, load_model, save_model


def fuzz(max_examples: int) -> settings:
    """Deterministic, bounded hypothesis settings (each call has its own time limit)."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        print_blob=False,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.function_scoped_fixture,
        ],
    )


# ===================================================================== bounded calls
class ExampleTimeout(BaseException):
    """The call ran past its time limit (a hang). A BaseException: no ``except Exception``
    inside cosim may swallow it."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`ExampleTimeout` in the main thread after ``seconds``."""

    def alarm(signum: int, frame: object) -> None:
        raise ExampleTimeout(f"no result after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


#: Address space a call may add to the process: ample for any tiny input, small enough that
#: a runaway read or allocation fails fast (MemoryError) instead of exhausting the machine.
MEMORY_HEADROOM = 3 * 2**30


@contextlib.contextmanager
def memory_limit(headroom: int = MEMORY_HEADROOM) -> Iterator[None]:
    """Limit the address space to the current size plus ``headroom`` for the duration."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as fh:
        size = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = size + headroom
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _shown_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """The warnings a user of the command line would see (Python's default filters)."""
    hidden = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)
    seen, out = set(), []
    for w in caught:
        if issubclass(w.category, hidden) or "Unsupported Ngspice version" in str(w.message):
            continue
        key = (str(w.message), w.category, w.filename, w.lineno)
        if key not in seen:
            seen.add(key)
            out.append(warnings.formatwarning(w.message, w.category, w.filename, w.lineno))
    return out


def bounded(fn: Callable[[], Any], seconds: float) -> tuple[Any, BaseException | None, str]:
    """``fn()`` under the time and memory limits: (result, escaped exception, warnings)."""
    result, escaped = None, None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with memory_limit(), time_limit(seconds):
                result = fn()
        except BaseException as exc:  # every escape is a finding
            escaped = exc
    return result, escaped, "".join(_shown_warnings(caught))


def _tb(exc: BaseException, lines: int = 30) -> str:
    text = "".join(traceback.format_exception(exc)).rstrip("\n").split("\n")
    return "\n".join(text[-lines:])


def _clip(text: str, n: int = 1500) -> str:
    return text if len(text) <= n else text[:n] + f"... [{len(text) - n} more characters]"


def check_loader(
    what: str, fn: Callable[[], Any], error: type[Exception], valid: Callable[[Any], None]
) -> None:
    """The loader property: a valid object, or ``error`` with a one-line message; nothing
    else escapes, nothing hangs, no warning is shown."""
    obj, escaped, shown = bounded(fn, seconds=5)
    if escaped is not None and not isinstance(escaped, error):
        kind = "hung" if isinstance(escaped, ExampleTimeout) else "let an exception escape"
        pytest.fail(
            f"{what} {kind}: {type(escaped).__name__}: {_clip(str(escaped), 300)}\n{_tb(escaped)}"
        )
    assert not shown, f"{what} printed warnings:\n{shown}"
    if escaped is not None:
        msg = str(escaped)
        assert msg.strip(), f"{what} raised {type(escaped).__name__} with an empty message"
        assert "\n" not in msg, (
            f"{what} raised {type(escaped).__name__} with a multi-line message "
            f"(the command line prints it as one line):\n{_clip(msg)}"
        )
        return
    try:
        valid(obj)
    except AssertionError as exc:
        pytest.fail(f"{what} returned an invalid object: {exc}")


# ================================================================ hostile values
NAN, INF = float("nan"), float("inf")
#: Placeholders serialized as text no JSON/TOML encoder writes: an integer literal of 5000
#: digits (beyond Python's int/str conversion limit) and arrays nested 100 000 deep.
HUGE_INT = "\x00huge-int\x00"
DEEP = "\x00deep\x00"
_HUGE_TEXT = "1" + "0" * 5000
_DEEP_TEXT = "[" * 100_000 + "]" * 100_000

_COMMON_HOSTILE: list[Any] = [
    NAN, INF, -INF, 0, -1, 1, 2, 0.5, -0.0, 1e-300, 5e-324, 1e300, 1.7976931348623157e308,
    10**30, 2**63, 2**64, -(2**63) - 1, 10**400, -(10**400), True, False,
    "", "0", "1.5", "nan", "x", "a\nb", "٣", "😀", HUGE_INT, DEEP,
]  # fmt: skip
_JSON_ONLY: list[Any] = [
    None, "\ud800", [], {}, [0], [-1], [NAN], [10**400], [[]], {"x": 1}, {"$array": "nope"},
    {"$array": 0}, "x" * 5000,
]  # fmt: skip
_TOML_ONLY: list[Any] = [
    dt.date(2000, 1, 1), dt.time(12, 0), dt.datetime(2000, 1, 1, tzinfo=dt.UTC), [], {},
    [1, "a"], [[1, 2], [3]], {"x": 1}, [NAN], "pcm", "rram", "ideal", "PCM", " pcm",
]  # fmt: skip

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)

json_values = st.one_of(
    st.sampled_from(_COMMON_HOSTILE + _JSON_ONLY),
    st.integers(),
    st.floats(),
    _text,
    st.lists(st.integers(-3, 300), max_size=4),
).map(copy.deepcopy)  # fresh: an edit must never change the pool
toml_values = st.recursive(
    st.one_of(st.sampled_from(_COMMON_HOSTILE + _TOML_ONLY), st.integers(), st.floats(), _text),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=5,
).map(copy.deepcopy)


def _scaled(value: Any) -> st.SearchStrategy[Any]:
    """Plausible neighbours of a number: the mutation a careless edit makes."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return st.nothing()
    out: list[Any] = [value * f for f in (-1, 0, 2, 10, 1e6, 1e-6, 1.5)]
    if isinstance(value, int):
        out += [value + 1, value - 1, value * 1000]
    return st.sampled_from(out)


def dumps_json(obj: Any) -> str:
    """JSON text of ``obj`` (NaN and inf as Python writes them), placeholders expanded."""
    text = json.dumps(obj, allow_nan=True)
    for mark, repl in ((HUGE_INT, _HUGE_TEXT), (DEEP, _DEEP_TEXT)):
        text = text.replace(json.dumps(mark), repl)
    return text


# ---------------------------------------------------------------- JSON tree edits
def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _get(obj: Any, path: tuple) -> Any:
    for p in path:
        obj = obj[p]
    return obj


def _set(root: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    _get(root, path[:-1])[path[-1]] = value
    return root


TREE_EDITS = ("replace", "scale", "delete", "add key", "wrap in list", "as text", "empty")


def draw_tree_edits(data: Any, doc: Any, label: str, max_edits: int = 3) -> tuple[Any, list[str]]:
    """1..max_edits random edits of a JSON document; returns it and a description."""
    doc = copy.deepcopy(doc)
    done = []
    for _ in range(data.draw(st.integers(1, max_edits), label=f"{label}: edits")):
        path = data.draw(st.sampled_from(_paths(doc)), label=f"{label}: at")
        node = _get(doc, path)
        edit = data.draw(st.sampled_from(TREE_EDITS), label=f"{label}: edit")
        if edit == "scale" and isinstance(node, int | float) and not isinstance(node, bool):
            value = data.draw(_scaled(node), label="to")
            doc = _set(doc, path, value)
        elif edit == "delete" and path:
            parent = _get(doc, path[:-1])
            del parent[path[-1]]
            value = "<deleted>"
        elif edit == "add key" and isinstance(node, dict):
            key = data.draw(st.sampled_from(["junk", "", "$array", "kind", "format"]) | _text)
            value = data.draw(json_values, label="value")
            node[key] = value
            path = (*path, key)
        elif edit == "wrap in list":
            value = [node]
            doc = _set(doc, path, value)
        elif edit == "as text":
            value = json.dumps(node, allow_nan=True)
            doc = _set(doc, path, value)
        elif edit == "empty" and isinstance(node, dict | list):
            value = type(node)()
            doc = _set(doc, path, value)
        else:
            value = data.draw(json_values, label="value")
            doc = _set(doc, path, value)
        done.append(f"{label}{''.join(f'[{p!r}]' for p in path)} = {_clip(repr(value), 80)}")
    return doc, done


# ------------------------------------------------------------------ byte-level edits
BYTE_EDITS = ("truncate", "flip", "insert", "zero", "append", "overwrite head")
_BAD_BYTES = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\x00",
              b"\xef\xbb\xbf", b"PK\x03\x04", b"\x93NUMPY"]  # fmt: skip


def draw_byte_edit(data: Any, raw: bytes, label: str) -> tuple[bytes, str]:
    """One byte-level corruption of ``raw``."""
    edit = data.draw(st.sampled_from(BYTE_EDITS), label=f"{label}: byte edit")
    pos = data.draw(st.integers(0, len(raw)), label=f"{label}: at byte")
    if edit == "truncate":
        return raw[:pos], f"{label}: truncated to {pos} of {len(raw)} bytes"
    if edit == "flip" and pos < len(raw):
        x = data.draw(st.integers(1, 255), label="xor")
        return raw[:pos] + bytes([raw[pos] ^ x]) + raw[pos + 1 :], f"{label}: byte {pos} ^= {x}"
    if edit == "zero":
        n = data.draw(st.integers(1, 64), label="bytes")
        return raw[:pos] + b"\x00" * n + raw[pos + n :], f"{label}: {n} zero bytes at {pos}"
    if edit == "append":
        junk = data.draw(st.sampled_from(_BAD_BYTES) | st.binary(max_size=16), label="junk")
        return raw + junk, f"{label}: appended {junk!r}"
    if edit == "overwrite head":
        junk = data.draw(st.sampled_from(_BAD_BYTES) | st.binary(min_size=1, max_size=8))
        return junk + raw[len(junk) :], f"{label}: starts with {junk!r}"
    junk = data.draw(st.sampled_from(_BAD_BYTES) | st.binary(max_size=16), label="junk")
    return raw[:pos] + junk + raw[pos:], f"{label}: inserted {junk!r} at {pos}"


# ------------------------------------------------------------------- .npz editing
_DESCRS = ["<i2", "<i4", "<i8", "<f8", "<f2", "|b1", "|u1", "<U5", "|S5", "|O", "<c16", ">i2",
           "<M8[s]", "|V8", "<i2x", "junk", ""]  # fmt: skip
_DIMS = [0, 1, 2, 10, 64, 128, -1, 2**31, 2**40, 2**62, 2**64]


def _npy_with_header(member: bytes, header: str) -> bytes:
    """An .npy member with its header dictionary replaced (data bytes kept)."""
    major = member[6] if len(member) > 7 else 1
    start = 10 if major == 1 else 12
    try:
        (hlen,) = struct.unpack("<H" if major == 1 else "<I", member[8:start])
    except struct.error:
        hlen = 0
    data = member[start + hlen :]
    text = header.encode("latin-1", "replace")
    text += b" " * ((-(12 + len(text) + 1)) % 64) + b"\n"
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(text)) + text + data


def draw_npz_header_edit(data: Any, raw: bytes, label: str) -> tuple[bytes, str]:
    """Rewrite the .npy header (dtype, order, shape) of one member of an .npz (a byte edit
    if ``raw`` is no longer a readable zip)."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            members = {n: zf.read(n) for n in zf.namelist()}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error):
        return draw_byte_edit(data, raw, label)
    if not members:
        return draw_byte_edit(data, raw, label)
    name = data.draw(st.sampled_from(sorted(members)), label=f"{label}: member")
    if data.draw(st.booleans(), label="junk header"):
        header = data.draw(
            st.sampled_from(["", "{}", "junk", "{'descr': '<i2'}", "{'shape': (1,)}"]) | _text
        )
    else:
        descr = data.draw(st.sampled_from(_DESCRS), label="descr")
        order = data.draw(st.sampled_from(["False", "True", "'maybe'"]), label="fortran_order")
        shape = data.draw(st.lists(st.sampled_from(_DIMS), max_size=3), label="shape")
        dims = "".join(f"{d}, " for d in shape)
        header = f"{{'descr': '{descr}', 'fortran_order': {order}, 'shape': ({dims}), }}"
    members[name] = _npy_with_header(members[name], header)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for n, b in members.items():
            zf.writestr(n, b)
    return buf.getvalue(), f"{label}: member {name} header {header!r}"


def npz_bytes(arrays: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


_DTYPES = ["float64", "float32", "float16", "int8", "uint8", "int64", "uint64", "bool",
           "complex128", "U3", "S3", "object", "datetime64[s]"]  # fmt: skip
_ODD_VALUES = [2**40, -(2**40), 2**15, -(2**15) - 1, 2**31, 255, 16, 15, 8, 2, 1, 0, -1, 0.5,
               1e300]  # fmt: skip
ARRAY_EDITS = ("dtype", "non-finite", "value", "shape", "delete", "add", "swap")
_SHAPE_EDITS = ("flatten", "add axis", "transpose", "drop last", "empty", "scalar", "double")


def _astype(a: np.ndarray, dtype: str) -> np.ndarray:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dtype == "object":
            return np.array(a.tolist(), dtype=object)
        if dtype.startswith("datetime64"):
            return a.astype(np.int64).astype(dtype)
        return a.astype(dtype)


def _reshaped(a: np.ndarray, how: str) -> np.ndarray:
    if a.ndim == 0:
        a = a.reshape(1)
    if how == "flatten":
        return a.reshape(-1)
    if how == "add axis":
        return a[None]
    if how == "transpose":
        return a.T.copy()
    if how == "drop last":
        return a[:-1]
    if how == "empty":
        return a[:0]
    if how == "scalar":
        return np.array(a.flat[0] if a.size else 0, dtype=a.dtype)
    return np.concatenate([a.reshape(-1), a.reshape(-1)])


def draw_array_edit(
    data: Any, arrays: dict[str, np.ndarray], label: str, protect: tuple[str, ...] = ()
) -> tuple[dict[str, np.ndarray], str]:
    """One edit of the arrays of an .npz: dtype, NaN/inf, a value, the shape, a key."""
    arrays = dict(arrays)
    keys = sorted(k for k in arrays if k not in protect)
    key = data.draw(st.sampled_from(keys), label=f"{label}: array")
    edit = data.draw(st.sampled_from(ARRAY_EDITS), label=f"{label}: array edit")
    a = arrays[key]
    if edit == "dtype":
        dtype = data.draw(st.sampled_from(_DTYPES), label="dtype")
        try:
            arrays[key] = _astype(a, dtype)
        except (TypeError, ValueError, OverflowError, RuntimeError):  # NumPy cannot cast
            return arrays, f"{label}: {key} (no-op: cannot cast to {dtype})"
        return arrays, f"{label}: {key} cast to {dtype}"
    if edit == "shape":
        how = data.draw(st.sampled_from(_SHAPE_EDITS), label="shape edit")
        arrays[key] = _reshaped(a, how)
        return arrays, f"{label}: {key} {how} -> shape {arrays[key].shape}"
    if edit == "delete":
        del arrays[key]
        return arrays, f"{label}: {key} deleted"
    if edit == "add":
        new = data.draw(
            st.sampled_from(["junk", "L0.n_w", "L9.n_b", "L0.unipolar", f"{key}x", "meta2"])
        )
        arrays[new] = a
        return arrays, f"{label}: {key} also stored as {new}"
    if edit == "swap":
        other = data.draw(st.sampled_from(keys), label="with")
        arrays[key], arrays[other] = arrays[other], a
        return arrays, f"{label}: {key} and {other} swapped"
    if a.size == 0:
        return arrays, f"{label}: {key} (no-op: empty)"
    i = data.draw(st.integers(0, a.size - 1), label="element")
    if a.dtype.kind not in "biuf":
        return arrays, f"{label}: {key} (no-op: dtype {a.dtype})"
    if edit == "non-finite":
        new = a.astype(np.float64) if a.dtype.kind != "f" else a.copy()
        v = data.draw(st.sampled_from([NAN, INF, -INF]), label="value")
    elif a.dtype == bool:
        new, v = a.copy(), not bool(a.flat[i])
    else:
        new = a.astype(np.int64) if a.dtype.kind in "iu" else a.copy()
        v = data.draw(st.sampled_from(_ODD_VALUES), label="value")
        if isinstance(v, float) and new.dtype.kind != "f":
            new = new.astype(np.float64)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        new.flat[i] = v
    arrays[key] = new
    return arrays, f"{label}: {key}.flat[{i}] = {v!r} (dtype {new.dtype})"


# ====================================================================== the sentinel
def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (not following links): type, mode, content hash."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st_ = os.lstat(p)
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st_.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st_.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st_.st_mode))
            elif stat.S_ISREG(st_.st_mode):
                out[rel] = ("file", stat.S_IMODE(st_.st_mode), _sha(p))
            else:
                out[rel] = ("special", stat.S_IFMT(st_.st_mode), stat.S_IMODE(st_.st_mode))
    return out


def snapshot_diff(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    diffs = [f"removed: {k}" for k in sorted(set(before) - set(after))]
    diffs += [f"created: {k}" for k in sorted(set(after) - set(before))]
    diffs += [f"changed: {k}" for k in sorted(set(before) & set(after)) if before[k] != after[k]]
    return diffs


class BaseModel:
    """A trained model as bytes, its metadata and its arrays (not a dataclass: hypothesis
    would print every array of a failing example's arguments)."""

    def __init__(self, raw: bytes, meta: dict[str, Any], arrays: dict[str, np.ndarray]):
        self.raw, self.meta, self.arrays = raw, meta, arrays

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"BaseModel({self.meta.get('architecture')!r}, {len(self.raw)} bytes)"


class BaseLibrary:
    """The quick library's three files, parsed."""

    def __init__(
        self, doc: Any, validation: Any, arrays: dict[str, np.ndarray], raw: dict[str, bytes]
    ):
        self.doc, self.validation, self.arrays, self.raw = doc, validation, arrays, raw

    def __repr__(self) -> str:
        return f"BaseLibrary({len(self.arrays)} arrays)"


class World:
    """A sentinel directory of user files, a scratch area for per-example inputs, and an
    output area where commands may write. Tokens ``@name`` in arguments name paths here."""

    def __init__(self, root: Path, models: dict[str, BaseModel]):
        self.root, self.models = root, models
        self.library_source: Path | None = None
        self.counter = 0

    def __repr__(self) -> str:
        return f"World({str(self.root)!r})"

    @property
    def sentinel(self) -> Path:
        return self.root / "sentinel"

    @property
    def inputs(self) -> Path:
        return self.root / "inputs"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    @property
    def cwd(self) -> Path:
        return self.outputs / "cwd"

    # -- building ---------------------------------------------------------------------
    def build(self) -> None:
        """(Re)create the sentinel directory from scratch."""
        s = self.sentinel
        if s.exists():
            shutil.rmtree(s)
        s.mkdir(parents=True)
        (s / "notes.txt").write_text("my notes: cosim must never touch this file\n")
        (s / "data.csv").write_text("a,b\n1,2\n")
        (s / "foreign-dir").mkdir()
        (s / "foreign-dir" / "keep.txt").write_text("keep\n")
        (s / "empty-dir").mkdir()
        (s / "empty-file").write_bytes(b"")
        os.mkfifo(s / "fifo")
        os.symlink("/dev/zero", s / "link-dev-zero")
        os.symlink(s / "no-such-target", s / "dangling-link")
        text = default_card_text()
        (s / "card.toml").write_text(text)
        (s / "card-variant.toml").write_text(
            text.replace("read_noise_scale = 1.0", "read_noise_scale = 2.0")
        )
        (s / "card-physics.toml").write_text(
            text.replace("r_feedback_ohm = 50e3", "r_feedback_ohm = 60e3")
        )
        (s / "card-badkey.toml").write_text(text.replace("[adc]\n", "[adc]\nbogus = 1\n"))
        (s / "card-nan.toml").write_text(text.replace("v_ref_v = 1.0", "v_ref_v = nan"))
        raw = text.encode()
        (s / "card-nonutf8.toml").write_bytes(raw.replace(b"default-pcm", b"default-\xffpcm"))
        (s / "card-truncated.toml").write_bytes(raw[: len(raw) // 2])
        (s / "card-huge.toml").write_bytes(raw + b"#" * (1 << 20))
        for name, base in self.models.items():
            (s / f"{name}.npz").write_bytes(base.raw)
        digits = self.models["digits-global"].raw
        (s / "model-truncated.npz").write_bytes(digits[: len(digits) // 2])
        rng = np.random.default_rng(0)
        (s / "garbage.npz").write_bytes(b"PK\x03\x04" + rng.bytes(3000))
        if self.library_source is not None:
            self._build_libraries()

    def _build_libraries(self) -> None:
        s = self.sentinel
        assert self.library_source is not None
        shutil.copytree(self.library_source, s / "library")
        broken = s / "library-broken"
        shutil.copytree(self.library_source, broken)
        doc = (broken / "library.json").read_bytes()
        (broken / "library.json").write_bytes(doc[: len(doc) // 3])

    def add_library(self, source: Path) -> None:
        if self.library_source is None:
            self.library_source = source
            self._build_libraries()

    def reset_outputs(self) -> None:
        for d in (self.outputs, self.inputs):
            if d.exists():
                shutil.rmtree(d)
        self.cwd.mkdir(parents=True)
        (self.outputs / "empty-dir").mkdir()
        self.inputs.mkdir()

    # -- tokens -----------------------------------------------------------------------
    def path_for(self, name: str) -> str | None:
        s, o = self.sentinel, self.outputs
        if name.startswith("fresh"):
            self.counter += 1
            ext = {"fresh_json": ".json", "fresh_npz": ".npz", "fresh_png": ".png"}
            if name == "fresh_deep":
                return str(o / f"new-{self.counter}" / "a" / "b.json")
            return str(o / f"new-{self.counter}{ext.get(name, '')}")
        fixed = {
            "notes": s / "notes.txt",
            "foreign_dir": s / "foreign-dir",
            "empty_dir": s / "empty-dir",
            "empty_file": s / "empty-file",
            "fifo": s / "fifo",
            "link_dev_zero": s / "link-dev-zero",
            "dangling_link": s / "dangling-link",
            "missing": s / "no-such-file",
            "under_file": s / "notes.txt" / "x.json",
            "out_empty_dir": o / "empty-dir",
            "card": s / "card.toml",
            "card_variant": s / "card-variant.toml",
            "card_physics": s / "card-physics.toml",
            "card_badkey": s / "card-badkey.toml",
            "card_nan": s / "card-nan.toml",
            "card_nonutf8": s / "card-nonutf8.toml",
            "card_truncated": s / "card-truncated.toml",
            "card_huge": s / "card-huge.toml",
            "model": s / "digits-global.npz",
            "model_float": s / "digits-float.npz",
            "model_truncated": s / "model-truncated.npz",
            "garbage_npz": s / "garbage.npz",
            "library": s / "library",
            "library_broken": s / "library-broken",
            "newline_in": s / "new\nline.toml",
            "newline_out": o / "new\nline.json",
            "long": o / ("x" * 300),
        }
        literal = {
            "dev_zero": "/dev/zero",
            "dev_zero_sub": "/dev/zero/x.json",
            "proc_status": "/proc/self/status",
            "proc_out": "/proc/cosim-fuzz-out.json",  # access() says yes, creating says no
            "nul": str(s / "nul\x00byte"),
        }
        if name in fixed:
            return str(fixed[name])
        return literal.get(name)

    def resolve(self, token: str) -> str:
        return re.sub(r"@([a-z_]+)", lambda m: self.path_for(m.group(1)) or m.group(0), token)

    # -- the property -----------------------------------------------------------------
    def state(self) -> dict[str, tuple]:
        return {
            **{f"sentinel/{k}": v for k, v in snapshot(self.sentinel).items()},
            **{f"inputs/{k}": v for k, v in snapshot(self.inputs).items()},
        }

    def changes_since(self, before: dict[str, tuple]) -> list[str]:
        """What changed among the user files; the sentinel is rebuilt if anything did."""
        diffs = snapshot_diff(before, self.state())
        if diffs:
            self.build()
        return diffs


# ====================================================================== fixtures
@pytest.fixture(scope="module")
def base_models(tmp_path_factory) -> dict[str, BaseModel]:
    """Three small trained models (quantized MLP, float MLP, LeNet-5 with pooling)."""
    from .engine_models import trained

    d = tmp_path_factory.mktemp("fuzz-models")
    out = {}
    for name in ("digits-global", "digits-float", "fashion-lenet"):
        p = d / f"{name}.npz"
        save_model(trained(name), p)
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays.pop("meta")))
        out[name] = BaseModel(p.read_bytes(), meta, arrays)
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory, base_models) -> World:
    w = World(tmp_path_factory.mktemp("fuzz-world"), base_models)
    w.build()
    w.reset_outputs()
    return w


@pytest.fixture(scope="module")
def world_lib(world, committed_library) -> World:
    world.add_library(committed_library.path)
    return world


@pytest.fixture(scope="module")
def base_library(committed_library) -> BaseLibrary:
    p = committed_library.path
    raw = {n: (p / n).read_bytes() for n in ("library.json", "validation.json", "arrays.npz")}
    with np.load(p / "arrays.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return BaseLibrary(
        json.loads(raw["library.json"]), json.loads(raw["validation.json"]), arrays, raw
    )


# ================================================================= validity checks
def check_card_valid(card: Any) -> None:
    """Every field of its documented type, finite and in range; ``to_toml`` loads back."""
    assert isinstance(card, Card), f"load_card returned {type(card).__name__}"
    assert isinstance(card.name, str) and card.name, f"card name {card.name!r}"
    for f_sec in dataclasses.fields(card):
        if f_sec.name == "name":
            continue
        sec = getattr(card, f_sec.name)
        for f in dataclasses.fields(sec):
            v, meta, key = getattr(sec, f.name), f.metadata, f"{f_sec.name}.{f.name}"
            if "choices" in meta:
                assert v in meta["choices"], f"{key} = {v!r}"
            elif "range" in meta:
                want = int if f.type in ("int", int) else float
                assert type(v) is want, f"{key} = {v!r} is not {want.__name__}"
                lo, hi = meta["range"]
                assert math.isfinite(v) and lo <= v <= hi, f"{key} = {v!r} outside [{lo}, {hi}]"
                assert not (meta.get("lo_open") and v == lo), f"{key} = {v!r} at open bound"
            else:
                assert type(v) is bool, f"{key} = {v!r} is not a bool"
    try:
        again = parse_card(card.to_toml(), "the card's own to_toml()")
    except CardError as exc:
        pytest.fail(f"load_card accepted a card whose to_toml() does not load back: {exc}")
    assert again.hash() == card.hash(), "to_toml() round trip changed the card"


def check_model_valid(model: Any) -> None:
    """Documented types, finite values, and the model runs: logits of the right shape."""
    from cosim.model import float_forward, integer_forward

    assert isinstance(model, Model), f"load_model returned {type(model).__name__}"
    assert model.scheme in SCHEMES
    assert isinstance(model.architecture, str), f"architecture {model.architecture!r}"
    assert type(model.n_classes) is int and model.n_classes >= 1, f"n_classes {model.n_classes!r}"
    hi = model.input_hi
    assert isinstance(hi, float) and math.isfinite(hi) and hi > 0, f"input_hi {hi!r}"
    assert isinstance(model.info, dict), f"info is {type(model.info).__name__}, not a dict"
    for i, lay in enumerate(model.layers):
        if isinstance(lay, PoolLayer):
            assert lay.kind in ("avgpool2d", "maxpool2d") and lay.size >= 1, f"layer {i}: {lay}"
        if not isinstance(lay, WeightLayer):
            continue
        if lay.kind == "conv2d":
            k, s, p = lay.kernel, lay.stride, lay.padding
            assert k >= 1 and s >= 1 and p >= 0, f"layer {i}: kernel {k} stride {s} pad {p}"
        assert lay.unipolar.dtype == bool and lay.unipolar.shape == (lay.out_shape[0],)
        for arr in (lay.weights(), lay.biases()):
            assert np.all(np.isfinite(arr)), f"layer {i} holds non-finite weights or biases"
    size = math.prod(model.preprocessing.input_shape)
    assert 1 <= size <= 10**6, f"input shape {model.preprocessing.input_shape}"
    prep = model.preprocessing
    x = np.stack(
        [
            np.full(prep.input_shape, prep.offset),
            np.full(prep.input_shape, prep.offset + prep.scale),
        ]
    )
    forward = integer_forward if model.quantized else float_forward
    logits = forward(model, x).logits
    assert logits.shape == (2, model.n_classes), f"logits of shape {logits.shape}"
    assert np.all(np.isfinite(logits)), "the model computes non-finite logits"


def _numbers(obj: Any) -> Iterator[float]:
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, np.ndarray) and obj.dtype.kind in "iuf":
        yield from obj.astype(np.float64).reshape(-1)
    elif isinstance(obj, int | float | np.number) and not isinstance(obj, bool):
        try:
            yield float(obj)
        except OverflowError:  # an integer beyond any float: no usable number either
            yield INF


def check_library_valid(lib: Any) -> None:
    """Documented types; every number of the surrogates and their extras finite."""
    assert isinstance(lib, SurrogateLibrary), f"load_library returned {type(lib).__name__}"
    assert isinstance(lib.card, Card)
    assert isinstance(lib.meta, dict) and isinstance(lib.surrogates, dict)
    assert isinstance(lib.validation, dict), f"validation is {type(lib.validation).__name__}"
    for name, record in lib.validation.items():
        assert isinstance(record, BlockValidation), f"validation of {name}: {type(record)}"
        assert isinstance(record.n_heldout, int) and record.n_heldout >= 0
    for name, sur in lib.surrogates.items():
        assert all(math.isfinite(v) for v in _numbers(sur.to_dict())), f"block {name}: NaN/inf"
    for name, extra in lib.extras.items():
        assert isinstance(extra, dict), f"extras of {name} is {type(extra).__name__}"
        assert all(math.isfinite(v) for v in _numbers(extra)), f"extras of {name}: NaN/inf"


# ======================================================================== cards
def _card_doc() -> dict[str, Any]:
    return tomllib.loads(default_card_text())


def _ranges() -> dict[tuple[str, str], tuple[float, float, bool]]:
    card = load_card()
    out = {}
    for f_sec in dataclasses.fields(card):
        if f_sec.name == "name":
            continue
        for f in dataclasses.fields(getattr(card, f_sec.name)):
            if "range" in f.metadata:
                is_int = f.type in ("int", int)
                out[(f_sec.name, f.name)] = (*f.metadata["range"], is_int)
    return out


def _boundaries(lo: float, hi: float, is_int: bool) -> list[Any]:
    if is_int:
        return [int(lo), int(hi), int(lo) - 1, int(hi) + 1, int(hi) * 10, -int(hi)]
    return [lo, hi, math.nextafter(lo, -INF), math.nextafter(hi, INF), hi * 10, -hi, hi * 1e300]


def toml_key(k: str) -> str:
    return toml_str(k)


def toml_str(s: str) -> str:
    esc = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b",
           "\f": "\\f"}  # fmt: skip
    out = []
    for ch in s:
        if ch in esc:
            out.append(esc[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(v: Any) -> str:
    """TOML text of a value (placeholders expanded; NaN and inf as TOML spells them)."""
    if v is True or v is False:
        return "true" if v else "false"
    if v == HUGE_INT:
        return _HUGE_TEXT
    if v == DEEP:
        return _DEEP_TEXT
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return toml_str(v)
    if isinstance(v, dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML for {v!r}")


def toml_dumps(doc: dict[str, Any]) -> str:
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for sec, table in doc.items():
        if isinstance(table, dict):
            lines.append(f"\n[{toml_key(sec)}]")
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


CARD_EDITS = ("set", "boundary", "scale", "name", "delete key", "delete table", "add key",
              "add table", "replace table")  # fmt: skip
_NAMES = ["", " ", "😀", "a\nb", 'say "hi"', "back\\slash", "\x7f", "\x00", "\u2028", "\ud800",
          "x" * 5000, "tab\there", "ünïcödé", "[device]"]  # fmt: skip
_TEXT_JUNK = ["\x00", "[", "]", "=", '"', "[device]\n", "x = 1\n", "\n[[device]]\n", "\ufeff",
              "'''", "#", "\r", "\\", "\n[card]\n", "a.b.c = 1\n"]  # fmt: skip


def draw_card_bytes(data: Any) -> tuple[bytes, list[str]]:
    """A mutated default card: structural edits, then maybe text and byte edits."""
    doc, done = _card_doc(), []
    ranges = _ranges()
    for _ in range(data.draw(st.integers(1, 3), label="card edits")):
        edit = data.draw(st.sampled_from(CARD_EDITS), label="card edit")
        sections = sorted(doc)
        if edit in ("boundary", "scale"):
            sec, key = data.draw(st.sampled_from(sorted(ranges)), label="field")
            lo, hi, is_int = ranges[(sec, key)]
            old = doc[sec].get(key) if isinstance(doc.get(sec), dict) else None
            numeric = isinstance(old, int | float) and not isinstance(old, bool)
            if edit == "scale" and numeric:
                pool = _scaled(old)
            else:
                pool = st.sampled_from(_boundaries(lo, hi, is_int))
            value = data.draw(pool, label="value")
            if not isinstance(doc.get(sec), dict):
                doc[sec] = {}
            doc[sec][key] = value
            done.append(f"{sec}.{key} = {value!r}")
            continue
        if edit == "name":
            if not isinstance(doc.get("card"), dict):
                doc["card"] = {}
            doc["card"]["name"] = data.draw(st.sampled_from(_NAMES) | _text, label="card.name")
            done.append(f"card.name = {doc['card']['name']!r}")
            continue
        junk_names = st.sampled_from(["junk", "", "Device", "card ", "a.b"]) | _text
        sec = data.draw(st.sampled_from(sections) | junk_names, label="table")
        table = doc.get(sec)
        keys = sorted(table) if isinstance(table, dict) else []
        if edit == "delete table" and sec in doc:
            del doc[sec]
            done.append(f"[{sec}] deleted")
        elif edit == "replace table":
            doc[sec] = data.draw(toml_values, label="value")
            done.append(f"[{sec}] replaced by {doc[sec]!r}")
        elif edit == "add table":
            doc[sec] = data.draw(st.dictionaries(_text, toml_values, max_size=3), label="table")
            done.append(f"[{sec}] = {doc[sec]!r}")
        elif edit == "delete key" and keys:
            key = data.draw(st.sampled_from(keys), label="key")
            del table[key]  # type: ignore[union-attr]
            done.append(f"{sec}.{key} deleted")
        else:
            pool = st.sampled_from(keys) | junk_names if keys else junk_names
            key = data.draw(pool, label="key")
            value = data.draw(toml_values, label="value")
            if not isinstance(doc.get(sec), dict):
                doc[sec] = {}
            doc[sec][key] = value
            done.append(f"{sec}.{key!r} = {_clip(repr(value), 80)}")
    text = toml_dumps(doc)
    if data.draw(st.booleans(), label="text edit"):
        pos = data.draw(st.integers(0, len(text)), label="at char")
        if data.draw(st.booleans(), label="truncate"):
            text = text[:pos]
            done.append(f"text truncated at {pos}")
        else:
            junk = data.draw(st.sampled_from(_TEXT_JUNK) | _text, label="junk")
            text = text[:pos] + junk + text[pos:]
            done.append(f"inserted {junk!r} at char {pos}")
    raw = text.encode("utf-8", "surrogatepass")
    enc = data.draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "bytes"]))
    if enc == "utf-8-sig":
        raw = b"\xef\xbb\xbf" + raw
    elif enc == "utf-16":
        raw = text.encode("utf-16", "surrogatepass")
    elif enc == "bytes":
        raw, what = draw_byte_edit(data, raw, "card")
        done.append(what)
    if enc != "utf-8":
        done.append(f"encoding {enc}")
    return raw, done


@fuzz(500)
@given(data=st.data())
def test_load_card_mutated(tmp_path_factory, data):
    """Random keys, tables, types, boundary and hostile values (NaN, inf, huge, negative,
    strings, arrays, dates), truncation, junk text, BOM, UTF-16 and invalid UTF-8."""
    raw, done = draw_card_bytes(data)
    path = tmp_path_factory.getbasetemp() / "fuzz-card.toml"
    path.write_bytes(raw)
    note = "; ".join(done)
    check_loader(f"load_card [{_clip(note, 600)}]", lambda: load_card(path), CardError,
                 check_card_valid)  # fmt: skip


def test_default_card_is_valid():
    """The validity check itself accepts the card that ships with cosim."""
    check_card_valid(load_card())
    check_card_valid(parse_card(toml_dumps(_card_doc())))


# ======================================================================== models
def _model_file(meta_text: Any, arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz with ``meta`` (a str becomes the 0-d unicode array) and ``arrays``."""
    out = dict(arrays)
    if meta_text is not None:
        out["meta"] = np.array(meta_text) if isinstance(meta_text, str) else meta_text
    return npz_bytes(out)


META_FORMS = ("json", "json", "json", "bytes", "1-d", "missing", "int", "truncated text",
              "not an object", "BOM", "deep", "huge int")  # fmt: skip


def draw_model_bytes(data: Any, base: BaseModel, what: str) -> tuple[bytes, list[str]]:
    """A mutated model file: metadata edits, array edits, or byte-level corruption."""
    done: list[str] = []
    if what == "meta":
        meta, done = draw_tree_edits(data, base.meta, "meta")
        text = dumps_json(meta)
        form = data.draw(st.sampled_from(META_FORMS), label="meta form")
        meta_arr: Any = text
        if form == "bytes":
            meta_arr = np.array(text.encode("utf-8", "surrogatepass"))
        elif form == "1-d":
            meta_arr = np.array([text])
        elif form == "missing":
            meta_arr = None
        elif form == "int":
            meta_arr = np.array(1)
        elif form == "truncated text":
            meta_arr = text[: data.draw(st.integers(0, len(text)), label="meta chars")]
        elif form == "not an object":
            meta_arr = data.draw(st.sampled_from(["[]", "null", '"x"', "1", "NaN", ""]))
        elif form == "BOM":
            meta_arr = "\ufeff" + text
        elif form == "deep":
            meta_arr = text.replace('"layers": ', f'"layers": {_DEEP_TEXT}, "x": ', 1)
        elif form == "huge int":
            meta_arr = text.replace('"n_classes": ', f'"n_classes": {_HUGE_TEXT}, "y": ', 1)
        if form != "json":
            done.append(f"meta stored as {form}")
        return _model_file(meta_arr, base.arrays), done
    if what == "arrays":
        arrays = dict(base.arrays)
        for _ in range(data.draw(st.integers(1, 2), label="array edits")):
            arrays, note = draw_array_edit(data, arrays, "npz")
            done.append(note)
        return _model_file(dumps_json(base.meta), arrays), done
    raw = base.raw
    if data.draw(st.booleans(), label="npy header edit"):
        raw, note = draw_npz_header_edit(data, raw, "npz")
    else:
        raw, note = draw_byte_edit(data, raw, "npz")
    return raw, [note]


_MODEL_NAMES = ("digits-global", "digits-float", "fashion-lenet")


def _check_model_bytes(tmp_path_factory, raw: bytes, done: list[str], name: str) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz-model.npz"
    path.write_bytes(raw)
    note = f"{name}: " + "; ".join(done)
    check_loader(f"load_model [{_clip(note, 600)}]", lambda: load_model(path), ModelFileError,
                 check_model_valid)  # fmt: skip


@fuzz(400)
@given(data=st.data())
def test_load_model_mutated_metadata(tmp_path_factory, base_models, data):
    """Metadata fields of wrong type, NaN, inf, huge, negative, missing or extra; the
    ``meta`` entry as bytes, 1-d, missing, truncated, nested 100 000 deep, with a BOM."""
    name = data.draw(st.sampled_from(_MODEL_NAMES), label="model")
    raw, done = draw_model_bytes(data, base_models[name], "meta")
    _check_model_bytes(tmp_path_factory, raw, done, name)


@fuzz(300)
@given(data=st.data())
def test_load_model_mutated_arrays(tmp_path_factory, base_models, data):
    """Arrays of another dtype (float, complex, strings, objects, dates), NaN/inf, values
    off the grid, other shapes, missing, extra or swapped."""
    name = data.draw(st.sampled_from(_MODEL_NAMES), label="model")
    raw, done = draw_model_bytes(data, base_models[name], "arrays")
    _check_model_bytes(tmp_path_factory, raw, done, name)


@fuzz(300)
@given(data=st.data())
def test_load_model_mutated_bytes(tmp_path_factory, base_models, data):
    """Truncation, flipped, inserted and zeroed bytes, and rewritten .npy headers (dtype,
    order, shapes up to 2**64) inside the .npz."""
    name = data.draw(st.sampled_from(_MODEL_NAMES), label="model")
    raw, done = draw_model_bytes(data, base_models[name], "bytes")
    _check_model_bytes(tmp_path_factory, raw, done, name)


def test_trained_models_are_valid(tmp_path_factory, base_models):
    """The validity check itself accepts the unmodified models."""
    for name, base in base_models.items():
        _check_model_bytes(tmp_path_factory, base.raw, ["unmodified"], name)


# ===================================================================== libraries
LIB_FILES = ("library.json", "validation.json", "arrays.npz")
LIB_EDITS = ("library.json", "library.json", "validation.json", "arrays", "bytes", "file kind",
             "arrays_file")  # fmt: skip
FILE_KINDS = ("missing", "directory", "fifo", "link to /dev/zero", "dangling link", "empty")
_ARRAYS_FILES = ["/dev/zero", "../arrays.npz", "", ".", "library.json", "validation.json",
                 "/proc/self/status", "nope.npz", "fifo", 5, None, ["arrays.npz"],
                 "\x00"]  # fmt: skip


def _rehash(doc: Any) -> None:
    """Store the hash of the (edited) card, so that the edit is not caught by the hash."""
    with contextlib.suppress(Exception):
        doc["card_hash"] = Card.from_dict(doc["card"]).physics_hash()


def draw_library_files(data: Any, base: BaseLibrary) -> tuple[dict[str, Any], list[str]]:
    """The files of a mutated library: name -> bytes, or a FILE_KINDS string."""
    files: dict[str, Any] = dict(base.raw)
    doc, validation, arrays = base.doc, base.validation, base.arrays
    done: list[str] = []
    for _ in range(data.draw(st.integers(1, 2), label="library edits")):
        edit = data.draw(st.sampled_from(LIB_EDITS), label="library edit")
        if edit == "library.json":
            doc, notes = draw_tree_edits(data, doc, "library.json")
            if isinstance(doc, dict) and data.draw(st.booleans(), label="rehash card"):
                _rehash(doc)
                notes.append("card_hash recomputed")
            files["library.json"] = dumps_json(doc).encode()
            done += notes
        elif edit == "validation.json":
            validation, notes = draw_tree_edits(data, validation, "validation.json")
            files["validation.json"] = dumps_json(validation).encode()
            done += notes
        elif edit == "arrays":
            arrays, note = draw_array_edit(data, arrays, "arrays.npz")
            files["arrays.npz"] = npz_bytes(arrays)
            done.append(note)
        elif edit == "arrays_file" and isinstance(doc, dict):
            doc = dict(doc)
            where = data.draw(st.sampled_from(_ARRAYS_FILES), label="arrays_file")
            doc["arrays_file"] = copy.deepcopy(where)
            files["library.json"] = dumps_json(doc).encode()
            done.append(f"library.json['arrays_file'] = {doc['arrays_file']!r}")
        elif edit == "file kind":
            name = data.draw(st.sampled_from(LIB_FILES), label="file")
            files[name] = data.draw(st.sampled_from(FILE_KINDS), label="replaced by")
            done.append(f"{name} is {files[name]}")
        else:
            name = data.draw(st.sampled_from(LIB_FILES), label="file")
            raw = files[name] if isinstance(files[name], bytes) else base.raw[name]
            if name == "arrays.npz" and data.draw(st.booleans(), label="npy header edit"):
                files[name], note = draw_npz_header_edit(data, raw, name)
            else:
                files[name], note = draw_byte_edit(data, raw, name)
            done.append(note)
    return files, done


def write_library(dest: Path, files: dict[str, Any]) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    os.mkfifo(dest / "fifo")  # a target for arrays_file = "fifo"
    for name, content in files.items():
        p = dest / name
        if isinstance(content, bytes):
            p.write_bytes(content)
        elif content == "directory":
            p.mkdir()
        elif content == "fifo":
            os.mkfifo(p)
        elif content == "link to /dev/zero":
            os.symlink("/dev/zero", p)
        elif content == "dangling link":
            os.symlink(dest / "no-such-target", p)
        elif content == "empty":
            p.write_bytes(b"")


@fuzz(400)
@given(data=st.data())
def test_load_library_mutated(tmp_path_factory, base_library, data):
    """library.json and validation.json edits (types, NaN, inf, huge, missing keys, the card
    with its hash recomputed, $array references, arrays_file pointing anywhere), arrays.npz
    edits (dtype, shape, NaN, keys, .npy headers), truncation, invalid UTF-8, and files
    replaced by a directory, a FIFO, a link to /dev/zero or nothing."""
    files, done = draw_library_files(data, base_library)
    with_card = data.draw(st.booleans(), label="with the default card")
    dest = tmp_path_factory.getbasetemp() / "fuzz-library"
    write_library(dest, files)
    card = load_card() if with_card else None
    note = "; ".join(done) + ("; card=default card" if with_card else "")
    check_loader(f"load_library [{_clip(note, 600)}]", lambda: load_library(dest, card),
                 LibraryError, check_library_valid)  # fmt: skip


def test_committed_library_is_valid(committed_library):
    """The validity check itself accepts the unmodified library."""
    check_loader("load_library", lambda: load_library(committed_library.path), LibraryError,
                 check_library_valid)  # fmt: skip


# ================================================================== command lines
@dataclass(frozen=True)
class Flag:
    """One option of a sub-command, as its parser defines it."""

    flag: str
    dest: str
    kind: str  # switch, number, choice, text, path-in, path-out, help
    choices: tuple[str, ...] = ()


PATH_OUT = {"out", "json", "plot", "cache_dir"}
PATH_IN = {"card", "library"}


def command_flags(command: str) -> list[Flag]:
    """The real options of ``cosim COMMAND``, from :func:`cosim.cli.build_parser`."""
    parser, _ = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = []
    for a in sub.choices[command]._actions:
        if not a.option_strings:
            continue
        flag = max(a.option_strings, key=len)
        if isinstance(a, argparse._HelpAction):
            kind = "help"
        elif a.nargs == 0:
            kind = "switch"
        elif a.choices:
            kind = "choice"
        elif a.dest in PATH_OUT:
            kind = "path-out"
        elif a.dest in PATH_IN or a.type is Path:
            kind = "path-in"
        elif a.type in (None, str):
            kind = "text"
        else:
            kind = "number"
        out.append(Flag(flag, a.dest, kind, tuple(a.choices or ())))
    return out


NUMBERS = ["nan", "NaN", "-nan", "inf", "+inf", "-inf", "Infinity", "-1", "0", "1", "2", "3",
           "7", "8", "9", "16", "17", "0.5", "1.5", "-0.0", "1e300", "-1e300", "1e-300", "1e309",
           "3.2e8", "3.2e9", str(2**31), str(2**32 - 1), str(2**32), str(2**63), str(2**64),
           "9" * 400, "9" * 5000, "0x10", "1_000", "١٢", " 5", "5 ", "", " ", "abc", "1\n2",
           "10000", "100001"]  # fmt: skip
OUT_PATHS = ["@fresh_json", "@fresh_npz", "@fresh_png", "@fresh_dir", "@fresh_deep",
             "@out_empty_dir", "@notes", "@foreign_dir", "@fifo", "@link_dev_zero",
             "@dangling_link", "@under_file", "@dev_zero_sub", "@nul", "@long", "@newline_out",
             "@proc_out", "", "."]  # fmt: skip
BAD_CARDS = ["@card_badkey", "@card_nan", "@card_nonutf8", "@card_truncated", "@card_huge",
             "@notes", "@empty_file", "@foreign_dir", "@empty_dir", "@missing", "@fifo",
             "@link_dev_zero", "@dangling_link", "@dev_zero", "@proc_status", "@nul", "@long",
             "@model", "@under_file", "@newline_in", ""]  # fmt: skip
BAD_MODELS = ["@model_truncated", "@garbage_npz", "@notes", "@empty_file", "@foreign_dir",
              "@empty_dir", "@missing", "@fifo", "@link_dev_zero", "@dangling_link",
              "@dev_zero", "@proc_status", "@nul", "@long", "@card", "@under_file",
              "@newline_in", ""]  # fmt: skip
IN_PATHS = ["@card", "@card_variant", "@card_physics", "@model", "@model_float", *BAD_CARDS,
            "@model_truncated", "@garbage_npz", "."]  # fmt: skip
BAD_DATASETS = ["mnist:@missing", "mnist:@foreign_dir", "mnist:@empty_dir", "har:@notes",
                "har:@dev_zero", "cifar10:@fifo", "cifar10:@nul", "fashion-mnist:@empty_dir",
                "fashion-mnist:@long", "nope", "", ":", "digits:", "digits:@foreign_dir",
                "mnist", "fashion-mnist:", "\n", "har:@link_dev_zero", "mnist:@dangling_link",
                "cifar10:@foreign_dir", "mnist:@newline_in"]  # fmt: skip
TEXT = {
    "dataset": ["digits", "fashion-mnist", *BAD_DATASETS],
    "model": ["mlp", "lenet5", "cnn6", "MLP", "resnet", "", "mlp\n"],
    "scheme": ["float", "per-layer", "global", "GLOBAL", "perlayer", ""],
    "optimizer": ["adam", "sgd", "SGD", "rmsprop", ""],
    "sweep": ["nvw=0:0.1:0.05", "nva=0:0.02:0.01", "t=1:100:99", "adc_bits=2:3:1", "nvw=0.05",
              "nvw=0:1:0", "nvw=1:0:0.1", "nvw=0:1:-0.1", "nvw=nan:1:0.1", "nvw=0:inf:1",
              "nvw=0:1:1e-300", "nvw=0:1e300:1e-300", "nvw=0:1:0.001", "adc_bits=1:8:0.5",
              "adc_bits=0:9:1", "t=0:1:1", "foo=1:2:1", "nvw", "nvw=", "=1:2:3", "nvw=0:1",
              "nvw=0:1:2:3", "", "nvw=a:b:c", "NVW=0:0.1:0.05", "nvw=0:0.1\n:0.05",
              "nvw=1e309", "t=-5"],
}  # fmt: skip
#: ``--scheduler`` values refused before any connection (a well-formed address would wait
#: for a scheduler: tests/test_cluster.py covers those, with a short timeout)
SCHEDULERS = ["", " ", "nonsense", "tcp://host", "h:0", "h:65536", "http://h:80", "h:8786/x",
              "a b:1", "tcp://:8786", "ünï:1", "h:-1", "h:1e3", "h:87\n86", "\x00"]  # fmt: skip
JUNK_ARGS = ["--bogus", "-x", "positional", "--", "-", "--no-such-flag=1", "—out", "-h", "-"]
_junk_text = st.sampled_from(["", " ", "\n", "x" * 300, "-", "--", "ünï", "a\x00b", "@notes"])


def value_strategy(f: Flag, pools: dict[str, list[str]]) -> st.SearchStrategy[str]:
    if f.dest in pools:
        return st.sampled_from(pools[f.dest])
    if f.kind == "choice":
        return st.sampled_from([*f.choices, "", "DIGITAL", "none"])
    if f.kind == "path-out":
        return st.sampled_from(OUT_PATHS)
    if f.kind == "path-in":
        return st.sampled_from(IN_PATHS)
    if f.dest == "scheduler":
        return st.sampled_from(SCHEDULERS)
    if f.kind == "text":
        return st.sampled_from(TEXT.get(f.dest, [])) | _junk_text | _text
    return st.sampled_from(NUMBERS) | st.integers(-(2**70), 2**70).map(str) | st.floats().map(repr)


#: In-range values per (command, option): with these a command gets past its argument
#: checks and into its real work (or up to the bad input that stops it).
VALID: dict[tuple[str, str], list[str]] = {
    **{(c, "seed"): ["0", "7", str(2**32 - 1)] for c in ("characterize", "train", "evaluate")},
    **{(c, "jobs"): ["1", "2"] for c in ("characterize", "evaluate", "report")},
    **{(c, "json"): ["@fresh_json"] for c in ("characterize", "train", "evaluate")},
    **{(c, "card"): ["@card", "@card_variant"] for c in ("characterize", "evaluate", "report")},
    ("characterize", "out"): ["@fresh_dir", "@out_empty_dir"],
    ("characterize", "cache_dir"): ["@fresh_dir", "@out_empty_dir"],
    ("train", "dataset"): ["digits"],
    ("train", "model"): ["mlp"],
    ("train", "scheme"): ["float", "per-layer", "global"],
    ("train", "w_bits"): ["1", "2", "4", "8"],
    ("train", "a_bits"): ["1", "3", "8"],
    ("train", "in_bits"): ["1", "8"],
    ("train", "b_bits"): ["1", "6", "16"],
    ("train", "unipolar_fraction"): ["0", "0.5", "1"],
    ("train", "epochs"): ["1"],
    ("train", "batch_size"): ["16", "64", "1437", "1000000"],
    ("train", "optimizer"): ["adam", "sgd"],
    ("train", "lr"): ["1e-4", "0.002", "0.1", "10"],
    ("train", "out"): ["@fresh_npz"],
    ("train", "blas_threads"): ["1", "2"],
    ("evaluate", "model"): ["@model"],
    ("evaluate", "library"): ["@library"],
    ("evaluate", "dataset"): ["digits"],
    ("evaluate", "limit"): ["1", "20"],
    ("evaluate", "nvw"): ["0", "0.02", "1"],
    ("evaluate", "nva"): ["0", "0.01", "1"],
    ("evaluate", "drift_t"): ["1e-9", "1", "3.2e8"],
    ("evaluate", "adc_bits"): ["1", "2", "3", "8"],
    ("evaluate", "chips"): ["1", "2", "3"],
    ("evaluate", "batch"): ["1", "7", "1000", "1000000"],
    ("evaluate", "sweep"): ["nvw=0:0.1:0.05", "nva=0:0.02:0.01", "t=1:100:99", "adc_bits=2:3:1",
                            "nvw=0.05"],
    ("evaluate", "margin"): ["0", "0.01", "1"],
    ("evaluate", "plot"): ["@fresh_png"],
    ("evaluate", "verify_spice"): ["0"],
    ("evaluate", "threads"): ["1", "2"],
    ("evaluate", "cache_dir"): ["@fresh_dir"],
    ("report", "out"): ["@fresh_dir", "@out_empty_dir"],
    ("report", "dataset"): ["digits"],
}  # fmt: skip


def flag_tokens(
    command: str,
    pools: dict[str, list[str]] | None = None,
    exclude: tuple[str, ...] = (),
    *,
    valid: bool = False,
) -> st.SearchStrategy[list[str]]:
    """Random options of ``command``: hostile values and a little junk, or (``valid``)
    in-range values only (:data:`VALID`; ``pools`` where it has none)."""
    pools = pools or {}
    flags = [f for f in command_flags(command) if f.dest not in exclude]
    if valid:
        flags = [f for f in flags if f.kind in ("switch", "choice") or (command, f.dest) in VALID]
        pools = {**pools, **{d: v for (c, d), v in VALID.items() if c == command}}

    def tokens(f: Flag) -> st.SearchStrategy[list[str]]:
        if f.kind in ("switch", "help"):
            return st.sampled_from([[f.flag]] if valid else [[f.flag], [f.flag], [f"{f.flag}=1"]])
        v = st.sampled_from(f.choices) if valid and f.kind == "choice" else value_strategy(f, pools)
        if valid:
            return st.one_of(v.map(lambda x: [f.flag, x]), v.map(lambda x: [f"{f.flag}={x}"]))
        return st.one_of(
            v.map(lambda x: [f.flag, x]), v.map(lambda x: [f"{f.flag}={x}"]), st.just([f.flag])
        )

    junk = st.sampled_from(JUNK_ARGS).map(lambda t: [t])
    choices = flags if valid else [*flags, None]
    one = st.sampled_from(choices).flatmap(lambda f: junk if f is None else tokens(f))
    return st.lists(one, max_size=6).map(lambda groups: [t for g in groups for t in g])


@dataclass
class Outcome:
    argv: list[str]
    rc: int | None
    out: str
    err: str
    escaped: BaseException | None


def call_cli(world: World, argv: list[str], seconds: float) -> Outcome:
    """``cosim.cli.main(argv)`` in-process, in ``world.cwd``, bounded; stdout, stderr
    (plus the warnings a user would see there) and the exit status."""
    out, err = io.StringIO(), io.StringIO()
    rc: int | None = None

    def call() -> int:
        with contextlib.chdir(world.cwd), contextlib.redirect_stdout(out):
            with contextlib.redirect_stderr(err):
                try:
                    return main(argv)
                except SystemExit as exc:  # argparse's exit (usage errors, --help)
                    if exc.code is None or isinstance(exc.code, int):
                        return exc.code or 0
                    print(exc.code, file=err)
                    return 1

    rc, escaped, shown = bounded(call, seconds)
    return Outcome(argv, rc, out.getvalue(), err.getvalue() + shown, escaped)


ERROR_LINE = re.compile(
    r"cosim(?: (?:characterize|train|evaluate|report|import|export))?: error: \S"
)


def cli_problems(o: Outcome) -> list[str]:
    """What breaks the command-line contract in ``o`` (nothing: an empty list)."""
    if o.escaped is not None:
        if isinstance(o.escaped, ExampleTimeout):
            return [f"hang: {o.escaped}"]
        return [f"uncaught {type(o.escaped).__name__}: {_clip(str(o.escaped), 300)}\n"
                f"{_tb(o.escaped)}"]  # fmt: skip
    if o.rc not in (0, 2):
        return [f"exit status {o.rc} (want 0, or 2 with one line)"]
    if "Traceback (most recent call last)" in o.err:
        return ["a traceback on stderr"]
    if o.rc == 2:
        lines = o.err.rstrip("\n").split("\n")
        if not o.err.strip():
            return ["exit 2 with nothing on stderr"]
        if len(lines) != 1:
            return [f"exit 2 with {len(lines)} lines on stderr (want exactly one)"]
        if not ERROR_LINE.match(lines[0]):
            return ["exit 2 but stderr is not 'cosim CMD: error: ...'"]
    return []


def run_command(world: World, tokens: list[str], seconds: float, *, reset: bool = True) -> None:
    """The command-line property for one argument list (``@name`` tokens resolved);
    ``reset=False`` keeps per-example inputs already written to ``world.inputs``."""
    if reset:
        world.reset_outputs()
    argv = [world.resolve(t) for t in tokens]
    before = world.state()
    o = call_cli(world, argv, seconds)
    problems = cli_problems(o)
    changed = world.changes_since(before)
    if changed:
        problems.append("changed user files: " + ", ".join(changed))
    if problems:
        pytest.fail(
            "\n".join(problems)
            + f"\nargv: {argv!r}\ntokens: {tokens!r}\nexit status: {o.rc}\n"
            + f"stderr:\n{_clip(o.err, 2500)}\nstdout (end): {_clip(o.out[-600:], 600)}"
        )


ROOT_TOKENS = ["--version", "-h", "--help", "--bogus", "nonsense", "", "-", "--", "evaluate",
               "train", "report", "help", "EVALUATE"]  # fmt: skip


@fuzz(20)
@given(tokens=st.lists(st.sampled_from(ROOT_TOKENS), max_size=3))
def test_cli_top_level(world, tokens):
    """``cosim`` with no or stray arguments (never a runnable command: no --out)."""
    run_command(world, tokens, seconds=20)


@fuzz(150)
@given(data=st.data())
def test_cli_characterize_fails_fast(world, data):
    """Every characterize option with hostile values; the last --card is always bad, so
    nothing is ever simulated: the run must end in a one-line error (or help)."""
    valid = data.draw(st.booleans(), label="in-range values only")
    flags = data.draw(flag_tokens("characterize", valid=valid), label="flags")
    tokens = ["characterize", *flags]
    tokens += ["--card", data.draw(st.sampled_from(BAD_CARDS), label="bad card")]
    run_command(world, tokens, seconds=20)


@fuzz(150)
@given(data=st.data())
def test_cli_train_fails_fast(world, data):
    """Every train option with hostile values; the last --dataset is always unusable, so
    no training starts."""
    out = data.draw(st.sampled_from(OUT_PATHS), label="--out")
    valid = data.draw(st.booleans(), label="in-range values only")
    flags = data.draw(flag_tokens("train", exclude=("dataset",), valid=valid), label="flags")
    tokens = ["train", "--out", out, *flags]
    tokens += ["--dataset", data.draw(st.sampled_from(BAD_DATASETS), label="bad dataset")]
    run_command(world, tokens, seconds=20)


_TRAIN_BOUNDED = {
    "dataset": ["digits"],
    "model": ["mlp", "lenet5", "MLP", "", "resnet"],
    "epochs": ["1", "0", "-1", "nan", "100001", "x"],
    "batch_size": ["16", "64", "1437", "1000000", "0", "-1", "nan", "1e3", ""],
}


@fuzz(20)
@given(data=st.data())
def test_cli_train_runs_bounded(world, data):
    """Train for real on digits, one epoch, with random in- and out-of-range options: it
    succeeds (exit 0) or says why not in one line."""
    out = data.draw(st.sampled_from(["@fresh_npz", "@fresh_npz", *OUT_PATHS]), label="--out")
    valid = data.draw(st.booleans(), label="in-range values only")
    flags = data.draw(flag_tokens("train", _TRAIN_BOUNDED, valid=valid), label="flags")
    tokens = ["train", "--dataset", "digits", "--model", "mlp", "--out", out, *flags]
    tokens += ["--epochs", "1"]
    run_command(world, tokens, seconds=60)


@fuzz(150)
@given(data=st.data())
def test_cli_evaluate_fails_fast(world, data):
    """Every evaluate option with hostile values; the last --model is always unusable, so
    nothing is evaluated."""
    lib = data.draw(st.sampled_from(IN_PATHS), label="--library")
    valid = data.draw(st.booleans(), label="in-range values only")
    flags = data.draw(flag_tokens("evaluate", exclude=("model",), valid=valid), label="flags")
    tokens = ["evaluate", "--library", lib, *flags]
    tokens += ["--model", data.draw(st.sampled_from(BAD_MODELS), label="bad model")]
    run_command(world, tokens, seconds=20)


@fuzz(60)
@given(data=st.data())
def test_cli_report_fails_fast(world, data):
    """Every report option with hostile values; the last --card is always bad, so no study
    (and no characterization) starts."""
    out = data.draw(st.sampled_from(OUT_PATHS), label="--out")
    valid = data.draw(st.booleans(), label="in-range values only")
    flags = data.draw(flag_tokens("report", valid=valid), label="flags")
    tokens = ["report", "--out", out, *flags]
    tokens += ["--card", data.draw(st.sampled_from(BAD_CARDS), label="bad card")]
    run_command(world, tokens, seconds=20)


_EVAL_BOUNDED = {
    "model": ["@model", "@model", "@model_float", *BAD_MODELS],
    "library": ["@library", "@library", "@library_broken", "@foreign_dir", "@missing",
                "@empty_dir", "@notes", "@dev_zero", "@fifo", "@link_dev_zero", "@nul"],
    "card": ["@card", "@card_variant", "@card_physics", *BAD_CARDS],
    "dataset": ["digits", "fashion-mnist", "nope", "", "mnist:@missing", "digits:x"],
    "chips": ["1", "2", "3", "0", "-1", "nan", "10001", "x", ""],
    "verify_spice": ["0", "-1", "nan", "100001", "x", "1.5", ""],
    "threads": ["1", "2", "4", "0", "256", "257", "nan", "-1"],
    "sweep": [s for s in TEXT["sweep"] if s != "nvw=0:1:0.001"],
}  # fmt: skip


@fuzz(60)
@given(data=st.data())
def test_cli_evaluate_runs_bounded(world_lib, data):
    """Evaluate for real (a tiny model, the quick library, at most 20 samples) with random
    options: exit 0, or one line that says why not."""
    valid = data.draw(st.booleans(), label="in-range values only")
    flags = data.draw(
        flag_tokens("evaluate", _EVAL_BOUNDED, exclude=("limit",), valid=valid), label="flags"
    )
    limit = data.draw(st.sampled_from(["1", "7", "20"]), label="--limit")
    tokens = ["evaluate", "--model", "@model", "--library", "@library", *flags, "--limit", limit]
    run_command(world_lib, tokens, seconds=60)


@fuzz(80)
@given(data=st.data())
def test_cli_evaluate_mutated_inputs(world_lib, base_library, data):
    """Evaluate a mutated model file or library (the loaders' mutations): what a loader
    accepts must evaluate (exit 0), and what it refuses is one line (exit 2)."""
    world_lib.reset_outputs()
    if data.draw(st.booleans(), label="mutate the model (else the library)"):
        what = data.draw(st.sampled_from(["meta", "arrays", "bytes"]), label="what")
        raw, done = draw_model_bytes(data, world_lib.models["digits-global"], what)
        (world_lib.inputs / "model.npz").write_bytes(raw)
        model, library = str(world_lib.inputs / "model.npz"), "@library"
    else:
        files, done = draw_library_files(data, base_library)
        write_library(world_lib.inputs / "lib", files)
        model, library = "@model", str(world_lib.inputs / "lib")
    note("mutations: " + "; ".join(done))
    tokens = ["evaluate", "--model", model, "--library", library, "--limit", "20"]
    tokens += data.draw(st.sampled_from([[], ["--chips", "2"], ["--ideal"], ["--adc-bits", "2"]]))
    run_command(world_lib, tokens, seconds=60, reset=False)


BAD_ONNX = ["@missing", "@notes", "@empty_file", "@foreign_dir", "@fifo", "@dev_zero",
            "@link_dev_zero", "@dangling_link", "@nul", "@long"]  # fmt: skip


@fuzz(60)
@given(data=st.data())
def test_cli_import_fails_fast(world, data):
    """Every import option with hostile values, from an unreadable or non-ONNX file or an
    unusable dataset: one line, exit 2, nothing written."""
    out = data.draw(st.sampled_from(OUT_PATHS), label="--out")
    valid = data.draw(st.booleans(), label="in-range values only")
    flags = data.draw(flag_tokens("import", exclude=("dataset",), valid=valid), label="flags")
    model = data.draw(st.sampled_from(BAD_ONNX), label="MODEL.onnx")
    dataset = data.draw(st.sampled_from(["digits", *BAD_DATASETS]), label="dataset")
    run_command(world, ["import", model, "--out", out, *flags, "--dataset", dataset], seconds=20)


@fuzz(40)
@given(data=st.data())
def test_cli_export_fails_fast(world, data):
    """Export of an unreadable or non-model file, to hostile output paths: one line."""
    out = data.draw(st.sampled_from(OUT_PATHS), label="--out")
    flags = data.draw(flag_tokens("export"), label="flags")
    model = data.draw(st.sampled_from(BAD_ONNX), label="MODEL.npz")
    run_command(world, ["export", model, "--out", out, *flags], seconds=20)
