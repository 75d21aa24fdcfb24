"""Registries: one per vocabulary (colorization models here; detectors in
restore/models/detectors.py), each filled by its `register` decorator next to every
implementation and read through its `create`. Every module in restore/models is imported
on first use, so a new model is one new file. Models kept outside the package (a plugin, a
test double) are imported from the modules named in PHOTOCHROM_MODEL_MODULES
(comma-separated), which Dask workers inherit with the rest of the environment.

A registry holds declarations (specs) only; what is installed is asked of
restore/models/installed.py, separately.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import ClassVar, Generic, TypeVar

from restore.models.base import Colorizer, Declaration, ModelError, ModelSpec
from restore.models.installed import check_weights

SpecT = TypeVar("SpecT", bound=Declaration)
ProductT = TypeVar("ProductT")

_LOADED = False


def load_modules() -> None:
    """Import every module in restore/models and those named in PHOTOCHROM_MODEL_MODULES,
    once per process: importing them is what registers their models and detectors."""
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


@dataclass(frozen=True)
class _Entry(Generic[SpecT, ProductT]):
    spec: SpecT
    factory: Callable[[], ProductT]
    # Raises ModelError saying why the entry cannot be used here (a package missing, ...);
    # cheap, without loading the network. None: its weights are checked (installed.check_weights).
    check: Callable[[], None] | None


class Registry(Generic[SpecT, ProductT]):
    """The entries of one vocabulary, by name: each a frozen spec and a factory that returns
    something meeting the vocabulary's protocol. `conforms(spec, product)` says whether a
    product is what its spec declares (default: the protocol and the spec's name)."""

    _all: ClassVar[list[Registry]] = []

    def __init__(
        self, kind: str, protocol: type, conforms: Callable[[SpecT, ProductT], bool] | None = None
    ) -> None:
        self.kind = kind
        self.protocol = protocol
        self._conforms = conforms or (lambda spec, product: product.spec.name == spec.name)  # type: ignore[attr-defined]
        self._entries: dict[str, _Entry[SpecT, ProductT]] = {}
        self._shared: dict[str, ProductT] = {}
        Registry._all.append(self)

    @classmethod
    def vocabularies(cls) -> list[Registry]:
        """Every registry, after loading every module that registers into one."""
        load_modules()
        return list(cls._all)

    def register(
        self, spec: SpecT, *, check: Callable[[], None] | None = None
    ) -> Callable[[Callable[[], ProductT]], Callable[[], ProductT]]:
        """Decorator: register a factory (a class, or a function returning a product) under
        spec.name. `check`: see _Entry."""

        def add(factory: Callable[[], ProductT]) -> Callable[[], ProductT]:
            if spec.name in self._entries:
                raise ModelError(f"{self.kind} name {spec.name!r} is registered twice")
            self._entries[spec.name] = _Entry(spec, factory, check)
            return factory

        return add

    def _entry(self, name: str) -> _Entry[SpecT, ProductT]:
        load_modules()
        if name not in self._entries:
            known = ", ".join(sorted(self._entries)) or "none"
            raise ModelError(f"unknown {self.kind} {name!r}; available: {known}")
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        load_modules()
        return name in self._entries

    def specs(self) -> list[SpecT]:
        """Every declaration, by name."""
        load_modules()
        return [self._entries[name].spec for name in sorted(self._entries)]

    def get(self, name: str) -> SpecT:
        """The declaration of `name` (ModelError naming the known ones if there is none)."""
        return self._entry(name).spec

    def check(self, name: str) -> SpecT:
        """The declaration of `name`, after checking it can be used here (its weights there
        and intact, or its own check): what a command checks before it starts, so that an
        entry it cannot load is one line saying what to do (ModelError), not a failure of
        every scan."""
        entry = self._entry(name)
        if entry.check is not None:
            entry.check()
        else:
            check_weights(entry.spec)
        return entry.spec

    def problem(self, name: str) -> str | None:
        """Why `name` cannot be used here, in one line, or None if it can (`check`)."""
        try:
            self.check(name)
        except ModelError as exc:
            return str(exc)
        return None

    def create(self, name: str) -> ProductT:
        """A new instance of `name` (its weights loaded)."""
        entry = self._entry(name)
        product = entry.factory()
        if not isinstance(product, self.protocol) or not self._conforms(entry.spec, product):
            raise ModelError(f"{self.kind} {name!r} does not implement the {self.protocol.__name__} protocol with its registered spec")
        return product

    def shared(self, name: str) -> ProductT:
        """One instance of each entry per process, created on first use and kept: a Dask
        worker or an evaluation process loads the weights once, not once per scan."""
        if name not in self._shared:
            self._shared[name] = self.create(name)
        return self._shared[name]


def _is_declared_model(spec: ModelSpec, model: Colorizer) -> bool:
    """A model's spec is its declaration; for imported weights, with the SHA-256 of those it loaded."""
    return (replace(model.spec, weights_sha256=None) if spec.imported is not None else model.spec) == spec


colorizers: Registry[ModelSpec, Colorizer] = Registry(ModelSpec.kind, Colorizer, _is_declared_model)

# The colorization models, as the rest of the code asks for them.
register = colorizers.register
model_specs = colorizers.specs
get_spec = colorizers.get
usable_spec = colorizers.check
create_model = colorizers.create
shared_model = colorizers.shared
