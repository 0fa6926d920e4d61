"""Particle table: PDG ids, names, masses and charges used by the simulator and readers.

Masses in GeV (PDG 2024). ``kind`` says which shower model the simulator uses:
``"em"`` (electrons, positrons, photons) or ``"hadron"``.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Particle:
    pdg: int
    name: str
    mass: float
    charge: float
    kind: str


PARTICLES = {
    p.name: p
    for p in (
        Particle(22, "gamma", 0.0, 0.0, "em"),
        Particle(11, "e-", 0.000511, -1.0, "em"),
        Particle(-11, "e+", 0.000511, 1.0, "em"),
        Particle(2112, "n", 0.939565, 0.0, "hadron"),
        Particle(-2112, "nbar", 0.939565, 0.0, "hadron"),
        Particle(2212, "p", 0.938272, 1.0, "hadron"),
        Particle(-2212, "pbar", 0.938272, -1.0, "hadron"),
        Particle(211, "pi+", 0.139570, 1.0, "hadron"),
        Particle(-211, "pi-", 0.139570, -1.0, "hadron"),
        Particle(321, "K+", 0.493677, 1.0, "hadron"),
        Particle(-321, "K-", 0.493677, -1.0, "hadron"),
        Particle(130, "K0L", 0.497611, 0.0, "hadron"),
        Particle(310, "K0S", 0.497611, 0.0, "hadron"),
        Particle(3122, "Lambda", 1.115683, 0.0, "hadron"),
    )
}

_ALIASES = {"photon": "gamma", "g": "gamma", "electron": "e-", "positron": "e+",
            "neutron": "n", "proton": "p", "pion": "pi+", "lambda": "Lambda"}
_BY_PDG = {p.pdg: p for p in PARTICLES.values()}

#: Particle mix of the public ALICE ZN samples (arXiv:2407.16704, §4: 60.83 % photons,
#: 23.34 % neutrons, 5.30 % protons, 3.08 % Lambda, 2.09 % K0S, 1.79 % K0L, 1.30 % pi+; the
#: remaining 2.27 % spread over the other species here).
ALICE_ZN_MIX = {
    "gamma": 0.6083, "n": 0.2334, "p": 0.0530, "Lambda": 0.0308, "K0S": 0.0209,
    "K0L": 0.0179, "pi+": 0.0130, "pi-": 0.0060, "nbar": 0.0040, "e-": 0.0035,
    "e+": 0.0035, "K+": 0.0020, "K-": 0.0010, "pbar": 0.0027,
}


def get_particle(name_or_pdg):
    """Look a particle up by name (``"e-"``, ``"gamma"``, ``"n"`` ...) or PDG id."""
    if isinstance(name_or_pdg, Particle):
        return name_or_pdg
    if isinstance(name_or_pdg, (int, np.integer)) or (
        isinstance(name_or_pdg, str) and name_or_pdg.lstrip("-").isdigit()
    ):
        pdg = int(name_or_pdg)
        if pdg not in _BY_PDG:
            raise ValueError(
                f"Unknown PDG id. Known: {sorted(_BY_PDG)}. Received: particle={name_or_pdg!r}"
            )
        return _BY_PDG[pdg]
    key = _ALIASES.get(str(name_or_pdg), str(name_or_pdg))
    key = _ALIASES.get(key.lower(), key)
    if key not in PARTICLES:
        raise ValueError(
            f"Unknown particle. Known: {sorted(PARTICLES)}. Received: particle={name_or_pdg!r}"
        )
    return PARTICLES[key]
