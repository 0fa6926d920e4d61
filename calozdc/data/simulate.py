"""The built-in shower simulator: realistic calorimeter showers with no download.

``simulate(geometry, n, seed=...)`` returns a :class:`~calozdc.data.ShowerDataset` of ``n``
showers: images ``(n, H, W, 1)`` (depth summed), per-layer sums ``(n, L)``, conditions and PDG
ids. The physics is in :mod:`calozdc.data.shower_model` (GFlash EM showers, hadron showers
on the lambda_int scale); this module draws the particles and their kinematics, applies the
detector effects (sampling fluctuations as discrete energy spots, the impact-point effect of a
fibre calorimeter at zero angle, photon statistics, noise and threshold) and runs it in
chunks. On zn44, photons have their own calibrated constants (``geometry_model("zn44")["gamma"]``)
and start at their first pair conversion, traced through the fibre cores
(:func:`_photon_conversion_depth`).

Reproducibility: chunk ``i`` (of ``CHUNK_SIZE`` showers) draws from
``SeedSequence(seed).spawn(...)[i]``, so the same seed gives the same showers whatever the
number of worker processes, on every machine with the same numpy.
"""

import concurrent.futures
import json
import math
import multiprocessing
import os
import sys

import numpy as np

from calozdc.data import shower_model as sm
from calozdc.data.geometry import get_geometry
from calozdc.data.particles import ALICE_ZN_MIX, get_particle
from calozdc.utils.progress import progress

#: Depth nodes of the early showering of fibre-channelled particles (see ``_em_shower``).
_LEAK_NODES = 4

#: Radiation length of fused silica (PDG "Atomic and nuclear properties": 27.05 g/cm^2 at
#: 2.20 g/cm^3), mm: a photon inside a fibre core is nearly transparent.
QUARTZ_X0_MM = 123.0

#: Showers per independently seeded chunk (part of the reproducibility contract).
CHUNK_SIZE = 1024

#: Distance from the ALICE interaction point to the ZN front face, mm (ALICE ZDC TDR,
#: CERN/LHCC 99-5: the ZN sit 112.5 m from the IP).
ZN_DISTANCE_MM = 112_500.0

#: Path of the zn44 calibration (package data): the detector-response constants of the zn44 EM
#: model, fitted to the Geant4 reference by ``benchmarks/calibrate_simulator.py``, with their
#: provenance (reference file and sha256, date, command, targets and achieved values).
ZN44_CALIBRATION_FILE = os.path.join(os.path.dirname(__file__), "reference", "zn44_calibration.json")

#: Path of the zn44 photon calibration: the same constants fitted to Geant4 photon showers
#: (``benchmarks/calibrate_simulator.py --particle gamma``), used for every photon primary.
ZN44_PHOTON_CALIBRATION_FILE = os.path.join(os.path.dirname(__file__), "reference",
                                            "zn44_calibration_gamma.json")

#: Keys of the calibrated zn44 EM model (``"em"``: the GFlash constants of
#: :data:`calozdc.data.shower_model.DEFAULT_EM_PARAMS`).
CALIBRATED_KEYS = (
    "em", "sampling_fraction", "stochastic_em", "constant", "spots_per_GeV",
    "channel_amplitude", "channel_energy_slope", "channel_energy_ref_GeV", "channel_sigma_mm", "channel_core_power",
    "channel_tail_amplitude", "channel_tail_sigma_mm", "channel_tail_energy_slope", "channel_fluctuation",
    "channel_depth_x0",
    "fibre_radius_mm", "fibre_start_mean_x0", "fibre_start_shape", "fibre_leak_per_x0",
)

#: Keys of the zn44 photon model: :data:`CALIBRATED_KEYS` and the photon's mean free path to
#: its first pair conversion, in X0 (9/7 X0 at high energy: PDG Review "Passage of particles
#: through matter", eq. 34.31).
PHOTON_CALIBRATED_KEYS = CALIBRATED_KEYS + ("conversion_mean_free_path_x0",)

#: Detector-response constants per geometry (merged with the calibration by
#: :func:`geometry_model`). Provenance: ``zn44`` from the Geant4 reference, in
#: :data:`ZN44_CALIBRATION_FILE` (the model's meaning of each constant is documented in
#: ``_simulate_chunk``; material constants in ``calozdc/data/materials.py``); ``ecal20`` from
#: the AMS-02 ECAL test-beam resolution, sigma/E = 10.4 %/sqrt(E) + 1.4 % (Adloff et al.,
#: NIM A 714 (2013) 147).
GEOMETRY_MODELS = {
    "zn44": {
        # hadron showers have no Geant4 reference here: parametrised (see shower_model)
        "stochastic_had": 1.2,
        "default_particles": ALICE_ZN_MIX,
        "default_energy_range": (10.0, 1000.0),  # GeV
        "max_polar_angle_rad": 2.0e-4,
    },
    "ecal20": {
        "em": dict(sm.DEFAULT_EM_PARAMS),
        "stochastic_em": 0.104,
        "constant": 0.014,
        "stochastic_had": 0.6,
        "spots_per_GeV": 400.0,
        "channel_amplitude": 0.0,
        "channel_tail_amplitude": 0.0,
        "channel_tail_sigma_mm": 1.0,
        "channel_tail_energy_slope": 0.0,
        "channel_core_power": 1.0,
        "fibre_leak_per_x0": 0.0,
        "channel_energy_slope": 0.0,
        "channel_energy_ref_GeV": 1.0,
        "channel_sigma_mm": 1.0,
        "channel_fluctuation": 0.0,
        "channel_depth_x0": 0.0,
        "fibre_radius_mm": 0.0,
        "fibre_start_mean_x0": 0.0,
        "fibre_start_shape": 1.0,
        "default_particles": {"e-": 1 / 3, "e+": 1 / 3, "gamma": 1 / 3},
        "default_energy_range": (1.0e3, 1.0e6),  # MeV
        "max_polar_angle_rad": 0.0,
    },
}


def _load_calibration(path, keys):
    with open(path) as f:
        calibration = json.load(f)
    constants = calibration.get("constants", {})
    missing = [k for k in keys if k not in constants]
    if missing:
        raise ValueError(f"zn44 calibration {path!r} lacks constants {missing}. Received: keys={sorted(constants)}")
    return calibration


def load_zn44_calibration(path=None):
    """Read the zn44 calibration file (default :data:`ZN44_CALIBRATION_FILE`).

    Returns:
        dict with ``constants`` (the :data:`CALIBRATED_KEYS`), ``provenance`` and the fit's
        ``targets``.
    """
    return _load_calibration(ZN44_CALIBRATION_FILE if path is None else path, CALIBRATED_KEYS)


def load_zn44_photon_calibration(path=None):
    """Read the zn44 photon calibration (default :data:`ZN44_PHOTON_CALIBRATION_FILE`).

    Returns:
        dict with ``constants`` (the :data:`PHOTON_CALIBRATED_KEYS`), ``provenance`` and the
        fit's ``targets``.
    """
    return _load_calibration(ZN44_PHOTON_CALIBRATION_FILE if path is None else path,
                             PHOTON_CALIBRATED_KEYS)


def geometry_model(name):
    """The detector-response constants of geometry ``name``.

    zn44: with its calibration; ``model["gamma"]`` is the complete model of photon primaries
    (the photon calibration over the same defaults). Other particles use ``model`` itself.
    """
    model = dict(GEOMETRY_MODELS[name])
    if name == "zn44":
        constants = load_zn44_calibration()["constants"]
        model.update({k: constants[k] for k in CALIBRATED_KEYS})
        model["em"] = {**sm.DEFAULT_EM_PARAMS, **constants["em"]}
        photon = load_zn44_photon_calibration()["constants"]
        model["gamma"] = {**model, **{k: photon[k] for k in PHOTON_CALIBRATED_KEYS},
                          "em": {**sm.DEFAULT_EM_PARAMS, **photon["em"]}}
    return model


def _parse_particles(particles, default):
    """Normalise ``particles`` to (list of Particle, probabilities)."""
    if particles is None:
        particles = default
    if isinstance(particles, str):
        particles = [p.strip() for p in particles.split(",") if p.strip()]
    if isinstance(particles, dict):
        names, probs = list(particles), np.array(list(particles.values()), dtype=np.float64)
    else:
        names = list(particles)
        probs = np.ones(len(names))
    if not names:
        raise ValueError(f"`particles` must name at least one particle. Received: particles={particles!r}")
    if np.any(~np.isfinite(probs)) or np.any(probs < 0) or probs.sum() <= 0:
        raise ValueError(f"Particle fractions must be >= 0 and sum to > 0. Received: particles={particles!r}")
    return [get_particle(p) for p in names], probs / probs.sum()


def _check_range(name, value, lo_limit=0.0):
    lo, hi = (float(v) for v in value)
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo <= lo_limit or hi < lo:
        raise ValueError(
            f"`{name}` must be (low, high) with {lo_limit} < low <= high. Received: {name}={tuple(value)}"
        )
    return lo, hi


class _Config:
    """Validated simulation settings shared by all chunks (picklable for worker processes)."""

    def __init__(self, geometry, particles, energy_range, impact_halfwidth_mm,
                 angle_halfwidth_mrad, response, model, impact_point_mm=None):
        self.geometry = geometry
        self.model = model
        self.particles, self.probs = _parse_particles(particles, model["default_particles"])
        if geometry.name == "ecal20":
            bad = [p.name for p in self.particles if p.kind != "em"]
            if bad:
                raise ValueError(
                    f"ecal20 simulates e-, e+ and photons only. Received: particles={bad}"
                )
        er = model["default_energy_range"] if energy_range is None else energy_range
        self.energy_range = _check_range("energy_range", er)
        self.impact_halfwidth_mm = None
        if impact_halfwidth_mm is not None:
            self.impact_halfwidth_mm = float(impact_halfwidth_mm)
            if not 0 <= self.impact_halfwidth_mm < min(geometry.half_size_mm):
                raise ValueError(
                    "`impact_halfwidth_mm` must be >= 0 and inside the detector "
                    f"(< {min(geometry.half_size_mm)}). Received: impact_halfwidth_mm={impact_halfwidth_mm}"
                )
        self.impact_point_mm = None
        if impact_point_mm is not None:
            point = np.asarray(impact_point_mm, dtype=np.float64)
            half = np.array(geometry.half_size_mm)
            if point.shape != (2,) or not np.all(np.abs(point) < half):
                raise ValueError(
                    f"`impact_point_mm` must be (x, y) inside +-{tuple(half)}. "
                    f"Received: impact_point_mm={impact_point_mm!r}"
                )
            self.impact_point_mm = point
        self.angle_halfwidth_mrad = None
        if angle_halfwidth_mrad is not None:
            self.angle_halfwidth_mrad = float(angle_halfwidth_mrad)
            if not 0 <= self.angle_halfwidth_mrad <= 100:
                raise ValueError(
                    "`angle_halfwidth_mrad` must be in [0, 100]. "
                    f"Received: angle_halfwidth_mrad={angle_halfwidth_mrad}"
                )
        if response is None:
            response = "photons" if geometry.integer_response else "energy"
        if response not in ("photons", "energy"):
            raise ValueError(f"`response` must be 'photons' or 'energy'. Received: response={response!r}")
        if response == "photons" and geometry.material.photons_per_MeV <= 0:
            raise ValueError(
                f"Geometry '{geometry.name}' has no photon readout. Received: response={response!r}"
            )
        self.response = response


def _sample_kinematics(rng, cfg, n):
    """Particles, energies, conditions and impact points of ``n`` primaries."""
    geo = cfg.geometry
    idx = rng.choice(len(cfg.particles), size=n, p=cfg.probs)
    pdg = np.array([p.pdg for p in cfg.particles])[idx]
    mass = np.array([p.mass for p in cfg.particles])[idx]
    charge = np.array([p.charge for p in cfg.particles])[idx]
    is_em = np.array([p.kind == "em" for p in cfg.particles])[idx]
    t_shift = np.array([0.5 if p.pdg == 22 else -0.5 for p in cfg.particles])[idx]
    baryon = np.array([abs(p.pdg) > 1000 for p in cfg.particles])[idx]
    lo, hi = cfg.energy_range
    energy = np.exp(rng.uniform(np.log(lo), np.log(hi), n))  # in geometry units
    energy_gev = energy / 1000.0 if geo.energy_unit == "MeV" else energy
    energy_gev = np.maximum(energy_gev, mass * 1.0001)

    if (cfg.impact_halfwidth_mm is not None or cfg.angle_halfwidth_mrad is not None
            or cfg.impact_point_mm is not None):
        # test-beam style: impact point and angles uniform around a point (default: centre)
        h = cfg.impact_halfwidth_mm or 0.0
        a = (cfg.angle_halfwidth_mrad or 0.0) * 1e-3
        cx, cy = (0.0, 0.0) if cfg.impact_point_mm is None else cfg.impact_point_mm
        x0, y0 = cx + rng.uniform(-h, h, n), cy + rng.uniform(-h, h, n)
        tx, ty = rng.uniform(-a, a, n), rng.uniform(-a, a, n)
        vx, vy, vz = x0 / 10.0, y0 / 10.0, np.full(n, -0.1)  # gun 1 mm before the face, cm
    elif cfg.model["max_polar_angle_rad"] > 0:
        # ALICE-like: from the interaction point, within the ZN's angular acceptance
        vx, vy = rng.normal(0.0, 0.005, n), rng.normal(0.0, 0.005, n)  # cm
        vz = rng.normal(0.0, 5.0, n)
        theta = cfg.model["max_polar_angle_rad"] * np.sqrt(rng.uniform(0, 1, n))
        phi = rng.uniform(0, 2 * np.pi, n)
        tx, ty = np.tan(theta) * np.cos(phi), np.tan(theta) * np.sin(phi)
        lever = ZN_DISTANCE_MM - vz * 10.0
        x0, y0 = vx * 10.0 + tx * lever, vy * 10.0 + ty * lever
    else:
        x0 = y0 = tx = ty = vx = vy = vz = np.zeros(n)
    p = np.sqrt(np.maximum(energy_gev**2 - mass**2, 0.0))
    norm = np.sqrt(1.0 + tx**2 + ty**2)
    pz = p / norm
    if geo.name == "zn44":
        cond = np.stack([energy_gev, vx, vy, vz, tx * pz, ty * pz, pz, mass, charge], axis=1)
    else:
        cond = energy[:, None]
    return {
        "pdg": pdg, "is_em": is_em, "t_shift": t_shift, "baryon": baryon, "energy_gev": energy_gev,
        "x0": x0, "y0": y0, "tx": tx, "ty": ty, "conditions": cond.astype(np.float32),
    }


def _em_shower(rng, cfg, model, e_gev, t_shift, start_x0, leak=None):
    """Components and layer fractions of EM showers (or EM parts) starting at ``start_x0``.

    ``leak`` (N,): fraction of the energy that leaves a fibre-channelled particle before it
    exits the fibre at ``start_x0``; it showers from depths spread evenly over (0, start_x0)
    (longitudinal profile only; the transverse image is that of the whole shower).
    """
    geo, mat = cfg.geometry, cfg.geometry.material
    params = model["em"]
    alpha, beta, T = sm.gflash_em_parameters(rng, e_gev, mat.Ec_MeV, mat.Z_eff, t_shift, params)
    tau_edges = sm._TAU_EDGES[None, :] * T[:, None]
    depth_w = sm.gamma_bin_fractions(alpha, beta, tau_edges)
    rc, rt, p = sm.gflash_radial(e_gev[:, None], mat.Z_eff, sm._TAU_MID[None, :], params)
    w, sig = sm.radial_components(np.ones_like(e_gev), rc, rt, p, depth_w, mat.RM_mm)
    depth_mm = (start_x0[:, None] + sm._TAU_MID[None, :] * T[:, None]) * mat.X0_mm
    depth_mm = np.repeat(depth_mm, w.shape[1] // depth_mm.shape[1], axis=1)
    layer_edges = (np.arange(geo.n_layers + 1) * geo.layer_thickness_mm) / mat.X0_mm
    layers = sm.gamma_bin_fractions(alpha, beta, layer_edges[None, :] - start_x0[:, None])
    if leak is not None and np.any(leak > 0):
        nodes = (np.arange(_LEAK_NODES) + 0.5) / _LEAK_NODES
        early = sum(sm.gamma_bin_fractions(alpha, beta, layer_edges[None, :] - u * start_x0[:, None])
                    for u in nodes) / _LEAK_NODES
        layers = (1.0 - leak[:, None]) * layers + leak[:, None] * early
    return w, sig, depth_mm, layers


def _hadron_shower(rng, cfg, model, e_gev, baryon):
    """Components and layer fractions of hadron showers; weights include h/e (visible)."""
    geo, mat = cfg.geometry, cfg.geometry.material
    n = len(e_gev)
    lam = mat.lambda_int_mm
    z0_mm = rng.exponential(lam, n)
    # EM fraction (Groom 2007): <f_em> = 1 - (E/E0)^(k-1), k = 0.82, E0 = 1 GeV for mesons
    # and 2.6 GeV for baryons (fewer pi0: baryon number conservation); Beta spread
    e0 = np.where(baryon, 2.6, 1.0)
    mean_fem = np.clip(1.0 - np.maximum(e_gev / e0, 1.0) ** (0.82 - 1.0), 0.05, 0.95)
    kappa = 8.0
    f_em = rng.beta(mean_fem * kappa, (1 - mean_fem) * kappa)
    w_em, s_em, d_em, l_em = _em_shower(
        rng, cfg, model, np.maximum(f_em * e_gev, 0.05), np.full(n, -0.5), z0_mm / mat.X0_mm
    )
    # non-EM part: Gamma profile in lambda units, t_max = 0.2 ln E + 0.7 (Wigmans ch. 2)
    b_h = 2.0
    a_h = 1.0 + b_h * (0.2 * np.log(np.maximum(e_gev, 1.0)) + 0.7)
    hd_edges = sm._TAU_EDGES[None, :] * (a_h / b_h)[:, None]
    depth_w = sm.gamma_bin_fractions(a_h, np.full(n, b_h), hd_edges)
    tau = np.broadcast_to(sm._TAU_MID, depth_w.shape)
    rc = np.full_like(depth_w, 0.10) * (0.7 + 0.3 * tau)
    rt = np.full_like(depth_w, 0.40) * (0.8 + 0.2 * tau)
    p = np.full_like(depth_w, 0.55)
    w_h, s_h = sm.radial_components(np.ones(n), rc, rt, p, depth_w, lam)
    d_h = z0_mm[:, None] + (sm._TAU_MID[None, :] * (a_h / b_h)[:, None]) * lam
    d_h = np.repeat(d_h, w_h.shape[1] // d_h.shape[1], axis=1)
    layer_edges = np.arange(geo.n_layers + 1) * geo.layer_thickness_mm
    l_h = sm.gamma_bin_fractions(a_h, np.full(n, b_h), (layer_edges[None, :] - z0_mm[:, None]) / lam)
    vis_em, vis_h = f_em, (1.0 - f_em) * mat.h_over_e
    weights = np.concatenate([w_em * vis_em[:, None], w_h * vis_h[:, None]], axis=1)
    sigmas = np.concatenate([s_em, s_h], axis=1)
    depth = np.concatenate([d_em, d_h], axis=1)
    layers = l_em * vis_em[:, None] + l_h * vis_h[:, None]
    return weights, sigmas, depth, layers


def _photon_conversion_depth(rng, geometry, model, kin, mfp_x0):
    """Depth of the first pair conversion of photons, traced through the nearest fibre core.

    The conversion happens after ``Exp(mfp_x0)`` radiation lengths of material; a straight track
    (angles ``tx``, ``ty``) crosses the core of the nearest fibre (radius ``fibre_radius_mm``)
    over ``[z1, z2]``, where fused silica counts ``X0_mixture / X0_quartz`` per unit length. A
    photon entering along a fibre thus converts only where its +-mrad track leaves the core, a
    depth ~ 1/angle with a long tail; one that enters the core a few mm deep is delayed too.
    Quartz: X0 = 123 mm (PDG); photon mean free path 9/7 X0 (PDG eq. 34.31).

    Returns:
        ``(start_x0, core_x0, in_quartz)``: conversion depth and the path inside the core before
        it (X0), and whether the photon converts inside the core.
    """
    x0_mm = geometry.material.X0_mm
    kappa = x0_mm / QUARTZ_X0_MM
    n = len(kin["x0"])
    length = rng.exponential(mfp_x0, n) * x0_mm  # material to go through, mm of mixture
    z1 = np.full(n, np.inf)
    z2 = np.full(n, np.inf)
    r = model["fibre_radius_mm"]
    if r > 0:
        dx, dy, _, _ = _nearest_fibre_offset(kin["x0"], kin["y0"], geometry)
        tx, ty = kin["tx"], kin["ty"]
        # |(dx, dy) + (tx, ty) z| = r: a z^2 + b z + c = 0
        a, b, c = tx**2 + ty**2, 2.0 * (dx * tx + dy * ty), dx**2 + dy**2 - r**2
        with np.errstate(divide="ignore", invalid="ignore"):
            root = np.sqrt(np.maximum(b**2 - 4.0 * a * c, 0.0))
            lo, hi = (-b - root) / (2.0 * a), (-b + root) / (2.0 * a)
        crosses = (b**2 - 4.0 * a * c > 0) & (a > 0) & (hi > 0)
        along = (a == 0) & (c < 0)  # parallel to the fibre, inside it
        z1 = np.where(crosses, np.maximum(lo, 0.0), np.where(along, 0.0, np.inf))
        z2 = np.where(crosses, hi, np.where(along, np.inf, np.inf))
    core = np.isfinite(z1)
    with np.errstate(invalid="ignore"):
        # material before the core = the path before it; the core crossing adds kappa per mm
        in_quartz = core & (length > z1) & (length <= z1 + kappa * (z2 - z1))
        z = np.where(length <= z1, length,
                     np.where(in_quartz, z1 + (length - z1) / kappa, length + (1.0 - kappa) * (z2 - z1)))
        z = np.where(core, z, length)
        core_path = np.where(core, np.clip(np.minimum(z, z2) - z1, 0.0, None), 0.0)
    return z / x0_mm, core_path / x0_mm, in_quartz


def _nearest_fibre_offset(x0, y0, geometry):
    """Offset (dx, dy) of the impact point from the nearest cell centre, and that cell's index."""
    pitch = geometry.cell_size_mm
    h, w = geometry.shape
    col = np.clip(np.floor(x0 / pitch + w / 2.0), 0, w - 1).astype(np.int64)
    row = np.clip(np.floor(y0 / pitch + h / 2.0), 0, h - 1).astype(np.int64)
    xc, yc = geometry.cell_centres_mm()
    return x0 - xc[col], y0 - yc[row], row, col


def _simulate_chunk(cfg, n, seed_seq):
    """Simulate one chunk; returns arrays (showers (n,H,W) float32, layers, conditions, pdg).

    Photons use ``cfg.model["gamma"]`` where the geometry has one (zn44), every other
    particle ``cfg.model``; a chunk without photons draws exactly what it drew before the
    photon model existed.
    """
    rng = np.random.default_rng(seed_seq)
    kin = _sample_kinematics(rng, cfg, n)
    photon_model = cfg.model.get("gamma")
    photon = kin["pdg"] == 22 if photon_model is not None else np.zeros(n, bool)
    if not photon.any():
        showers, layers = _detector_response(rng, cfg, cfg.model, kin)
    else:
        showers = np.empty((n, *cfg.geometry.shape), np.float32)
        layers = np.empty((n, cfg.geometry.n_layers), np.float32)
        for group, model in ((~photon, cfg.model), (photon, photon_model)):
            i = np.flatnonzero(group)
            if len(i):
                showers[i], layers[i] = _detector_response(
                    rng, cfg, model, {k: v[i] for k, v in kin.items()})
    return showers, layers, kin["conditions"], kin["pdg"].astype(np.int32)


def _detector_response(rng, cfg, model, kin):
    """Showers (m, H, W) float32 and layers (m, L) of the primaries ``kin`` under ``model``."""
    geo, mat = cfg.geometry, cfg.geometry.material
    n = len(kin["energy_gev"])
    e = kin["energy_gev"]
    is_em = kin["is_em"]
    h, w_ = geo.shape
    x_edges = ((np.arange(w_ + 1) - w_ / 2.0) * geo.cell_size_mm).astype(np.float32)
    y_edges = ((np.arange(h + 1) - h / 2.0) * geo.cell_size_mm).astype(np.float32)
    mean_map = np.empty((n, h, w_), np.float32)  # fractions of the visible energy
    # An EM particle entering a fibre core travels in quartz (X0 = 123 mm) until multiple
    # scattering takes it out, so its shower starts late (Geant4 reference: mean fibre-energy
    # depth 25-31 X0 for impacts within the fibre radius, 10 X0 elsewhere).
    start_x0 = np.zeros(n)
    mfp = model.get("conversion_mean_free_path_x0", 0.0)
    converts = kin["is_em"] & (kin["pdg"] == 22) & (mfp > 0)
    t_shift = kin["t_shift"]
    if converts.any():
        # a photon showers from its first pair conversion, traced along its straight track
        # through the W and the nearest fibre core; after it, as the e+e- pair it makes: PDG's
        # t_max constant of electrons (the pair's energy sharing is in the fitted t_offset)
        conv_x0, core_x0, in_quartz = _photon_conversion_depth(rng, geo, model, kin, mfp)
        # a pair made inside the quartz is channelled on like an electron entering the fibre
        k = model["fibre_start_shape"]
        channelled = rng.gamma(k, model["fibre_start_mean_x0"] / k, n)
        start_x0 = np.where(converts, conv_x0 + np.where(in_quartz, channelled, 0.0), 0.0)
        leak = np.where(converts, -np.expm1(-model["fibre_leak_per_x0"] * core_x0), 0.0)
        t_shift = np.where(converts, -0.5, t_shift)
    elif model["fibre_radius_mm"] > 0:
        dx, dy, _, _ = _nearest_fibre_offset(kin["x0"], kin["y0"], geo)
        rel = np.hypot(dx, dy) / model["fibre_radius_mm"]
        k = model["fibre_start_shape"]
        late = rng.gamma(k, model["fibre_start_mean_x0"] / k, n) * np.clip(1.0 - 0.5 * rel**2, 0.0, 1.0)
        start_x0 = np.where(rel < 1.0, late, 0.0)
    if not converts.any():
        # on its way along the fibre the particle radiates: a fraction 1 - exp(-leak * start)
        # showers earlier (leak ~ X0 of the mixture / X0 of quartz = 4.14 / 123)
        leak = -np.expm1(-model["fibre_leak_per_x0"] * start_x0)
    layer_frac = np.zeros((n, geo.n_layers))
    visible = np.ones(n)  # visible fraction of the energy (h/e < 1 for hadron showers)
    for group, maker in ((is_em, "em"), (~is_em, "hadron")):
        i = np.flatnonzero(group)
        if len(i) == 0:
            continue
        if maker == "em":
            w, s, d, lf = _em_shower(rng, cfg, model, e[i], t_shift[i], start_x0[i], leak[i])
        else:
            w, s, d, lf = _hadron_shower(rng, cfg, model, e[i], kin["baryon"][i])
        cx = kin["x0"][i, None] + kin["tx"][i, None] * d
        cy = kin["y0"][i, None] + kin["ty"][i, None] * d
        mean_map[i] = sm.render(w, s, cx.astype(np.float32), cy.astype(np.float32),
                                x_edges, y_edges)
        layer_frac[i] = lf
        visible[i] = w.sum(axis=1, dtype=np.float64)

    # visible energy: sampling fraction with a constant-term spread per shower (MeV)
    e_vis = e * 1000.0 * model.get("sampling_fraction", mat.sampling_fraction)
    e_vis = e_vis * np.exp(model["constant"] * rng.standard_normal(n) - 0.5 * model["constant"] ** 2)
    a = np.where(is_em, model["stochastic_em"], model["stochastic_had"])
    if cfg.response == "photons":
        # Photon statistics dominate cell to cell; sampling fluctuations (sigma/E = a/sqrt(E))
        # enter as a per-shower factor, so one Poisson draw per cell makes the photons.
        spread = np.exp(a / np.sqrt(e) * rng.standard_normal(n) - 0.5 * a**2 / e)
        showers = mean_map * (e_vis * spread).astype(np.float32)[:, None, None]
    else:
        # sampling fluctuations as discrete energy spots (GFlash): N spots of equal energy,
        # Poisson distributed over the cells, give sigma/E = 1/sqrt(N); N sets the occupancy,
        # and a per-shower factor makes up the rest of sigma/E = a/sqrt(E)
        n_spots = np.maximum(model["spots_per_GeV"] * e, 1.0)
        rest = np.sqrt(np.maximum(a**2 / e - 1.0 / n_spots, 0.0))
        e_vis = e_vis * np.exp(rest * rng.standard_normal(n) - 0.5 * rest**2)
        counts = sm.poisson(rng, mean_map * n_spots[:, None, None].astype(np.float32))
        showers = counts.astype(np.float32) * (e_vis / n_spots).astype(np.float32)[:, None, None]

    # expected layer energies of the shower itself (before the extra light below)
    shower_total = showers.sum(axis=(1, 2), dtype=np.float64)
    layers = layer_frac * (shower_total / np.maximum(visible, 1e-12))[:, None]
    # impact-point effect of a fibre calorimeter at ~zero angle
    if model["channel_amplitude"] > 0:
        dx, dy, row, col = _nearest_fibre_offset(kin["x0"], kin["y0"], geo)
        walk = np.hypot(kin["tx"], kin["ty"]) * model["channel_depth_x0"] * mat.X0_mm
        # gain = A (E/E_ref)^k exp(-d^2/2 s^2) + A_t (E/E_ref)^k_t exp(-d^2/2 s_t^2): a core (the
        # particle inside the fibre) and a tail (the shower core's first mm next to it); a
        # tilted track spends less depth near the fibre (widths grow, amplitudes fall)
        d2 = dx**2 + dy**2
        # (the core is flat-topped inside the fibre: exp(-(d^2/2s^2)^p), p = channel_core_power)
        parts = []
        for amp, sig, slope, power in (
                (model["channel_amplitude"], model["channel_sigma_mm"], model["channel_energy_slope"],
                 model["channel_core_power"]),
                (model["channel_tail_amplitude"], model["channel_tail_sigma_mm"],
                 model["channel_tail_energy_slope"], 1.0)):
            s2 = sig**2 + walk**2
            shape = np.exp(-((d2 / (2 * s2)) ** power))
            parts.append(amp * sig**2 / s2 * shape * (e / model["channel_energy_ref_GeV"]) ** slope)
        f = model["channel_fluctuation"]  # the core's log-normal spread (mean 1)
        gain = parts[0] * np.exp(f * rng.standard_normal(n) - 0.5 * f**2) + parts[1]
        inside = (np.abs(kin["x0"]) < geo.half_size_mm[0]) & (np.abs(kin["y0"]) < geo.half_size_mm[1])
        extra = gain * e_vis * inside
        showers[np.arange(n), row, col] += extra.astype(np.float32)
        # the extra light follows the shower's own longitudinal profile
        layers = layers + layer_frac / np.maximum(visible, 1e-12)[:, None] * extra[:, None]

    if cfg.response == "photons":
        showers = sm.poisson(rng, showers * mat.photons_per_MeV)
    elif mat.noise_MeV > 0:
        showers += rng.normal(0.0, mat.noise_MeV, showers.shape).astype(np.float32)
        showers[showers < mat.threshold_MeV] = 0.0
    # layer sums share the image's final fluctuations (photon statistics, noise)
    expected = shower_total + (extra if model["channel_amplitude"] > 0 else 0.0)
    total = showers.sum(axis=(1, 2), dtype=np.float64)
    layers = (layers * (total / np.maximum(expected, 1e-12))[:, None]).astype(np.float32)
    return showers, layers


def _chunk_plan(n, seed):
    n_chunks = math.ceil(n / CHUNK_SIZE)
    seqs = np.random.SeedSequence(seed).spawn(n_chunks)
    sizes = [min(CHUNK_SIZE, n - i * CHUNK_SIZE) for i in range(n_chunks)]
    return list(zip(sizes, seqs))


def _validate_n(n):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise ValueError(f"`n` must be a positive integer. Received: n={n!r}")
    return int(n)


def iter_simulate(geometry, n, seed=None, particles=None, energy_range=None,
                  impact_halfwidth_mm=None, angle_halfwidth_mrad=None, response=None,
                  workers=1, impact_point_mm=None, verbose=False):
    """Yield the showers of :func:`simulate` chunk by chunk (flat memory for any ``n``).

    Arguments as :func:`simulate`; with ``verbose`` a bar of ``n`` showers on stderr advances
    as chunks are consumed.

    Yields:
        dicts with ``showers`` (m, H, W) float32, ``layers`` (m, L), ``conditions`` (m, k),
        ``pdg`` (m,), in order; concatenated they equal :func:`simulate`'s arrays.
    """
    geometry = get_geometry(geometry)
    n = _validate_n(n)
    if int(workers) < 1:
        raise ValueError(f"`workers` must be >= 1. Received: workers={workers}")
    seed = resolve_seed(seed)
    cfg = _Config(geometry, particles, energy_range, impact_halfwidth_mm,
                  angle_halfwidth_mrad, response, geometry_model(geometry.name),
                  impact_point_mm)
    plan = _chunk_plan(n, seed)
    bar = progress(n, f"simulate {geometry.name}", verbose, unit="shower")
    try:
        for chunk in _iter_chunks(cfg, plan, int(workers)):
            yield chunk
            bar.update(len(chunk["pdg"]))
    finally:
        bar.close()


#: Multithreaded frameworks: forking a process that has loaded one can deadlock the child.
_THREADED_MODULES = ("jax", "tensorflow", "torch")


def _pool_context():
    """``spawn`` once a threaded framework is loaded (JAX warns that fork may deadlock),
    else the platform default (fork on Linux: no re-import, works without a main guard).
    The workers only import numpy and ``calozdc.data`` (~0.4 s each)."""
    if any(name in sys.modules for name in _THREADED_MODULES):
        return multiprocessing.get_context("spawn")
    return multiprocessing.get_context()


def _iter_chunks(cfg, plan, workers):
    keys = ("showers", "layers", "conditions", "pdg")
    if workers == 1 or len(plan) == 1:
        for size, seq in plan:
            yield dict(zip(keys, _simulate_chunk(cfg, size, seq)))
        return
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers,
                                                mp_context=_pool_context()) as pool:
        futures = []
        for size, seq in plan:
            futures.append(pool.submit(_simulate_chunk, cfg, size, seq))
            if len(futures) > 2 * workers:  # bounded look-ahead keeps memory flat
                yield dict(zip(keys, futures.pop(0).result()))
        for fut in futures:
            yield dict(zip(keys, fut.result()))


def simulate(geometry, n, seed=None, particles=None, energy_range=None,
             impact_halfwidth_mm=None, angle_halfwidth_mrad=None, response=None,
             workers=1, progress=False, impact_point_mm=None, verbose=False):
    """Simulate ``n`` calorimeter showers with the built-in parametrised model.

    Args:
        geometry: ``"zn44"``, ``"ecal20"`` or a :class:`~calozdc.data.Geometry`.
        n: number of showers (> 0).
        seed: integer seed; the same seed gives the same showers on every run.
        particles: particle names or PDG ids (``"e-"``, ``["gamma", "n"]``) or a dict of
            name -> fraction. Default: zn44 the imbalanced ALICE ZN mix
            (:data:`~calozdc.data.ALICE_ZN_MIX`), ecal20 e-, e+ and photons equally.
        energy_range: ``(low, high)`` of the log-uniform energy spectrum in the geometry's
            energy unit (zn44: GeV, default 10-1000; ecal20: MeV, default 1e3-1e6).
        impact_halfwidth_mm: if given, impact points uniform in +-this around the centre
            (test-beam style, as the Geant4 reference: 5 mm); otherwise zn44 particles come from
            the ALICE interaction point 112.5 m away and ecal20 showers hit the centre.
        angle_halfwidth_mrad: if given, angles to the detector axis uniform in +-this (x and y).
        impact_point_mm: ``(x, y)`` centre of the test-beam impact spread (default the
            detector centre, which for zn44 is a corner between four fibres).
        response: ``"photons"`` (zn44 default: Cherenkov photon counts) or ``"energy"``
            (visible energy in MeV; ecal20 default).
        workers: worker processes (results do not depend on it).
        progress: older name of ``verbose`` (kept for compatibility).
        verbose: show a progress bar of the showers done on stderr (default quiet).

    Returns:
        :class:`~calozdc.data.ShowerDataset` with showers (n, H, W, 1), layers (n, L),
        conditions (zn44: E [GeV], vx, vy, vz [cm], px, py, pz [GeV], m [GeV], q; ecal20:
        incident energy [MeV]) and PDG ids.

    Example:

    >>> ds = simulate("zn44", 1000, seed=1, particles="e-", energy_range=(10, 200))
    >>> ds.showers.shape
    (1000, 44, 44, 1)
    """
    from calozdc.data.dataset import ShowerDataset  # noqa: PLC0415 (avoid an import cycle)

    geometry = get_geometry(geometry)
    n = _validate_n(n)
    seed = resolve_seed(seed)  # recorded in the metadata even when drawn here
    h, w = geometry.shape
    showers = np.empty((n, h, w), np.float32)
    layers = np.empty((n, geometry.n_layers), np.float32)
    conditions = np.empty((n, geometry.n_conditions), np.float32)
    pdg = np.empty(n, np.int32)
    chunks = iter_simulate(geometry, n, seed, particles, energy_range, impact_halfwidth_mm,
                           angle_halfwidth_mrad, response, workers, impact_point_mm,
                           verbose=verbose or progress)
    i = 0
    for chunk in chunks:
        m = len(chunk["pdg"])
        showers[i:i + m], layers[i:i + m] = chunk["showers"], chunk["layers"]
        conditions[i:i + m], pdg[i:i + m] = chunk["conditions"], chunk["pdg"]
        i += m
    return ShowerDataset(
        showers, conditions, pdg=pdg, layers=layers,
        condition_names=list(geometry.condition_names), geometry=geometry,
        metadata=simulation_metadata(geometry, seed, response),
    )


def resolve_seed(seed):
    """``seed`` as a non-negative int; ``None`` draws a fresh one from OS entropy.

    The drawn seed is recorded in the dataset's metadata, so any simulated file can be
    reproduced exactly.
    """
    if seed is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be None or an integer >= 0. Received: seed={seed!r}")
    return int(seed)


def simulation_metadata(geometry, seed=None, response=None):
    """The ``metadata`` dict of :func:`simulate`'s dataset (also written by ``io.save_simulation``).

    ``response_unit`` is ``"photons"`` (integer counts) for a counting geometry unless
    ``response="energy"``, else ``"MeV"``.
    """
    geometry = get_geometry(geometry)
    photons = geometry.integer_response and response != "energy"
    return {
        "generator": "calozdc.simulate",
        "seed": None if seed is None else int(seed),
        "energy_unit": geometry.energy_unit,
        "response_unit": "photons" if photons else "MeV",
    }
