"""What the hint editor needs of a scan and a model, as a protocol: the server reads no image and runs no model.

restore/editing.py's `ScanRenderer` implements it for a scan file and a registered model;
a test can pass anything with these members. Coordinates are the upright scan's pixels;
every image comes back as JPEG bytes. The server checks every request before it calls a
renderer: regions lie inside the scan, points are inside it, hints are valid for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from hints.schema import Hint

#: The long side (pixels) of the overview the page opens with, the whole scan.
OVERVIEW_LONG_SIDE = 1600
#: The long side (pixels) of the live preview: small enough to follow each change.
PREVIEW_LONG_SIDE = 512


class Renderer(Protocol):
    """One scan, and the model that colorizes it. Called from several threads at once."""

    name: str  # the scan's file name (a saved hint file's `image.path`)
    sha256: str  # of the scan file's bytes
    width: int  # upright pixels
    height: int
    model: str  # the model's name
    # With a series reference: its name, SHA-256 and what matched (planes, inliers, pairs,
    # coverage); previews and renders then use it. None without one.
    reference: dict[str, object] | None
    overview_size: tuple[int, int]  # (width, height) of overview_jpeg's image
    preview_size: tuple[int, int]  # (width, height) of preview_jpeg's images

    def overview_jpeg(self) -> bytes:
        """The whole scan's lightness as gray, long side at most OVERVIEW_LONG_SIDE."""
        ...

    def region_jpeg(self, x: int, y: int, w: int, h: int, long_side: int) -> bytes:
        """A region of the scan's lightness as gray, long side at most `long_side` (never enlarged)."""
        ...

    def lightness(self, x: int, y: int) -> float:
        """L* (0-100) of the scan at a pixel."""
        ...

    def preview_jpeg(self, hints: Sequence[Hint]) -> bytes:
        """A fast colorization with these hints (in scan pixels) at `preview_size`."""
        ...

    def render_jpeg(self, hints: Sequence[Hint]) -> bytes:
        """The full-resolution result with these hints, as `restore` would make it; writes nothing."""
        ...

    def use_reference(self, data: bytes | None, name: str) -> dict[str, object] | None:
        """Use the reference image whose file bytes are `data` (None: no reference) from now
        on; returns the new `reference`. ValueError (one line) for bytes that are not a
        usable colour image."""
        ...

    def reference_jpeg(self) -> bytes:
        """With a reference: where it matched, at `preview_size` (its colours over the scan's
        gray as strongly as the match is confident). Only called when `reference` is set."""
        ...
