"""The SPICE result cache's directory: where it lives, that it is usable, what an entry holds.

Entries are ``DIR/ab/abcd....npz`` files holding a result's arrays and their own key
(:data:`KEY_ENTRY`); :class:`~cosim.spice.runner.SpiceRunner` reads and writes them.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np

from cosim.errors import CosimError

#: The entry of a cached result that names the key it was stored under.
KEY_ENTRY = "__cosim_cache_key__"


def default_cache_dir() -> Path:
    """The cache directory used when none is given: ``$COSIM_CACHE_DIR`` or
    ``$XDG_CACHE_HOME/cosim/spice`` (``~/.cache/cosim/spice``)."""
    env = os.environ.get("COSIM_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cosim" / "spice"


CACHE_HINT = "pass --cache-dir a writable directory, or --no-cache"


def check_dir(path: Path, what: str, hint: str) -> Path:
    """Create ``path`` if needed and prove a file can be written in it; one-line error if not."""
    if path.exists() and not path.is_dir():
        raise CosimError(f"{what} {path} is not a directory (it is a file); {hint}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, (FileExistsError, NotADirectoryError)):
            reason = (
                "it is a broken symbolic link"
                if path.is_symlink()
                else "a parent of it is a file, not a directory"
            )
        raise CosimError(f"cannot create {what} {path}: {reason}; {hint}") from None
    # permission bits do not stop root, and a read-only file system does not show in them:
    # the only reliable test is to write something
    try:
        fd, probe = tempfile.mkstemp(prefix=".cosim-probe-", dir=path)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CosimError(f"cannot write in {what} {path}: {reason}; {hint}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return path


def check_cache_dir(path: str | os.PathLike[str]) -> Path:
    """Make sure ``path`` can serve as the SPICE result cache; returns it as a :class:`Path`.

    Creates the directory (and its parents) when missing. Call it before any long work so
    a bad ``--cache-dir`` is reported at once, in one line, instead of by every worker.

    Raises
    ------
    CosimError
        If ``path`` is a file, lies under a file, or cannot be created or written to; the
        message names the path and says what to do.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> check_cache_dir(d / "cache") == d / "cache"
    True
    >>> (d / "f").write_text("x")
    1
    >>> check_cache_dir(d / "f")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    cosim.errors.CosimError: SPICE cache directory .../f is not a directory (it is a file); ...
    """
    if not os.fspath(path):  # Path("") is "." : the cache would spill into the cwd
        raise CosimError(f"the SPICE cache directory is an empty path; {CACHE_HINT}")
    return check_dir(Path(path), "SPICE cache directory", CACHE_HINT)


def all_finite(arrays: dict[str, np.ndarray]) -> bool:
    return all(np.isfinite(a).all() for a in arrays.values() if np.issubdtype(a.dtype, np.inexact))
