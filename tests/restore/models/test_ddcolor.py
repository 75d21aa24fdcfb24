"""DDColor: our implementation against the official code (github.com/piddnad/DDColor at
2adb63f, `ddcolor/model.py` built as `ddcolor/pipeline.py`'s `build_ddcolor_model` builds it
for the released checkpoints), through fixtures made from the official code in a scratch
folder outside this repository:

- fixtures/ddcolor_layouts.json: the official state dict's key names and shapes for
  ConvNeXt-L (`ddcolor`) and ConvNeXt-T (`ddcolor-tiny`).
- fixtures/ddcolor_tiny.npz: a fixed 64 x 64 gray image (uint8), the input the official
  `ColorizationPipeline.process` gave the network for it (input_size 64), and the official
  network's a*b* output, with ConvNeXt-T weights made by `random_official_state` below from
  the recorded seed and std (the recipe text is stored with them).

The weights are rebuilt here in the official layout, saved as the released files are
({'params': state_dict}) and as a plain state dict, imported through
`photochrom models import`'s path, and run by our model. Nothing here needs the network.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from restore.models.base import ModelError
from restore.models.ddcolor import SIZES, SPECS, DDColor, DDColorColorizer, gray_input
from restore.models.imported import import_checkpoint
from restore.models.installed import models_dir
from restore.models.registry import get_spec
from restore.models.torch_colour import rgb_to_lab

FIXTURES = Path(__file__).parent / "fixtures"
LAYOUTS = json.loads((FIXTURES / "ddcolor_layouts.json").read_text())["layouts"]
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def random_official_state(
    shapes: dict[str, list[int]], seed: int, std: float
) -> dict[str, torch.Tensor]:
    """The fixture's weights (the recipe stored in ddcolor_tiny.npz): keys in sorted order,
    each from torch.Generator().manual_seed(seed * 100000 + index)."""
    state: dict[str, torch.Tensor] = {}
    for index, key in enumerate(sorted(shapes)):
        shape = tuple(shapes[key])
        g = torch.Generator().manual_seed(seed * 100000 + index)
        leaf = key.rsplit(".", 1)[-1]
        if key in IMAGENET:
            t = torch.tensor(IMAGENET[key]).view(1, 3, 1, 1)
        elif leaf == "num_batches_tracked":
            t = torch.tensor(0, dtype=torch.long)
        elif leaf == "running_mean":
            t = 0.1 * torch.randn(shape, generator=g)
        elif leaf == "running_var":
            t = 0.5 + torch.rand(shape, generator=g)
        elif leaf in ("weight_u", "weight_v"):
            t = F.normalize(torch.randn(shape, generator=g), dim=0)
        elif len(shape) == 1 and leaf in ("weight", "gamma"):
            t = 1 + 0.1 * torch.randn(shape, generator=g)
        elif len(shape) == 1 and leaf.endswith("bias"):
            t = 0.1 * torch.randn(shape, generator=g)
        else:
            fan_in = math.prod(shape) // shape[0]
            t = torch.randn(shape, generator=g) * (std / math.sqrt(fan_in))
        state[key] = t
    for key in [k for k in state if k.endswith(".weight_u")]:  # sigma = |W v| > 0
        base = key[: -len("weight_u")]
        w = state[base + "weight_orig"]
        state[key] = F.normalize(
            w.reshape(w.shape[0], -1) @ state[base + "weight_v"], dim=0
        )
    return state


@pytest.fixture(scope="module")
def fixture() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "ddcolor_tiny.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def official_state(fixture: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return random_official_state(
        dict(LAYOUTS["ddcolor-tiny"]), int(fixture["seed"]), float(fixture["std"])
    )


@pytest.fixture()
def models_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PHOTOCHROM_MODELS", str(tmp_path / "models"))
    return tmp_path / "models"


def save(tmp_path: Path, obj: object, filename: str) -> Path:
    path = tmp_path / filename
    torch.save(obj, path)
    return path


def colorizer_at(px: int) -> DDColorColorizer:
    """The installed ddcolor-tiny behind the Colorizer interface, at a small input size."""
    return DDColorColorizer(
        dataclasses.replace(SPECS["ddcolor-tiny"], input_px=px), SIZES["ddcolor-tiny"]
    )


@pytest.mark.parametrize("name", ["ddcolor", "ddcolor-tiny"])
def test_keys_and_shapes_are_the_official_ones(name: str) -> None:
    ours = [[k, list(v.shape)] for k, v in DDColor(SIZES[name]).state_dict().items()]
    assert sorted(ours) == sorted(LAYOUTS[name])
    assert len(ours) == len(LAYOUTS[name])


def test_registered_as_automatic_global_models() -> None:
    for name in ("ddcolor", "ddcolor-tiny"):
        spec = get_spec(name)
        assert (
            spec.input_px == 512
            and spec.receptive_field_px == 512
            and not spec.takes_hints
        )
        assert (
            spec.imported is not None
            and "huggingface.co/piddnad" in spec.imported.download
        )


@pytest.fixture(scope="module")
def installed(
    tmp_path_factory: pytest.TempPathFactory, official_state: dict[str, torch.Tensor]
):
    """The fixture's weights saved as the released files are ({'params': ...}) and imported;
    yields the import record while PHOTOCHROM_MODELS points at where they were installed."""
    tmp_path = tmp_path_factory.mktemp("ddcolor")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PHOTOCHROM_MODELS", str(tmp_path / "models"))
        yield import_checkpoint(
            "ddcolor-tiny",
            save(tmp_path, {"params": official_state}, "ddcolor_paper_tiny.pth"),
        )


@pytest.fixture(scope="module")
def model(
    installed: dict[str, object], fixture: dict[str, np.ndarray]
) -> DDColorColorizer:
    return colorizer_at(int(fixture["size"]))


def test_imported_fixture_weights_compute_the_official_output(
    installed: dict[str, object],
    model: DDColorColorizer,
    fixture: dict[str, np.ndarray],
) -> None:
    assert installed["tensors"] == len(LAYOUTS["ddcolor-tiny"])
    expected = fixture["output_ab"]
    with torch.inference_mode():
        out = model.net(torch.from_numpy(fixture["model_input"])).numpy()
    assert np.abs(expected).max() > 5  # a real signal, not near zero
    np.testing.assert_allclose(
        out, expected, rtol=0, atol=2e-4 * np.abs(expected).max()
    )  # observed 1e-6 of it

    # End to end from L*: our gray input is the exact gray of that lightness, the official one
    # goes through OpenCV's float Lab conversion (within 0.5 / 255 of it), which the random
    # weights amplify to about 2 % of the output's range.
    gray = (
        torch.from_numpy(fixture["gray_uint8"]).float()[None, None].expand(1, 3, -1, -1)
        / 255
    )
    l_bhw = rgb_to_lab(gray)[:, 0].numpy().astype(np.float32)
    np.testing.assert_allclose(
        gray_input(torch.from_numpy(l_bhw)).numpy(), fixture["model_input"], atol=2.5e-3
    )
    ab = model.colorize(
        l_bhw,
        np.zeros(l_bhw.shape + (2,), np.float32),
        np.zeros(l_bhw.shape, np.float32),
    )
    assert ab.shape == l_bhw.shape + (2,) and ab.dtype == np.float32
    np.testing.assert_allclose(
        ab, expected.transpose(0, 2, 3, 1), atol=0.03 * np.abs(expected).max()
    )  # observed 0.018


def test_output_is_clamped_to_what_lab_holds(model: DDColorColorizer) -> None:
    bias = model.net.refine_net[0][0].bias
    kept = bias.detach().clone()
    px = model.spec.input_px
    try:
        with torch.no_grad():
            bias.copy_(torch.tensor([400.0, -400.0]))
        l_bhw = np.full((1, px, px), 50.0, np.float32)
        ab = model.colorize(
            l_bhw,
            np.zeros((1, px, px, 2), np.float32),
            np.zeros((1, px, px), np.float32),
        )
    finally:
        with torch.no_grad():
            bias.copy_(kept)
    assert ab[..., 0].min() == 127.0 and ab[..., 1].max() == -128.0


def test_a_plain_state_dict_imports_too(
    tmp_path: Path, models_home: Path, official_state: dict[str, torch.Tensor]
) -> None:
    record = import_checkpoint(
        "ddcolor-tiny", save(tmp_path, dict(official_state), "plain.pth")
    )
    assert record["tensors"] == len(LAYOUTS["ddcolor-tiny"])
    stored = torch.load(models_dir() / "ddcolor-tiny.pt", weights_only=True)[
        "state_dict"
    ]
    assert all(torch.equal(stored[k], v) for k, v in official_state.items())


def _renamed(state: dict[str, torch.Tensor], key: str) -> dict[str, torch.Tensor]:
    out = dict(state)
    out[key.replace("weight_orig", "weight")] = out.pop(key)
    return out


def _missing(state: dict[str, torch.Tensor], key: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k != key}


def _misshapen(state: dict[str, torch.Tensor], key: str) -> dict[str, torch.Tensor]:
    out = dict(state)
    out[key] = out[key][:-1]
    return out


@pytest.mark.parametrize(
    ("damage", "key", "named"),
    [
        (
            _renamed,
            "decoder.layers.1.conv.0.weight_orig",
            "decoder.layers.1.conv.0.weight",
        ),
        (
            _missing,
            "decoder.color_decoder.query_feat.weight",
            "decoder.color_decoder.query_feat.weight",
        ),
        (_missing, "refine_net.0.0.weight_v", "refine_net.0.0.weight_v"),
        (
            _misshapen,
            "encoder.arch.stages.2.4.pwconv1.weight",
            "encoder.arch.stages.2.4.pwconv1.weight",
        ),
    ],
)
def test_a_damaged_checkpoint_is_refused_naming_the_tensor(
    tmp_path: Path,
    models_home: Path,
    official_state: dict[str, torch.Tensor],
    damage,
    key: str,
    named: str,
) -> None:
    with pytest.raises(ModelError, match=named.replace(".", r"\.")):
        import_checkpoint(
            "ddcolor-tiny",
            save(tmp_path, {"params": damage(official_state, key)}, "damaged.pth"),
        )
    assert not (models_dir() / "ddcolor-tiny.pt").exists()


def test_files_that_hold_no_state_dict_are_refused(
    tmp_path: Path, models_home: Path
) -> None:
    for n, obj in enumerate([{"params": [1, 2]}, {"a": 1}, [torch.zeros(1)]]):
        with pytest.raises(ModelError, match="not a ddcolor-tiny checkpoint"):
            import_checkpoint("ddcolor-tiny", save(tmp_path, obj, f"other{n}.pth"))
    assert not (models_dir() / "ddcolor-tiny.pt").exists()
