"""Bad ``generate`` arguments of each family: one ValueError naming the received value."""

import numpy as np
import pytest
from _tiny_models import FAMILIES, GENERATE_OPTIONS, tiny_model


@pytest.fixture(scope="module")
def models():
    return {family: tiny_model(family, seed=0) for family in FAMILIES}


BAD_CONDITIONS = [
    ("two columns", np.ones((3, 2)) * 1e3, "conditions.shape=(3, 2)"),
    ("three dims", np.ones((3, 1, 1)) * 1e3, "conditions.shape=(3, 1, 1)"),
    ("strings", np.array([["1000"], ["2000"]]), "dtype=<U4"),
    ("NaN", np.array([[1e3], [np.nan]]), "conditions[1, 0]=nan"),
    ("inf", np.array([[np.inf], [1e3]]), "conditions[0, 0]=inf"),
    ("zero energy", np.array([[1e3], [0.0]]), "conditions[1, 0]=0.0"),
    ("negative energy", np.array([[-5.0], [1e3]]), "conditions[0, 0]=-5.0"),
    ("empty", np.zeros((0, 1)), "conditions.shape=(0, 1)"),
]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name, conditions, text", BAD_CONDITIONS,
                         ids=[c[0] for c in BAD_CONDITIONS])
def test_bad_conditions(models, family, name, conditions, text):
    with pytest.raises(ValueError) as err:
        models[family].generate(conditions, seed=0, **GENERATE_OPTIONS[family])
    assert text in str(err.value), str(err.value)


GOOD = np.array([[1e3], [2e3]], "float32")
BAD_OPTIONS = [
    ("gan", {"batch_size": 0}, "0"),
    ("twostep", {"batch_size": 2.5}, "2.5"),
    ("ddim", {"steps": 0}, "steps=0"),
    ("ddim", {"steps": 21}, "steps=21"),
    ("ddim", {"eta": -1.0}, "eta=-1.0"),
    ("ddim", {"seed": -3}, "seed=-3"),
    ("ddim", {"batch_size": 0}, "batch_size=0"),
    ("vqvae", {"temperature": -1.0}, "temperature=-1.0"),
    ("vqvae", {"top_k": 100}, "top_k=100"),
    ("vqvae", {"seed": -2}, "seed=-2"),
    ("flow", {"steps": 0}, "steps=0"),
    ("flow", {"solver": "rk45"}, "solver='rk45'"),
    ("flow", {"seed": -3}, "seed=-3"),
    ("flow", {"batch_size": 0}, "batch_size=0"),
    ("latent-flow", {"steps": 0}, "steps=0"),
    ("latent-flow", {"solver": "rk45"}, "solver='rk45'"),
]


@pytest.mark.parametrize("family, options, text", BAD_OPTIONS,
                         ids=[f"{f}-{next(iter(o))}={next(iter(o.values()))}"
                              for f, o, _ in BAD_OPTIONS])
def test_bad_generate_options(models, family, options, text):
    kwargs = {**GENERATE_OPTIONS[family], "seed": 0, **options}
    with pytest.raises(ValueError) as err:
        models[family].generate(GOOD, **kwargs)
    assert text in str(err.value), str(err.value)


def test_model_space_conditions_may_be_negative(models):
    """Without transforms the conditions are model-space values: no energy rule. (The GAN's
    default shower transform divides by the incident energy, so it goes too.)"""
    model = models["gan"]
    saved = model.condition_transform, model.shower_transform
    model.condition_transform = model.shower_transform = None
    try:
        out = model.generate(np.array([[-1.0], [0.0]], "float32"), seed=0)
    finally:
        model.condition_transform, model.shower_transform = saved
    assert out.shape == (2, 12, 12, 1) and np.isfinite(out).all()
