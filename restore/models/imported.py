"""Published checkpoints that users download themselves: importing and loading them (a
colorization model's, or an instance detector's: restore/models/maskrcnn.py). What to
download and how to read it is declared in the spec (`Imported`, restore/models/base.py);
what is installed is read through restore/models/installed.py.

`photochrom models import NAME FILE` reads FILE without running pickled code beyond the
classes the adapter allows (`torch.load(weights_only=True)`, plus e.g. argparse.Namespace
for iColoriT's training checkpoints), takes the model's weights out of it (a training
checkpoint also holds optimizer state and arguments), loads them strictly into our own
implementation of the architecture (every tensor present with its shape, none left over),
and stores them as `<models dir>/<NAME>.pt` with a manifest `<NAME>.json` holding that
file's SHA-256, which is checked on every load.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from restore.models.base import Declaration, Imported, ModelError
from restore.models.installed import check_installed, models_dir
from restore.models.registry import Registry
from restore.scanio.files import file_sha256
from restore.scanio.write import write_atomically

STORED_FORMAT = "photochrom-import/1"

Spec = TypeVar("Spec", bound=Declaration)


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


def importables() -> dict[str, Imported]:
    """How to import each declaration's weights (models and detectors alike), by name: the
    name is also the stored file's, so it must be unique across vocabularies."""
    found: dict[str, Imported] = {}
    for registry in Registry.vocabularies():
        for spec in registry.specs():
            if spec.imported is not None:
                if spec.name in found:
                    raise ModelError(f"importable name {spec.name!r} is declared twice (the second one a {spec.kind})")
                found[spec.name] = spec.imported
    return found


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


def _read_checkpoint(path: Path, imported: Imported) -> object:
    try:
        with torch.serialization.safe_globals(list(imported.safe_globals)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling errors come in many classes; all mean the same
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ModelError(f"{path}: not a checkpoint that can be read safely ({reason[:200]})") from exc


def import_checkpoint(name: str, source: Path) -> dict[str, object]:
    """Check `source`, extract and store the weights of model `name`; returns the manifest."""
    known = importables()
    if name not in known:
        raise ModelError(f"no importable model {name!r}; importable: {', '.join(sorted(known))}")
    imported = known[name]
    if not source.is_file():
        raise ModelError(f"{source}: no such file")
    checkpoint = _read_checkpoint(source, imported)
    try:
        state = dict(imported.extract(checkpoint))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ModelError(f"{source}: not a {name} checkpoint (no weights where they should be: {exc})") from exc
    except ModelError as exc:
        raise ModelError(f"{source}: {exc}") from exc
    strict_load(imported.build(), state, f"{source}")
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


def load_imported(spec: Spec, module: nn.Module) -> Spec:
    """Load the installed weights of `spec` (a model's or a detector's) into `module` after
    checking their SHA-256; returns the spec of the loaded weights (with that SHA-256)."""
    weights = check_installed(spec)
    blob = torch.load(weights.path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != STORED_FORMAT or blob.get("model") != spec.name:
        raise ModelError(f"{weights.path}: not stored weights of {spec.kind} {spec.name!r}")
    strict_load(module, blob["state_dict"], str(weights.path))
    return replace(spec, weights_sha256=weights.sha256)
