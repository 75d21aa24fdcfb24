"""What `photochrom models list` and `models info` say about each model and detector: its
declaration, with the state of its weights here (shipped, imported with their SHA-256, or how
to import them). Read from the registries and the install state, never stored."""

from __future__ import annotations

from dataclasses import fields

from restore.models.base import ModelSpec
from restore.models.detectors import DetectorSpec, detector_problem, get_detector_spec, is_detector
from restore.models.installed import weights_sha256
from restore.models.registry import get_spec


def describe(name: str) -> dict[str, object]:
    """Everything `models info NAME` shows, for a model or a detector. Raises ModelError."""
    if is_detector(name):
        detector = get_detector_spec(name)
        return describe_detector(detector) | {"labels": len(detector.labels)}
    spec = get_spec(name)
    return describe_model(spec) | {"overlap_px": spec.overlap_px}


def describe_model(spec: ModelSpec | DetectorSpec) -> dict[str, object]:
    """A model's or detector's declaration as `models list` and `info` show it, with the
    SHA-256 of the weights installed now, and where to download imported ones."""
    row: dict[str, object] = {}
    for field in fields(spec):
        if field.name == "imported":
            row["download"] = spec.imported.download if spec.imported else None
        elif field.name == "weights_sha256":
            row["weights_sha256"] = weights_sha256(spec)
        elif field.name != "weights_env":
            row[field.name] = getattr(spec, field.name)
    return row


def describe_detector(spec: DetectorSpec) -> dict[str, object]:
    """A detector's declaration, and whether it can run here (`installed`)."""
    problem = detector_problem(spec.name)
    row = {k: v for k, v in describe_model(spec).items() if k != "labels"}
    sha256 = row["weights_sha256"] or ""
    installed = f"not usable: {problem}" if problem is not None else f"{'imported' if spec.imported else 'ready'} ({sha256[:12]})"
    return row | {"kind": "detector", "installed": installed}


def weights_state(spec: ModelSpec) -> str:
    """A model's weights in a few words: shipped, none needed, imported (SHA-256), or how to import them."""
    if spec.imported is None:
        return f"shipped ({spec.weights_file})" if spec.weights_file else "none needed"
    if sha256 := weights_sha256(spec):
        return f"imported ({sha256[:12]})"
    return f"not installed: download {spec.imported.download}, then `photochrom models import {spec.name} FILE`"
