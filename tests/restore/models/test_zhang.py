"""Zhang et al.'s eccv16 and siggraph17: our architectures hold exactly the official
checkpoints' tensors (key names and shapes written out here from the official
colorizers/eccv16.py and colorizers/siggraph17.py), import through `photochrom models
import`'s path, are refused with clear messages when a file does not fit, normalise their
inputs as base_color.py does, and colorize through the Colorizer interface. Synthetic
weights only: nothing is downloaded."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from restore.models.base import ModelError, file_sha256
from restore.models.imported import import_checkpoint
from restore.models.installed import models_dir, weights_sha256
from restore.models.registry import create_model, get_spec
from restore.models.zhang import ECCV16_URL, SIGGRAPH17_URL, ECCV16Net, SIGGRAPH17Net

S = 256

# ---- the official layouts, key -> shape, from github.com/richzhang/colorization ----


def _conv(prefix: str, c_in: int, c_out: int, k: int = 3, bias: bool = True) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (c_out, c_in, k, k), **({f"{prefix}.bias": (c_out,)} if bias else {})}


def _deconv(prefix: str, c_in: int, c_out: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (c_in, c_out, 4, 4), f"{prefix}.bias": (c_out,)}  # ConvTranspose2d: in x out


def _bn(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.{n}": (c,) for n in ("weight", "bias", "running_mean", "running_var")} | {f"{prefix}.num_batches_tracked": ()}


def _encoder(in_channels: int) -> dict[str, tuple[int, ...]]:
    """model1-model7: conv, ReLU, conv, ReLU, [conv, ReLU,] BatchNorm; same in both files."""
    keys = _conv("model1.0", in_channels, 64) | _conv("model1.2", 64, 64) | _bn("model1.4", 64)
    keys |= _conv("model2.0", 64, 128) | _conv("model2.2", 128, 128) | _bn("model2.4", 128)
    keys |= _conv("model3.0", 128, 256) | _conv("model3.2", 256, 256) | _conv("model3.4", 256, 256) | _bn("model3.6", 256)
    keys |= _conv("model4.0", 256, 512) | _conv("model4.2", 512, 512) | _conv("model4.4", 512, 512) | _bn("model4.6", 512)
    for block in ("model5", "model6", "model7"):
        keys |= _conv(f"{block}.0", 512, 512) | _conv(f"{block}.2", 512, 512) | _conv(f"{block}.4", 512, 512) | _bn(f"{block}.6", 512)
    return keys


OFFICIAL_ECCV16 = (
    _encoder(1)
    | _deconv("model8.0", 512, 256)
    | _conv("model8.2", 256, 256)
    | _conv("model8.4", 256, 256)
    | _conv("model8.6", 256, 313, k=1)
    | _conv("model_out", 313, 2, k=1, bias=False)
)
OFFICIAL_SIGGRAPH17 = (
    _encoder(4)
    | _deconv("model8up.0", 512, 256)
    | _conv("model3short8.0", 256, 256)
    | _conv("model8.1", 256, 256)  # model8 = ReLU, conv, ReLU, conv, ReLU, BatchNorm
    | _conv("model8.3", 256, 256)
    | _bn("model8.5", 256)
    | _deconv("model9up.0", 256, 128)
    | _conv("model2short9.0", 128, 128)
    | _conv("model9.1", 128, 128)  # model9 = ReLU, conv, ReLU, BatchNorm
    | _bn("model9.3", 128)
    | _deconv("model10up.0", 128, 128)
    | _conv("model1short10.0", 64, 128)
    | _conv("model10.1", 128, 128)  # model10 = ReLU, conv, LeakyReLU(0.2)
    | _conv("model_class.0", 256, 529, k=1)
    | _conv("model_out.0", 128, 2, k=1)  # then Tanh
)
OFFICIAL = {"eccv16": OFFICIAL_ECCV16, "siggraph17": OFFICIAL_SIGGRAPH17}
NETS = {"eccv16": ECCV16Net, "siggraph17": SIGGRAPH17Net}


def official_checkpoint(name: str, seed: int = 0) -> OrderedDict[str, torch.Tensor]:
    """A state dict laid out as the official file, with random weights of sane scale."""
    generator = torch.Generator().manual_seed(seed)
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, shape in OFFICIAL[name].items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0, dtype=torch.long)
        elif key == "model_out.weight":  # eccv16: the 313 bins' a*b* / 110, all within -1..1
            state[key] = torch.rand(shape, generator=generator) * 2 - 1
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        elif len(shape) == 4:
            transposed = key == "model8.0.weight" or "up.0." in key  # ConvTranspose2d: in x out x k x k
            fan_in = shape[0 if transposed else 1] * shape[2] * shape[3]
            state[key] = torch.randn(shape, generator=generator) * (2.0 / fan_in) ** 0.5
        elif key.endswith(".weight"):  # BatchNorm scale
            state[key] = 1 + 0.1 * torch.randn(shape, generator=generator)
        else:
            state[key] = 0.1 * torch.randn(shape, generator=generator)
    return state


def save(state: object, path: Path) -> Path:
    torch.save(state, path)
    return path


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    monkeypatch.setenv("PHOTOCHROM_MODELS", str(folder))
    return folder


def installed(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def batch(b: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:S, 0:S]
    l_bhw = np.stack([(20 + 60 * x / S + 15 * (y > S // 2) + rng.normal(0, 2, (S, S))) for _ in range(b)]).astype(np.float32)
    return l_bhw, np.zeros((b, S, S, 2), np.float32), np.zeros((b, S, S), np.float32)


# ---- layout ----


def test_the_official_layouts_are_what_the_official_code_builds() -> None:
    eccv16, siggraph17 = OFFICIAL_ECCV16, OFFICIAL_SIGGRAPH17
    assert eccv16["model1.0.weight"] == (64, 1, 3, 3)  # L* only
    assert eccv16["model1.4.running_var"] == (64,)  # BatchNorm after conv, ReLU, conv, ReLU
    assert eccv16["model8.0.weight"] == (512, 256, 4, 4)  # ConvTranspose2d(512, 256)
    assert eccv16["model8.6.weight"] == (313, 256, 1, 1) and eccv16["model8.6.bias"] == (313,)
    assert eccv16["model_out.weight"] == (2, 313, 1, 1) and "model_out.bias" not in eccv16
    assert len(eccv16) == 82
    assert siggraph17["model1.0.weight"] == (64, 4, 3, 3)  # L*, a*, b*, mask
    assert siggraph17["model8.1.weight"] == (256, 256, 3, 3) and siggraph17["model8.5.running_mean"] == (256,)
    assert siggraph17["model1short10.0.weight"] == (128, 64, 3, 3)
    assert siggraph17["model10up.0.weight"] == (128, 128, 4, 4)
    assert siggraph17["model_class.0.weight"] == (529, 256, 1, 1)
    assert siggraph17["model_out.0.weight"] == (2, 128, 1, 1) and siggraph17["model_out.0.bias"] == (2,)
    assert "model10.1.weight" in siggraph17 and "model10.0.weight" not in siggraph17
    assert len(siggraph17) == 107
    for name, net_class in NETS.items():
        ours = {k: tuple(v.shape) for k, v in net_class().state_dict().items()}
        assert ours == OFFICIAL[name], name


def _layers(sequential: torch.nn.Sequential) -> list[str]:
    return [f"LeakyReLU({m.negative_slope})" if isinstance(m, torch.nn.LeakyReLU) else type(m).__name__ for m in sequential]


def test_layer_order_strides_and_dilations_are_the_official_ones() -> None:
    eccv16, siggraph17 = ECCV16Net(), SIGGRAPH17Net()
    for net in (eccv16, siggraph17):
        assert _layers(net.model1) == ["Conv2d", "ReLU", "Conv2d", "ReLU", "BatchNorm2d"]
        assert _layers(net.model7) == ["Conv2d", "ReLU"] * 3 + ["BatchNorm2d"]
    assert _layers(eccv16.model8) == ["ConvTranspose2d", "ReLU", "Conv2d", "ReLU", "Conv2d", "ReLU", "Conv2d"]
    assert _layers(siggraph17.model8) == ["ReLU", "Conv2d", "ReLU", "Conv2d", "ReLU", "BatchNorm2d"]
    assert _layers(siggraph17.model9) == ["ReLU", "Conv2d", "ReLU", "BatchNorm2d"]
    assert _layers(siggraph17.model10) == ["ReLU", "Conv2d", "LeakyReLU(0.2)"]
    assert _layers(siggraph17.model_out) == ["Conv2d", "Tanh"]
    for block in ("model1", "model2", "model3"):
        strides = [m.stride for m in getattr(eccv16, block) if isinstance(m, torch.nn.Conv2d)]
        assert strides[-1] == (2, 2) and set(strides[:-1]) == {(1, 1)}  # eccv16: the last conv subsamples
        assert all(m.stride == (1, 1) for m in getattr(siggraph17, block) if isinstance(m, torch.nn.Conv2d))  # siggraph17: [::2]
    for net in (eccv16, siggraph17):
        for block in ("model5", "model6"):
            convs = [m for m in getattr(net, block) if isinstance(m, torch.nn.Conv2d)]
            assert [(c.dilation, c.padding) for c in convs] == [((2, 2), (2, 2))] * 3
        assert all(m.dilation == (1, 1) for b in ("model4", "model7") for m in getattr(net, b) if isinstance(m, torch.nn.Conv2d))
    x = torch.zeros(1, 1, 64, 64)
    with torch.no_grad():
        assert eccv16.eval()(x).shape == (1, 2, 64, 64)
        assert siggraph17.eval()(x).shape == (1, 2, 64, 64)


# ---- normalisation and output heads ----


def _first_layer_input(net: torch.nn.Module, *args: torch.Tensor) -> torch.Tensor:
    seen: list[torch.Tensor] = []
    handle = net.model1[0].register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].clone()))
    with torch.no_grad():
        net.eval()(*args)
    handle.remove()
    return seen[0]


def test_inputs_are_normalised_as_base_color_does() -> None:
    torch.manual_seed(0)
    l = torch.rand(1, 1, 32, 32) * 100
    assert torch.allclose(_first_layer_input(ECCV16Net(), l), (l - 50) / 100)
    ab = torch.rand(1, 2, 32, 32) * 200 - 100
    mask = (torch.rand(1, 1, 32, 32) > 0.9).float()
    seen = _first_layer_input(SIGGRAPH17Net(), l, ab * mask, mask)
    assert torch.allclose(seen[:, :1], (l - 50) / 100)
    assert torch.allclose(seen[:, 1:3], ab * mask / 110)
    assert torch.equal(seen[:, 3:], mask)  # the mask as it is: 1 hinted, 0 not (not centred)
    assert torch.equal(_first_layer_input(SIGGRAPH17Net(), l)[:, 1:], torch.zeros(1, 3, 32, 32))  # no hints: zeros


def test_eccv16_output_is_the_softmax_expectation_of_model_out_times_110() -> None:
    net = ECCV16Net().eval()
    bins = torch.rand(2, 313) * 2 - 1
    with torch.no_grad():
        net.model_out.weight.copy_(bins[..., None, None])
        net.model8[6].weight.zero_()
        net.model8[6].bias.fill_(-30.0)
        net.model8[6].bias[17] = 30.0  # every pixel certain of bin 17
        ab = net(torch.full((1, 1, 64, 64), 40.0))
    assert ab.shape == (1, 2, 64, 64)
    assert torch.allclose(ab, (bins[:, 17] * 110).view(1, 2, 1, 1).expand_as(ab), atol=1e-3)
    with torch.no_grad():
        net.model8[6].bias.zero_()  # uniform over the bins: their mean
        ab = net(torch.full((1, 1, 64, 64), 40.0))
    assert torch.allclose(ab, (bins.mean(dim=1) * 110).view(1, 2, 1, 1).expand_as(ab), atol=1e-3)


def test_siggraph17_output_is_tanh_times_110() -> None:
    net = SIGGRAPH17Net().eval()
    with torch.no_grad():
        net.model_out[0].weight.zero_()
        net.model_out[0].bias.copy_(torch.tensor([100.0, -0.5]))
        ab = net(torch.full((1, 1, 32, 32), 40.0))
    assert torch.allclose(ab[0, 0], torch.full((32, 32), 110.0)) and torch.allclose(ab[0, 1], torch.full((32, 32), 110 * np.tanh(-0.5)))


def test_each_output_pixel_sees_the_whole_input_as_receptive_field_says(models: Path) -> None:
    net = ECCV16Net().eval()
    l = torch.full((2, 1, S, S), 50.0)
    l[1, :, :8, :8] = 90.0  # the second image differs only in its top-left corner
    with torch.no_grad():
        ab = net(l)
    assert (ab[0, :, S // 2, S // 2] - ab[1, :, S // 2, S // 2]).abs().max() > 0  # the centre sees the corner
    assert get_spec("eccv16").receptive_field_px >= S and get_spec("eccv16").overlap_px == S // 4


# ---- import, install, colorize ----


@pytest.mark.parametrize("name", ["eccv16", "siggraph17"])
def test_an_official_checkpoint_imports_and_colorizes_following_hints_if_it_takes_them(name: str, models: Path, tmp_path: Path) -> None:
    assert weights_sha256(get_spec(name)) is None
    source = save(official_checkpoint(name), tmp_path / "official.pth")
    record = import_checkpoint(name, source)
    assert installed(models) == [f"{name}.json", f"{name}.pt"]
    assert record["sha256"] == file_sha256(models / f"{name}.pt") and record["tensors"] == len(OFFICIAL[name])
    assert record["source_sha256"] == file_sha256(source)
    model = create_model(name)
    assert model.spec.weights_sha256 == record["sha256"] == weights_sha256(get_spec(name))
    assert model.spec.input_px == S and model.spec.batch_size == 4 and model.spec.takes_hints == (name == "siggraph17")
    for key, tensor in official_checkpoint(name).items():  # the weights are the file's, tensor for tensor
        assert torch.equal(model.net.state_dict()[key], tensor), key
    l_bhw, hint_ab, hint_mask = batch(2)
    l_bhw[1] = l_bhw[0]  # the same photo twice: without, then with a hint
    hint_ab[1, 100:108, 60:68] = (60.0, -40.0)
    hint_mask[1, 100:108, 60:68] = 1.0
    ab = model.colorize(l_bhw, hint_ab, hint_mask)
    assert ab.shape == (2, S, S, 2) and ab.dtype == np.float32
    assert np.isfinite(ab).all() and np.abs(ab).max() <= 128 and ab.std() > 0
    if model.spec.takes_hints:  # siggraph17 follows the hint (random weights: it changes the output)
        assert np.abs(ab[1] - ab[0]).max() > 1e-3
    else:  # eccv16 takes none
        np.testing.assert_array_equal(ab[1], ab[0])


@pytest.mark.parametrize("wrap", ["state_dict", "model", "pre-0.4.1"])
def test_wrapped_or_old_checkpoints_import(wrap: str, models: Path, tmp_path: Path) -> None:
    state = official_checkpoint("eccv16")
    if wrap == "pre-0.4.1":  # files saved before BatchNorm counted its batches
        checkpoint: object = OrderedDict((k, v) for k, v in state.items() if not k.endswith("num_batches_tracked"))
    else:
        checkpoint = {wrap: state, "epoch": 3}
    record = import_checkpoint("eccv16", save(checkpoint, tmp_path / "wrapped.pth"))
    assert record["tensors"] == len(OFFICIAL_ECCV16)
    assert torch.equal(create_model("eccv16").net.model_out.weight, state["model_out.weight"])


def test_a_missing_tensor_is_named_and_nothing_is_installed(models: Path, tmp_path: Path) -> None:
    state = official_checkpoint("siggraph17")
    del state["model_class.0.weight"]
    with pytest.raises(ModelError, match=r"missing model_class\.0\.weight"):
        import_checkpoint("siggraph17", save(state, tmp_path / "missing.pth"))
    assert installed(models) == []


def test_a_renamed_tensor_is_named_both_ways(models: Path, tmp_path: Path) -> None:
    state = official_checkpoint("eccv16")
    state["model_out.0.weight"] = state.pop("model_out.weight")  # siggraph17's naming
    with pytest.raises(ModelError, match=r"missing model_out\.weight; unexpected model_out\.0\.weight"):
        import_checkpoint("eccv16", save(state, tmp_path / "renamed.pth"))
    assert installed(models) == []


def test_a_tensor_of_the_wrong_shape_is_named(models: Path, tmp_path: Path) -> None:
    state = official_checkpoint("eccv16")
    state["model1.0.weight"] = torch.zeros(64, 3, 3, 3)  # an RGB network's first layer
    with pytest.raises(ModelError, match=r"model1\.0\.weight has shape \(64, 3, 3, 3\).*\(64, 1, 3, 3\)"):
        import_checkpoint("eccv16", save(state, tmp_path / "rgb.pth"))
    assert installed(models) == []


def test_the_other_networks_checkpoint_is_refused(models: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"do not match the architecture: missing model8\.0\.weight.*unexpected model8up\.0\.weight"):
        import_checkpoint("eccv16", save(official_checkpoint("siggraph17"), tmp_path / "siggraph17.pth"))
    with pytest.raises(ModelError, match=r"missing model8up\.0\.weight.*unexpected model8\.0\.weight"):
        import_checkpoint("siggraph17", save(official_checkpoint("eccv16"), tmp_path / "eccv16.pth"))
    assert installed(models) == []


def test_a_file_that_is_not_a_checkpoint_is_refused(models: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelError, match=r"junk\.pth: not a checkpoint that can be read safely"):
        import_checkpoint("eccv16", junk)
    with pytest.raises(ModelError, match=r"not a siggraph17 checkpoint .*Tensor, not a state dict"):
        import_checkpoint("siggraph17", save(torch.zeros(3), tmp_path / "tensor.pth"))
    assert installed(models) == []


def test_a_failed_import_leaves_the_installed_weights_alone(models: Path, tmp_path: Path) -> None:
    record = import_checkpoint("eccv16", save(official_checkpoint("eccv16"), tmp_path / "good.pth"))
    with pytest.raises(ModelError):
        import_checkpoint("eccv16", save(official_checkpoint("siggraph17"), tmp_path / "bad.pth"))
    assert file_sha256(models / "eccv16.pt") == record["sha256"]
    assert create_model("eccv16").spec.weights_sha256 == record["sha256"]


def test_not_installed_says_where_to_download_and_how_to_import(models: Path) -> None:
    for name, url in (("eccv16", ECCV16_URL), ("siggraph17", SIGGRAPH17_URL)):
        with pytest.raises(ModelError) as caught:
            create_model(name)
        message = str(caught.value)
        assert url in message and f"photochrom models import {name}" in message
        assert "github.com/richzhang/colorization" in get_spec(name).imported.download
    assert models_dir() == models and installed(models) == []


# ---- hints ----


def test_siggraph17_reads_no_colour_where_the_mask_is_0() -> None:
    net = SIGGRAPH17Net().eval()
    l = torch.rand(1, 1, 32, 32) * 100
    stray, mask = torch.zeros(1, 2, 32, 32), torch.zeros(1, 1, 32, 32)
    stray[..., 4:12, 4:12] = 80.0  # a*b* without a mask: no hint, whatever the values
    with torch.no_grad():
        torch.testing.assert_close(net(l, stray, mask), net(l))
