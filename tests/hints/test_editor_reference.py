"""The hint editor with a series reference (`hints edit SCAN --reference IMAGE`): the page
learns what matched, shows where, and previews use the reference's colours."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hints.editor import default_hints_path, make_server
from restore.colour import lightness_to_gray, rgb_to_lab
from restore.editing import ScanRenderer
from tests.hints.test_editor import _post, _request
from tests.restore.test_reference import scene, views


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    target, reference = views(scene(1, 300, 400))
    Image.fromarray(lightness_to_gray(rgb_to_lab(target)[..., 0], np.uint8)).save(tmp_path / "scan.png")
    Image.fromarray(reference).save(tmp_path / "reference.png")
    Image.fromarray(target).save(tmp_path / "truth.png")
    return {"scan": tmp_path / "scan.png", "reference": tmp_path / "reference.png", "truth": tmp_path / "truth.png"}


def _serve(scan: Path, reference: Path | None):  # noqa: ANN202
    server = make_server(ScanRenderer(scan, "ramp", reference), default_hints_path(scan))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


def _chroma(jpeg: bytes) -> np.ndarray:
    lab = rgb_to_lab(np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")))
    return np.hypot(lab[..., 1], lab[..., 2])


def test_the_editor_shows_where_the_reference_matched_and_previews_with_it(files: dict[str, Path]) -> None:
    guided, plain = _serve(files["scan"], files["reference"]), _serve(files["scan"], None)
    try:
        info = json.loads(_request(guided, "GET", "/api/scan")[1])
        assert info["reference"]["name"] == "reference.png" and info["reference"]["coverage"] > 0.5
        assert json.loads(_request(plain, "GET", "/api/scan")[1])["reference"] is None

        status, match = _request(guided, "GET", "/api/reference")
        assert status == 200
        shown = Image.open(io.BytesIO(match))
        assert (shown.width, shown.height) == tuple(info["preview"].values())
        assert np.median(_chroma(match)) > 10  # the reference's colours over most of the scan

        status, error = _request(plain, "GET", "/api/reference")
        assert status == 400 and "--reference" in json.loads(error)["error"]

        # the preview with the reference is nearer the truth than without
        truth = np.asarray(Image.open(files["truth"]).convert("RGB").resize(shown.size, Image.Resampling.BILINEAR)).astype(float)
        errors = []
        for server in (guided, plain):
            status, preview = _post(server, "/api/preview", {"points": []})
            assert status == 200
            errors.append(np.abs(np.asarray(Image.open(io.BytesIO(preview)).convert("RGB")).astype(float) - truth).mean())
        assert errors[0] < 0.6 * errors[1]
    finally:
        for server in (guided, plain):
            server.shutdown()
            server.server_close()


def test_the_page_has_the_reference_panel(files: dict[str, Path]) -> None:
    server = _serve(files["scan"], files["reference"])
    try:
        page = _request(server, "GET", "/?token=" + server.token)[1].decode()
        assert 'id="reference-panel"' in page and "/api/reference?token=" in page
    finally:
        server.shutdown()
        server.server_close()
