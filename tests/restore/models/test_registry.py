"""The generic registry: a new vocabulary is one `Registry` and registers, creates and shares
like colorizers and detectors; a name is registered once; specs stay declarations, and what
is installed is asked separately (restore/models/installed.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import FrozenInstanceError, dataclass
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np
import pytest

from restore.models.base import WEIGHTS_DIR, Imported, ModelError
from restore.models.detectors import DetectorSpec, detectors
from restore.models.imported import importables
from restore.models.installed import Installed, check_weights, installed, weights_sha256
from restore.models.ramp import Ramp
from restore.models.registry import Registry, colorizers, get_spec
from restore.scanio.files import file_sha256


@dataclass(frozen=True)
class RepairSpec:
    """A vocabulary that does not exist yet: scratch and dust repair."""

    kind: ClassVar[str] = "repairer"

    name: str
    imported: Imported | None = None
    weights_env: str | None = None
    weights_sha256: str | None = None


@runtime_checkable
class Repairer(Protocol):
    spec: RepairSpec

    def repair(self, l_hw: np.ndarray) -> np.ndarray: ...


@pytest.fixture
def repairers() -> Iterator[Registry[RepairSpec, Repairer]]:
    registry: Registry[RepairSpec, Repairer] = Registry(RepairSpec.kind, Repairer)
    yield registry
    Registry._all.remove(registry)


def test_a_new_vocabulary_registers_creates_and_shares(repairers: Registry[RepairSpec, Repairer]) -> None:
    spec = RepairSpec("identity")

    @repairers.register(spec)
    class Identity:
        def __init__(self) -> None:
            self.spec = spec

        def repair(self, l_hw: np.ndarray) -> np.ndarray:
            return l_hw

    assert repairers.specs() == [spec] and repairers.get("identity") is spec and "identity" in repairers
    made = repairers.create("identity")
    assert isinstance(made, Identity) and made is not repairers.create("identity")
    assert repairers.shared("identity") is repairers.shared("identity")
    assert repairers.problem("identity") is None  # no weights to check
    assert repairers in Registry.vocabularies()
    with pytest.raises(ModelError, match=r"^unknown repairer 'scratch'; available: identity$"):
        repairers.get("scratch")
    assert "identity" not in colorizers and "identity" not in detectors  # vocabularies apart


def test_a_product_that_is_not_what_its_spec_declares_is_refused(repairers: Registry[RepairSpec, Repairer]) -> None:
    @repairers.register(RepairSpec("no-method"))
    class NoMethod:
        spec = RepairSpec("no-method")

    @repairers.register(RepairSpec("other-name"))
    class OtherName:
        spec = RepairSpec("something-else")

        def repair(self, l_hw: np.ndarray) -> np.ndarray:
            return l_hw

    for name in ("no-method", "other-name"):
        with pytest.raises(ModelError, match=f"repairer '{name}' does not implement the Repairer protocol"):
            repairers.create(name)


def test_a_name_registered_twice_is_an_error(repairers: Registry[RepairSpec, Repairer]) -> None:
    spec = RepairSpec("twice")
    first = repairers.register(spec)(lambda: None)
    with pytest.raises(ModelError, match=r"^repairer name 'twice' is registered twice$"):
        repairers.register(spec)(lambda: None)
    with pytest.raises(ModelError, match=r"^model name 'ramp' is registered twice$"):
        colorizers.register(get_spec("ramp"))(Ramp)  # even the same factory: one declaration per name
    assert repairers._entries["twice"].factory is first
    assert isinstance(colorizers.create("ramp"), Ramp)


def test_an_imported_model_is_declared_once_and_its_install_state_is_asked_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHOTOCHROM_MODELS", str(tmp_path))
    spec = get_spec("eccv16")
    assert spec.imported is not None and importables()["eccv16"] is spec.imported  # the one declaration
    assert spec.weights_sha256 is None and installed(spec) is None and weights_sha256(spec) is None
    with pytest.raises(ModelError, match=r"^model 'eccv16' is not installed: download it \(https://"):
        check_weights(spec)

    stored = tmp_path / "eccv16.pt"
    stored.write_bytes(b"weights")  # install state only: nothing here loads it
    (tmp_path / "eccv16.json").write_text(json.dumps({"model": "eccv16", "sha256": file_sha256(stored)}))
    assert installed(spec) == Installed(stored, file_sha256(stored)) and weights_sha256(spec) == file_sha256(stored)
    check_weights(spec)
    assert get_spec("eccv16") is spec and spec.weights_sha256 is None  # the declaration did not change
    with pytest.raises(FrozenInstanceError):
        spec.weights_sha256 = "0" * 64  # type: ignore[misc]

    recorded = file_sha256(stored)
    stored.write_bytes(b"replaced")
    assert weights_sha256(spec) == recorded  # as recorded at import: check_weights is what hashes the file
    with pytest.raises(ModelError, match="is not the imported"):
        check_weights(spec)


def test_shipped_and_weight_free_models_need_nothing_installed() -> None:
    lite, ramp = get_spec("lite"), get_spec("ramp")
    assert lite.weights_file and weights_sha256(lite) == lite.weights_sha256
    assert installed(lite) == Installed(WEIGHTS_DIR / lite.weights_file, lite.weights_sha256)
    assert installed(ramp) is None and weights_sha256(ramp) is None
    check_weights(lite)
    check_weights(ramp)


def test_weights_named_in_an_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = DetectorSpec(name="test-env", description="test", licence="test", weights_env="PHOTOCHROM_TEST_WEIGHTS")
    monkeypatch.delenv("PHOTOCHROM_TEST_WEIGHTS", raising=False)
    assert installed(spec) is None and weights_sha256(spec) is None
    with pytest.raises(ModelError, match=r"needs \$PHOTOCHROM_TEST_WEIGHTS set"):
        check_weights(spec)
    weights = tmp_path / "weights.pth"
    monkeypatch.setenv("PHOTOCHROM_TEST_WEIGHTS", str(weights))
    with pytest.raises(ModelError, match="no such file"):
        check_weights(spec)
    weights.write_bytes(b"detector weights")
    check_weights(spec)
    assert installed(spec) == Installed(weights, file_sha256(weights)) and weights_sha256(spec) == file_sha256(weights)
    assert spec.weights_sha256 is None
