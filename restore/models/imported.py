"""Published checkpoints that users download themselves: importing, storing and loading them
(a colorization model's, or an instance detector's: restore/models/maskrcnn.py).

`photochrom models import NAME FILE` reads FILE without running pickled code beyond the
classes the adapter allows (`torch.load(weights_only=True)`, plus e.g. argparse.Namespace
for iColoriT's training checkpoints), takes the model's weights out of it (a training
checkpoint also holds optimizer state and arguments), loads them strictly into our own
implementation of the architecture (every tensor present with its shape, none left over),
and stores them as `<models dir>/<NAME>.pt` with a manifest `<NAME>.json` holding that
file's SHA-256, which is checked on every load.

The models dir is $PHOTOCHROM_MODELS, else $XDG_DATA_HOME/photochrom/models, else
~/.local/share/photochrom/models (Dask workers inherit the environment).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import torch
from torch import nn

from restore.scanio.files import file_sha256
from restore.models.base import ModelError, ModelSpec, check_sha256
from restore.scanio.write import write_atomically

if TYPE_CHECKING:
    from restore.models.detectors import DetectorSpec

MODELS_ENV = "PHOTOCHROM_MODELS"
STORED_FORMAT = "photochrom-import/1"


@dataclass(frozen=True)
class Importable:
    """How a published checkpoint becomes a model's weights; declared next to its adapter."""

    name: str
    download: str  # where users get the file (and which file)
    build: Callable[[], nn.Module]  # a fresh instance of the architecture, for the strict check
    extract: Callable[[object], Mapping[str, torch.Tensor]]  # checkpoint -> state dict
    safe_globals: tuple[type, ...] = ()  # classes allowed when unpickling, beyond tensors and containers


_IMPORTABLE: dict[str, Importable] = {}


def register_importable(importable: Importable) -> Importable:
    if importable.name in _IMPORTABLE and _IMPORTABLE[importable.name] != importable:
        raise ModelError(f"importable model {importable.name!r} is declared twice")
    _IMPORTABLE[importable.name] = importable
    return importable


def state_dict_in(checkpoint: object, keys: tuple[str, ...]) -> Mapping[object, object]:
    """The state dict a checkpoint holds: the checkpoint itself (a plain state dict, as
    published files are), or the first of `keys` under which it holds a mapping (training
    scripts save {"model": ..., "optimizer": ...} and the like). TypeError if neither."""
    if isinstance(checkpoint, Mapping):
        for key in keys:
            if isinstance(checkpoint.get(key), Mapping):
                checkpoint = checkpoint[key]
                break
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f"the file holds a {type(checkpoint).__name__}, not a state dict")
    return checkpoint


def importables() -> dict[str, Importable]:
    from restore.models.registry import model_specs

    model_specs()  # imports every model module, which declares its importable form
    return dict(_IMPORTABLE)


def models_dir() -> Path:
    if os.environ.get(MODELS_ENV):
        return Path(os.environ[MODELS_ENV])
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "photochrom" / "models"


def import_command(name: str) -> str:
    return f"`photochrom models import {name} FILE`"


def manifest(name: str) -> dict[str, object] | None:
    """The installed weights' record (sha256, source, imported_at), or None."""
    path = models_dir() / f"{name}.json"
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable manifest of model {name!r} ({exc}); import it again: {import_command(name)}") from exc
    sha256 = record.get("sha256") if isinstance(record, dict) else None
    if not (isinstance(sha256, str) and re.fullmatch(r"[0-9a-f]{64}", sha256)):
        raise ModelError(f"{path}: manifest of model {name!r} records no SHA-256 of its weights; import it again: {import_command(name)}")
    return record


def installed_spec(spec: Spec) -> Spec:
    """`spec` (a model's or a detector's) with the SHA-256 of the weights installed for it
    (None when not installed, or when its manifest is damaged: `check_installed` says so)."""
    try:
        record = manifest(spec.name)
    except ModelError:
        record = None
    return replace(spec, weights_sha256=str(record["sha256"]) if record else None)


def strict_load(module: nn.Module, state_dict: Mapping[str, torch.Tensor], what: str) -> None:
    """Load every tensor into `module` or raise ModelError naming what does not fit."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        parts = [f"missing {', '.join(missing[:4])}" + (" ..." if len(missing) > 4 else "")] if missing else []
        parts += [f"unexpected {', '.join(unexpected[:4])}" + (" ..." if len(unexpected) > 4 else "")] if unexpected else []
        raise ModelError(f"{what}: the weights do not match the architecture: {'; '.join(parts)}")
    for key, tensor in state_dict.items():
        if not isinstance(tensor, torch.Tensor) or tensor.shape != expected[key].shape:
            shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise ModelError(f"{what}: tensor {key} has shape {shape}, the architecture needs {tuple(expected[key].shape)}")
    module.load_state_dict({k: v.to(expected[k].dtype) for k, v in state_dict.items()}, strict=True)


def check_finite(state: Mapping[str, torch.Tensor], what: str) -> None:
    """Raise ModelError naming the first tensor that holds NaN or infinity: such weights
    load, and the network then computes NaN, which would come out as gray images."""
    for key, tensor in state.items():
        if (tensor.is_floating_point() or tensor.is_complex()) and not bool(torch.isfinite(tensor).all()):
            raise ModelError(f"{what}: tensor '{key}' holds NaN/inf values; not imported")


def _read_checkpoint(path: Path, importable: Importable) -> object:
    try:
        with torch.serialization.safe_globals(list(importable.safe_globals)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling errors come in many classes; all mean the same
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ModelError(f"{path}: not a checkpoint that can be read safely ({reason[:200]})") from exc


def import_checkpoint(name: str, source: Path) -> dict[str, object]:
    """Check `source`, extract and store the weights of model `name`; returns the manifest."""
    known = importables()
    if name not in known:
        raise ModelError(f"no importable model {name!r}; importable: {', '.join(sorted(known))}")
    importable = known[name]
    if not source.is_file():
        raise ModelError(f"{source}: no such file")
    checkpoint = _read_checkpoint(source, importable)
    try:
        state = dict(importable.extract(checkpoint))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ModelError(f"{source}: not a {name} checkpoint (no weights where they should be: {exc})") from exc
    except ModelError as exc:
        raise ModelError(f"{source}: {exc}") from exc
    strict_load(importable.build(), state, f"{source}")
    check_finite(state, f"{source}")
    folder = models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.pt"
    stored = {"format": STORED_FORMAT, "model": name, "state_dict": {k: v.contiguous() for k, v in state.items()}}
    write_atomically(target, lambda temporary: torch.save(stored, temporary))
    record = {
        "model": name,
        "sha256": file_sha256(target),
        "source": source.name,
        "source_sha256": file_sha256(source),
        "imported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tensors": len(state),
    }
    manifest_path = folder / f"{name}.json"
    write_atomically(manifest_path, lambda temporary: temporary.write_text(json.dumps(record, indent=1) + "\n"))
    return record


def check_installed(name: str, download: str | None = None, kind: str = "model") -> Path:
    """The path of the installed weights of `name` (a `kind`: model or detector), after
    checking their SHA-256 against the manifest; ModelError, one line saying what to do,
    if they are missing or damaged."""
    record = manifest(name)
    if record is None:
        where = f": download it ({download}) and run {import_command(name)}" if download else ""
        raise ModelError(f"{kind} {name!r} is not installed{where}")
    path = models_dir() / f"{name}.pt"
    if not path.is_file():
        raise ModelError(f"{path}: weights of {kind} {name!r} are missing; import them again: {import_command(name)}")
    try:
        check_sha256(path, str(record["sha256"]), "the imported")
    except ModelError as exc:
        raise ModelError(f"{exc}; import it again: {import_command(name)}") from None
    return path


Spec = TypeVar("Spec", ModelSpec, "DetectorSpec")


def load_imported(spec: Spec, module: nn.Module) -> Spec:
    """Load the installed weights of `spec.name` (a model's or a detector's) into `module`
    after checking their SHA-256; returns the spec with that SHA-256."""
    importable = _IMPORTABLE.get(spec.name)
    kind = "model" if isinstance(spec, ModelSpec) else "detector"
    path = check_installed(spec.name, importable.download if importable else None, kind)
    actual = str(manifest(spec.name)["sha256"])  # type: ignore[index]
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != STORED_FORMAT or blob.get("model") != spec.name:
        raise ModelError(f"{path}: not stored weights of {kind} {spec.name!r}")
    strict_load(module, blob["state_dict"], str(path))
    return replace(spec, weights_sha256=actual)
