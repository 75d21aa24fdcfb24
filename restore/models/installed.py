"""Install state of declared weights: whether a model's or a detector's weights are here, their
SHA-256, and whether they are intact. Read from disk when asked, never part of a spec.

Imported weights live as `<models dir>/<NAME>.pt` with a manifest `<NAME>.json` holding that
file's SHA-256 (restore/models/imported.py writes both). The models dir is
$PHOTOCHROM_MODELS, else $XDG_DATA_HOME/photochrom/models, else
~/.local/share/photochrom/models (Dask workers inherit the environment). Without torch, so
that result keys and the command line's checks stay light.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from restore.models.base import (
    WEIGHTS_DIR,
    Declaration,
    ModelError,
    ModelSpec,
    check_sha256,
    verified_weights,
)
from restore.scanio.files import file_sha256

MODELS_ENV = "PHOTOCHROM_MODELS"


@dataclass(frozen=True)
class Installed:
    """Weights that are here for a declaration: where, and their SHA-256 (as declared for
    shipped weights, as recorded in an import's manifest, as hashed for a file named in an
    environment variable). Not re-checked: `check_weights` does that."""

    path: Path
    sha256: str


def models_dir() -> Path:
    if os.environ.get(MODELS_ENV):
        return Path(os.environ[MODELS_ENV])
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "photochrom" / "models"


def import_command(name: str) -> str:
    return f"`photochrom models import {name} FILE`"


def env_path(variable: str) -> str | None:
    """A path named by an environment variable (which Dask workers inherit), or None."""
    value = os.environ.get(variable, "").strip()
    return value or None


def manifest(name: str) -> dict[str, object] | None:
    """The imported weights' record (sha256, source, imported_at), or None."""
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


@lru_cache(maxsize=4)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(Path(path))  # cached by size and time: result keys ask once per scan


def installed(spec: Declaration) -> Installed | None:
    """The weights installed for `spec` now, or None (none declared, none installed, or an
    import's manifest damaged: `check_weights` says which)."""
    if spec.imported is not None:
        try:
            record = manifest(spec.name)
        except ModelError:
            return None
        return Installed(models_dir() / f"{spec.name}.pt", str(record["sha256"])) if record else None
    if spec.weights_env is not None:
        named = env_path(spec.weights_env)
        if named is None or not os.path.isfile(named):
            return None
        stat = os.stat(named)
        return Installed(Path(named), _sha256(named, stat.st_size, stat.st_mtime_ns))
    if isinstance(spec, ModelSpec) and spec.weights_file is not None and spec.weights_sha256 is not None:
        path = WEIGHTS_DIR / spec.weights_file
        return Installed(path, spec.weights_sha256) if path.is_file() else None
    return None


def weights_sha256(spec: Declaration) -> str | None:
    """The SHA-256 of the weights `spec`'s model or detector would load now: what provenance
    and result keys record. Shipped weights' is declared; the rest are install state."""
    if spec.imported is None and spec.weights_env is None:
        return spec.weights_sha256
    found = installed(spec)
    return found.sha256 if found is not None else None


def check_installed(spec: Declaration) -> Installed:
    """The imported weights of `spec`, after checking their SHA-256 against the manifest;
    ModelError, one line saying what to do, if they are missing or damaged."""
    name, kind = spec.name, spec.kind
    record = manifest(name)
    if record is None:
        where = f": download it ({spec.imported.download}) and run {import_command(name)}" if spec.imported else ""
        raise ModelError(f"{kind} {name!r} is not installed{where}")
    path = models_dir() / f"{name}.pt"
    if not path.is_file():
        raise ModelError(f"{path}: weights of {kind} {name!r} are missing; import them again: {import_command(name)}")
    try:
        check_sha256(path, str(record["sha256"]), "the imported")
    except ModelError as exc:
        raise ModelError(f"{exc}; import it again: {import_command(name)}") from None
    return Installed(path, str(record["sha256"]))


def check_weights(spec: Declaration) -> None:
    """ModelError, one line saying what to do, unless `spec`'s weights are here and intact:
    shipped ones against their declared SHA-256, imported ones against their manifest.
    Cheap next to loading: the network is not built."""
    if spec.imported is not None:
        check_installed(spec)
    elif spec.weights_env is not None:
        named = env_path(spec.weights_env)
        if named is None:
            raise ModelError(f"{spec.kind} {spec.name!r} needs ${spec.weights_env} set (its weights file)")
        if not Path(named).is_file():
            raise ModelError(f"{named}: no such file ({spec.kind} {spec.name!r})")
    elif isinstance(spec, ModelSpec) and spec.weights_file is not None:
        verified_weights(spec)
