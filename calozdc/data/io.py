"""Readers and writers of shower files: calozdc HDF5, CaloChallenge HDF5, ALICE ZDC npz.

Formats (``format=`` names):

* ``"calozdc"``: HDF5, root attributes ``format="calozdc"``, ``calozdc_version``,
  ``geometry`` (JSON of ``Geometry.get_config()`` or ``null``) and ``metadata`` (JSON);
  datasets ``showers`` ``(N, H, W)`` (int32 when every value is an integer, e.g. zn44 photon
  counts, else float32; gzip), ``conditions`` ``(N, k)`` float32 with attribute ``columns``
  (JSON list of names), optional ``pdg`` ``(N,)`` int64 and ``layers`` ``(N, L)`` float32.
  Values are stored in the dataset's own units (zn44: photons and GeV; ecal20: MeV).
* ``"calochallenge"``: HDF5 as in the Fast Calorimeter Simulation Challenge 2022:
  ``incident_energies`` ``(N, 1)`` in MeV and ``showers`` ``(N, voxels)`` (MeV there; calozdc
  writes the dataset's response unit and records it in the ``unit`` attribute). The grid
  comes from a ``grid_shape`` attribute of ``showers`` or of the root, the ``grid_shape``
  argument, the geometry, or a square voxel count; a 3-D grid ``(L, H, W)`` is summed over
  depth into the image and gives the per-layer sums. Extra datasets ``conditions`` (with
  ``columns``), ``layers`` and ``pdg`` are used when present (calozdc writes them, and so
  does the Geant4 reference file of this project). Without ``conditions`` the condition is
  the incident energy in MeV; without ``pdg``, a root attribute ``particle`` naming one
  species (e.g. ``"e-"``) gives the PDG id of every shower.
* ``"alice"``: the ALICE ZDC npz pair of arXiv:2407.16704: ``..._responses.npz`` with
  ``arr_0`` ``(N, 44, 44)`` photon counts and ``..._particles.npz`` with ``arr_0``
  ``(N, 10)``: 9 features (E [GeV], vx, vy, vz, px, py, pz, m, q) and the PDG id. ``path``
  is the responses file (the particles file is found beside it by replacing ``responses``
  with ``particles`` in the name), a directory holding ``data_nonrandom_responses.npz`` and
  ``data_nonrandom_particles.npz``, or pass ``particles_path=``.

Every writer is atomic (:func:`calozdc.data.atomic.atomic_path`) and refuses to replace an
existing file unless ``overwrite=True``. calozdc-written HDF5 files record ``calozdc_version``
and ``format_version``; files of a newer format version or calozdc major version are refused
with a message saying so (the rule: :mod:`calozdc.version`).

References:
    CaloChallenge data format: https://calochallenge.github.io/homepage/ ;
    ALICE ZDC data: J. Dubiński et al., arXiv:2407.16704 and github.com/m-wojnar/zdc.
"""

import contextlib
import json
import os
import zipfile

import h5py
import numpy as np

from calozdc.data.atomic import atomic_path
from calozdc.data.dataset import ShowerDataset, _check_values, _H5ShowerSource
from calozdc.data.geometry import ZN44_CONDITION_NAMES, get_geometry
from calozdc.data.particles import PARTICLES, get_particle
from calozdc.version import FORMAT_VERSIONS, __version__, check_compatible

FORMATS = ("calozdc", "calochallenge", "alice")
ALICE_RESPONSES = "data_nonrandom_responses.npz"
ALICE_PARTICLES = "data_nonrandom_particles.npz"
_ENERGY_TO_MEV = {"keV": 1e-3, "MeV": 1.0, "GeV": 1e3, "TeV": 1e6}
_BUILTIN_GRIDS = {(44, 44): "zn44", (20, 20): "ecal20"}
_ALICE_ENERGY_UNIT = "GeV"


# -- public API -----------------------------------------------------------------------------
def detect_format(path, particles_path=None):
    """Return ``"calozdc"``, ``"calochallenge"`` or ``"alice"`` for a file or directory.

    Raises:
        FileNotFoundError: nothing at ``path``.
        ValueError: the file is empty, not HDF5/npz, or lacks the expected datasets (the
            message lists the keys found).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        _alice_paths(path, particles_path)  # raises if the pair is not there
        return "alice"
    _check_exists(path)
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path!r} is empty (0 bytes).")
    if h5py.is_hdf5(path):
        with _open_h5(path) as f:
            if _attr_str(f.attrs, "format") == "calozdc":
                return "calozdc"
            keys = sorted(f.keys())
            if "incident_energies" in keys and "showers" in keys:
                return "calochallenge"
        raise ValueError(
            f"{path!r} is an HDF5 file of neither known layout: calozdc files have the root "
            "attribute format='calozdc', CaloChallenge files the datasets 'incident_energies' "
            f"and 'showers'. Found datasets: {keys}"
        )
    if zipfile.is_zipfile(path):
        return "alice"
    raise ValueError(
        f"{path!r} is not an HDF5 file nor an npz archive (or it is corrupt). Expected a "
        f"calozdc/CaloChallenge HDF5 file or an ALICE ZDC npz pair."
    )


def load(path, format=None, geometry=None, grid_shape=None, lazy=False, particles_path=None):
    """Read a shower file into a :class:`~calozdc.data.ShowerDataset`.

    Args:
        path: the file (or, for ALICE npz, a directory holding the pair).
        format: ``"calozdc"``, ``"calochallenge"``, ``"alice"`` or ``None`` to detect it.
        geometry: geometry (name or object) to attach; default: the one recorded in the file,
            else a built-in geometry whose grid matches (44 x 44 -> zn44, 20 x 20 -> ecal20).
        grid_shape: ``(H, W)`` or ``(L, H, W)`` of CaloChallenge voxels when the file does
            not record it.
        lazy: keep the showers in the HDF5 file and read them on demand (calozdc and
            CaloChallenge files; npz files are always read whole).
        particles_path: the ALICE particles file, when not beside the responses file.

    Returns:
        ShowerDataset in the file's units; ``metadata["energy_unit"]`` and
        ``metadata["response_unit"]`` record them for the foreign formats.

    Raises:
        FileNotFoundError: missing file.
        ValueError: one message naming the path and the problem (corrupt or truncated file,
            missing or misnamed datasets, wrong shapes, NaN/inf or negative values, row
            counts that disagree, no showers, a file from a newer calozdc major version).
    """
    return _load(path, format, geometry, grid_shape, lazy, particles_path, check=True)


def _load(path, format, geometry, grid_shape, lazy, particles_path, check):
    """:func:`load`; ``check=False`` (for :func:`info`) skips the checks of values (NaN/inf,
    energies <= 0, negative showers) and returns ``(dataset, raw)``: a dataset built from
    sanitised copies (bad values replaced) for the structure, and the raw arrays by name."""
    path = os.fspath(path)
    if format is not None and format not in FORMATS:
        raise ValueError(f"Unknown format. Expected one of {FORMATS}. Received: format={format!r}")
    detected = detect_format(path, particles_path)
    if format is not None and format != detected and not (
        format == "calochallenge" and detected == "calozdc"
    ):
        raise ValueError(
            f"{path!r} is a {detected!r} file, not {format!r}. Received: format={format!r}"
        )
    format = format or detected
    try:
        if format == "alice":
            return _load_alice(path, particles_path, geometry, check)
        with _open_h5(path) as f:
            if format == "calozdc":
                return _load_calozdc(f, path, geometry, grid_shape, lazy, check)
            return _load_calochallenge(f, path, geometry, grid_shape, lazy, check)
    except (OSError, KeyError, RuntimeError, EOFError, zipfile.BadZipFile) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise ValueError(f"Cannot read {path!r} (corrupt or truncated file?): {err}") from None
    except ValueError as err:
        if path in str(err):
            raise
        raise ValueError(f"Cannot load {path!r}: {err}") from None


def save(dataset, path, format="calozdc", overwrite=False):
    """Write a :class:`~calozdc.data.ShowerDataset` atomically.

    Args:
        dataset: the dataset (lazy datasets are streamed chunk by chunk to HDF5).
        path: output file; for ``format="alice"`` the responses file (its name must contain
            ``responses``; the particles file is written beside it) or a directory (the
            standard ALICE names are used inside it).
        format: ``"calozdc"``, ``"calochallenge"`` or ``"alice"``.
        overwrite: replace existing files.

    Returns:
        The path written (for ``"alice"``: the tuple of both paths).

    Raises:
        FileExistsError: an output exists and ``overwrite`` is false.
        ValueError: unknown format, empty dataset, or data the format cannot hold (ALICE:
            9 condition columns and PDG ids are required).
    """
    if not isinstance(dataset, ShowerDataset):
        raise ValueError(f"Expected a ShowerDataset. Received: dataset={type(dataset).__name__}")
    if format not in FORMATS:
        raise ValueError(f"Unknown format. Expected one of {FORMATS}. Received: format={format!r}")
    if len(dataset) == 0:
        raise ValueError("Nothing to save: the dataset is empty. Received: len(dataset)=0")
    path = os.fspath(path)
    if format == "alice":
        return _save_alice(dataset, path, overwrite)
    with atomic_path(path, overwrite=overwrite) as tmp:
        with h5py.File(tmp, "w") as f:
            if format == "calozdc":
                _write_calozdc(dataset, f)
            else:
                _write_calochallenge(dataset, f)
    return path


def save_simulation(path, geometry, n, overwrite=False, **simulate_kwargs):
    """Simulate showers straight into a calozdc HDF5 file, chunk by chunk.

    Same file contents as ``save(simulate(geometry, n, **simulate_kwargs), path)`` (datasets,
    dtypes, chunking, compression, attributes), but memory stays flat in ``n``: the chunks of
    :func:`~calozdc.data.simulate.iter_simulate` are written as they come. Showers are
    stored as int32 for photon counts (zn44 default response), else float32.

    Args:
        path: output file (written atomically).
        geometry: ``"zn44"``, ``"ecal20"`` or a :class:`~calozdc.data.Geometry`.
        n: number of showers (> 0).
        overwrite: replace an existing file.
        **simulate_kwargs: the other arguments of :func:`~calozdc.data.simulate` (``seed``,
            ``particles``, ``energy_range``, ``response``, ``workers``, ``verbose`` ...).

    Returns:
        The path written.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
        ValueError: invalid simulation arguments (as :func:`~calozdc.data.simulate`); no file
            is left behind.

    Example:

    >>> save_simulation("zn.h5", "zn44", 10_000, seed=0)  # doctest: +SKIP
    'zn.h5'
    """
    from calozdc.data.simulate import (  # noqa: PLC0415
        _validate_n,
        iter_simulate,
        resolve_seed,
        simulation_metadata,
    )

    geometry = get_geometry(geometry)
    n = _validate_n(n)
    path = os.fspath(path)
    simulate_kwargs["seed"] = resolve_seed(simulate_kwargs.get("seed"))
    metadata = simulation_metadata(geometry, simulate_kwargs["seed"], simulate_kwargs.get("response"))
    # the other arguments are checked at the first chunk; an error removes the temporary file
    with contextlib.closing(iter_simulate(geometry, n, **simulate_kwargs)) as chunks, \
            atomic_path(path, overwrite=overwrite) as tmp, h5py.File(tmp, "w") as f:
        _write_calozdc_chunks(f, chunks, n, geometry, metadata,
                              integer=metadata["response_unit"] == "photons")
    return path


def info(path, format=None, grid_shape=None, particles_path=None, scan=True):
    """Summarise a shower file and say what is wrong with its values.

    Unlike :func:`load`, bad values do not stop it: NaN/inf or negative cells, empty
    (all-zero) showers, NaN/inf conditions, layers or PDG ids, incident energies <= 0 and
    non-integer PDG ids are listed under ``problems``. HDF5 showers are read in chunks of
    about 16 MiB (memory does not grow with the file); ALICE npz files are read whole.
    Structural faults (missing datasets, wrong shapes, corrupt files) still raise as in
    :func:`load`.

    Args:
        path, format, grid_shape, particles_path: as in :func:`load`.
        scan: read the showers to look for bad cells and empty showers (``False``: only the
            conditions, layers and PDG ids are checked; ``"showers_scanned"`` is then false).

    Returns:
        JSON-serialisable dict with ``path``, ``format``, ``calozdc_version`` (``None`` when
        not written by calozdc), ``n_showers``, ``shower_shape`` ``[H, W]``,
        ``n_conditions``, ``condition_names``, ``geometry``, ``energy_range`` ``[min, max]``
        (over the finite energies; ``None`` when there are none), ``energy_unit``,
        ``response_unit``, ``n_layers``, ``particles`` (a list of ``{"pdg", "name",
        "count"}``, most frequent first, or ``None``), ``showers_scanned`` and ``problems``:
        a list (empty when the values are clean) of ``{"dataset", "kind", "count",
        "values", "first_index", ...}`` where ``kind`` is ``"non_finite"`` (NaN/inf),
        ``"negative"`` (cells < 0; also ``min_value``), ``"empty"`` (all cells 0),
        ``"non_positive"`` (incident energy <= 0; also ``first_value``) or ``"non_integer"``
        (PDG ids), ``count`` the number of rows (showers) concerned, ``values`` the number of
        bad values (cells) and ``first_index`` the first such row (0-based; conditions also
        give ``first_column``). :func:`describe_problem` words an entry.
    """
    path = os.fspath(path)
    format = format or detect_format(path, particles_path)
    ds, raw = _load(path, format, None, grid_shape, True, particles_path, check=False)
    version = None
    if format != "alice":
        with _open_h5(path) as f:
            version = _attr_str(f.attrs, "calozdc_version")
    problems = _scan_array("conditions", raw["conditions"], positive_first_column=True,
                           column_names=ds.condition_names)
    if raw.get("incident_energies") is not None:
        problems += _scan_array("incident_energies", raw["incident_energies"],
                                positive_first_column=True)
    problems += _scan_array("layers", raw["layers"])
    problems += _scan_array("pdg", raw["pdg"], integer=True)
    if scan:
        problems += _scan_showers(raw["showers"])
    energies = np.asarray(raw["conditions"], dtype=np.float64).reshape(len(ds), -1)[:, 0]
    energies = energies[np.isfinite(energies)]
    particles = None
    if raw["pdg"] is not None:
        pdg = np.asarray(raw["pdg"], dtype=np.float64).reshape(-1)
        pdg = pdg[np.isfinite(pdg) & (pdg == np.round(pdg))].astype(np.int64)
        names = {p.pdg: p.name for p in PARTICLES.values()}
        values, counts = np.unique(pdg, return_counts=True)
        order = np.argsort(-counts, kind="stable")
        particles = [
            {"pdg": int(values[i]), "name": names.get(int(values[i]), "unknown"),
             "count": int(counts[i])}
            for i in order
        ]
    geometry = ds.geometry
    energy_unit = ds.metadata.get("energy_unit") or (geometry.energy_unit if geometry else None)
    response_unit = ds.metadata.get("response_unit") or (
        geometry.response_unit if geometry else None
    )
    return {
        "path": path,
        "format": format,
        "calozdc_version": version,
        "n_showers": len(ds),
        "shower_shape": list(ds.shower_shape[:2]),
        "n_conditions": int(ds.conditions.shape[1]),
        "condition_names": list(ds.condition_names),
        "geometry": geometry.name if geometry is not None else None,
        "energy_range": [float(energies.min()), float(energies.max())] if energies.size
        else None,
        "energy_unit": energy_unit,
        "response_unit": response_unit,
        "n_layers": None if ds.layers is None else int(ds.layers.shape[1]),
        "particles": particles,
        "showers_scanned": bool(scan),
        "problems": problems,
    }


# -- helpers --------------------------------------------------------------------------------
def _dataset(check, extra, showers, conditions, pdg=None, layers=None, **kwargs):
    """The loaders' result: a checked :class:`ShowerDataset`, or with ``check=False`` the pair
    ``(dataset, raw)``: a dataset of sanitised copies (non-finite values -> 0, energies <= 0
    -> 1, negative cells -> 0, PDG ids rounded) that carries the file's structure (shape,
    names, geometry, units), and the raw ``conditions``, ``pdg``, ``layers``, ``showers`` (a
    lazy source or an array) and ``extra`` arrays to scan for problems."""
    if check:
        return ShowerDataset(showers, conditions, pdg=pdg, layers=layers, **kwargs)
    raw = {"showers": showers, "conditions": conditions, "pdg": pdg, "layers": layers, **extra}
    clean_c = np.array(conditions, dtype=np.float32)
    if clean_c.ndim == 1:
        clean_c = clean_c[:, None]
    clean_c[~np.isfinite(clean_c)] = 0.0
    if clean_c.ndim == 2 and clean_c.shape[1]:
        clean_c[:, 0][~(clean_c[:, 0] > 0)] = 1.0
    clean_pdg = None
    if pdg is not None:
        clean_pdg = np.array(pdg, dtype=np.float64)
        clean_pdg[~np.isfinite(clean_pdg)] = 0.0
        clean_pdg = np.round(clean_pdg)
    clean_layers = None
    if layers is not None:
        clean_layers = np.array(layers, dtype=np.float32)
        clean_layers[~np.isfinite(clean_layers)] = 0.0
    if not isinstance(showers, _H5ShowerSource):  # an in-memory array (npz): only its shape,
        shape = np.shape(showers)                   # as a source that is never read
        showers = _H5ShowerSource("", "", shape[1:3], shape[0])
    dataset = ShowerDataset(showers, clean_c, pdg=clean_pdg, layers=clean_layers, **kwargs)
    return dataset, raw


def _row_problem(dataset, kind, bad_rows, values, first_detail="", **extra):
    """One entry of :func:`scan_problems`' list, or ``None`` when no row is bad."""
    rows = np.flatnonzero(bad_rows)
    if len(rows) == 0:
        return None
    return {"dataset": dataset, "kind": kind, "count": int(len(rows)), "values": int(values),
            "first_index": int(rows[0]), **extra}


def _scan_array(name, array, positive_first_column=False, integer=False, column_names=None):
    """Problems of an in-memory array (conditions, layers, PDG ids, incident energies)."""
    if array is None:
        return []
    values = np.asarray(array)
    if values.dtype.kind not in "biuf":
        return []
    values = values.reshape(len(values), -1)
    out = []
    if values.dtype.kind == "f":
        finite = np.isfinite(values.astype(np.float32) if name != "pdg" else values)
        bad = ~finite
        problem = _row_problem(name, "non_finite", bad.any(axis=1), bad.sum())
        if problem is not None:
            row = problem["first_index"]
            column = int(np.flatnonzero(bad[row])[0])
            if column_names is not None and values.shape[1] > 1:
                problem["first_column"] = str(column_names[column])
            out.append(problem)
    else:
        finite = np.ones(values.shape, dtype=bool)
    if positive_first_column:
        first = values[:, 0].astype(np.float64)
        bad = finite[:, 0] & ~(first > 0)
        problem = _row_problem(name, "non_positive", bad, bad.sum())
        if problem is not None:
            problem["first_value"] = float(first[problem["first_index"]])
            out.append(problem)
    if integer and values.dtype.kind == "f":
        bad = finite & (values != np.round(values))
        problem = _row_problem(name, "non_integer", bad.any(axis=1), bad.sum())
        if problem is not None:
            out.append(problem)
    return out


def _scan_showers(source, chunk_bytes=16 * 2**20):
    """NaN/inf cells, negative cells and empty (all-zero) showers, read in chunks of about
    ``chunk_bytes`` (an HDF5 dataset is read straight from the file, without the value checks
    of lazy datasets; the cells are those stored, before any sum over depth)."""
    if isinstance(source, _H5ShowerSource):
        handle = h5py.File(source.path, "r")
        data = handle[source.key]
    else:
        handle, data = None, source
    counts = {kind: [0, 0, None] for kind in ("non_finite", "negative", "empty")}
    low = None
    try:
        n = int(data.shape[0])
        row_cells = int(np.prod(data.shape[1:]))
        rows = max(1, chunk_bytes // max(1, row_cells * data.dtype.itemsize))
        for start in range(0, n, rows):
            block = np.asarray(data[start:start + rows]).reshape(-1, row_cells)
            masks = {}
            if block.dtype.kind == "f":
                masks["non_finite"] = ~np.isfinite(block)
            if block.dtype.kind in "if":
                masks["negative"] = block < 0
            for kind, mask in masks.items():
                bad_rows = mask.any(axis=1)
                if bad_rows.any():
                    entry = counts[kind]
                    entry[0] += int(bad_rows.sum())
                    entry[1] += int(mask.sum())
                    if entry[2] is None:
                        entry[2] = start + int(np.flatnonzero(bad_rows)[0])
                    if kind == "negative":
                        m = float(block[mask].min())
                        low = m if low is None else min(low, m)
            empty = ~np.any(block != 0, axis=1)
            if empty.any():
                entry = counts["empty"]
                entry[0] += int(empty.sum())
                entry[1] += int(empty.sum()) * row_cells
                if entry[2] is None:
                    entry[2] = start + int(np.flatnonzero(empty)[0])
    finally:
        if handle is not None:
            handle.close()
    out = []
    for kind, (count, values, first) in counts.items():
        if count:
            entry = {"dataset": "showers", "kind": kind, "count": count, "values": values,
                     "first_index": first}
            if kind == "negative":
                entry["min_value"] = low
            out.append(entry)
    return out


_PROBLEM_TEXT = {
    "non_finite": "NaN/inf",
    "negative": "negative",
    "empty": "empty (all cells 0)",
    "non_positive": "<= 0",
    "non_integer": "non-integer",
}


def _plural(count, word):
    return f"{count} {word}{'s' * (count != 1)}"


def describe_problem(problem):
    """One line for an entry of ``info(path)["problems"]``, e.g. ``showers: 2 with NaN/inf
    cells (3 cells), first: shower 3``."""
    name, kind, count = problem["dataset"], problem["kind"], problem["count"]
    first = problem["first_index"]
    if name == "showers":
        if kind == "empty":
            return f"showers: {count} empty (all cells 0), first: shower {first}"
        detail = _plural(problem["values"], "cell")
        if kind == "negative":
            detail += f", min {problem['min_value']:.6g}"
        return f"showers: {count} with {_PROBLEM_TEXT[kind]} cells ({detail}), first: shower {first}"
    if kind == "non_positive":
        what = "energies (conditions column 0)" if name == "conditions" else name
        text = f"{what}: {_plural(count, 'row')} <= 0, first: row {first}"
    else:
        text = f"{name}: {_plural(count, 'row')} with {_PROBLEM_TEXT[kind]} values, first: row {first}"
    if "first_column" in problem:
        text += f", column {problem['first_column']!r}"
    if "first_value" in problem:
        text += f" ({problem['first_value']:.6g})"
    return text


def _check_exists(path):
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file: {path!r}")


class _open_h5:
    """``h5py.File(path, "r")`` whose read errors become one ValueError naming the path."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        _check_exists(self.path)
        try:
            self.file = h5py.File(self.path, "r")
        except OSError as err:
            raise ValueError(
                f"Cannot open {self.path!r} as HDF5 (corrupt or truncated file?): {err}"
            ) from None
        return self.file

    def __exit__(self, exc_type, exc, tb):
        self.file.close()
        if exc_type is not None and issubclass(exc_type, (OSError, KeyError, RuntimeError)) \
                and not issubclass(exc_type, FileNotFoundError):
            raise ValueError(
                f"Cannot read {self.path!r} (corrupt or truncated file?): {exc}"
            ) from None
        return False


def _attr_str(attrs, key):
    value = attrs.get(key)
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    return value


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


def _to_json(value):
    return json.dumps(value, default=_json_default)


def _json_attr(attrs, key, default=None):
    value = _attr_str(attrs, key)
    if value is None:
        return default
    try:
        return json.loads(value)
    except (TypeError, json.JSONDecodeError):
        raise ValueError(f"Attribute {key!r} is not valid JSON. Received: {value!r}") from None


def _columns(dataset_attrs, k):
    columns = _attr_str(dataset_attrs, "columns")
    if columns is None:
        return None
    if isinstance(columns, str):
        try:
            columns = json.loads(columns)
        except json.JSONDecodeError:
            columns = [c.strip() for c in columns.split(",")]
    columns = [c.decode() if isinstance(c, bytes) else str(c) for c in np.atleast_1d(columns)]
    if len(columns) != k:
        raise ValueError(
            f"The 'columns' attribute names {len(columns)} columns but conditions have {k}. "
            f"Received: columns={columns}"
        )
    return columns


def _check_version(attrs):
    """Refuse files of a newer format version or calozdc major version (calozdc.version)."""
    version = _attr_str(attrs, "calozdc_version")
    check_compatible("hdf5", _attr_str(attrs, "format_version"), version, what="the file")


def _require(container, keys, expected, what="datasets"):
    found = sorted(container.keys())
    missing = [k for k in keys if k not in found]
    if missing:
        raise ValueError(
            f"missing {what} {missing} ({expected}). Found {what}: {found}"
        )


def _check_numeric(dataset, key):
    """Refuse non-numeric HDF5 datasets (strings, compounds) before reading them."""
    if dataset.dtype.kind not in "biuf":
        raise ValueError(
            f"dataset '{key}' must hold numbers. Received: dtype={dataset.dtype}"
        )


def _rows(f, key, n=None):
    """Read a whole HDF5 dataset; check its dtype and row count."""
    _check_numeric(f[key], key)
    data = f[key][()]
    if n is not None and (data.ndim == 0 or data.shape[0] != n):
        raise ValueError(
            f"dataset '{key}' has shape {data.shape} but there are {n} showers (the number of "
            f"rows must agree)."
        )
    return data


def _check_energies(energies, name):
    energies = np.asarray(energies, dtype=np.float64)
    bad = ~np.isfinite(energies) | (energies <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} must be finite and > 0 (incident energies). Received: "
            f"{name}[{i}]={energies[i]}"
        )


def _check_not_empty(n):
    if n == 0:
        raise ValueError("the file holds no showers (N = 0).")


def _geometry_for(geometry, stored, grid, n_layers):
    """The geometry to attach: argument, else stored config, else a built-in grid match."""
    if geometry is not None:
        if isinstance(geometry, str) and n_layers is not None:
            return get_geometry(geometry, n_layers=n_layers)
        return get_geometry(geometry)
    if stored:
        try:
            return get_geometry(stored)
        except (ValueError, TypeError, KeyError):
            raise ValueError(f"unknown geometry recorded in the file: {stored!r}") from None
    name = _BUILTIN_GRIDS.get(tuple(grid))
    if name is None:
        return None
    return get_geometry(name, **({} if n_layers is None else {"n_layers": n_layers}))


def _metadata_attrs(attrs):
    """Root attributes of a foreign file as a JSON-compatible dict."""
    return json.loads(_to_json({k: _attr_str(attrs, k) for k in attrs.keys()}))


# -- calozdc format -------------------------------------------------------------------------
def _load_calozdc(f, path, geometry, grid_shape, lazy, check=True):
    _check_version(f.attrs)
    _require(f, ["showers", "conditions"], "calozdc files hold 'showers' and 'conditions'")
    showers = f["showers"]
    _check_numeric(showers, "showers")
    if showers.ndim != 3:
        raise ValueError(f"dataset 'showers' must be (N, H, W). Received: shape={showers.shape}")
    n = showers.shape[0]
    _check_not_empty(n)
    if grid_shape is not None and tuple(grid_shape) != showers.shape[1:]:
        raise ValueError(
            f"the showers have grid {showers.shape[1:]}. Received: grid_shape={grid_shape}"
        )
    conditions = _rows(f, "conditions", n)
    if conditions.ndim != 2:
        raise ValueError(
            f"dataset 'conditions' must be (N, k). Received: shape={conditions.shape}"
        )
    if check:
        _check_energies(conditions[:, 0], "energies (conditions column 0)")
    pdg = _rows(f, "pdg", n) if "pdg" in f else None
    layers = _rows(f, "layers", n) if "layers" in f else None
    geometry = _geometry_for(geometry, _json_attr(f.attrs, "geometry"), showers.shape[1:],
                             None if layers is None else layers.shape[1])
    lazy = lazy or not check  # the unchecked path scans the file itself, in chunks
    data = _H5ShowerSource(path, "showers", showers.shape[1:], n) if lazy else showers[()]
    return _dataset(
        check, {}, data, conditions, pdg=pdg, layers=layers,
        condition_names=_columns(f["conditions"].attrs, conditions.shape[1]),
        geometry=geometry, metadata=_json_attr(f.attrs, "metadata", {}),
    )


def _integer_array(x):
    """Whether every value of ``x`` is an integer that fits int32."""
    return not (np.any(x != np.round(x)) or (x.size and x.max() >= 2**31))


def _integer_valued(dataset):
    return all(_integer_array(chunk) for _, _, chunk in dataset.iter_chunks())


def _create_showers(f, n, grid, flat, dtype):
    h, w = grid
    shape = (n, h * w) if flat else (n, h, w)
    row_bytes = 4 * h * w
    # Chunks of ~16 KiB along N: a shuffled lazy read decompresses whole chunks, so small
    # chunks keep random access cheap (zn44: 2 showers per chunk) at a small cost in size.
    chunk_rows = int(max(1, min(n, 2**14 // row_bytes)))
    return f.create_dataset(
        "showers", shape=shape, dtype=dtype, chunks=(chunk_rows,) + shape[1:],
        compression="gzip", compression_opts=4, shuffle=True,
    )


def _write_showers(dataset, f, flat, dtype, attrs):
    out = _create_showers(f, len(dataset), dataset.shower_shape[:2], flat, dtype)
    for start, stop, chunk in dataset.iter_chunks():
        out[start:stop] = chunk.reshape((stop - start,) + out.shape[1:]).astype(dtype)
    out.attrs.update(attrs)


def _create_extras(f, n, condition_names, pdg=True, n_layers=None):
    """Empty ``conditions`` (with ``columns``), ``pdg`` and ``layers`` datasets, by name."""
    out = {"conditions": f.create_dataset("conditions", shape=(n, len(condition_names)),
                                          dtype=np.float32, compression="gzip")}
    out["conditions"].attrs["columns"] = _to_json(list(condition_names))
    if pdg:
        out["pdg"] = f.create_dataset("pdg", shape=(n,), dtype=np.int64, compression="gzip")
    if n_layers is not None:
        out["layers"] = f.create_dataset("layers", shape=(n, n_layers), dtype=np.float32,
                                         compression="gzip")
    return out


def _write_extras(dataset, f):
    layers = dataset.layers
    out = _create_extras(f, len(dataset), dataset.condition_names, dataset.pdg is not None,
                         None if layers is None else layers.shape[1])
    for key, column in out.items():
        column[...] = getattr(dataset, key)
    return out["conditions"]


def _write_header(f, geometry, metadata):
    f.attrs["format"] = "calozdc"
    f.attrs["calozdc_version"] = __version__
    f.attrs["format_version"] = FORMAT_VERSIONS["hdf5"]
    f.attrs["geometry"] = _to_json(geometry.get_config() if geometry is not None else None)
    f.attrs["metadata"] = _to_json(metadata)


def _write_calozdc(dataset, f):
    _write_header(f, dataset.geometry, dataset.metadata)
    dtype = np.int32 if _integer_valued(dataset) else np.float32
    _write_showers(dataset, f, flat=False, dtype=dtype, attrs={})
    _write_extras(dataset, f)


def _write_calozdc_chunks(f, chunks, n, geometry, metadata, integer):
    """Write the calozdc layout of ``n`` showers from :func:`iter_simulate`-style chunks.

    Only one chunk is held at a time; ``integer`` stores the showers as int32 (each chunk is
    checked to hold integers).
    """
    _write_header(f, geometry, metadata)
    dtype = np.int32 if integer else np.float32
    showers = _create_showers(f, n, geometry.shape, flat=False, dtype=dtype)
    extras = _create_extras(f, n, geometry.condition_names, pdg=True, n_layers=geometry.n_layers)
    start = 0
    for chunk in chunks:
        stop = start + len(chunk["showers"])
        if stop > n:
            raise ValueError(f"the chunks hold more than n={n} showers")
        for key in ("showers", *extras):
            _check_values(chunk[key], key, non_negative=key == "showers")
        if integer and not _integer_array(chunk["showers"]):
            raise ValueError(f"showers {start}-{stop} are not integer counts, cannot store them as int32")
        showers[start:stop] = chunk["showers"].astype(dtype)
        for key, column in extras.items():
            column[start:stop] = chunk[key]
        start = stop
    if start != n:
        raise ValueError(f"the chunks hold {start} showers, expected n={n}")


# -- CaloChallenge format -------------------------------------------------------------------
def _grid_for(f, showers, grid_shape, geometry, stored_geometry):
    voxels = int(np.prod(showers.shape[1:]))
    grid, source = grid_shape, "grid_shape argument"
    if grid is None:
        for attrs, where in ((showers.attrs, "'showers' attribute"), (f.attrs, "root attribute")):
            if "grid_shape" in attrs:
                grid, source = attrs["grid_shape"], f"grid_shape {where}"
                break
    if grid is None and geometry is not None:
        grid, source = get_geometry(geometry).shape, "geometry"
    if grid is None and stored_geometry:
        grid, source = get_geometry(stored_geometry).shape, "recorded geometry"
    if grid is None:
        side = int(round(np.sqrt(voxels)))
        if side * side != voxels:
            raise ValueError(
                f"cannot infer the grid of showers with {voxels} voxels (no grid_shape "
                "attribute); pass grid_shape=(H, W) or (L, H, W) (CLI: --grid-shape)."
            )
        grid, source = (side, side), "square voxel count"
    grid = tuple(int(g) for g in np.atleast_1d(grid))
    if len(grid) not in (2, 3) or min(grid) < 1 or int(np.prod(grid)) != voxels:
        raise ValueError(
            f"cannot reshape showers with {voxels} voxels to grid {grid} (from the {source}). "
            f"Received: grid_shape={grid}"
        )
    return grid


def _load_calochallenge(f, path, geometry, grid_shape, lazy, check=True):
    _check_version(f.attrs)
    _require(f, ["incident_energies", "showers"],
             "CaloChallenge files hold 'incident_energies' and 'showers'")
    showers = f["showers"]
    _check_numeric(showers, "showers")
    if showers.ndim < 2:
        raise ValueError(
            f"dataset 'showers' must be (N, voxels). Received: shape={showers.shape}"
        )
    n = showers.shape[0]
    _check_not_empty(n)
    incident = _rows(f, "incident_energies", n).astype(np.float64)
    if incident.ndim > 2 or (incident.ndim == 2 and incident.shape[1] != 1):
        raise ValueError(
            "dataset 'incident_energies' must be (N, 1). Received: "
            f"shape={incident.shape}"
        )
    incident = incident.reshape(n)
    if check:
        _check_energies(incident, "incident_energies")
    stored_geometry = _json_attr(f.attrs, "geometry")
    grid = _grid_for(f, showers, grid_shape, geometry, stored_geometry)

    metadata = _json_attr(f.attrs, "calozdc_metadata")
    if "conditions" in f:
        conditions = _rows(f, "conditions", n)
        if conditions.ndim != 2:
            raise ValueError(
                f"dataset 'conditions' must be (N, k). Received: shape={conditions.shape}"
            )
        names = _columns(f["conditions"].attrs, conditions.shape[1])
        energy_unit = _attr_str(f["conditions"].attrs, "energy_unit") or "MeV"
    else:
        conditions, names, energy_unit = incident[:, None], ["energy"], "MeV"
    if check:
        _check_energies(conditions[:, 0], "energies (conditions column 0)")

    if "pdg" in f:
        pdg = _rows(f, "pdg", n)
    else:
        pdg = None
        particle = _attr_str(f.attrs, "particle")
        if isinstance(particle, str):
            try:
                pdg = np.full(n, get_particle(particle).pdg, dtype=np.int64)
            except ValueError:
                pdg = None

    lazy_source = _H5ShowerSource(path, "showers", grid, n)
    layers = _rows(f, "layers", n) if "layers" in f else None
    if layers is None and len(grid) == 3:
        layers = np.empty((n, grid[0]), dtype=np.float32)
        for start in range(0, n, 1024):
            block = np.asarray(showers[start:start + 1024], dtype=np.float64)
            layers[start:start + len(block)] = block.reshape((len(block),) + grid).sum((2, 3))
    geometry = _geometry_for(geometry, stored_geometry, grid[-2:],
                             None if layers is None else layers.shape[1])
    if metadata is None:
        metadata = {
            "source_format": "calochallenge",
            "energy_unit": energy_unit,
            "response_unit": _attr_str(showers.attrs, "unit") or "MeV",
            "file_attributes": _metadata_attrs(f.attrs),
        }
    lazy = lazy or not check  # the unchecked path scans the file itself, in chunks
    data = lazy_source if lazy else lazy_source.read(np.arange(n))
    if not lazy:
        lazy_source.close()
    extra = {} if "conditions" not in f else {"incident_energies": incident}
    return _dataset(check, extra, data, conditions, pdg=pdg, layers=layers,
                    condition_names=names, geometry=geometry, metadata=metadata)


def _energy_unit(dataset):
    unit = dataset.metadata.get("energy_unit")
    if unit is None and dataset.geometry is not None:
        unit = dataset.geometry.energy_unit
    unit = unit or "MeV"
    if unit not in _ENERGY_TO_MEV:
        raise ValueError(
            f"Cannot convert energies in {unit!r} to MeV; known units: "
            f"{sorted(_ENERGY_TO_MEV)}. Received: metadata['energy_unit']={unit!r}"
        )
    return unit


def _write_calochallenge(dataset, f):
    unit = _energy_unit(dataset)
    geometry = dataset.geometry
    response_unit = dataset.metadata.get("response_unit") or (
        geometry.response_unit if geometry is not None else "MeV"
    )
    f.attrs["written_by"] = "calozdc"
    f.attrs["calozdc_version"] = __version__
    f.attrs["format_version"] = FORMAT_VERSIONS["hdf5"]
    f.attrs["geometry"] = _to_json(geometry.get_config() if geometry is not None else None)
    f.attrs["calozdc_metadata"] = _to_json(dataset.metadata)
    energies = dataset.energies.astype(np.float64) * _ENERGY_TO_MEV[unit]
    f.create_dataset("incident_energies", data=energies[:, None], compression="gzip")
    h, w, _ = dataset.shower_shape
    _write_showers(dataset, f, flat=True, dtype=np.float32,
                   attrs={"grid_shape": np.array([h, w]), "unit": response_unit})
    cond = _write_extras(dataset, f)
    cond.attrs["energy_unit"] = unit


# -- ALICE ZDC npz --------------------------------------------------------------------------
def _alice_paths(path, particles_path=None):
    if os.path.isdir(path):
        responses = os.path.join(path, ALICE_RESPONSES)
        particles = particles_path or os.path.join(path, ALICE_PARTICLES)
        for p in (responses, particles):
            if not os.path.exists(p):
                raise FileNotFoundError(
                    f"Directory {path!r} does not hold the ALICE npz pair; missing {p!r}. "
                    f"Found: {sorted(os.listdir(path))}"
                )
        return responses, particles
    if particles_path is not None:
        return path, os.fspath(particles_path)
    directory, name = os.path.split(path)
    if "responses" in name:
        return path, os.path.join(directory, _replace_last(name, "responses", "particles"))
    if "particles" in name:
        return os.path.join(directory, _replace_last(name, "particles", "responses")), path
    raise ValueError(
        f"Cannot find the particles file of {path!r}: its name does not contain 'responses'. "
        "Pass particles_path=... (CLI: --particles)."
    )


def _replace_last(text, old, new):
    head, _, tail = text.rpartition(old)
    return head + new + tail


def _read_npz(path):
    _check_exists(path)
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path!r} is empty (0 bytes).")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ValueError(f"{path!r} is not an npz archive.")
            if "arr_0" not in npz.files:
                raise ValueError(
                    f"{path!r} has no array 'arr_0' (the ALICE ZDC key). Found keys: "
                    f"{sorted(npz.files)}"
                )
            return npz["arr_0"]
    except AttributeError:  # np.load returned a plain array (.npy)
        raise ValueError(f"{path!r} is not an npz archive.") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise ValueError(f"Cannot read {path!r} (corrupt or truncated npz?): {err}") from None


def _load_alice(path, particles_path, geometry, check=True):
    responses_path, particles_path = _alice_paths(path, particles_path)
    responses = _read_npz(responses_path)
    particles = _read_npz(particles_path)
    if responses.ndim == 4 and responses.shape[-1] == 1:
        responses = responses[..., 0]
    if responses.ndim != 3:
        raise ValueError(
            f"responses in {responses_path!r} must be (N, H, W). Received: "
            f"shape={responses.shape}"
        )
    if particles.ndim != 2 or particles.shape[1] != len(ZN44_CONDITION_NAMES) + 1:
        raise ValueError(
            f"particles in {particles_path!r} must be (N, 10): 9 features and the PDG id. "
            f"Received: shape={particles.shape}"
        )
    if responses.shape[0] != particles.shape[0]:
        raise ValueError(
            f"{responses_path!r} holds {responses.shape[0]} responses but {particles_path!r} "
            f"holds {particles.shape[0]} particles (the number of rows must agree)."
        )
    _check_not_empty(responses.shape[0])
    if check:
        _check_energies(particles[:, 0], "energies (particles column 0)")
    geometry = _geometry_for(geometry, None, responses.shape[1:], None)
    return _dataset(
        check, {}, responses, particles[:, :-1], pdg=particles[:, -1], condition_names=ZN44_CONDITION_NAMES,
        geometry=geometry,
        metadata={"source_format": "alice", "energy_unit": _ALICE_ENERGY_UNIT,
                  "response_unit": "photons"},
    )


def _save_alice(dataset, path, overwrite):
    k = dataset.conditions.shape[1]
    if k != len(ZN44_CONDITION_NAMES) or dataset.pdg is None:
        raise ValueError(
            "The ALICE npz format holds 9 particle features (E [GeV], vx, vy, vz, px, py, pz, "
            "m, q) and the PDG id. Received: "
            f"{k} condition columns, pdg={'present' if dataset.pdg is not None else None}"
        )
    unit = dataset.metadata.get("energy_unit") or (
        dataset.geometry.energy_unit if dataset.geometry is not None else _ALICE_ENERGY_UNIT
    )
    if unit != _ALICE_ENERGY_UNIT:
        raise ValueError(
            f"The ALICE npz format holds energies in GeV. Received: energy_unit={unit!r}"
        )
    if os.path.isdir(path):
        responses_path = os.path.join(path, ALICE_RESPONSES)
        particles_path = os.path.join(path, ALICE_PARTICLES)
    else:
        name = os.path.basename(path)
        if "responses" not in name or not name.endswith(".npz"):
            raise ValueError(
                "For format='alice' give a directory or a responses file named like "
                f"{ALICE_RESPONSES!r}. Received: path={path!r}"
            )
        responses_path, particles_path = _alice_paths(path)
    showers = dataset.showers[..., 0]
    if np.all(showers == np.round(showers)) and showers.max(initial=0) < 2**31:
        showers = showers.astype(np.int32)
    particles = np.concatenate(
        [dataset.conditions.astype(np.float64), dataset.pdg[:, None].astype(np.float64)], axis=1
    )
    with atomic_path(responses_path, overwrite) as tmp_r, \
            atomic_path(particles_path, overwrite) as tmp_p:
        for tmp, array in ((tmp_r, showers), (tmp_p, particles)):
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, arr_0=array)
    return responses_path, particles_path
