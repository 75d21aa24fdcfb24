"""iColoriT: our implementation against what the official code (github.com/pmh9960/iColoriT)
defines. The official key names and shapes, the relative position index, the 4-channel
input (its `avg_hint` path) and the forward computation are transcribed here from
`modeling.py` independently of restore/models/icolorit.py; synthetic training checkpoints
shaped like `utils.save_model`'s are imported, loaded and run; unsafe or wrong files are
refused and leave nothing installed. Nothing here needs the network."""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from restore.models.base import ModelError, file_sha256
from restore.models.icolorit import SIZES, IColoriT, encode_input, pixel_shuffle, relative_position_index
from restore.models.imported import import_checkpoint, importables
from restore.models.installed import manifest, models_dir, weights_sha256
from restore.models.registry import create_model, get_spec

# name: (embed_dim, depth, num_heads, official factory) as in modeling.py's factories
OFFICIAL = {
    "icolorit-base": (768, 12, 12, "icolorit_base_4ch_patch16_224"),
    "icolorit-small": (384, 12, 6, "icolorit_small_4ch_patch16_224"),
    "icolorit-tiny": (192, 12, 3, "icolorit_tiny_4ch_patch16_224"),
}
WINDOW = 14  # 224 / 16


def official_index(window: int = WINDOW) -> torch.Tensor:
    """Attention.__init__'s relative_position_index, written out pair by pair."""
    n = window * window
    index = np.zeros((n, n), dtype=np.int64)
    for i in range(n):
        yi, xi = divmod(i, window)
        for j in range(n):
            yj, xj = divmod(j, window)
            index[i, j] = (yi - yj + window - 1) * (2 * window - 1) + (xi - xj + window - 1)
    return torch.from_numpy(index)


def official_shapes(dim: int, depth: int, heads: int) -> dict[str, tuple[int, ...]]:
    """The state dict of IColoriT(in_chans=4, patch 16, qkv_bias, use_rpb, head_mode='cnn',
    init_values=0.) as modeling.py builds it: names and shapes."""
    shapes: dict[str, tuple[int, ...]] = {"patch_embed.proj.weight": (dim, 4, 16, 16), "patch_embed.proj.bias": (dim,)}
    for i in range(depth):
        p = f"blocks.{i}."
        shapes |= {
            p + "norm1.weight": (dim,),
            p + "norm1.bias": (dim,),
            p + "attn.q_bias": (dim,),
            p + "attn.v_bias": (dim,),
            p + "attn.rpb_table": ((2 * WINDOW - 1) ** 2, heads),
            p + "attn.relative_position_index": (WINDOW**2, WINDOW**2),
            p + "attn.qkv.weight": (3 * dim, dim),
            p + "attn.proj.weight": (dim, dim),
            p + "attn.proj.bias": (dim,),
            p + "norm2.weight": (dim,),
            p + "norm2.bias": (dim,),
            p + "mlp.fc1.weight": (4 * dim, dim),
            p + "mlp.fc1.bias": (4 * dim,),
            p + "mlp.fc2.weight": (dim, 4 * dim),
            p + "mlp.fc2.bias": (dim,),
        }
    shapes |= {"norm.weight": (dim,), "norm.bias": (dim,), "head.head.weight": (512, dim, 3, 3), "head.head.bias": (512,)}
    return shapes


def official_state(name: str, seed: int = 0) -> OrderedDict[str, torch.Tensor]:
    """Random weights under the official names, scaled so that every part of the network matters."""
    dim, depth, heads, _ = OFFICIAL[name]
    generator = torch.Generator().manual_seed(seed)
    index = official_index()
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, shape in official_shapes(dim, depth, heads).items():
        if key.endswith("relative_position_index"):
            state[key] = index.clone()
        elif key.endswith("rpb_table"):
            state[key] = torch.randn(shape, generator=generator) * 0.5
        elif "norm" in key and key.endswith("weight"):
            state[key] = 1 + 0.1 * torch.randn(shape, generator=generator)
        elif key.endswith("weight"):
            fan_in = math.prod(shape[1:])
            gain = 0.3 if key == "head.head.weight" else 1.0  # keeps tanh mostly out of saturation
            state[key] = torch.randn(shape, generator=generator) * gain / math.sqrt(fan_in)
        else:  # biases, q_bias, v_bias
            state[key] = 0.1 * torch.randn(shape, generator=generator)
    return state


def training_checkpoint(name: str, seed: int = 0, **args: object) -> dict[str, object]:
    """Shaped like utils.save_model's file: model, optimizer, epoch, scaler, args."""
    params = [torch.nn.Parameter(torch.randn(3, 2)), torch.nn.Parameter(torch.randn(2))]
    optimizer = torch.optim.AdamW([{"params": params[:1], "weight_decay": 0.05, "lr_scale": 1.0}, {"params": params[1:], "weight_decay": 0.0, "lr_scale": 1.0}], lr=5e-4, betas=(0.9, 0.95))
    sum(p.sum() for p in params).backward()
    optimizer.step()
    namespace = argparse.Namespace(
        model=OFFICIAL[name][3], use_rpb=True, head_mode="cnn", drop_path=0.0, mask_cent=False, avg_hint=True,
        hint_size=2, input_size=224, num_hint_range=[0, 128], opt_betas=(0.9, 0.95), val_hint_list=[1, 10, 100],
        window_size=(14, 14), patch_size=(16, 16), output_dir="out/icolorit", device="cuda", distributed=False,
        weight_decay_end=None, lr=5e-4,
    )
    for key, value in args.items():
        setattr(namespace, key, value)
    scaler = {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000, "_growth_tracker": 17}
    state = official_state(name, seed)
    # nn.Module.state_dict() attaches per-module versions; they are pickled with the dict
    state._metadata = OrderedDict((prefix, {"version": 1}) for prefix in ["", "patch_embed", "patch_embed.proj", "blocks.0.norm1", "norm", "head.head"])
    return {"model": state, "optimizer": optimizer.state_dict(), "epoch": 3, "scaler": scaler, "args": namespace}


@pytest.fixture()
def models_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PHOTOCHROM_MODELS", str(tmp_path / "models"))
    return tmp_path / "models"


def save(tmp_path: Path, obj: object, filename: str = "checkpoint-best.pth") -> Path:
    path = tmp_path / filename
    torch.save(obj, path)
    return path


def assert_nothing_installed(name: str, home: Path) -> None:
    assert not (home / f"{name}.pt").exists() and not (home / f"{name}.json").exists()
    assert not any(home.glob("*.tmp")) if home.exists() else True
    assert manifest(name) is None and weights_sha256(get_spec(name)) is None
    with pytest.raises(ModelError, match="not installed"):
        create_model(name)


# --- The architecture against modeling.py ------------------------------------------------------


@pytest.mark.parametrize("name", ["icolorit-tiny", "icolorit-small", "icolorit-base"])
def test_every_size_has_exactly_the_official_keys_and_shapes(name: str) -> None:
    dim, depth, heads, _ = OFFICIAL[name]
    expected = official_shapes(dim, depth, heads)
    net = IColoriT(SIZES[name])
    ours = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    norms = [m for m in net.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert len(norms) == 2 * depth + 1 and all(m.eps == 1e-6 for m in norms)  # partial(nn.LayerNorm, eps=1e-6)
    assert ours == expected
    assert len(ours) == 2 + 15 * depth + 4
    assert ours["patch_embed.proj.weight"] == (dim, 4, 16, 16)
    assert ours["blocks.11.attn.rpb_table"] == (729, heads)
    assert ours["blocks.0.attn.relative_position_index"] == (196, 196)
    assert ours["head.head.weight"] == (16 * 16 * 2, dim, 3, 3) and ours["head.head.bias"] == (512,)
    assert "blocks.0.gamma_1" not in ours and "pos_embed" not in ours  # init_values=0.; a fixed table, not state


def test_relative_position_index_is_the_official_one() -> None:
    assert torch.equal(relative_position_index(WINDOW), official_index())
    assert int(official_index().max()) == 728


def official_avg_hint_input(lab_rs: torch.Tensor, no_hint_cells: torch.Tensor) -> torch.Tensor:
    """IColoriT.forward_features up to patch_embed, avg_hint=True, in_chans=4: `lab_rs` is
    utils.rgb2lab's output ((L-50)/100, a/110, b/110), `no_hint_cells` B x 112*112 bool
    (1 = no hint, the hint generators' convention)."""
    b, _, h, w = lab_rs.shape
    hint_size = int(math.sqrt(h * w // no_hint_cells.shape[1]))
    mask = no_hint_cells.reshape(b, h // hint_size, w // hint_size)
    full_mask = F.interpolate(mask[:, None].float(), scale_factor=hint_size)
    avg = F.interpolate(lab_rs, size=(h // hint_size, w // hint_size), mode="bilinear")
    avg[:, 1].masked_fill_(mask, 0)
    avg[:, 2].masked_fill_(mask, 0)
    x_ab = F.interpolate(avg, scale_factor=hint_size, mode="nearest")[:, 1:]
    x = torch.cat((lab_rs[:, :1], x_ab), dim=1)
    return torch.cat((x, 1 - full_mask), dim=1)


def test_input_is_the_official_avg_hint_encoding() -> None:
    generator = torch.Generator().manual_seed(1)
    lightness = torch.rand(2, 224, 224, generator=generator) * 100
    ab = (torch.rand(2, 224, 224, 2, generator=generator) - 0.5) * 160
    no_hint = torch.ones(2, 112, 112, dtype=torch.bool)
    for b, y, x in [(0, 5, 7), (0, 50, 100), (1, 111, 0), (1, 60, 61)]:
        no_hint[b, y, x] = False
    # our interface: the hinted cells' pixels carry their true a*b*, mask 1 there
    pixel_mask = F.interpolate((~no_hint)[:, None].float(), scale_factor=2)[:, 0]
    hint_ab = ab * pixel_mask[..., None]
    ours = encode_input(lightness, hint_ab, pixel_mask)
    lab_rs = torch.cat([((lightness - 50) / 100)[:, None], ab.permute(0, 3, 1, 2) / 110], dim=1)
    official = official_avg_hint_input(lab_rs, no_hint.flatten(1))
    torch.testing.assert_close(ours, official, rtol=0, atol=1e-6)
    assert ours[0, 3, 10, 14] == 1 and ours[0, 3, 10, 16] == 0  # cell (5, 7) is pixels 10-11 x 14-15


def test_a_partly_hinted_cell_gets_its_hinted_pixels_mean() -> None:
    lightness = torch.full((1, 224, 224), 50.0)
    hint_ab = torch.zeros(1, 224, 224, 2)
    mask = torch.zeros(1, 224, 224)
    hint_ab[0, 20, 31] = torch.tensor([33.0, -22.0])
    hint_ab[0, 21, 30] = torch.tensor([11.0, -44.0])
    mask[0, 20, 31] = mask[0, 21, 30] = 1
    x = encode_input(lightness, hint_ab, mask)
    for y, xx in [(20, 30), (20, 31), (21, 30), (21, 31)]:  # the whole 2x2 cell
        torch.testing.assert_close(x[0, 1:3, y, xx] * 110, torch.tensor([22.0, -33.0]))
        assert x[0, 3, y, xx] == 1
    assert x[0, 3].sum() == 4 and x[0, 1:3, 22:, :].abs().sum() == 0


def test_pixel_shuffle_is_the_official_rearrange() -> None:
    tokens = torch.randn(2, 196, 512)
    image = pixel_shuffle(tokens, WINDOW)
    assert image.shape == (2, 224, 224, 2)
    # 'b n (p1 p2 c) -> b n (p1 p2) c', then 'b (h w) (p1 p2) c -> b c (h p1) (w p2)'
    for b, y, x, c in [(0, 0, 0, 0), (0, 0, 1, 1), (1, 17, 3, 0), (1, 223, 223, 1), (0, 100, 37, 1)]:
        n = (y // 16) * 14 + x // 16
        k = ((y % 16) * 16 + x % 16) * 2 + c
        assert image[b, y, x, c] == tokens[b, n, k]


def official_sinusoid(tokens: int, dim: int) -> torch.Tensor:
    table = np.array([[pos / np.power(10000, 2 * (j // 2) / dim) for j in range(dim)] for pos in range(tokens)])
    table[:, 0::2] = np.sin(table[:, 0::2])
    table[:, 1::2] = np.cos(table[:, 1::2])
    return torch.FloatTensor(table)[None]


def official_forward(state: dict[str, torch.Tensor], x: torch.Tensor, heads: int, depth: int) -> torch.Tensor:
    """IColoriT.forward after the input is formed, step by step as modeling.py computes it,
    returning B x 224 x 224 x 2 a*b* / 110 (the rearranges of infer.py)."""
    b = x.shape[0]
    t = F.conv2d(x, state["patch_embed.proj.weight"], state["patch_embed.proj.bias"], stride=16).flatten(2).transpose(1, 2)
    n, c = t.shape[1:]
    t = t + official_sinusoid(n, c)
    for i in range(depth):
        p = f"blocks.{i}."
        h = F.layer_norm(t, (c,), state[p + "norm1.weight"], state[p + "norm1.bias"], eps=1e-6)
        bias = torch.cat((state[p + "attn.q_bias"], torch.zeros_like(state[p + "attn.v_bias"]), state[p + "attn.v_bias"]))
        qkv = F.linear(h, state[p + "attn.qkv.weight"], bias).reshape(b, n, 3, heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * (c // heads) ** -0.5) @ k.transpose(-2, -1)
        table = state[p + "attn.rpb_table"]
        attn = attn + table[state[p + "attn.relative_position_index"].view(-1)].view(n, n, -1).permute(2, 0, 1)
        out = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, -1)
        t = t + F.linear(out, state[p + "attn.proj.weight"], state[p + "attn.proj.bias"])
        h = F.layer_norm(t, (c,), state[p + "norm2.weight"], state[p + "norm2.bias"], eps=1e-6)
        h = F.linear(F.gelu(F.linear(h, state[p + "mlp.fc1.weight"], state[p + "mlp.fc1.bias"])), state[p + "mlp.fc2.weight"], state[p + "mlp.fc2.bias"])
        t = t + h
    t = F.layer_norm(t, (c,), state["norm.weight"], state["norm.bias"], eps=1e-6)
    grid = t.transpose(1, 2).reshape(b, c, WINDOW, WINDOW)
    out = F.conv2d(F.pad(grid, (1, 1, 1, 1), mode="reflect"), state["head.head.weight"], state["head.head.bias"])
    out = torch.tanh(out.flatten(2).transpose(1, 2))  # b (p1 p2) c
    return out.reshape(b, WINDOW, WINDOW, 16, 16, 2).permute(0, 1, 3, 2, 4, 5).reshape(b, 224, 224, 2)


def test_forward_computes_what_the_official_model_computes() -> None:
    name = "icolorit-tiny"
    dim, depth, heads, _ = OFFICIAL[name]
    state = official_state(name, seed=3)
    net = IColoriT(SIZES[name]).eval()
    net.load_state_dict(state, strict=True)
    generator = torch.Generator().manual_seed(4)
    x = torch.cat([torch.rand(2, 1, 224, 224, generator=generator) - 0.5, torch.zeros(2, 3, 224, 224)], dim=1)
    x[:, 1:3, 40:42, 80:82] = torch.tensor([0.4, -0.3])[None, :, None, None]
    x[:, 3, 40:42, 80:82] = 1
    with torch.inference_mode():
        ours = net(x)
        reference = official_forward(state, x, heads, depth)
    assert ours.shape == (2, 224, 224, 2)
    assert reference.std() > 0.1  # the weights are not so small that any network agrees
    torch.testing.assert_close(ours, reference, rtol=0, atol=2e-4)


# --- Importing and running ------------------------------------------------------------------------


def gradient_batch(b: int = 2) -> np.ndarray:
    y, x = np.mgrid[0:224, 0:224].astype(np.float32)
    first = 10 + 80 * x / 223
    second = 50 + 40 * np.sin(y / 20) * (x > 112)
    return np.stack([first, second][:b]).astype(np.float32)


def test_a_tiny_training_checkpoint_imports_loads_and_colorizes(tmp_path: Path, models_home: Path) -> None:
    name = "icolorit-tiny"
    assert {"icolorit-base", "icolorit-small", "icolorit-tiny"} <= set(importables())
    checkpoint = training_checkpoint(name)
    state = checkpoint["model"]
    assert tuple(state["patch_embed.proj.weight"].shape) == (192, 4, 16, 16)
    assert tuple(state["blocks.5.attn.rpb_table"].shape) == (729, 3)
    assert tuple(state["head.head.weight"].shape)[0] == 16 * 16 * 2
    source = save(tmp_path, checkpoint)

    record = import_checkpoint(name, source)
    assert record["tensors"] == len(state) == 186
    assert record["source_sha256"] == file_sha256(source)
    assert (models_home / f"{name}.pt").is_file() and manifest(name) == record

    model = create_model(name)
    spec = get_spec(name)
    assert spec.weights_sha256 is None  # the declaration; what is installed is asked separately
    assert weights_sha256(spec) == record["sha256"] == file_sha256(models_home / f"{name}.pt")
    assert model.spec == dataclasses.replace(spec, weights_sha256=record["sha256"])
    assert spec.input_px == 224 and spec.takes_hints and spec.receptive_field_px == 224 and spec.batch_size == 8
    assert spec.imported and "drive.google.com" in spec.imported.download and "MIT" in spec.licence and "ImageNet" in spec.licence
    for parameter_name, tensor in model.net.state_dict().items():  # the checkpoint's weights, not an init
        assert torch.equal(tensor, state[parameter_name].to(tensor.dtype)), parameter_name

    lightness = gradient_batch()
    no_ab, no_mask = np.zeros((2, 224, 224, 2), np.float32), np.zeros((2, 224, 224), np.float32)
    ab = model.colorize(lightness, no_ab, no_mask)
    assert ab.shape == (2, 224, 224, 2) and ab.dtype == np.float32
    assert np.isfinite(ab).all() and np.abs(ab).max() <= 110.0 + 1e-3 and ab.std() > 1.0

    hint_ab, hint_mask = no_ab.copy(), no_mask.copy()
    hint_ab[0, 100:108, 52:60] = (60.0, 40.0)  # 16 hint cells in one patch
    hint_mask[0, 100:108, 52:60] = 1
    hinted = model.colorize(lightness, hint_ab, hint_mask)
    change = np.abs(hinted - ab).sum(axis=-1)
    near = change[0, 96:112, 48:64].mean()  # the hint's 16 x 16 patch
    far = change[0, 160:, 140:].mean()
    assert near > 1.0 and near > 3 * far
    np.testing.assert_array_equal(hinted[1], ab[1])  # the other image of the batch has no hint


def test_a_plain_or_module_prefixed_state_dict_imports(tmp_path: Path, models_home: Path) -> None:
    state = official_state("icolorit-tiny", seed=5)
    import_checkpoint("icolorit-tiny", save(tmp_path, dict(state), "plain.pth"))
    wrapped = {"model": OrderedDict((f"module.{k}", v) for k, v in state.items()), "epoch": 99}
    record = import_checkpoint("icolorit-tiny", save(tmp_path, wrapped, "ddp.pth"))
    assert record["tensors"] == 186
    stored = torch.load(models_home / "icolorit-tiny.pt", weights_only=True)["state_dict"]
    assert set(stored) == set(state) and torch.equal(stored["norm.bias"], state["norm.bias"])


@pytest.mark.parametrize("name", ["icolorit-small", "icolorit-base"])
def test_small_and_base_import_the_official_shapes(tmp_path: Path, models_home: Path, name: str) -> None:
    record = import_checkpoint(name, save(tmp_path, training_checkpoint(name)))
    assert record["tensors"] == 186 and weights_sha256(get_spec(name)) == record["sha256"]
    assert get_spec(name).batch_size == {"icolorit-small": 4, "icolorit-base": 2}[name]


# --- Refusals ------------------------------------------------------------------------------------


def test_a_missing_key_is_named_and_nothing_is_installed(tmp_path: Path, models_home: Path) -> None:
    checkpoint = training_checkpoint("icolorit-tiny")
    del checkpoint["model"]["blocks.7.attn.rpb_table"]
    with pytest.raises(ModelError, match=r"missing blocks\.7\.attn\.rpb_table"):
        import_checkpoint("icolorit-tiny", save(tmp_path, checkpoint))
    assert_nothing_installed("icolorit-tiny", models_home)


def test_a_renamed_key_is_named_and_nothing_is_installed(tmp_path: Path, models_home: Path) -> None:
    checkpoint = training_checkpoint("icolorit-tiny")
    checkpoint["model"]["head.weight"] = checkpoint["model"].pop("head.head.weight")  # a linear head's name
    with pytest.raises(ModelError, match=r"missing head\.head\.weight; unexpected head\.weight"):
        import_checkpoint("icolorit-tiny", save(tmp_path, checkpoint))
    assert_nothing_installed("icolorit-tiny", models_home)


def test_a_wrong_shape_or_another_size_is_refused(tmp_path: Path, models_home: Path) -> None:
    checkpoint = training_checkpoint("icolorit-tiny")
    checkpoint["model"]["patch_embed.proj.weight"] = torch.zeros(192, 3, 16, 16)  # a 3-channel model
    with pytest.raises(ModelError, match=r"patch_embed\.proj\.weight has shape \(192, 3, 16, 16\)"):
        import_checkpoint("icolorit-tiny", save(tmp_path, checkpoint))
    small = training_checkpoint("icolorit-small")
    with pytest.raises(ModelError, match="icolorit_small_4ch_patch16_224"):
        import_checkpoint("icolorit-tiny", save(tmp_path, small, "small.pth"))
    del small["args"]
    with pytest.raises(ModelError, match="has shape"):
        import_checkpoint("icolorit-tiny", save(tmp_path, small, "small-no-args.pth"))
    assert_nothing_installed("icolorit-tiny", models_home)


@pytest.mark.parametrize("option", [{"mask_cent": True}, {"head_mode": "locattn"}, {"avg_hint": False}, {"use_rpb": False}])
def test_a_checkpoint_trained_with_other_options_is_refused(tmp_path: Path, models_home: Path, option: dict[str, object]) -> None:
    key = next(iter(option))
    with pytest.raises(ModelError, match=f"trained with {key}="):
        import_checkpoint("icolorit-tiny", save(tmp_path, training_checkpoint("icolorit-tiny", **option)))
    assert_nothing_installed("icolorit-tiny", models_home)


def test_a_tampered_position_index_is_refused(tmp_path: Path, models_home: Path) -> None:
    checkpoint = training_checkpoint("icolorit-tiny")
    checkpoint["model"]["blocks.2.attn.relative_position_index"] = checkpoint["model"]["blocks.2.attn.relative_position_index"].flip(0)
    with pytest.raises(ModelError, match=r"blocks\.2\.attn\.relative_position_index"):
        import_checkpoint("icolorit-tiny", save(tmp_path, checkpoint))
    assert_nothing_installed("icolorit-tiny", models_home)


def _trip(marker: str) -> OrderedDict:
    Path(marker).write_text("pickled code ran")
    return OrderedDict()


class TrappedStateDict(OrderedDict):
    """Unpickling it calls _trip, which leaves a file behind: proof that code ran."""

    marker = ""

    def __reduce__(self):  # noqa: ANN204
        return (_trip, (self.marker,))


class PlainSubclass(OrderedDict):
    pass


def test_disallowed_classes_and_random_bytes_are_refused_without_running(tmp_path: Path, models_home: Path) -> None:
    name = "icolorit-tiny"
    marker = tmp_path / "tripped"
    trapped = TrappedStateDict()
    trapped.marker = str(marker)
    checkpoint = training_checkpoint(name)
    checkpoint["model"] = trapped
    with pytest.raises(ModelError, match="not a checkpoint that can be read safely"):
        import_checkpoint(name, save(tmp_path, checkpoint, "trap.pth"))
    assert not marker.exists()

    checkpoint = training_checkpoint(name)
    checkpoint["model"] = PlainSubclass(checkpoint["model"])
    with pytest.raises(ModelError, match="not a checkpoint that can be read safely"):
        import_checkpoint(name, save(tmp_path, checkpoint, "subclass.pth"))

    with pytest.raises(ModelError, match="not a checkpoint that can be read safely"):
        import_checkpoint(name, save(tmp_path, training_checkpoint(name, output_dir=Path("/runs/x")), "path.pth"))

    noise = tmp_path / "noise.pth"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ModelError, match="not a checkpoint that can be read safely"):
        import_checkpoint(name, noise)

    with pytest.raises(ModelError, match="no 'model' entry and not a state dict"):
        import_checkpoint(name, save(tmp_path, {"epoch": 3, "weights": [1, 2]}, "other.pth"))
    assert_nothing_installed(name, models_home)


def test_a_refused_import_keeps_the_installed_weights(tmp_path: Path, models_home: Path) -> None:
    name = "icolorit-tiny"
    record = import_checkpoint(name, save(tmp_path, training_checkpoint(name)))
    broken = training_checkpoint(name, seed=1)
    del broken["model"]["norm.weight"]
    with pytest.raises(ModelError, match=r"missing norm\.weight"):
        import_checkpoint(name, save(tmp_path, broken, "broken.pth"))
    assert manifest(name) == record and file_sha256(models_home / f"{name}.pt") == record["sha256"]
    assert create_model(name).spec.weights_sha256 == record["sha256"]
    assert models_dir() == models_home
