"""The renderer's Gaussian scale mixture against the exact cell integrals of GFlash's radial profile."""

import numpy as np
import pytest
from scipy import integrate

from calozdc.data import builtin
from calozdc.data import shower_model as sm

PITCH = 1.6  # zn44 fibre pitch, mm


def _cell(i, j, offset=0.0):
    x1, y1 = i * PITCH - PITCH / 2 - offset, j * PITCH - PITCH / 2
    return x1, x1 + PITCH, y1, y1 + PITCH


def test_exact_cell_integral_matches_numerical_integration():
    for radius, (i, j) in ((2.0, (0, 0)), (0.7, (1, 0)), (5.0, (2, 3))):
        x1, x2, y1, y2 = _cell(i, j, 0.3)
        numeric, _ = integrate.dblquad(
            lambda y, x, r=radius: r**2 / (np.pi * (x * x + y * y + r**2) ** 2), x1, x2, y1, y2,
            epsabs=1e-12, epsrel=1e-10)
        assert sm.profile_cell_integral(x1, x2, y1, y2, radius) == pytest.approx(numeric, rel=1e-8)
    # the whole plane holds all the energy; a half plane half of it
    assert sm.profile_cell_integral(-1e9, 1e9, -1e9, 1e9, 2.0) == pytest.approx(1.0, abs=1e-6)
    assert sm.profile_cell_integral(0.0, 1e9, -1e9, 1e9, 2.0) == pytest.approx(0.5, abs=1e-6)


def test_mixture_reproduces_the_profile_in_the_bright_cells():
    # the impact's cell for R = 2 mm: 0.168 exact; the strata-median mixture gave 0.153
    assert sm.mixture_cell_integral(*_cell(0, 0), 2.0) == pytest.approx(0.16815, rel=0.005)
    for radius, impact_tol in ((0.5, 0.005), (1.0, 0.006), (2.0, 0.005), (3.0, 0.011), (5.0, 0.02), (10.0, 0.02)):
        for offset in (0.0, 0.4, 0.8):
            exact = sm.profile_cell_integral(*_cell(0, 0, offset), radius)
            mix = sm.mixture_cell_integral(*_cell(0, 0, offset), radius)
            assert abs(mix / exact - 1) < impact_tol, (radius, offset, mix, exact)
            for i in range(-4, 5):
                for j in range(0, 5):
                    exact = sm.profile_cell_integral(*_cell(i, j, offset), radius)
                    mix = sm.mixture_cell_integral(*_cell(i, j, offset), radius)
                    if exact > 0.01:
                        assert abs(mix / exact - 1) < 0.025, (radius, offset, i, j, mix, exact)
                    assert abs(mix - exact) < 0.0024, (radius, offset, i, j, mix, exact)
    # containment r^2/(r^2+R^2) at every radius
    r = np.exp(np.linspace(np.log(0.05), np.log(30.0), 200))
    mix = 1 - (sm.MIXTURE_WEIGHT * np.exp(-r[:, None] ** 2 / (2 * sm.MIXTURE_SIGMA.astype(float) ** 2))).sum(1)
    assert np.abs(mix - r**2 / (r**2 + 1)).max() < 0.005
    assert sm.MIXTURE_WEIGHT.sum() == pytest.approx(1.0, abs=1e-6)


def test_mixture_constants_are_the_fit():
    sigma, weight = sm.fit_mixture_nodes(4)
    np.testing.assert_allclose(sigma, sm.MIXTURE_SIGMA, atol=1e-4)
    np.testing.assert_allclose(weight, sm.MIXTURE_WEIGHT, atol=1e-4)


def test_render_integrates_the_mixture():
    # one core term through the renderer (radial_components + render) equals the cell integrals
    rc = np.array([[2.0 / 10.5]])
    w, s = sm.radial_components(np.ones(1), rc, rc, np.ones((1, 1)), np.ones((1, 1)), 10.5)
    edges = ((np.arange(9) - 4) * PITCH).astype(np.float32)
    image = sm.render(w, s, np.full_like(s, 0.3), np.zeros_like(s), edges, edges)[0]
    x1 = edges[:-1] - 0.3
    exact = sm.profile_cell_integral(x1[None, :], x1[None, :] + PITCH, edges[:-1, None], edges[1:, None], 2.0)
    np.testing.assert_allclose(image, exact, atol=6e-4)


def test_bad_inputs():
    with pytest.raises(ValueError, match="radius=0"):
        sm.profile_cell_integral(0, 1, 0, 1, 0)
    with pytest.raises(ValueError, match="n_nodes=1"):
        sm.fit_mixture_nodes(1)


def test_builtin_cache_key_follows_the_renderer(monkeypatch):
    tag = builtin._calibration_tag()
    monkeypatch.setattr(sm, "RENDER_VERSION", sm.RENDER_VERSION + 1)
    assert builtin._calibration_tag() != tag
