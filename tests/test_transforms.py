"""Transforms: exact formulas, invertibility (hypothesis), fitting, serialisation, errors."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from calozdc.data import transforms as T

R = 1e-7

# Realistic shower values: many empty cells, the rest spanning 1e-3 .. 1e4 (seed 004: cell
# energies ~1e-3 .. 1e2 MeV; zn44 photon counts up to ~1e4), incident energies 2e4 .. 1e6
# in the shower unit so that every fraction lies in [0, 1].
_cell = st.one_of(st.just(0.0), st.floats(0.0010000000474974513, 1e4, width=32))


@st.composite
def showers_and_conditions(draw, dtype=np.float32):
    n = draw(st.integers(1, 6))
    x = draw(hnp.arrays(dtype, (n, 3, 3, 1), elements=_cell))
    energy = draw(hnp.arrays(np.float64, (n,), elements=st.floats(2e4, 1e6)))
    other = draw(hnp.arrays(np.float64, (n,), elements=st.floats(-5, 5)))
    return x, np.stack([energy, other], axis=1).astype(dtype)


def _roundtrip(t, x, c):
    u = t.forward(x, conditions=c)
    assert u.shape == x.shape and u.dtype == x.dtype and np.all(np.isfinite(u))
    return t.inverse(u, conditions=c)


_SETTINGS = settings(max_examples=60, deadline=None)


@_SETTINGS
@given(showers_and_conditions())
def test_elementwise_transforms_invert_to_1e_5_relative_in_float32(data):
    x, c = data
    for t in (T.Log1p(), T.Log1p(scale=7.5), T.LogitFraction(), T.DivideByIncidentEnergy(),
              T.LogitFraction(eps=1e-4, factor=2.0)):
        np.testing.assert_allclose(_roundtrip(t, x, c), x, rtol=1e-5, atol=0)


@_SETTINGS
@given(showers_and_conditions())
def test_fitted_affine_transforms_invert_within_float32_of_the_data_scale(data):
    x, c = data
    scale = float(np.max(np.abs(x))) or 1.0
    for t in (T.Standardize(), T.Standardize(axis="feature"), T.MinMax(), T.MinMax(axis=None),
              T.MinMax(feature_range=(-1, 1))):
        t.fit(x)
        np.testing.assert_allclose(_roundtrip(t, x, c), x, rtol=1e-5, atol=1e-6 * scale)


@_SETTINGS
@given(showers_and_conditions())
def test_chains_invert(data):
    x, c = data
    scale = float(np.max(np.abs(x))) or 1.0
    chains = [
        T.Chain([T.Log1p(), T.Standardize()]),
        T.Chain([T.DivideByIncidentEnergy(), T.Log1p(scale=1e-4), T.MinMax(axis=None)]),
        T.Chain([T.LogitFraction(), T.Standardize()]),
    ]
    for t in chains:
        t.fit(x, conditions=c)
        # A float32 rounding of the standardised value moves a cell by ~1e-7 of the spread in
        # the log/logit space: relative 1e-5 for real deposits; below eps * E_inc (logit) or
        # below `scale` (log1p) that is an absolute error of ~1e-6 of those scales.
        atol = 1e-6 * max(scale * 1e-3, 1.0)
        np.testing.assert_allclose(_roundtrip(t, x, c), x, rtol=1e-5, atol=atol)


@settings(max_examples=30, deadline=None)
@given(showers_and_conditions(dtype=np.float64))
def test_float64_round_trips_are_tight(data):
    x, c = data
    for t in (T.Log1p(), T.LogitFraction(), T.DivideByIncidentEnergy(),
              T.Chain([T.LogitFraction(), T.Standardize(axis="feature")])):
        t.fit(x, conditions=c)
        np.testing.assert_allclose(_roundtrip(t, x, c), x, rtol=1e-9, atol=1e-12)


# -- formulas -------------------------------------------------------------------------------
def test_log1p_formula():
    x = np.array([0.0, 1.0, 99.0])
    np.testing.assert_allclose(T.Log1p().forward(x), np.log1p(x))
    np.testing.assert_allclose(T.Log1p(scale=10.0).forward(x), np.log(1 + x / 10.0))
    assert T.Log1p().forward(np.array([3], dtype=np.int32)).dtype == np.float32


def test_logit_fraction_matches_seed_003_reduce():
    energy = np.array([[100.0], [50.0], [10.0]])
    x = np.array([[0.0, 1e-3, 5.0, 100.0], [0.0, 25.0, 49.0, 50.0], [1e-6, 1.0, 2.0, 9.0]])
    eps = x / energy
    xp = R + (1 - 2 * R) * eps
    expected = np.log(xp / (1 - xp)) - np.log(R / (1 - R))
    u = T.LogitFraction().forward(x, conditions=energy)
    np.testing.assert_allclose(u, expected, rtol=1e-9, atol=1e-12)
    assert np.all(u[:, 0][x[:, 0] == 0] == 0)  # an empty cell maps to 0
    # the stable form keeps precision for fractions far below eps (the naive one cancels)
    tiny = T.LogitFraction().forward(np.array([[1e-13]]), conditions=np.array([[1.0]]))
    np.testing.assert_allclose(tiny, 1e-13 / R, rtol=1e-6)
    # unit factor: conditions in GeV, showers in MeV
    t = T.LogitFraction(factor=1000.0, column=1)
    c = np.array([[7.0, 0.1], [7.0, 0.05]])
    np.testing.assert_allclose(t.forward(x[:2], conditions=c), expected[:2], rtol=1e-9)


def test_divide_by_incident_energy():
    x = np.ones((2, 2, 2, 1)) * np.array([10.0, 30.0])[:, None, None, None]
    c = np.array([[1.0, 5.0], [3.0, 5.0]])
    u = T.DivideByIncidentEnergy(factor=10.0).forward(x, conditions=c)
    np.testing.assert_allclose(u, np.ones_like(x))
    u1 = T.DivideByIncidentEnergy(column=1).forward(x, conditions=c)
    np.testing.assert_allclose(u1[:, 0, 0, 0], [2.0, 6.0])


def test_standardize_and_minmax_fit_only_on_what_they_are_given():
    rng = np.random.default_rng(0)
    train = rng.normal(3.0, 2.0, size=(500, 3)) * [1, 10, 100]
    test = rng.normal(3.0, 2.0, size=(200, 3)) * [1, 10, 100] + 50.0
    s = T.Standardize(axis="feature").fit(train)
    z = s.forward(train)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-12)
    np.testing.assert_allclose(s.mean, train.mean(axis=0))
    assert np.all(np.abs(s.forward(test).mean(axis=0)) > 0.1)  # test data not seen by fit
    g = T.Standardize().fit(train)
    assert np.ndim(g.mean) == 0 and np.isclose(g.mean, train.mean())
    m = T.MinMax(feature_range=(-1, 1)).fit(train)
    mm = m.forward(train)
    np.testing.assert_allclose(mm.min(axis=0), -1)
    np.testing.assert_allclose(mm.max(axis=0), 1)
    const = T.Standardize(axis="feature").fit(np.ones((4, 2)))
    np.testing.assert_array_equal(const.forward(np.ones((4, 2))), 0)  # std 0 -> 1


def test_standardize_without_centering_only_scales_so_zeros_and_totals_are_kept():
    rng = np.random.default_rng(2)
    x = rng.gamma(0.3, 50.0, size=(40, 5, 5, 1)) * (rng.random((40, 5, 5, 1)) < 0.2)
    t = T.Standardize(center=False).fit(x)
    assert t.get_config()["center"] is False and np.all(t.mean == 0)
    assert np.isclose(t.std, x.std())  # the scale is the standard deviation (sklearn with_mean=False)
    u = t.forward(x)
    np.testing.assert_allclose(u, x / x.std(), rtol=1e-12)
    np.testing.assert_array_equal(u[x == 0], 0.0)  # an empty cell stays exactly 0
    np.testing.assert_allclose(u.sum(axis=(1, 2, 3)), x.sum(axis=(1, 2, 3)) / x.std(), rtol=1e-12)
    np.testing.assert_allclose(t.inverse(u), x, rtol=1e-12)
    per_feature = T.Standardize(axis="feature", center=False).fit(x)
    np.testing.assert_allclose(per_feature.std, np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0))
    np.testing.assert_array_equal(per_feature.forward(np.zeros((1, 5, 5, 1))), 0.0)
    # configs saved before `center` existed load as centring transforms
    old = {"axis": None, "mean": 2.0, "std": 4.0}
    assert T.Standardize.from_config(old).center is True
    np.testing.assert_allclose(T.Standardize.from_config(old).forward(np.array([6.0])), [1.0])


def test_chain_applies_in_order_and_inverts_in_reverse():
    x = np.array([[0.0, 3.0, 8.0]])
    chain = T.Chain([T.Log1p(), T.MinMax(axis=None)]).fit(x)
    manual = T.MinMax(axis=None).fit(np.log1p(x)).forward(np.log1p(x))
    np.testing.assert_allclose(chain.forward(x), manual)
    np.testing.assert_allclose(chain.inverse(chain.forward(x)), x, atol=1e-12)
    assert chain.needs_conditions is False
    assert T.Chain([T.LogitFraction()]).needs_conditions is True


# -- serialisation --------------------------------------------------------------------------
def test_serialize_round_trip_through_json_keeps_fitted_state():
    rng = np.random.default_rng(1)
    x = rng.gamma(0.5, 10.0, size=(20, 4, 4, 1))
    c = np.c_[np.full(20, 1e4), np.ones(20)]
    for t in (
        T.Log1p(scale=3.0),
        T.LogitFraction(eps=1e-6, column=0, factor=2.0),
        T.DivideByIncidentEnergy(column=0, factor=4.0),
        T.Standardize(axis="feature"),
        T.Standardize(axis="feature", center=False),
        T.MinMax(feature_range=(-1, 1), axis=None),
        T.Chain([T.LogitFraction(), T.Standardize(axis="feature")]),
        T.Chain([T.DivideByIncidentEnergy(), T.Standardize(center=False)]),
    ):
        t.fit(x, conditions=c)
        cfg = json.loads(json.dumps(T.serialize(t)))
        assert cfg["class_name"] == type(t).__name__
        back = T.deserialize(cfg)
        assert type(back) is type(t)
        np.testing.assert_array_equal(back.forward(x, conditions=c), t.forward(x, conditions=c))
        # get_config returns exactly the constructor arguments
        again = type(t).from_config(t.get_config())
        assert again.get_config() == t.get_config()


def test_get_by_name_and_identity():
    assert isinstance(T.get("log1p"), T.Log1p)
    assert isinstance(T.get("LogitFraction"), T.LogitFraction)
    assert isinstance(T.get("standardize"), T.Standardize)
    assert isinstance(T.get("minmax"), T.MinMax)
    assert isinstance(T.get("divide_by_incident_energy"), T.DivideByIncidentEnergy)
    t = T.Log1p()
    assert T.get(t) is t and T.get(None) is None
    assert isinstance(T.get({"class_name": "Log1p", "config": {"scale": 2.0}}), T.Log1p)
    chain = T.Chain(["log1p", {"class_name": "MinMax", "config": {}}])
    assert [type(m) for m in chain.transforms] == [T.Log1p, T.MinMax]


# -- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: T.Log1p(scale=0), "scale=0"),
        (lambda: T.LogitFraction(eps=0.7), "eps=0.7"),
        (lambda: T.LogitFraction(column=-1), "column=-1"),
        (lambda: T.DivideByIncidentEnergy(factor=-2), "factor=-2"),
        (lambda: T.Standardize(axis=1), "axis=1"),
        (lambda: T.Standardize(mean=1.0), "mean=1.0"),
        (lambda: T.Standardize(center="no"), "center='no'"),
        (lambda: T.Standardize(mean=1.0, std=2.0, center=False), "mean=1.0"),
        (lambda: T.MinMax(feature_range=(1, 0)), r"feature_range=\(1, 0\)"),
        (lambda: T.Chain(T.Log1p()), "transforms=Log1p"),
        (lambda: T.Log1p(bogus=1), "bogus"),
        (lambda: T.get("nope"), "name='nope'"),
        (lambda: T.get("chain"), "identifier='chain'"),
        (lambda: T.get(3), "identifier=3"),
        (lambda: T.deserialize({"config": {}}), "class_name"),
        (lambda: T.serialize("log1p"), "transform='log1p'"),
    ],
)
def test_bad_arguments(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_use_errors_are_clear():
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="not fitted"):
        T.Standardize().forward(x)
    with pytest.raises(ValueError, match="not fitted"):
        T.Chain([T.Log1p(), T.MinMax()]).inverse(x)
    with pytest.raises(ValueError, match="conditions=None"):
        T.LogitFraction().forward(x)
    with pytest.raises(ValueError, match=r"conditions.shape=\(3, 1\)"):
        T.LogitFraction().forward(x, conditions=np.ones((3, 1)))
    with pytest.raises(ValueError, match="column=2"):
        T.DivideByIncidentEnergy(column=2).forward(x, conditions=np.ones((2, 1)))
    with pytest.raises(ValueError, match="fraction=2"):
        T.LogitFraction().forward(2 * x, conditions=np.ones((2, 1)))
    with pytest.raises(ValueError, match="energy=0"):
        T.DivideByIncidentEnergy().forward(x, conditions=np.zeros((2, 1)))
    with pytest.raises(ValueError, match=r"min\(x\)=-2"):
        T.Log1p().forward(-2 * x)
    with pytest.raises(ValueError, match=r"x.shape=\(2, 4\)"):
        T.Standardize(axis="feature").fit(x).forward(np.ones((2, 4)))
    with pytest.raises(ValueError, match="empty"):
        T.Standardize().fit(np.zeros((0, 3)))
