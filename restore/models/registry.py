"""The one registry of models: filled by `@register` next to each implementation, read
through `create_model`. Every module in restore/models is imported on first use, so a
new model is one new file. Models kept outside the package (a plugin, a test double)
are imported from the modules named in PHOTOCHROM_MODEL_MODULES (comma-separated),
which Dask workers inherit with the rest of the environment."""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable

from restore.models.base import Colorizer, ModelError, ModelSpec, verified_weights

_FACTORIES: dict[str, tuple[ModelSpec, Callable[[], Colorizer]]] = {}
_LOADED = False


def register(spec: ModelSpec) -> Callable[[Callable[[], Colorizer]], Callable[[], Colorizer]]:
    """Decorator: register a factory (a class or function returning a Colorizer) under spec.name."""

    def add(factory: Callable[[], Colorizer]) -> Callable[[], Colorizer]:
        if spec.name in _FACTORIES and _FACTORIES[spec.name][1] is not factory:
            raise ModelError(f"model name {spec.name!r} is registered twice")
        _FACTORIES[spec.name] = (spec, factory)
        return factory

    return add


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    import restore.models as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in ("base", "registry"):
            importlib.import_module(f"restore.models.{module.name}")
    for name in filter(None, (n.strip() for n in os.environ.get("PHOTOCHROM_MODEL_MODULES", "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ModelError(f"PHOTOCHROM_MODEL_MODULES: cannot import {name}: {exc}") from exc
    _LOADED = True


def model_specs() -> list[ModelSpec]:
    _load_all()
    return sorted((spec for spec, _ in _FACTORIES.values()), key=lambda s: s.name)


def get_spec(name: str) -> ModelSpec:
    """The model's spec; for imported models, with the installed weights' SHA-256."""
    _load_all()
    if name not in _FACTORIES:
        known = ", ".join(s.name for s in model_specs())
        raise ModelError(f"unknown model {name!r}; available: {known}")
    spec = _FACTORIES[name][0]
    if spec.download is not None:
        from restore.models.imported import installed_spec

        return installed_spec(spec)
    return spec


def usable_spec(name: str) -> ModelSpec:
    """The model's spec, after checking that its weights are there and intact (shipped ones
    against their declared SHA-256, imported ones against their manifest): what a command
    checks before it starts, so that a model it cannot load is one line saying what to do
    (ModelError), not a failure of every scan."""
    spec = get_spec(name)
    if spec.download is not None:
        from restore.models.imported import check_installed

        check_installed(name, spec.download)
    elif spec.weights_file is not None:
        verified_weights(spec)
    return spec


_SHARED: dict[str, Colorizer] = {}


def shared_model(name: str) -> Colorizer:
    """One instance of each model per process, created on first use and kept: a Dask
    worker or an evaluation process loads a model's weights once, not once per scan."""
    if name not in _SHARED:
        _SHARED[name] = create_model(name)
    return _SHARED[name]


def create_model(name: str) -> Colorizer:
    spec = get_spec(name)
    model = _FACTORIES[name][1]()
    if not isinstance(model, Colorizer) or model.spec != spec:
        raise ModelError(f"model {name!r} does not implement the Colorizer protocol with its registered spec")
    return model
