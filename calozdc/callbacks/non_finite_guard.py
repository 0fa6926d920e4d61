"""Stop training at the first NaN or infinite value in the batch logs."""

import numpy as np
from keras import callbacks


def _scalar(value):
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        try:  # a backend tensor that numpy cannot read directly
            from keras import ops

            array = np.asarray(ops.convert_to_numpy(value), dtype=np.float64)
        except Exception:  # noqa: BLE001 - not a number: nothing to check
            return None
    if array.size == 0:
        return None
    return array


class NonFiniteGuard(callbacks.Callback):
    """Stops ``fit`` at the first batch whose logs hold a NaN or an infinity.

    After every training batch (and, with ``check_epoch_logs``, at the end of every epoch:
    validation losses, physics metrics) the numeric values of ``logs`` are checked. At the
    first non-finite one the callback sets ``model.stop_training = True`` and records what went
    wrong: :attr:`tripped` becomes True and :attr:`report` holds the epoch, the batch (step)
    within the epoch, the names of the bad terms and their values. Keras then ends the epoch
    and ``fit`` returns normally; callers decide what to do (``calozdc train`` exits with code
    2 and keeps the last good checkpoint). A checkpoint callback can consult :attr:`tripped` so
    that non-finite weights are never saved.

    Keras' batch logs are running means over the epoch, so a single NaN batch makes the value
    non-finite from that batch on and is caught at once.

    Args:
        check_epoch_logs: also check the epoch-end logs (validation values, metrics that
            other callbacks add).

    Example:

    >>> guard = NonFiniteGuard()
    >>> model.fit(x, c, epochs=10, callbacks=[guard])  # doctest: +SKIP
    >>> if guard.tripped:
    ...     print(guard.message())  # doctest: +SKIP

    References:
        ``keras.callbacks.TerminateOnNaN`` (same idea for ``loss`` only; this one watches every
        term of a multi-loss model such as a GAN's ``d_loss`` and ``g_loss``).
    """

    def __init__(self, check_epoch_logs=True):
        super().__init__()
        self.check_epoch_logs = bool(check_epoch_logs)
        self.tripped = False
        self.report = None
        self._epoch = 0

    def on_train_begin(self, logs=None):
        self.tripped = False
        self.report = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = int(epoch)

    @staticmethod
    def bad_terms(logs):
        """``{name: value}`` of the non-finite numeric entries of ``logs``."""
        bad = {}
        for name, value in (logs or {}).items():
            array = _scalar(value)
            if array is not None and not np.all(np.isfinite(array)):
                bad[str(name)] = float(array.reshape(-1)[~np.isfinite(array.reshape(-1))][0])
        return bad

    def _trip(self, bad, step):
        self.tripped = True
        self.report = {"epoch": self._epoch, "step": step, "terms": sorted(bad),
                       "values": {k: str(v) for k, v in bad.items()}}
        self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        if self.tripped:
            return
        bad = self.bad_terms(logs)
        if bad:
            self._trip(bad, int(batch))

    def on_epoch_end(self, epoch, logs=None):
        if self.tripped or not self.check_epoch_logs:
            return
        bad = self.bad_terms(logs)
        if bad:
            self._trip(bad, None)

    def message(self):
        """One line describing the failure (empty when the guard did not trip)."""
        if not self.tripped:
            return ""
        r = self.report
        where = f"epoch {r['epoch'] + 1}" + ("" if r["step"] is None
                                             else f", batch {r['step'] + 1}")
        terms = ", ".join(f"{k}={r['values'][k]}" for k in r["terms"])
        return f"non-finite training values at {where}: {terms}"

