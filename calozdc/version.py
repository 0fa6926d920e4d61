"""calozdc version (one place, read by setup.cfg and written into every file we save).

Compatibility rule for files and run directories (checked by :func:`check_compatible`):

* every file kind has an integer format version (:data:`FORMAT_VERSIONS`): ``"hdf5"`` for the
  shower files calozdc writes (calozdc and CaloChallenge HDF5, root attribute
  ``format_version``) and ``"run"`` for run directories (key ``format_version`` of
  ``run.json``). It is bumped only when older calozdc versions could no longer read the new
  files correctly;
* a file whose ``format_version`` is greater than this calozdc's is refused, and so is a file
  written by a calozdc of a greater **major** version (``calozdc_version``);
* files without ``format_version`` (written before it was recorded) count as version 1;
  files of older or equal versions load.
"""

__version__ = "0.1.0"

#: Format version of each kind of file this calozdc writes.
FORMAT_VERSIONS = {"hdf5": 1, "run": 1}


def parse_version(text):
    """``"1.2.3"`` (or ``"1.2.3rc1"``, ``"1.2"``) → ``(1, 2, 3)``; ValueError if unreadable."""
    parts = []
    for part in str(text).split(".")[:3]:
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    if not parts:
        raise ValueError(f"Unreadable calozdc version. Received: calozdc_version={text!r}")
    return tuple(parts + [0] * (3 - len(parts)))


def check_compatible(kind, format_version=None, calozdc_version=None, what="this file"):
    """Raise ValueError if ``what`` was written by a newer, incompatible calozdc.

    Args:
        kind: ``"hdf5"`` or ``"run"`` (a key of :data:`FORMAT_VERSIONS`).
        format_version: the recorded format version (int) or None (= 1).
        calozdc_version: the recorded calozdc version string or None.
        what: how to name the file in the message (e.g. its path).
    """
    ours = FORMAT_VERSIONS[kind]
    if format_version is not None:
        try:
            found = int(format_version)
            ok = found == float(format_version)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(
                f"{what} records an unreadable format version (expected an integer). "
                f"Received: format_version={format_version!r}"
            )
        if found > ours:
            raise ValueError(
                f"{what} was written by a newer calozdc"
                + (f" ({calozdc_version})" if calozdc_version else "")
                + f" in {kind} format version {found}; this calozdc {__version__} reads up to "
                f"version {ours}. Upgrade calozdc to read it. Received: format_version={found}"
            )
    if calozdc_version is not None:
        major = parse_version(calozdc_version)[0]
        if major > parse_version(__version__)[0]:
            raise ValueError(
                f"{what} was written by calozdc {calozdc_version}, a newer major version than "
                f"this calozdc {__version__}; upgrade calozdc to read it. "
                f"Received: calozdc_version={calozdc_version!r}"
            )
