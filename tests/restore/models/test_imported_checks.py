"""What `photochrom models import` refuses and what `--model` says about an imported model
that cannot be used: weights holding NaN or infinity, recorded training options of the
wrong type (a tensor where a number belongs), a model not imported, and installed weights
whose SHA-256 no longer matches. Each is one line and exit 2, never a traceback, and
nothing is installed or written. Synthetic checkpoints only: nothing is downloaded."""

from __future__ import annotations

import argparse
import copy
import functools
import json
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from cli import app
from restore.models.base import ModelError
from restore.models.icolorit import REQUIRED_ARGS, SIZES, extract_state
from restore.models.imported import import_checkpoint
from restore.models.installed import manifest
from restore.models.registry import create_model
from tests.conftest import gray_u8
from tests.restore.models.test_icolorit import assert_nothing_installed, training_checkpoint

TINY = "icolorit-tiny"
runner = CliRunner()


@pytest.fixture()
def models_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PHOTOCHROM_MODELS", str(tmp_path / "models"))
    return tmp_path / "models"


@functools.cache
def _tiny_checkpoint() -> dict[str, object]:
    return training_checkpoint(TINY)


def tiny_checkpoint(**args: object) -> dict[str, object]:
    """A fresh copy of iColoriT-Ti's training checkpoint (made once), with `args` set."""
    checkpoint = dict(_tiny_checkpoint())
    checkpoint["model"] = copy.copy(checkpoint["model"])
    checkpoint["args"] = argparse.Namespace(**{**vars(checkpoint["args"]), **args})
    return checkpoint


def save(checkpoint: object, path: Path) -> Path:
    torch.save(checkpoint, path)
    return path


def one_error_line(result) -> str:  # noqa: ANN001
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- weights holding NaN or infinity ------------------------------------------------------------

FLOAT_KEYS = sorted(k for k, v in _tiny_checkpoint()["model"].items() if v.is_floating_point())


@settings(max_examples=8, deadline=None)
@given(key=st.sampled_from(FLOAT_KEYS), where=st.floats(0, 1, exclude_max=True), value=st.sampled_from([float("nan"), float("inf"), float("-inf")]))
def test_weights_holding_nan_or_inf_are_refused(tmp_path_factory: pytest.TempPathFactory, key: str, where: float, value: float) -> None:
    folder = tmp_path_factory.mktemp("nan")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PHOTOCHROM_MODELS", str(folder / "models"))
        checkpoint = tiny_checkpoint()
        tensor = checkpoint["model"][key].clone()
        tensor.view(-1)[int(where * tensor.numel())] = value
        checkpoint["model"][key] = tensor
        source = save(checkpoint, folder / "poisoned.pth")
        with pytest.raises(ModelError) as refused:
            import_checkpoint(TINY, source)
        assert str(refused.value) == f"{source}: tensor '{key}' holds NaN/inf values; not imported"
        assert_nothing_installed(TINY, folder / "models")


def test_models_import_refuses_nan_weights_in_one_line(tmp_path: Path, models_home: Path) -> None:
    checkpoint = tiny_checkpoint()
    checkpoint["model"]["norm.bias"] = torch.full_like(checkpoint["model"]["norm.bias"], float("nan"))
    source = save(checkpoint, tmp_path / "nan.pth")
    result = runner.invoke(app, ["models", "import", TINY, str(source)])
    assert result.exit_code == 2
    assert one_error_line(result) == f"photochrom: error: {source}: tensor 'norm.bias' holds NaN/inf values; not imported"
    assert_nothing_installed(TINY, models_home)


# --- recorded training options of the wrong type ---------------------------------------------------

BAD_VALUES = {
    "a tensor": torch.tensor(224),
    "a tensor of two": torch.tensor([2, 2]),
    "a string": "224",
    "a list": [224],
    "NaN": float("nan"),
}


@pytest.mark.parametrize("option", ["input_size", "hint_size", "use_rpb", "model"])
@pytest.mark.parametrize("kind", sorted(BAD_VALUES))
def test_an_option_of_the_wrong_type_is_refused_naming_it(tmp_path: Path, models_home: Path, option: str, kind: str) -> None:
    source = save(tiny_checkpoint(**{option: BAD_VALUES[kind]}), tmp_path / "odd.pth")
    result = runner.invoke(app, ["models", "import", TINY, str(source)])
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert line.startswith(f"photochrom: error: {source}: ") and (f"option {option} " in line or f"with {option}=" in line)
    assert_nothing_installed(TINY, models_home)


def _values() -> st.SearchStrategy[object]:
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(-300, 300), st.floats(allow_nan=True), st.text(max_size=8),
        st.sampled_from(["cnn", "icolorit_tiny_4ch_patch16_224", 224, 2, True, False, 224.0, 2.0]),
    )
    tensors = st.builds(torch.tensor, st.one_of(st.integers(-5, 300), st.floats(-1e3, 1e3), st.lists(st.integers(0, 300), max_size=3)))
    return st.one_of(scalars, tensors, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=3), scalars, max_size=2))


@settings(max_examples=300, deadline=None)
@given(option=st.sampled_from(sorted(REQUIRED_ARGS) + ["model"]), value=_values())
def test_options_are_accepted_only_as_the_value_and_type_implemented(option: str, value: object) -> None:
    size = SIZES[TINY]
    needed = size.official_model if option == "model" else REQUIRED_ARGS[option]
    state = {"norm.bias": torch.zeros(3)}
    args = argparse.Namespace(**{"model": size.official_model, **REQUIRED_ARGS, option: value})
    if (type(value) is type(needed) and value == needed) or (option == "model" and value is None):  # None: not recorded
        assert extract_state({"model": state, "args": args}, size) == state
    else:
        with pytest.raises(ModelError, match=f"option {option} |with {option}="):
            extract_state({"model": state, "args": args}, size)


@pytest.mark.parametrize("record", [[1, 2], {"sha256": 12}, {"sha256": ["ab"]}, {"model": TINY}, "text"])
def test_a_manifest_of_the_wrong_shape_is_one_line(tmp_path: Path, models_home: Path, record: object) -> None:
    models_home.mkdir(parents=True)
    (models_home / f"{TINY}.json").write_text(json.dumps(record))
    (models_home / f"{TINY}.pt").write_bytes(b"weights")
    with pytest.raises(ModelError, match=f"manifest of model '{TINY}'"):
        manifest(TINY)
    result = runner.invoke(app, ["colorize", str(_scan(tmp_path)), "-o", str(tmp_path / "out"), "--model", TINY])
    assert result.exit_code == 2
    assert f"photochrom models import {TINY} FILE" in one_error_line(result)


# --- --model NAME that is not installed, or whose weights fail their SHA-256 -----------------------


def _scan(tmp_path: Path) -> Path:
    path = tmp_path / "scans" / "street.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(gray_u8()).save(path)
    return path


def _catalog(tmp_path: Path) -> str:
    db = str(tmp_path / "archive.db")
    _scan(tmp_path)
    assert runner.invoke(app, ["ingest", str(tmp_path / "scans"), "--db", db]).exit_code == 0
    return db


def _commands(tmp_path: Path, name: str) -> dict[str, list[str]]:
    db = _catalog(tmp_path)
    return {
        "colorize": ["colorize", str(_scan(tmp_path)), "-o", str(tmp_path / "out"), "--model", name],
        "restore": ["restore", "--db", db, "--model", name, "--scheduler", "synchronous", "--out", str(tmp_path / "out")],
    }


def _assert_told_to_import(tmp_path: Path, name: str, *, expect: str) -> None:
    for command, args in _commands(tmp_path, name).items():
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (command, result.output)
        line = one_error_line(result)
        assert f"photochrom models import {name} FILE" in line and expect in line, (command, line)
        assert not (tmp_path / "out").exists(), command
    jobs = json.loads(runner.invoke(app, ["jobs", "list", "--db", str(tmp_path / "archive.db"), "--json"]).stdout)
    assert jobs == []  # the restore job was never created


@pytest.mark.parametrize("name", ["icolorit-base", "eccv16"])
def test_a_model_not_imported_says_how_to_import_it(tmp_path: Path, models_home: Path, name: str) -> None:
    _assert_told_to_import(tmp_path, name, expect=f"model '{name}' is not installed")


def test_weights_failing_their_sha256_say_how_to_import_again(tmp_path: Path, models_home: Path) -> None:
    record = import_checkpoint(TINY, save(tiny_checkpoint(), tmp_path / "tiny.pth"))
    weights = models_home / f"{TINY}.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    weights.write_bytes(bytes(data))
    _assert_told_to_import(tmp_path, TINY, expect=f"is not the imported {record['sha256'][:16]}")
    with pytest.raises(ModelError, match=f"photochrom models import {TINY} FILE"):
        create_model(TINY)


def test_installed_weights_gone_say_how_to_import_again(tmp_path: Path, models_home: Path) -> None:
    models_home.mkdir(parents=True)
    (models_home / "icolorit-base.json").write_text(json.dumps({"model": "icolorit-base", "sha256": "0" * 64}))
    _assert_told_to_import(tmp_path, "icolorit-base", expect="are missing")
