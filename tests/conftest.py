"""Fixtures shared across test modules."""

import pytest


@pytest.fixture(scope="session")
def ddim_learning_run():
    """The DDIM learning test's training and samples (``tests/test_learning_ddim.py``),
    once per session: the flow learning test compares its channel W1 with it."""
    from test_learning_ddim import SEED, train_and_sample

    return train_and_sample(SEED)
