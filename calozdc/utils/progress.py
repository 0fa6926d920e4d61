"""One progress bar for the library's long loops (simulation, generation, evaluation).

Bars are ``tqdm`` bars written to **stderr**, so they never mix with results printed on
stdout (tables, paths) or with pipes. Library functions take ``verbose=False`` and stay
quiet by default; the CLI turns bars on unless ``-q/--quiet``.
"""

import sys

import numpy as np


class _Silent:
    """Stand-in for a tqdm bar when ``verbose`` is off: iterates, ignores updates."""

    def __init__(self, iterable=None):
        self._iterable = iterable

    def __iter__(self):
        return iter(() if self._iterable is None else self._iterable)

    def update(self, n=1):
        return None

    def close(self):
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _check_total(total):
    if total is None:
        return None
    if isinstance(total, bool) or not isinstance(total, (int, np.integer)) or total < 0:
        raise ValueError(f"`total` must be a non-negative integer or None. Received: total={total!r}")
    return int(total)


def progress(iterable_or_total=None, desc=None, verbose=False, unit="it", total=None):
    """A progress bar on stderr, or a silent stand-in when ``verbose`` is false.

    Args:
        iterable_or_total: an iterable to wrap (iterate over the returned object) or an
            integer total for a bar advanced by hand with ``bar.update(k)``.
        desc: text in front of the bar (e.g. ``"simulate zn44"``).
        verbose: show the bar when truthy (``True``, 1, 2); ``False``/0/None: no output.
        unit: name of one step (``"shower"``).
        total: total when wrapping an iterable without ``len`` (e.g. a generator).

    Returns:
        A ``tqdm`` bar writing to ``sys.stderr`` or a silent object with the same
        ``__iter__``, ``update(n)``, ``close()`` and context-manager interface.

    Example:

    >>> with progress(1000, "simulate", verbose=True, unit="shower") as bar:  # doctest: +SKIP
    ...     for chunk in chunks:
    ...         bar.update(len(chunk))
    """
    if isinstance(iterable_or_total, (int, np.integer)) and not isinstance(iterable_or_total, bool):
        iterable, total = None, _check_total(iterable_or_total)
    else:
        iterable, total = iterable_or_total, _check_total(total)
    if not verbose:
        return _Silent(iterable)
    from tqdm import tqdm  # noqa: PLC0415 (import only when a bar is shown)

    # Plain tqdm (not tqdm.auto): a text bar works in terminals, logs and notebooks alike.
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr,
                dynamic_ncols=True, leave=True)


def batch_ranges(n, batch_size, desc=None, verbose=False, unit="shower"):
    """Yield ``(start, stop)`` of consecutive batches of ``range(n)``, with a bar of ``n`` units.

    The bar advances by the size of each batch after the caller's loop body has run, so it
    shows items done (``n/n`` at the end).

    Args:
        n: number of items (>= 0).
        batch_size: items per batch (>= 1).
        desc, verbose, unit: as in :func:`progress`.
    """
    n = _check_total(n)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
    bar = progress(n, desc, verbose, unit)
    try:
        for start in range(0, n, int(batch_size)):
            stop = min(start + int(batch_size), n)
            yield start, stop
            bar.update(stop - start)
    finally:
        bar.close()


def predict_progress(bar, batch_size, n):
    """A Keras callback advancing ``bar`` by ``batch_size`` (at most to ``n``) per predict batch.

    For loops that run inside ``model.predict`` (whose own bar prints to stdout): pass
    ``callbacks=[predict_progress(bar, batch, n)]`` and ``verbose=0``.
    """
    import keras  # noqa: PLC0415 (keras only when a model predicts)

    class _PredictProgress(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.done = 0

        def on_predict_batch_end(self, batch, logs=None):
            step = min(int(batch_size), int(n) - self.done)
            if step > 0:
                bar.update(step)
                self.done += step

    return _PredictProgress()
