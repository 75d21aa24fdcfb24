"""The file form of the networks photochrom trains and ships (lite, damage-lite): a format tag,
the architecture's config and the state dict in float16, written atomically and read back
strictly with `torch.load(weights_only=True)`, so no pickled code runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from restore.models.base import ModelError
from restore.scanio.write import write_atomically

NetT = TypeVar("NetT", bound=nn.Module)


def save_shipped(state_dict: dict[str, torch.Tensor], config: dict[str, object], weights_format: str, path: Path) -> None:
    """Write `{"format", "config", "state_dict"}` to `path`, floating-point tensors as float16."""
    state = {
        k: (v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.detach().cpu()).contiguous()
        for k, v in state_dict.items()
    }
    blob = {"format": weights_format, "config": config, "state_dict": state}
    write_atomically(path, lambda temporary: torch.save(blob, temporary))


def load_shipped(path: Path, weights_format: str, build: Callable[[dict[str, object]], NetT], label: str | None = None) -> NetT:
    """The network `build(config)` makes, with the weights in `path` loaded strictly (every
    tensor present, none left over), in eval mode. A file that is not of `weights_format`
    (named as `label` when it cannot be read at all) or does not fit is a ModelError."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same to the user
        raise ModelError(f"{path}: not a {label or weights_format} weights file ({exc.__class__.__name__})") from exc
    if not isinstance(blob, dict) or blob.get("format") != weights_format:
        raise ModelError(f"{path}: not a {weights_format} weights file")
    net = build(dict(blob["config"]))
    state = {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelError(f"{path}: weights do not fit the architecture (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return net.eval()
