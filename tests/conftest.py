import numpy as np
import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def digits():
    from sklearn.datasets import load_digits
    return load_digits().data / 16.0


@pytest.fixture
def rng():
    return np.random.default_rng(0)
