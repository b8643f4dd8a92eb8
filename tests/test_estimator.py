"""The AutoencODE estimator: API contract, PCA equivalence, persistence, validation."""

import json
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.decomposition import PCA

from autoencode import AutoencODE, DivergenceWarning
from autoencode.errors import ConfigError, DataError, ModelFileError

WIDTHS = (64, 32, 16, 8, 16, 32, 64)


@pytest.fixture(scope="module")
def fitted(digits):
    return AutoencODE(widths=WIDTHS, steps_per_width=2, max_iter=5, dtype="float64",
                      seed=1).fit(digits[:200])


def test_pca_alignment_with_zero_controls_is_pca(digits):
    X = digits[:300]
    model = AutoencODE(widths=WIDTHS, init="zeros", max_iter=0, dtype="float64").fit(X)
    assert np.all(model.get_controls() == 0)
    pca = PCA(8).fit(X)
    expected = pca.inverse_transform(pca.transform(X))
    assert np.abs(model.reconstruct(X) - expected).max() < 1e-8
    # the latent code is the PCA score up to the sign of each principal axis
    assert np.allclose(np.abs(model.transform(X)), np.abs(pca.transform(X)), atol=1e-8)


def test_zero_init_is_perturbed_before_training(digits):
    model = AutoencODE(widths=WIDTHS, init="zeros", max_iter=1, dtype="float64").fit(digits[:100])
    assert np.abs(model.get_controls()).max() > 0


def test_decode_encode_equals_reconstruct_bitwise(fitted, digits):
    X = digits[200:260]
    assert np.array_equal(fitted.decode(fitted.encode(X)), fitted.reconstruct(X))
    assert np.array_equal(fitted.inverse_transform(fitted.transform(X)), fitted.reconstruct(X))
    assert fitted.transform(X).shape == (60, 8)


def test_shapes_and_history(fitted, digits):
    X = digits[:10]
    assert fitted.trajectory(X).shape == (fitted.flow_.profile.K + 1, 10, 64)
    traj = fitted.trajectory(X)
    assert np.all(traj[fitted.flow_.profile.bottleneck_step + 1][:, 8:] == 0)
    assert fitted.gradient(X).shape == fitted.get_controls().shape
    assert len(fitted.history_) == 6
    assert set(fitted.history_[0]) == {"iteration", "J", "mse", "residual", "rho", "sweeps", "seconds"}
    assert fitted.score(X) == pytest.approx(-np.mean((fitted.reconstruct(X) - X) ** 2))


def test_objective_and_gradient_are_consistent(fitted, digits):
    X = digits[:50]
    theta = fitted.get_controls()
    g = fitted.gradient(X)
    direction = np.random.default_rng(0).standard_normal(theta.shape)
    eps = 1e-6
    fitted.set_controls(theta + eps * direction)
    up = fitted.objective(X)
    fitted.set_controls(theta - eps * direction)
    down = fitted.objective(X)
    fitted.set_controls(theta)
    assert (up - down) / (2 * eps) == pytest.approx(g @ direction, rel=1e-6)


def test_sklearn_conventions(fitted):
    params = fitted.get_params()
    assert params["widths"] == WIDTHS and params["method"] == "emsa"
    copy = clone(fitted)
    assert copy.get_params() == params and not hasattr(copy, "theta_")
    copy.set_params(lam=0.5)
    assert copy.lam == 0.5 and fitted.lam == 1e-3


def test_save_load_round_trip_bitwise(fitted, digits, tmp_path):
    fitted.save(tmp_path / "model")
    assert (tmp_path / "model.json").exists() and (tmp_path / "model.safetensors").exists()
    loaded = AutoencODE.load(tmp_path / "model.json")
    X = digits[300:340]
    assert np.array_equal(loaded.reconstruct(X), fitted.reconstruct(X))
    assert np.array_equal(loaded.get_controls(), fitted.get_controls())
    assert loaded.history_ == fitted.history_


def test_float32_and_default_widths(digits):
    model = AutoencODE(latent_dim=4, steps_per_width=1, max_iter=2).fit(digits[:50])
    assert model.flow_.profile.widths == (64, 32, 16, 8, 4, 8, 16, 32, 64)
    assert model.transform(digits[:3]).dtype == np.float32


@pytest.mark.parametrize("data, fragment", [
    (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN"),
    (np.array([[1.0, np.inf], [0.0, 1.0]]), "inf"),
    (np.zeros((0, 3)), "empty|0 rows|no rows"),
    (np.zeros(5), "2-D|reshape"),
    (np.zeros((2, 2, 2)), "2-D"),
])
def test_bad_data(data, fragment):
    with pytest.raises(DataError, match=fragment):
        AutoencODE(widths=(2, 1, 2), max_iter=1).fit(data)


def test_dimension_mismatch(digits):
    with pytest.raises(DataError, match="64 features but widths"):
        AutoencODE(widths=(3, 1, 3), max_iter=1).fit(digits[:10])


@pytest.mark.parametrize("params, fragment", [
    (dict(activation="sigmoid"), "unknown activation 'sigmoid'"),
    (dict(method="newton"), "unknown method 'newton'"),
    (dict(init="ones"), "unknown init 'ones'"),
    (dict(solver="rk45"), "unknown solver 'rk45'"),
    (dict(field="mlp"), "unknown field 'mlp'"),
    (dict(lam=-1.0), r"lam must be in \[0"),
    (dict(lam=float("nan")), "lam must be a finite number"),
    (dict(T=0.0), "positive finite"),
    (dict(steps_per_width=0), "at least 1 time step"),
    (dict(max_iter=-1), "max_iter must be an integer >= 0"),
    (dict(dtype="float16"), "unknown dtype"),
    (dict(device="tpu"), "device"),
    (dict(init_scale=0.0), "init_scale"),
    (dict(batch_size=10), "batch_size is for the gradient methods"),
    (dict(method="adam", batch_size=0), "batch_size must be an integer >= 1"),
    (dict(method_options={"lr": 1}), "bad options"),
    (dict(method="shooting", lam=0.0), "lam > 0"),
])
def test_bad_hyperparameters(params, fragment):
    kwargs = dict(widths=(2, 1, 2), max_iter=1)
    kwargs.update(params)
    with pytest.raises(ConfigError, match=fragment) as info:
        AutoencODE(**kwargs).fit(np.random.default_rng(0).standard_normal((20, 2)))
    assert "\n" not in str(info.value)


def test_set_controls_validation(fitted):
    size = fitted.get_controls().size
    with pytest.raises(DataError, match=f"expected a flat vector of {size}"):
        fitted.set_controls(np.zeros(size + 1))
    with pytest.raises(DataError, match="NaN"):
        fitted.set_controls(np.full(size, np.nan))


def test_not_fitted():
    with pytest.raises(ConfigError, match="not fitted"):
        AutoencODE().transform(np.zeros((2, 64)))


def test_wrong_latent_shape(fitted):
    with pytest.raises(DataError, match="expected 8"):
        fitted.inverse_transform(np.zeros((3, 7)))


def test_divergence_keeps_last_good_controls(digits):
    model = AutoencODE(widths=WIDTHS, steps_per_width=2, method="shooting", lam=1e-3,
                       max_iter=50, dtype="float64")
    with pytest.warns(DivergenceWarning, match="diverged at iteration"):
        model.fit(digits[:200])
    assert model.status_ == "diverged"
    last = model.history_[-1]
    assert np.isfinite(last["J"]) and last["iteration"] == model.diverged_at_ - 1
    assert model.objective(digits[:200]) == pytest.approx(last["J"], rel=1e-9)


# ---------------------------------------------------------------- model files
def test_truncated_model_files(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    data = (tmp_path / "m.safetensors").read_bytes()
    (tmp_path / "m.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated"):
        AutoencODE.load(tmp_path / "m")
    fitted.save(tmp_path / "m")
    text = (tmp_path / "m.json").read_text()
    (tmp_path / "m.json").write_text(text[: len(text) // 2])
    with pytest.raises(ModelFileError, match="not valid JSON"):
        AutoencODE.load(tmp_path / "m")


@pytest.mark.parametrize("mutate, fragment", [
    (lambda m: m.pop("params"), "'params' missing"),
    (lambda m: m.update(format="other"), "not an autoencode model"),
    (lambda m: m.update(version=99), "format version 99"),
    (lambda m: m["params"].update(widths=[64, 4, 64]), "do not match"),
    (lambda m: m["params"].update(widths="abc"), "invalid settings"),
    (lambda m: m["params"].update(activation=3), "invalid settings"),
    (lambda m: m["params"].update(bogus=1), "invalid settings"),
    (lambda m: m.update(n_features_in="64"), "n_features_in"),
])
def test_tampered_model_json(fitted, tmp_path, mutate, fragment):
    fitted.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m.json").read_text())
    mutate(meta)
    (tmp_path / "m.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match=fragment):
        AutoencODE.load(tmp_path / "m")


def test_foreign_files_and_pickles_are_refused(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "m.safetensors").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ModelFileError):
        AutoencODE.load(tmp_path / "m")
    torch.save({"theta": torch.zeros(3)}, tmp_path / "m.safetensors")
    with pytest.raises(ModelFileError):
        AutoencODE.load(tmp_path / "m")
    assert not marker.exists()
    (tmp_path / "m.json").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ModelFileError):
        AutoencODE.load(tmp_path / "m")
    assert not marker.exists()
    with pytest.raises(ModelFileError, match="not found"):
        AutoencODE.load(tmp_path / "missing")


def test_recompute_option_gives_identical_training(digits):
    kw = dict(widths=WIDTHS, steps_per_width=2, max_iter=4, dtype="float64")
    plain = AutoencODE(**kw).fit(digits[:100])
    lean = AutoencODE(recompute=True, **kw).fit(digits[:100])
    assert np.array_equal(plain.get_controls(), lean.get_controls())
    with pytest.raises(ConfigError, match="recompute must be True or False"):
        AutoencODE(recompute="yes", **kw).fit(digits[:100])
