"""The default model: registered, its shipped weights checked by SHA-256 and loaded
strictly, and it colorizes (and follows a hint) through the Colorizer interface."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from restore.models.base import ModelError, file_sha256, verified_weights
from restore.models.lite import SPEC, Lite, LiteColorNet, LiteConfig, load_weights, save_weights
from restore.models.registry import create_model, get_spec, model_specs

TINY = LiteConfig(input_px=64, dim=32, depth=1, heads=2)


def test_registry_finds_every_model_and_lite_declares_itself() -> None:
    names = {spec.name for spec in model_specs()}
    assert {"lite", "propagate", "ramp"} <= names
    spec = get_spec("lite")
    assert spec.takes_hints and spec.input_px == 224 and spec.weights_file and len(spec.weights_sha256 or "") == 64
    assert spec.licence


def test_shipped_weights_have_their_sha256_and_size_limit() -> None:
    path = verified_weights(SPEC)
    assert path.stat().st_size <= 30 * 2**20
    assert file_sha256(path) == SPEC.weights_sha256


def test_a_corrupted_weights_file_is_refused_with_its_path(tmp_path: Path) -> None:
    shipped = verified_weights(SPEC)
    broken = tmp_path / SPEC.weights_file
    data = bytearray(shipped.read_bytes())
    data[len(data) // 2] ^= 0xFF
    broken.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"lite\.pt: SHA-256 .* corrupted"):
        verified_weights(SPEC, tmp_path)
    with pytest.raises(ModelError, match="missing"):
        verified_weights(SPEC, tmp_path / "nowhere")


def test_weights_load_strictly(tmp_path: Path) -> None:
    net = LiteColorNet(TINY)
    path = tmp_path / "tiny.pt"
    save_weights(net, path)
    loaded = load_weights(path)
    assert loaded.config == TINY
    blob = torch.load(path, weights_only=True)
    del blob["state_dict"]["head_ab.weight"]
    torch.save(blob, path)
    with pytest.raises(ModelError, match="head_ab.weight"):
        load_weights(path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a photochrom-lite weights file"):
        load_weights(path)


def test_lite_colorizes_a_batch_and_follows_a_hint() -> None:
    model = create_model("lite")
    side = model.spec.input_px
    y, x = np.mgrid[0:side, 0:side]
    l = np.stack([(30 + 40 * x / side).astype(np.float32)] * 2)
    hint_ab, hint_mask = np.zeros((2, side, side, 2), np.float32), np.zeros((2, side, side), np.float32)
    hint_ab[1, 100:104, 100:104] = (-40.0, -40.0)  # a strong blue-green
    hint_mask[1, 100:104, 100:104] = 1.0
    ab = model.colorize(l, hint_ab, hint_mask)
    assert ab.shape == (2, side, side, 2) and ab.dtype == np.float32 and np.isfinite(ab).all()
    at_hint = ab[:, 100:104, 100:104].mean(axis=(1, 2))
    assert np.hypot(*(at_hint[1] - (-40.0, -40.0))) < np.hypot(*(at_hint[0] - (-40.0, -40.0))) - 10
    assert np.hypot(*(at_hint[1] - (-40.0, -40.0))) < 15
    with pytest.raises(ValueError, match="B x 224 x 224"):
        model.colorize(l[:, :100], hint_ab, hint_mask)


def test_spec_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SPEC.input_px = 1  # type: ignore[misc]
    assert isinstance(create_model("lite"), Lite)


def test_hint_field_spreads_hints_everywhere_and_keeps_them_where_given() -> None:
    from restore.models.lite import FIELD_CHANNELS, hint_field

    hints = torch.zeros(2, 3, 64, 64)
    hints[1, :2, 10:12, 40:42] = torch.tensor([0.3, -0.2])[:, None, None]  # a*b* / 110
    hints[1, 2, 10:12, 40:42] = 1.0
    hints[1, :2, 50:52, 6:8] = torch.tensor([-0.1, 0.4])[:, None, None]
    hints[1, 2, 50:52, 6:8] = 1.0
    sizes = [torch.Size([32, 32]), torch.Size([16, 16]), torch.Size([8, 8]), torch.Size([4, 4])]
    fields = hint_field(hints, sizes)
    assert [tuple(f.shape) for f in fields] == [(2, FIELD_CHANNELS, s[0], s[1]) for s in sizes]
    assert all(torch.all(f[0] == 0) for f in fields)  # no hints, no field
    finest = fields[0][1]
    assert torch.allclose(finest[:2, 5, 20], torch.tensor([0.3, -0.2]))  # each hint in its own cell
    assert torch.allclose(finest[:2, 25, 3], torch.tensor([-0.1, 0.4]))
    assert torch.all(finest[:2].abs().sum(dim=0) > 0)  # and something everywhere else
    assert finest[2, 5, 20] == 1 and finest[2, 0, 0] == 0  # the flag: a hint in this cell


def test_one_hint_alone_colours_a_uniform_input_everywhere() -> None:
    from restore.models.lite import spread_residuals

    side = 64
    l_hw = np.full((side, side), 50.0, np.float32)
    ab = np.zeros((side, side, 2), np.float32)
    hint_ab, mask = np.zeros((side, side, 2), np.float32), np.zeros((side, side), np.float32)
    hint_ab[5, 5], mask[5, 5] = (30.0, -20.0), 1.0
    corrected = ab + spread_residuals(l_hw, hint_ab, mask, ab)
    assert np.allclose(corrected[5, 5], (30.0, -20.0), atol=0.1)  # (solved at half resolution)
    assert np.allclose(corrected[60, 60], (30.0, -20.0), atol=3.0)  # nothing stops it: same lightness


def test_folding_batch_norms_keeps_the_function() -> None:
    import copy

    from restore.models.lite import fold_batch_norms

    net = load_weights(verified_weights(SPEC))
    folded = fold_batch_norms(copy.deepcopy(net))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    generator = torch.Generator().manual_seed(0)
    l = torch.rand(2, 1, 224, 224, generator=generator) * 100
    ab, mask = torch.zeros(2, 2, 224, 224), torch.zeros(2, 1, 224, 224)
    ab[:, :, 50:52, 60:62], mask[:, :, 50:52, 60:62] = 25.0, 1.0
    with torch.no_grad():
        assert (net(l, ab, mask) - folded(l, ab, mask)).abs().max() < 1e-3

