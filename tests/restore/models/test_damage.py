"""The damage segmenter: shapes, its declared receptive field, the weights' checksum, what the
shipped network finds and leaves alone, and a tiny training run."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from restore.models import damage, damage_training
from restore.models.base import DEVICE_VARIABLE, ModelError
from restore.models.damage import (
    SPEC,
    DamageConfig,
    DamageNet,
    DamageSegmenter,
    extended,
    folded,
    load_damage_net,
    load_damage_segmenter,
    receptive_field_px,
    save_damage_weights,
)
from restore.models.damage_training import (
    HARD_PER_PHOTO,
    DamageTrainSettings,
    crop_origin,
    damage_batch,
    hard_places,
    initial_net,
    tolerant_counts,
    train_damage_segmenter,
)
from restore.repair import synth
from restore.settings import REPAIR_TRAIN_DEFAULTS


@pytest.fixture(scope="module")
def shipped() -> DamageSegmenter:
    return load_damage_segmenter("cpu")


def untrained(seed: int = 0) -> DamageSegmenter:
    torch.manual_seed(seed)
    return DamageSegmenter(DamageNet(DamageConfig()), SPEC, torch.device("cpu"), torch.float32)


def gradient_l(height: int = 256, width: int = 256) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return (30 + 40 * x / width + 10 * y / height).astype(np.float32)


@pytest.mark.parametrize("shape", [(1, 37, 53), (2, 8, 8), (1, 1, 1), (3, 65, 17)])
def test_any_size_in_the_same_size_out(shape: tuple[int, int, int]) -> None:
    l_bhw = np.random.default_rng(0).uniform(0, 100, shape).astype(np.float32)
    probability = untrained().probability(l_bhw)
    assert probability.shape == shape and probability.dtype == np.float32
    assert np.all((probability >= 0) & (probability <= 1))


def test_wrong_arrays_are_refused() -> None:
    with pytest.raises(ValueError, match="B x H x W float32"):
        untrained().probability(np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match="B x H x W float32"):
        untrained().probability(np.zeros((1, 8, 8), np.float64))


CONTEXT = DamageConfig(context_channels=8, context_dilations=(1, 2, 4))


def test_the_declared_receptive_field_and_grid_are_the_shipped_networks(shipped: DamageSegmenter) -> None:
    config = shipped.net.config
    assert SPEC.receptive_field_px == receptive_field_px(config)
    assert SPEC.alignment_px == config.grid_px


def test_a_context_branch_widens_the_receptive_field_and_the_grid() -> None:
    assert receptive_field_px(DamageConfig()) == 104 and DamageConfig().grid_px == 8
    assert receptive_field_px(CONTEXT) == 344 and CONTEXT.grid_px == 16


@pytest.mark.parametrize("config", [DamageConfig(), CONTEXT], ids=["plain", "context"])
def test_nothing_beyond_the_receptive_field_changes_a_pixel(config: DamageConfig) -> None:
    """The oracle the tiled detection rests on: a pixel's probability depends on the input
    within half the receptive field of it and on nothing further away."""
    torch.manual_seed(1)
    net = DamageNet(config)
    if config.context_channels:
        torch.nn.init.normal_(net.up16.weight, std=0.1)  # a trained branch: its output not zero
    segmenter = DamageSegmenter(net, SPEC, torch.device("cpu"), torch.float32)
    rng = np.random.default_rng(0)
    side = 512 if config.context_channels else 256
    l_hw = rng.uniform(20, 80, (side, side)).astype(np.float32)
    centre, radius = side // 2, receptive_field_px(config) // 2 + 1
    far = l_hw.copy()
    outside = np.ones_like(l_hw, bool)
    outside[centre - radius : centre + radius + 1, centre - radius : centre + radius + 1] = False
    far[outside] = rng.uniform(20, 80, int(outside.sum()))
    near = l_hw.copy()
    near[centre - 2 : centre + 3, centre - 2 : centre + 3] = 99.0
    base, far_p, near_p = (segmenter.logits(x[None])[0, centre, centre] for x in (l_hw, far, near))
    assert far_p == base
    assert near_p != base


def test_folding_the_training_batch_norms_keeps_the_function() -> None:
    torch.manual_seed(0)
    net = DamageNet(DamageConfig(), batch_norm=True)
    x = torch.rand(2, 1, 48, 64) * 100
    net.train()
    for _ in range(3):  # running statistics away from their initial values
        net(x)
    net.eval()
    plain = folded(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    with torch.no_grad():
        torch.testing.assert_close(plain(x), net(x), atol=1e-4, rtol=1e-4)


def test_a_context_branch_added_to_trained_weights_starts_as_they_are(tmp_path: Path) -> None:
    torch.manual_seed(0)
    trained = DamageNet(DamageConfig(), batch_norm=True).eval()
    for p in trained.parameters():
        p.data.normal_(0, 0.05)
    grown = extended(trained, CONTEXT)
    x = torch.rand(2, 1, 64, 80) * 100
    with torch.no_grad():
        before = grown(x)
        torch.testing.assert_close(before, trained(x), atol=1e-6, rtol=1e-5)
        torch.nn.init.normal_(grown.up16.weight, std=1.0)  # once trained, the branch counts
        assert float((grown(x) - before).abs().max()) > 1e-4
    # saved and loaded with its config; a file from before context branches loads without one
    save_damage_weights(grown, tmp_path / "grown.pt")
    loaded = load_damage_net(tmp_path / "grown.pt")
    assert loaded.config == CONTEXT
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), grown(x), atol=0.05, rtol=0.01)  # stored in float16
    old = {k: v for k, v in DamageConfig().to_dict().items() if not k.startswith("context")}
    assert DamageConfig.from_dict(json.loads(json.dumps(old))) == DamageConfig()
    with pytest.raises(ValueError, match="no place"):
        extended(DamageNet(CONTEXT), DamageConfig(stride8_channels=32))


def test_weights_whose_sha256_is_not_the_declared_one_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(damage, "SPEC", dataclasses.replace(SPEC, weights_sha256="0" * 64))
    with pytest.raises(ModelError, match="SHA-256"):
        load_damage_segmenter("cpu")


def test_the_shipped_weights_load_as_declared(shipped: DamageSegmenter) -> None:
    assert shipped.spec == SPEC
    assert 0 < SPEC.default_threshold < 1
    assert damage.segmenter_sha256("damage-lite") == SPEC.weights_sha256
    damage.check_damage_weights("damage-lite")  # raises if missing or changed


def test_the_shipped_model_finds_scratches_cracks_and_dust_on_a_grainy_gradient(shipped: DamageSegmenter) -> None:
    # Damage as synth.py draws it (tapering, uneven strokes: what scans show); a perfectly
    # uniform ruled line is the segmenter's known blind spot (model card), not tested here.
    counts = np.zeros(4, np.int64)
    for seed in range(6):
        rng = np.random.default_rng(seed)
        l_hw = gradient_l() + rng.normal(0, 1.5, (256, 256)).astype(np.float32)
        damaged = l_hw.copy()
        for kind in ("scratch", "crack", "dust"):
            synth._DRAW[kind](damaged, rng)
        found_hw = shipped.probability(damaged[None])[0] > SPEC.default_threshold
        counts += tolerant_counts(found_hw, np.abs(damaged - l_hw) > synth.MASK_CHANGE_L)
    right, predicted, found, true = counts
    assert found / true > 0.8, f"recall {found / true:.2f}"
    assert right / max(predicted, 1) > 0.9, f"precision {right / max(predicted, 1):.2f}"


def test_the_shipped_model_leaves_a_clean_noisy_gradient_alone(shipped: DamageSegmenter) -> None:
    rng = np.random.default_rng(0)
    l_hw = (gradient_l(512, 512) + rng.normal(0, 2.0, (512, 512))).astype(np.float32)
    flagged = (shipped.probability(l_hw[None])[0] > SPEC.default_threshold).mean()
    assert flagged < 0.001


def _photos(folder: Path) -> None:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        y, x = np.mgrid[0:48, 0:56]
        rgb = np.stack([x * 4, y * 5, (x + y) * 2], -1) + rng.integers(0, 20, (48, 56, 3))
        cv2.imwrite(str(folder / f"photo{i}.png"), np.clip(rgb, 0, 255).astype(np.uint8))


def test_a_tiny_training_run_writes_loadable_weights_deterministically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEVICE_VARIABLE, "cpu")  # as `photochrom --device cpu train-repair` sets it
    _photos(tmp_path / "photos")

    def run(out: Path) -> dict[str, object]:
        settings = DamageTrainSettings(data=(tmp_path / "photos",), out=out, steps=2, crop_px=32, batch_size=2, holdout_every=0, checkpoint_every=1, threads=1)
        return train_damage_segmenter(settings)

    summary = run(tmp_path / "a.pt")
    assert summary["steps"] == 2 and summary["train_photos"] == 3 and summary["held_out_photos"] == 0
    assert summary["device"] == "cpu"
    segmenter = load_damage_segmenter("cpu", tmp_path / "a.pt")
    assert segmenter.spec.weights_sha256 == summary["weights_sha256"] != SPEC.weights_sha256
    assert segmenter.probability(np.full((1, 20, 30), 50, np.float32)).shape == (1, 20, 30)
    run(tmp_path / "b.pt")  # the same seed: the same weights (the files' bytes hold their names)
    first, again = (torch.load(tmp_path / name, weights_only=True)["state_dict"] for name in ("a.pt", "b.pt"))
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    # fine-tuning with a context branch asked for grows the initial weights (train-repair --context-channels)
    grown = initial_net(DamageTrainSettings(data=(), out=tmp_path / "c.pt", init_weights=tmp_path / "a.pt", context_channels=8))
    assert grown.config == DamageConfig(context_channels=8, context_dilations=REPAIR_TRAIN_DEFAULTS.context_dilations)
    x = torch.rand(1, 1, 32, 48) * 100
    with torch.no_grad():
        torch.testing.assert_close(grown(x), load_damage_net(tmp_path / "a.pt")(x))
    same = initial_net(DamageTrainSettings(data=(), out=tmp_path / "c.pt", init_weights=tmp_path / "a.pt"))
    assert same.config == DamageConfig()


class BrightSpots:
    """A stand-in segmenter: damage wherever L* is above 90 (so the test knows where it flags)."""

    spec = SPEC

    def probability(self, l_bhw: np.ndarray) -> np.ndarray:
        return (l_bhw > 90).astype(np.float32)


def _spotted_photo(path: Path, spots: list[tuple[int, int, int]]) -> None:
    """A dark gray photo with bright squares (row, column, half side)."""
    bgr = np.full((120, 160, 3), 60, np.uint8)
    for row, column, half in spots:
        bgr[row - half : row + half + 1, column - half : column + half + 1] = 255
    cv2.imwrite(str(path), bgr)


def test_hard_negatives_are_where_the_network_flags_clean_photos_largest_first(tmp_path: Path) -> None:
    spots = [(20 + 8 * (k // 6), 15 + 22 * (k % 6), 1 + k % 3) for k in range(HARD_PER_PHOTO + 4)]
    _spotted_photo(tmp_path / "a.png", spots)
    _spotted_photo(tmp_path / "b.png", [(60, 100, 4)])
    _spotted_photo(tmp_path / "c.png", [])  # nothing flagged: no place
    photos = [tmp_path / n for n in ("a.png", "b.png", "c.png")]
    places = hard_places(BrightSpots(), photos, None, seed=0)
    in_a = [(row, column) for index, row, column in places if index == 0]
    assert len(in_a) == HARD_PER_PHOTO  # at most this many per photo, the largest kept
    largest = sorted(spots, key=lambda s: -s[2])[:HARD_PER_PHOTO]
    assert sorted(in_a) == sorted((row, column) for row, column, _ in largest)
    assert [(i, r, c) for i, r, c in places if i != 0] == [(1, 60, 100)]
    assert len({i for i, _, _ in hard_places(BrightSpots(), photos, 2, seed=3)}) <= 2  # a limit draws that many photos
    # a training run asked for hard negatives without initial weights refuses before writing anything
    with pytest.raises(ValueError, match="initial weights"):
        train_damage_segmenter(DamageTrainSettings(data=(tmp_path,), out=tmp_path / "run" / "d.pt", hard_share=0.3))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("centre", [(5, 7), (150, 90), (299, 399), (160, 200)])
def test_a_hard_crop_holds_its_centre_and_stays_inside_the_image(centre: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        top, left = crop_origin(rng, (300, 400), 64, centre)
        assert 0 <= top <= 300 - 64 and 0 <= left <= 400 - 64
        assert top <= centre[0] < top + 64 and left <= centre[1] < left + 64


def test_a_batch_of_hard_crops_shows_the_hard_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One bright square on a big dark photo: random crops of 48 px rarely hold it, hard ones always.
    monkeypatch.setattr(damage_training, "DAMAGE_P", 0.0)  # no drawn damage to be bright too
    big = np.full((600, 800, 3), 60, np.uint8)
    big[400:404, 700:704] = 255
    cv2.imwrite(str(tmp_path / "big.png"), big)
    photos = [tmp_path / "big.png"]
    hard = hard_places(BrightSpots(), photos, None, seed=0)
    assert hard == [(0, 401, 701)]
    seen = {share: 0 for share in (0.0, 1.0)}
    for share in seen:
        for step in range(6):
            images, _ = damage_batch(photos, 0, step, 4, 48, hard, share)
            # the square, brighter than anything the dark photo's texture or fading makes of it
            seen[share] += sum(bool((image > image.mean() + 25).any()) for image in images)
    assert seen[1.0] >= 20  # of 24 crops (a crop may cut the square in half)
    assert seen[0.0] <= 4


@pytest.mark.parametrize("downscale_p", [0.0, 1.0])
def test_some_samples_are_a_whole_print_shrunk_before_cropping(monkeypatch: pytest.MonkeyPatch, downscale_p: float) -> None:
    # Stripes 64 px wide: a 32 px crop at full scale crosses at most one edge; the photo shrunk
    # to a short side of 1-2.5 crops (stripes 2.6-6.4 px) shows many in every crop.
    for name, value in (("DAMAGE_P", 0.0), ("UPSCALE_P", 0.0), ("UPSCALE_AFTER_P", 0.0), ("DOWNSCALE_P", downscale_p)):
        monkeypatch.setattr(damage_training, name, value)
    photo = np.where((np.arange(1000) // 64) % 2 == 0, 20.0, 80.0).astype(np.float32)[None, :].repeat(800, 0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        image, mask = damage_training.damage_sample(photo, rng, 32)
        assert image.shape == mask.shape == (32, 32) and not mask.any()
        profile = max(image.mean(axis=0), image.mean(axis=1), key=np.ptp)  # across the stripes (crops turn)
        edges = int(np.count_nonzero(np.diff(profile > (profile.max() + profile.min()) / 2))) if np.ptp(profile) > 15 else 0
        assert (edges >= 4) if downscale_p else (edges <= 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA GPU")
def test_a_tiny_training_run_on_the_gpu_saves_weights_that_load_on_the_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEVICE_VARIABLE, "cuda")
    _photos(tmp_path / "photos")
    settings = DamageTrainSettings(data=(tmp_path / "photos",), out=tmp_path / "g.pt", steps=2, crop_px=32, batch_size=2, holdout_every=0, threads=1)
    summary = train_damage_segmenter(settings)
    assert summary["device"].startswith("cuda")
    assert load_damage_segmenter("cpu", tmp_path / "g.pt").probability(np.full((1, 20, 30), 50, np.float32)).shape == (1, 20, 30)
