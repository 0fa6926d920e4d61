"""Built-in training data: zn44 showers simulated once with a fixed seed and cached on disk.

``calozdc train FAMILY`` without ``--data`` trains on :func:`builtin_dataset`, so a first run
needs no data file. The showers come from :func:`calozdc.data.simulate` (the ALICE ZN particle
mix, energies 10-1000 GeV, particles from the interaction point); the same ``(n, seed)`` gives
the same showers on every machine, so the cache is only a speed-up. The cache file name encodes
the geometry, ``n``, the seed and the calozdc version (a new version re-simulates, since the
simulator may have changed); it is written atomically, so concurrent first runs are safe.
"""

import os

#: Geometry of the built-in data.
BUILTIN_GEOMETRY = "zn44"
#: Default number of built-in showers (a GAN trains on them for the default epochs in a few
#: minutes on a laptop CPU).
DEFAULT_BUILTIN_SHOWERS = 5000
#: Default simulation seed of the built-in showers.
DEFAULT_BUILTIN_SEED = 0


def cache_directory():
    """The calozdc cache directory: ``$CALOZDC_CACHE``, else ``$XDG_CACHE_HOME/calozdc``, else
    ``~/.cache/calozdc`` (not created here)."""
    path = os.environ.get("CALOZDC_CACHE")
    if path:
        return os.path.abspath(os.path.expanduser(path))
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return os.path.join(os.path.abspath(os.path.expanduser(xdg)), "calozdc")
    return os.path.join(os.path.expanduser("~"), ".cache", "calozdc")


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"`{name}` must be an integer >= {low}. Received: {name}={value!r}")
    return int(value)


def _calibration_tag():
    """Short hash of the simulator's calibration files and renderer version
    (:data:`calozdc.data.shower_model.RENDER_VERSION`): a recalibrated simulator (e.g. the
    photon constants) or a changed renderer must not reuse showers cached by the previous one."""
    import hashlib

    from calozdc.data.shower_model import RENDER_VERSION  # noqa: PLC0415

    directory = os.path.join(os.path.dirname(__file__), "reference")
    digest = hashlib.sha256(f"render-v{RENDER_VERSION}".encode())  # the renderer's arithmetic
    for name in sorted(os.listdir(directory)):
        if name.startswith("zn44_calibration") and name.endswith(".json"):
            with open(os.path.join(directory, name), "rb") as f:
                digest.update(name.encode() + f.read())
    return digest.hexdigest()[:8]


def builtin_path(n=DEFAULT_BUILTIN_SHOWERS, seed=DEFAULT_BUILTIN_SEED, cache_dir=None):
    """Cache file of the built-in data set ``(n, seed)``, e.g.
    ``~/.cache/calozdc/builtin-zn44-n5000-seed0-v0.1.0-1a2b3c4d.h5`` (calozdc version and a
    hash of the simulator's calibration files)."""
    from calozdc.version import __version__

    n = _check_int("n", n, 1)
    seed = _check_int("seed", seed, 0)
    directory = cache_directory() if cache_dir is None else os.fspath(cache_dir)
    return os.path.join(directory, f"builtin-{BUILTIN_GEOMETRY}-n{n}-seed{seed}-v{__version__}"
                                   f"-{_calibration_tag()}.h5")


def builtin_dataset(n=DEFAULT_BUILTIN_SHOWERS, seed=DEFAULT_BUILTIN_SEED, cache_dir=None,
                    verbose=False):
    """The built-in zn44 training showers, simulated on first use and then read from the cache.

    Args:
        n: number of showers (>= 1).
        seed: simulation seed (>= 0).
        cache_dir: cache directory (default :func:`cache_directory`).
        verbose: print a line on stderr when simulating.

    Returns:
        A :class:`~calozdc.data.ShowerDataset` (zn44 showers in photon counts, the 9 zn44
        conditions and PDG ids), equal to ``simulate("zn44", n, seed=seed)``.

    Raises:
        ValueError: bad ``n`` or ``seed``; ``cache_dir`` is a file.

    Example:

    >>> ds = builtin_dataset(n=1000)                      # doctest: +SKIP
    >>> ds.showers.shape
    (1000, 44, 44, 1)
    """
    from calozdc.data.io import load, save
    from calozdc.data.simulate import simulate

    path = builtin_path(n, seed, cache_dir)
    directory = os.path.dirname(path)
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ValueError(f"The cache directory is a file. Received: cache_dir={directory!r}")
    if os.path.isfile(path):
        try:
            return load(path)
        except (OSError, ValueError, KeyError):  # corrupt cache (written by a crashed tool?)
            pass
    if verbose:
        import sys

        print(f"calozdc: simulating {n} built-in {BUILTIN_GEOMETRY} showers (seed {seed}) "
              f"into {path}", file=sys.stderr)
    dataset = simulate(BUILTIN_GEOMETRY, n, seed=seed)
    try:
        save(dataset, path, overwrite=True)
    except OSError as err:  # a read-only cache must not stop training
        if verbose:
            import sys

            print(f"calozdc: could not cache the built-in showers ({err})", file=sys.stderr)
    return dataset
