"""build_restore_settings: defaults < the flags the user passed, and every usage error in one
line naming its flag."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from restore.settings import (
    DEFAULT_MODEL,
    InstanceSettings,
    RestoreSettings,
    SettingsError,
    build_restore_settings,
)

REPO = Path(__file__).resolve().parents[2]


def test_nothing_passed_gives_the_defaults_and_no_instance_pass() -> None:
    assert build_restore_settings() == RestoreSettings()
    assert build_restore_settings().instances is None
    assert build_restore_settings(instances=False) == RestoreSettings()


def test_a_passed_flag_replaces_only_its_own_default() -> None:
    settings = build_restore_settings(saturation=1.0, output_format="JPG")
    assert (settings.saturation, settings.output_format) == (1.0, "JPEG")
    assert (settings.model, settings.include_colour, settings.working_scale) == (DEFAULT_MODEL, False, RestoreSettings().working_scale)
    with_instances = build_restore_settings(instances=True, max_instances=3)
    assert with_instances.instances == InstanceSettings(max_instances=3)  # the rest: InstanceSettings' defaults
    assert build_restore_settings(instances=True).instances == InstanceSettings()


@pytest.mark.parametrize(("name", "expected"), [("tif", "TIFF"), ("TIFF", "TIFF"), ("png", "PNG"), ("jpg", "JPEG"), ("Jpeg", "JPEG")])
def test_format_names(name: str, expected: str) -> None:
    assert build_restore_settings(output_format=name).output_format == expected


@pytest.mark.parametrize(
    "flag", [{"detector": InstanceSettings().detector}, {"instance_min_score": InstanceSettings().min_score}, {"max_instances": 16}]
)
def test_instance_flags_without_instances_are_refused_even_at_their_default_value(flag: dict[str, object]) -> None:
    with pytest.raises(SettingsError, match=r"^--detector, --instance-min-score and --max-instances apply only with --instances$"):
        build_restore_settings(**flag)  # type: ignore[arg-type]
    with pytest.raises(SettingsError):
        build_restore_settings(instances=False, **flag)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"output_format": "gif"}, "--format gif: expected tiff, png or jpeg"),
        ({"output_format": "bmp"}, "--format bmp: expected tiff, png or jpeg"),  # written for BMP inputs, never asked for
        ({"model": "nope"}, "unknown model 'nope'"),
        ({"model": InstanceSettings().detector}, "is a detector, not a colorization model: use it with --instances --detector"),
        ({"instances": True, "detector": "nope"}, "--detector: unknown detector 'nope'"),
        ({"saturation": 9.0}, "saturation must be between 0 and 4"),
        ({"instances": True, "instance_min_score": 1.5}, "instance min_score must be between 0 and 1"),
    ],
)
def test_usage_errors_are_one_line(flags: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError) as error:
        build_restore_settings(**flags)  # type: ignore[arg-type]
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_model_is_checked_first() -> None:
    # The order of the checks is the order the command line always reported them in.
    with pytest.raises(SettingsError, match="unknown model"):
        build_restore_settings(model="nope", detector="nope", output_format="gif")


def test_the_settings_module_is_light_to_import() -> None:
    # The command line reads its defaults from it before any command runs (`photochrom --help`).
    code = (
        "import sys, restore.settings; "
        "heavy = {'torch', 'numpy', 'PIL', 'cv2', 'tifffile', 'skimage', 'sqlalchemy'} & set(sys.modules); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_repair_defaults_are_the_shipped_segmenters_and_fill() -> None:
    from restore.models.damage import SPEC
    from restore.repair.inpaint import DEFAULT_METHOD
    from restore.settings import DEFAULT_SEGMENTER, RepairSettings

    assert RepairSettings().threshold == SPEC.default_threshold
    assert RepairSettings().segmenter == DEFAULT_SEGMENTER == SPEC.name
    assert RepairSettings().method == DEFAULT_METHOD
