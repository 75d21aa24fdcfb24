"""Synthetic damage: its mask is exactly the visibly changed pixels, texture is never masked,
`amount` scales the damage, and a seed gives the same damage every time."""

from __future__ import annotations

import numpy as np
import pytest

from restore.repair import synth
from restore.repair.synth import MASK_CHANGE_L, add_nuisance, synthesize_damage


def smooth_l(height: int = 160, width: int = 200) -> np.ndarray:
    """A smooth mid-gray L* image (gradients, no edges), so damage shows anywhere."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return (45 + 15 * np.sin(x / 40) + 10 * np.cos(y / 30)).astype(np.float32)


@pytest.mark.parametrize("seed", range(6))
def test_the_mask_marks_exactly_the_pixels_damage_changed(seed: int) -> None:
    l_hw = smooth_l()
    damaged, mask_hw = synthesize_damage(l_hw, np.random.default_rng(seed))
    assert damaged.shape == l_hw.shape and damaged.dtype == np.float32 and mask_hw.dtype == bool
    assert damaged.min() >= 0 and damaged.max() <= 100
    change = np.abs(damaged - l_hw)
    assert mask_hw.any(), "amount 1 draws some damage"
    np.testing.assert_array_equal(mask_hw, change > MASK_CHANGE_L)
    assert np.abs(damaged - l_hw)[~mask_hw].max() <= MASK_CHANGE_L


@pytest.mark.parametrize("kind", synth.KINDS)
def test_every_kind_of_damage_draws_something_visible(kind: str) -> None:
    rng = np.random.default_rng(3)
    l_hw = smooth_l(200, 200)
    changed = 0
    for _ in range(5):  # one draw can fall mostly outside or be faint; five cannot all
        out = l_hw.copy()
        synth._DRAW[kind](out, rng)
        changed += int((np.abs(out - l_hw) > MASK_CHANGE_L).sum())
    assert changed > 20


def test_damage_is_thin_lines_and_specks_not_a_wash_over_the_image() -> None:
    fractions = [synthesize_damage(smooth_l(), np.random.default_rng(seed))[1].mean() for seed in range(20)]
    assert 0.002 < np.median(fractions) < 0.15


def test_nuisance_changes_pixels_but_is_not_damage() -> None:
    l_hw = smooth_l()
    changed = 0
    for seed in range(10):
        out = add_nuisance(l_hw, np.random.default_rng(seed))
        assert out.shape == l_hw.shape and out.dtype == np.float32
        assert 0 <= out.min() and out.max() <= 100
        changed += int(np.any(out != l_hw))
    assert changed >= 8  # most draws add some texture
    # Texture is not damage: on a textured image, the mask is only what damage drew.
    textured = add_nuisance(l_hw, np.random.default_rng(0))
    damaged, mask_hw = synthesize_damage(textured, np.random.default_rng(0), amount=0.0)
    np.testing.assert_array_equal(damaged, textured)
    assert not mask_hw.any()


def test_more_amount_more_damage() -> None:
    def damaged_share(amount: float) -> float:
        return float(np.mean([synthesize_damage(smooth_l(), np.random.default_rng(s), amount=amount)[1].mean() for s in range(12)]))

    none, light, heavy = damaged_share(0.0), damaged_share(0.5), damaged_share(3.0)
    assert none == 0.0
    assert 0 < light < heavy
    assert heavy > 2 * light


def test_the_same_seed_gives_the_same_damage_and_another_seed_other_damage() -> None:
    l_hw = smooth_l()
    first = synthesize_damage(l_hw, np.random.default_rng(7))
    again = synthesize_damage(l_hw, np.random.default_rng(7))
    other = synthesize_damage(l_hw, np.random.default_rng(8))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])
    np.testing.assert_array_equal(add_nuisance(l_hw, np.random.default_rng(7)), add_nuisance(l_hw, np.random.default_rng(7)))


def test_the_input_is_left_alone() -> None:
    l_hw = smooth_l()
    before = l_hw.copy()
    synthesize_damage(l_hw, np.random.default_rng(0), amount=2.0)
    add_nuisance(l_hw, np.random.default_rng(0))
    np.testing.assert_array_equal(l_hw, before)
