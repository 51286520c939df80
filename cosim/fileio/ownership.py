"""What cosim owns: the checks of an output path before anything is written to it.

Before any work starts, a command checks every path it will write with
:func:`check_output_dir` or :func:`check_output_file`. cosim replaces only what is missing,
empty, or its own: a directory holding cosim's marker file (``library.json`` for a
surrogate library, :data:`REPORT_MARKER` for a report), or a file cosim wrote (JSON with a
top-level ``"written_by": "cosim <version>"`` key, a model or checkpoint ``.npz`` whose
``meta`` entry says so, a PNG whose ``Software`` text starts with ``cosim``:
:func:`is_cosim_file`). Anything else — a foreign file or directory, a symbolic link, a
device — is a :class:`~cosim.errors.CosimError` that names the path, and nothing is touched.

Recognising a file or directory of cosim's is :mod:`cosim.fileio.recognition` (its names
stay importable from here). Nothing here writes: creating and marking an output directory,
and every write, are in :mod:`cosim.fileio.atomic`.
"""

import os
import stat
from collections.abc import Collection
from pathlib import Path

from cosim.errors import CosimError
from cosim.fileio.paths import _check_creatable, _check_path_text, _entries, _is_within, _normalize
from cosim.fileio.recognition import (
    FILE_KINDS,
    LIBRARY_FILES,
    LIBRARY_MARKER,
    REPORT_JSON,
    REPORT_MARKER,
    is_cosim_file,
    is_cosim_json,
    try_json,
)
from cosim.fileio.text import _named, error_text, show_path


# ------------------------------------------------------------------------ output checks
def _holds_marker(directory: Path, marker: str) -> bool:
    """``directory`` holds ``marker`` as a regular file of cosim's (JSON with cosim's
    signature); a report directory may instead hold cosim's own ``report.json``."""
    if is_cosim_json(try_json(directory / marker)):
        return True
    if marker == REPORT_MARKER:
        doc = try_json(directory / REPORT_JSON)
        return isinstance(doc, dict) and "cosim_version" in doc and "report_version" in doc
    return False


def _not_inside_a_library(dest: Path, shown: str) -> None:
    """A library directory is cosim's as a whole (rewritten by the next characterization,
    which refuses files it did not put there): nothing else may be written into it."""
    parent = dest.parent
    try:
        inside = (parent / LIBRARY_MARKER).is_file()
    except (OSError, ValueError):
        return  # the path checks that follow name the problem
    if inside:
        raise CosimError(
            f"{shown} lies inside the surrogate library {show_path(parent)}, which cosim "
            "writes as a whole: give a path outside it"
        )


def _lstat_output(
    path: str | os.PathLike[str], what: str, cannot: str
) -> tuple[Path, str, os.stat_result | None]:
    """The checks every output path shares: (normalized path, path for messages, its
    ``lstat``, or None when it does not exist and can be created). ``cannot`` is the
    message (with ``{shown}``) for any other failure to look at it."""
    _check_path_text(path, what)
    shown = show_path(path)
    dest = _normalize(path)
    _not_inside_a_library(dest, shown)
    try:
        return dest, shown, os.lstat(dest)
    except (FileNotFoundError, NotADirectoryError):
        _check_creatable(path, dest.parent, what)
        return dest, shown, None
    except OSError as exc:
        raise CosimError(f"{cannot.format(shown=shown)}: {error_text(exc)}") from None


def check_output_dir(
    path: str | os.PathLike[str],
    *,
    kind: str,
    marker: str,
    replace: bool | None = None,
    contents: Collection[str] | None = None,
) -> Path:
    """Check that cosim may write the ``kind`` directory ``path``; raise if not.

    Accepted: a path that does not exist and whose nearest existing ancestor is a writable
    directory; an empty real directory; a real (not a symbolic link) directory holding
    cosim's ``marker`` file (a report directory: :data:`REPORT_MARKER`, or cosim's own
    ``report.json``). Nothing is created or changed.

    Parameters
    ----------
    path
        The output directory.
    kind
        What cosim writes there, for the message (``"library"``, ``"report"``).
    marker
        The file that marks the directory as cosim's (:data:`LIBRARY_MARKER`,
        :data:`REPORT_MARKER`).
    replace
        The directory is replaced whole (default: for a library): it must then hold nothing
        but ``contents``, and must not be or contain the current directory.
    contents
        The names a replaced directory may hold (default: :data:`LIBRARY_FILES` for a
        library; anything for another marker).

    Returns
    -------
    Path
        ``path``, as given.

    Raises
    ------
    CosimError
        One line naming the path (control characters escaped, :func:`show_path`) and
        saying what to do: it is a file, a symbolic link, a device; a non-empty directory
        that is not cosim's; the current directory (when replaced); its parent is a file or
        not writable; it holds a NUL byte or a name longer than the file system allows.
    """
    if replace is None:
        replace = marker == LIBRARY_MARKER
    if contents is None and marker == LIBRARY_MARKER:
        contents = LIBRARY_FILES
    what = f"{kind} directory"
    dest, shown, st = _lstat_output(path, what, "cannot use {shown} as the " + what)
    if st is None:
        return Path(path)
    if stat.S_ISLNK(st.st_mode):
        raise CosimError(
            f"{shown} is a symbolic link; cosim does not write a {kind} through a link: give "
            "a new directory path (or the link's target, if that is what you mean)"
        )
    if stat.S_ISREG(st.st_mode):
        raise CosimError(
            f"{shown} is a file, not a directory; cosim writes a {kind} directory there: give a "
            "new or empty directory path (the file is left alone)"
        )
    if not stat.S_ISDIR(st.st_mode):
        raise CosimError(f"{shown} is not a directory (a device, pipe or socket)")
    try:
        names = _entries(dest, 64)
    except OSError as exc:
        raise CosimError(f"cannot use {shown} as the {what}: {error_text(exc)}") from None
    if names and not _holds_marker(dest, marker):
        raise CosimError(
            f"{shown} is a non-empty directory that is not a cosim {kind} (it holds "
            f"{_named(names, len(names) >= 64)}); cosim writes only into a new or empty "
            f"directory or its own {kind}: choose another path, or move that directory away "
            "yourself"
        )
    if replace:
        real = os.path.realpath(dest)
        try:
            cwd: str | None = os.path.realpath(os.getcwd())
        except OSError:  # the current directory was deleted: it is inside nothing
            cwd = None
        if cwd is not None and _is_within(cwd, real):
            raise CosimError(
                f"{shown} is the current directory or contains it; cosim replaces a {kind} "
                "directory whole: give the path of a new directory outside it"
            )
        if contents is not None and names:
            allowed = set(contents) | {marker}
            try:
                with os.scandir(dest) as it:
                    foreign = [e.name for e in it if e.name not in allowed]
            except OSError as exc:
                raise CosimError(f"cannot use {shown} as the {what}: {error_text(exc)}") from None
            if foreign:
                raise CosimError(
                    f"{shown} is a cosim {kind} but also holds {_named(foreign, False)}, which "
                    f"cosim did not write; writing the {kind} would delete them: move them out "
                    "or choose another path"
                )
        parent = dest.parent
        if not os.access(parent, os.W_OK | os.X_OK):
            raise CosimError(
                f"cannot replace {shown}: no permission to write in {show_path(parent)}; choose a "
                "writable location"
            )
    elif not os.access(dest, os.W_OK | os.X_OK):
        raise CosimError(f"cannot write in {shown}: permission denied; choose another path")
    return Path(path)


def check_output_file(path: str | os.PathLike[str], *, kind: str) -> Path:
    """Check that cosim may write the ``kind`` file ``path``; raise if not.

    Accepted: a path that does not exist and can be created (its nearest existing ancestor
    is a writable directory); a regular file (not a symbolic link) that cosim wrote as the
    same ``kind``. Nothing is created or changed.

    Parameters
    ----------
    path
        The output file.
    kind
        ``"json"`` (written by :func:`write_output_json`: top-level ``"written_by":
        "cosim <version>"``), ``"png"`` (``Software`` text starting with ``cosim``, see
        :func:`png_metadata`), ``"model"`` (``.npz`` whose ``meta`` has ``format ==
        "cosim-model"``) or ``"checkpoint"`` (``.npz`` whose ``meta`` has
        ``checkpoint_version``).

    Returns
    -------
    Path
        ``path``, as given.

    Raises
    ------
    CosimError
        One line naming the path (control characters escaped, :func:`show_path`): it is a
        directory, a symbolic link, a device, a file cosim did not write; its parent is a
        file or not writable; it holds a NUL byte or a name longer than the file system
        allows.
    """
    if kind not in FILE_KINDS:
        raise ValueError(f"unknown output file kind {kind!r}; one of {', '.join(FILE_KINDS)}")
    what = FILE_KINDS[kind]
    dest, shown, st = _lstat_output(path, what, f"cannot write {what} " + "{shown}")
    if st is None:
        return Path(path)
    if stat.S_ISLNK(st.st_mode):
        raise CosimError(
            f"{what} {shown} is a symbolic link; cosim does not write through links: give "
            "another path (or the link's target, if that is what you mean)"
        )
    if stat.S_ISDIR(st.st_mode):
        raise CosimError(f"{what} {shown} is a directory; give a file path (e.g. inside it)")
    if not stat.S_ISREG(st.st_mode):
        raise CosimError(
            f"{what} {shown} is not a regular file (a device, pipe or socket); give a file path"
        )
    if not is_cosim_file(dest, kind):
        raise CosimError(
            f"{shown} exists and is not a {what} that cosim wrote; cosim overwrites only its "
            "own files: choose another path, or delete it yourself"
        )
    if not os.access(dest.parent, os.W_OK | os.X_OK):
        raise CosimError(
            f"cannot replace {shown}: no permission to write in {show_path(dest.parent)}"
        )
    return Path(path)
