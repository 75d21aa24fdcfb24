"""The command line's settings: every default it shows comes from restore.settings (no copy in
cli.py), and what the user passed is known from Typer's parameter source, not by comparing
values with the defaults."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

import cli
from cli import app
from restore.settings import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MODEL,
    DEFAULT_RETRIES,
    DEFAULT_SATURATION,
    HINTED_SATURATION,
    InstanceSettings,
    RepairSettings,
)

CLI_SOURCE = Path(cli.__file__)
# Option -> the library's default for it.
LIBRARY_DEFAULTS = {
    "--model": DEFAULT_MODEL,
    "--detector": InstanceSettings().detector,
    "--instance-min-score": InstanceSettings().min_score,
    "--max-instances": InstanceSettings().max_instances,
    "--retries": DEFAULT_RETRIES,
    "--max-pixels": DEFAULT_MAX_PIXELS,
    "--repair-threshold": RepairSettings().threshold,
    "--repair-margin": RepairSettings().margin_px,
}
COMMANDS = (("restore",), ("colorize",), ("hints", "edit"), ("ingest",), ("evaluate",))
INSTANCE_MESSAGE = "--detector, --instance-min-score and --max-instances apply only with --instances"


def _command(path: tuple[str, ...]):  # a click command
    command = get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return command


def test_every_shown_default_is_the_librarys() -> None:
    seen = set()
    for path in COMMANDS:
        for param in _command(path).params:
            for option in set(param.opts) & set(LIBRARY_DEFAULTS):
                if param.default is None:  # evaluate's --model: the default pair, named in its help
                    continue
                assert param.default == LIBRARY_DEFAULTS[option], (path, option)
                seen.add(option)
    assert seen == set(LIBRARY_DEFAULTS)


def test_saturation_names_both_of_its_defaults() -> None:
    # --saturation defaults to "not given": the pipeline then boosts the model's own colours
    # and not those of a scan with hints; the help says both values, from the library.
    for path in ("restore",), ("colorize",), ("evaluate",):
        (param,) = [p for p in _command(path).params if "--saturation" in p.opts]
        assert param.default is None
        assert f"Default: {DEFAULT_SATURATION} for the model's own colours, {HINTED_SATURATION} for a scan with hints" in param.help


def _literal(node: ast.expr) -> bool:
    """A value written in place: a constant (other than None and False, which say "not
    given"), or Path("...") of one."""
    if isinstance(node, ast.Constant):
        return node.value is not None and node.value is not False
    return isinstance(node, ast.Call) and any(_literal(arg) for arg in node.args)


def test_cli_py_holds_no_copy_of_any_default() -> None:
    # A literal such as `saturation: SaturationOption = 1.15` would still show the right value
    # today and silently disagree with the library the day that changes: every default a
    # command shows comes from restore.settings.
    checked = 0
    for node in ast.walk(ast.parse(CLI_SOURCE.read_text())):
        if not isinstance(node, ast.FunctionDef) or not any("command" in ast.unparse(d) for d in node.decorator_list):
            continue
        arguments = node.args.args + node.args.kwonlyargs
        defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + node.args.defaults + node.args.kw_defaults
        for argument, default in zip(arguments, defaults):
            if default is not None:
                assert not _literal(default), f"{node.name}({argument.arg}={ast.unparse(default)}): a literal default in cli.py"
                checked += 1
    assert checked >= 60  # every command's options: the check saw them


@pytest.mark.parametrize(
    "flag", [["--detector", InstanceSettings().detector], ["--instance-min-score", "0.7"], ["--max-instances", "16"]]
)
def test_instance_flags_without_instances_are_a_usage_error_even_at_their_default(tmp_path: Path, flag: list[str]) -> None:
    assert flag[1] == str(LIBRARY_DEFAULTS[flag[0]])  # the default's own value, passed explicitly
    (tmp_path / "in").mkdir()
    result = CliRunner().invoke(app, ["colorize", str(tmp_path / "in"), "-o", str(tmp_path / "out"), *flag])
    assert result.exit_code == 2 and result.stderr.strip().endswith(INSTANCE_MESSAGE)
    assert not (tmp_path / "out").exists()  # refused before anything ran
    # restore checks its settings before it opens the catalog
    result = CliRunner().invoke(app, ["restore", "--db", str(tmp_path / "none.db"), *flag])
    assert result.exit_code == 2 and result.stderr.strip().endswith(INSTANCE_MESSAGE)


def test_flags_left_out_take_the_defaults_and_bad_ones_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    base = ["colorize", str(tmp_path / "in"), "-o", str(tmp_path / "out")]
    assert CliRunner().invoke(app, base).exit_code == 0  # no input files: nothing to do, no usage error
    bad = CliRunner().invoke(app, [*base, "--format", "gif"])
    assert bad.exit_code == 2 and bad.stderr.strip().endswith("--format gif: expected tiff, png or jpeg")
    detector = CliRunner().invoke(app, [*base, "--instances", "--detector", "nope"])
    assert detector.exit_code == 2 and "--detector: unknown detector 'nope'" in detector.stderr
