"""Atomic file writes: write to a temporary file beside the target, then ``os.replace``.

Every calozdc writer goes through :func:`atomic_path`, so a crash or an interrupted run never
leaves a half-written file under the final name, and existing outputs are never replaced unless
the caller asks for it.
"""

import contextlib
import os
import secrets


@contextlib.contextmanager
def atomic_path(path, overwrite=False):
    """Yield a temporary path beside ``path``; move it onto ``path`` when the block succeeds.

    The temporary file lives in the target's directory (so ``os.replace`` is an atomic rename on
    the same file system) and is named ``<name>.tmp-<random>``. If the ``with`` block raises
    (including ``KeyboardInterrupt``), the temporary file is removed and the target is left as it
    was. Missing parent directories are created.

    Args:
        path: final file path (``str`` or path-like).
        overwrite: replace an existing file at ``path``. Without it an existing target raises
            ``FileExistsError`` before anything is written.

    Yields:
        ``str``: the temporary path to write to. It exists (empty) when the block starts, so
        writers must truncate it (``h5py.File(tmp, "w")``, ``open(tmp, "wb")``).

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
        IsADirectoryError: ``path`` is a directory.

    Example:

    >>> with atomic_path("showers.h5", overwrite=True) as tmp:  # doctest: +SKIP
    ...     with h5py.File(tmp, "w") as f:
    ...         f["x"] = data
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(
            f"Cannot write a file over a directory. Received: path={path!r}"
        )
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            f"Output file {path!r} exists; pass overwrite=True (CLI: --overwrite). "
            f"Received: path={path!r}"
        )
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # O_EXCL: never reuse an existing file; mode 0o666 lets the umask set the permissions.
    for _ in range(100):
        tmp = os.path.join(directory, f"{os.path.basename(path)}.tmp-{secrets.token_hex(4)}")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 collisions of 32 random bits
        raise FileExistsError(f"Could not create a temporary file beside {path!r}.")
    try:
        yield tmp
        # Someone may have created the target while we were writing.
        if os.path.exists(path) and not overwrite:
            raise FileExistsError(
                f"Output file {path!r} appeared while writing; pass overwrite=True "
                f"(CLI: --overwrite). Received: path={path!r}"
            )
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
