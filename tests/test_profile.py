import pytest

from autoencode.errors import ConfigError
from autoencode.profile import WidthProfile, default_widths


def test_unrolling():
    p = WidthProfile.build((5, 4, 2, 3, 5), [1, 2, 1, 2, 1], T=1.4)
    assert p.d == 5 and p.k == 2 and p.K == 7
    assert p.step_widths == (5, 4, 4, 2, 3, 3, 5)
    assert p.input_widths == (5, 5, 4, 4, 2, 3, 3)
    assert p.h == pytest.approx(0.2)
    assert p.bottleneck_step == 3
    assert len(p.times()) == 8 and p.times()[-1] == pytest.approx(1.4)


def test_bottleneck_is_last_step_of_min_width():
    p = WidthProfile.build((4, 2, 2, 4), 2, T=1.0)
    assert p.step_widths == (4, 4, 2, 2, 2, 2, 4, 4)
    assert p.bottleneck_step == 5


def test_constant_width():
    p = WidthProfile.build((3, 3), 5, T=2.0)
    assert p.k == 3 and p.K == 10 and set(p.step_widths) == {3}


@pytest.mark.parametrize("widths, steps, T, fragment", [
    ((4, 2, 3), 1, 1.0, "end at 3"),
    ((4, 2, 4, 2, 4), 1, 1.0, "shrink from 4 to 2 after"),
    ((4, 3, 4, 2, 4), 1, 1.0, "grow from 3 to 4 before"),
    ((4, 0, 4), 1, 1.0, "outside 1..4"),
    ((4, 5, 4), 1, 1.0, "outside 1..4"),
    ((4,), 1, 1.0, "at least 2"),
    ((4, 2, 4), 0, 1.0, "at least 1 time step"),
    ((4, 2, 4), [1, 2], 1.0, "has 2 entries"),
    ((4, 2, 4), 1.5, 1.0, "must be an integer"),
    ((4, 2.5, 4), 1, 1.0, "must be an integer"),
    ((4, 2, 4), 1, 0.0, "positive finite"),
    ((4, 2, 4), 1, -1.0, "positive finite"),
    ((4, 2, 4), 1, float("inf"), "positive finite"),
    ((4, 2, 4), 1, "x", "positive number"),
    ("abc", 1, 1.0, "integer"),
    ((True, 2, 4), 1, 1.0, "integer"),
])
def test_validation(widths, steps, T, fragment):
    with pytest.raises(ConfigError, match=fragment) as info:
        WidthProfile.build(widths, steps, T)
    assert "\n" not in str(info.value)


def test_default_widths():
    assert default_widths(64, 8) == (64, 32, 16, 8, 16, 32, 64)
    assert default_widths(3, 2) == (3, 2, 3)
    assert default_widths(5, 5) == (5, 5)
    WidthProfile.build(default_widths(784, 16))
    with pytest.raises(ConfigError, match="latent dimension 0"):
        default_widths(4, 0)
