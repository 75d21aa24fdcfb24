"""DeOldify's artistic and stable generators: our plain-torch networks compute what the
official ones compute.

The fixtures (tests/restore/models/fixtures/deoldify_{artistic,stable}.npz) were made in a
scratch folder outside this repository from the official source (github.com/jantic/DeOldify:
deoldify/unet.py, layers.py, generators.py' settings, filters.py' pre- and post-processing,
with its vendored fastai v1): the official networks, given the deterministic weights of
`recipe_state` below in the official key layout, ran on a fixed gray image at render factor 4
(64 px). Each holds the model-ready image (`model_image`, uint8 gray RGB), the network input
(`x`, ImageNet-normalised), the raw output (`raw`, -3..3) and the RGB the official code makes
of it (`rgb`: denormalised and clamped to 0..1), with the seed. The official key -> shape
lists are deoldify_{artistic,stable}_keys.json. Here the same weights go through `photochrom
models import`'s path (a file laid out as released, safe and strict loading) and our
network must reproduce the outputs."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from restore.models.base import ModelError
from restore.models.deoldify import (
    DEFAULT_RENDER_FACTOR,
    RENDER_BASE,
    artistic_net,
    colorize_ab,
    normalise_gray,
    output_rgb,
    stable_net,
)
from restore.models.imported import import_checkpoint
from restore.models.registry import create_model, get_spec
from restore.models.torch_colour import rgb_to_lab

FIXTURES = Path(__file__).parent / "fixtures"
CONFIGS = {"deoldify-artistic": "artistic", "deoldify-stable": "stable"}
NETS = {"deoldify-artistic": artistic_net, "deoldify-stable": stable_net}


def recipe_state(shapes: dict[str, list[int]], seed: int) -> dict[str, torch.Tensor]:
    """The fixtures' weights: key i in sorted order drawn from Generator(seed * 1_000_003 + i),
    scaled by the kind of tensor; spectral norm's u and v then from 3 power iterations on
    weight_orig starting from the drawn u (so that u . W v is W's top singular value)."""
    state: dict[str, torch.Tensor] = {}
    for i, key in enumerate(sorted(shapes)):
        shape = tuple(shapes[key])
        g = torch.Generator().manual_seed(seed * 1_000_003 + i)
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros((), dtype=torch.long)
            continue
        r = torch.randn(shape, generator=g, dtype=torch.float32)
        if key.endswith("running_var"):
            t = 0.5 + r.abs()
        elif key.endswith(("running_mean", "bias")):
            t = 0.1 * r
        elif key.endswith("gamma"):
            t = 0.5 + 0.1 * r
        elif key.endswith("weight_u") or (key.endswith("weight_v") and len(shape) == 1):
            t = r / r.norm()
        elif key.endswith("weight_g"):
            t = 1.0 + 0.1 * r
        elif len(shape) == 1:  # BatchNorm weight
            t = 0.6 + 0.1 * r
        else:  # convolution weights: weight, weight_orig, weight norm's weight_v
            fan_in = 1
            for s in shape[1:]:
                fan_in *= s
            t = r * (1.0 / fan_in) ** 0.5
        state[key] = t
    for key in sorted(shapes):
        if key.endswith("weight_orig"):
            base = key[: -len("orig")]
            w = state[key].reshape(state[key].shape[0], -1)
            u = state[base + "u"]
            for _ in range(3):
                v = F.normalize(w.t() @ u, dim=0, eps=1e-12)
                u = F.normalize(w @ v, dim=0, eps=1e-12)
            state[base + "u"], state[base + "v"] = u, v
    return state


@cache
def official_shapes(name: str) -> dict[str, list[int]]:
    return json.loads((FIXTURES / f"deoldify_{CONFIGS[name]}_keys.json").read_text())


@cache
def fixture(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"deoldify_{CONFIGS[name]}.npz") as f:
        return {k: f[k] for k in f.files}


@cache
def released_state(name: str) -> dict[str, torch.Tensor]:
    return recipe_state(official_shapes(name), int(fixture(name)["seed"]))


def save(state: object, path: Path) -> Path:
    torch.save(state, path)
    return path


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    monkeypatch.setenv("PHOTOCHROM_MODELS", str(folder))
    return folder


@pytest.mark.parametrize("name", list(CONFIGS))
def test_our_keys_and_shapes_are_the_official_ones(name: str) -> None:
    ours = {k: list(v.shape) for k, v in NETS[name]().state_dict().items()}
    assert list(ours.items()) == list(official_shapes(name).items())


@pytest.mark.parametrize("name", list(CONFIGS))
def test_an_imported_checkpoint_computes_what_the_official_network_computes(name: str, models: Path, tmp_path: Path) -> None:
    f = fixture(name)
    assert int(f["render_factor"]) * RENDER_BASE == f["x"].shape[-1] == 64
    record = import_checkpoint(name, save(released_state(name), tmp_path / f"Colorize{CONFIGS[name].title()}_gen.pth"))
    assert record["tensors"] == len(official_shapes(name))
    model = create_model(name)  # loads the stored weights (SHA-256 checked), as users' runs do
    assert model.spec.input_px == DEFAULT_RENDER_FACTOR * RENDER_BASE == 560 and not model.spec.takes_hints
    net = model.net.cpu()
    with torch.inference_mode():
        # the official pre-processing: the gray model image / 255, ImageNet-normalised
        gray = torch.from_numpy(f["model_image"]).permute(2, 0, 1)[None].float() / 255
        l_b1hw = rgb_to_lab(gray)[:, :1]
        x = normalise_gray(l_b1hw)
        np.testing.assert_allclose(x.numpy(), f["x"], atol=1e-4)
        raw = net(torch.from_numpy(f["x"]))
        np.testing.assert_allclose(raw.numpy(), f["raw"], atol=1e-4)
        assert float(raw.std()) > 0.05  # the fixture is not a saturated or constant output
        rgb = output_rgb(raw)
        np.testing.assert_allclose(rgb.numpy()[0], f["rgb"], atol=1e-4)
        # a*b* of the official RGB, from the scan's lightness through our whole path
        ab = colorize_ab(net, l_b1hw)
        expected = rgb_to_lab(torch.from_numpy(f["rgb"])[None])[:, 1:]
        np.testing.assert_allclose(ab.numpy(), expected.numpy(), atol=2e-2)


def test_the_colorizer_takes_wrapped_checkpoints_and_ignores_hints(models: Path, tmp_path: Path) -> None:
    name = "deoldify-artistic"
    import_checkpoint(name, save({"model": released_state(name), "opt": {}}, tmp_path / "with_opt.pth"))
    model = create_model(name)
    assert model.spec.input_px == 560
    model.spec = replace(model.spec, input_px=64)  # render factor 4, to keep the test fast on a CPU
    s = model.spec.input_px
    l_bhw = np.linspace(20, 80, s * s, dtype=np.float32).reshape(1, s, s)
    hint_ab = np.zeros((1, s, s, 2), np.float32)
    hint_mask = np.zeros((1, s, s), np.float32)
    ab = model.colorize(l_bhw, hint_ab, hint_mask)
    hint_ab[:, :8, :8] = 50.0
    hint_mask[:, :8, :8] = 1.0
    assert ab.shape == (1, s, s, 2) and ab.dtype == np.float32 and np.isfinite(ab).all() and ab.std() > 0
    np.testing.assert_array_equal(model.colorize(l_bhw, hint_ab, hint_mask), ab)


def test_models_list_says_where_to_download_and_the_terms() -> None:
    for name, file in (("deoldify-artistic", "ColorizeArtistic_gen.pth"), ("deoldify-stable", "ColorizeStable_gen.pth")):
        spec = get_spec(name)
        assert file in spec.imported.download and "github.com/jantic/DeOldify" in spec.imported.download
        assert "MIT" in spec.licence


def altered(kind: str) -> tuple[dict[str, torch.Tensor], str]:
    state = dict(released_state("deoldify-artistic"))
    key = "layers.5.conv2.3.gamma"
    if kind == "renamed":
        state["layers.5.conv2.3.gamma_"] = state.pop(key)
        return state, r"missing layers\.5\.conv2\.3\.gamma; unexpected layers\.5\.conv2\.3\.gamma_"
    if kind == "missing":
        del state["layers.8.conv.0.weight_g"]
        return state, r"missing layers\.8\.conv\.0\.weight_g"
    state["layers.3.0.0.weight_orig"] = torch.zeros(1024, 512, 1, 1)
    return state, r"layers\.3\.0\.0\.weight_orig has shape \(1024, 512, 1, 1\).*\(1024, 512, 3, 3\)"


@pytest.mark.parametrize("kind", ["renamed", "missing", "misshapen"])
def test_an_altered_checkpoint_is_refused_naming_the_tensor(kind: str, models: Path, tmp_path: Path) -> None:
    state, message = altered(kind)
    with pytest.raises(ModelError, match=message):
        import_checkpoint("deoldify-artistic", save(state, tmp_path / "altered.pth"))
    assert not models.exists() or not any(models.iterdir())


def test_the_stable_checkpoint_is_refused_as_artistic(models: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"missing .*unexpected"):
        import_checkpoint("deoldify-artistic", save(released_state("deoldify-stable"), tmp_path / "stable.pth"))
