"""Property-based hostile input: validators and model files give only the library's own
one-line errors, never another exception."""

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from autoencode import AutoencODE
from autoencode.data import validate_matrix
from autoencode.errors import AutoencodeError, DataError, ModelFileError

FAST = settings(max_examples=80, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

DTYPES = st.sampled_from([np.int8, np.int64, np.uint8, np.bool_, np.float16, np.float32,
                          np.float64, np.complex64, np.complex128, "U3", "S2", object])


@st.composite
def arrays(draw):
    dtype = np.dtype(draw(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))
    if dtype.kind in "biufc":
        return draw(hnp.arrays(dtype, shape))
    return np.full(shape, draw(st.sampled_from(["a", 1, None, 2.5])), dtype=dtype)


@FAST
@given(X=arrays())
def test_validate_matrix_accepts_or_refuses_clearly(X):
    try:
        out = validate_matrix(X)
    except DataError as exc:
        assert "\n" not in str(exc)
        return
    assert out.dtype == np.float64 and out.ndim == 2 and np.isfinite(out).all()
    assert out.shape[0] >= 1 and out.shape[1] >= 1


@FAST
@given(X=arrays())
def test_estimator_fit_accepts_or_refuses_clearly(X):
    try:
        AutoencODE(widths=None, max_iter=1, steps_per_width=1).fit(X)
    except AutoencodeError as exc:
        assert "\n" not in str(exc)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "model"
    rng = np.random.default_rng(0)
    AutoencODE(widths=(3, 2, 3), steps_per_width=1, max_iter=2).fit(rng.normal(size=(30, 3))) \
        .save(path)
    return json.loads(path.with_suffix(".json").read_text()), \
        path.with_suffix(".safetensors").read_bytes()


JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**12, 10**12)
                    | st.floats(allow_nan=True) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=8)


@FAST
@given(data=st.data())
def test_tampered_model_files_are_refused_clearly(saved, data):
    meta, tensors = saved
    meta = json.loads(json.dumps(meta))
    target = data.draw(st.sampled_from(["top", "params", "bytes"]))
    if target == "top":
        meta[data.draw(st.sampled_from(sorted(meta)))] = data.draw(JSON)
    elif target == "params":
        meta["params"][data.draw(st.sampled_from(sorted(meta["params"])))] = data.draw(JSON)
    else:
        blob = bytearray(tensors)
        for _ in range(data.draw(st.integers(1, 8))):
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
        tensors = bytes(blob)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "model"
        base.with_suffix(".json").write_text(json.dumps(meta))
        base.with_suffix(".safetensors").write_bytes(tensors)
        try:
            model = AutoencODE.load(base)
        except ModelFileError as exc:
            assert "\n" not in str(exc)
            return
        out = model.reconstruct(np.zeros((2, model.n_features_in_)))
        assert np.isfinite(out).all()
