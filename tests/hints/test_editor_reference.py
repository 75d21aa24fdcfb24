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


def test_the_page_can_pick_a_reference_and_show_it(files: dict[str, Path]) -> None:
    server = _serve(files["scan"], files["reference"])
    try:
        page = _request(server, "GET", "/?token=" + server.token)[1].decode()
        assert 'id="reference-file" type="file"' in page and 'fetch("/api/reference", {method: "POST"' in page
        assert "/api/reference?token=" in page
    finally:
        server.shutdown()
        server.server_close()


def _post_bytes(server, data: bytes, name: str = "", length: str | None = None):  # noqa: ANN001, ANN202
    import http.client

    from hints.editor.server import TOKEN_HEADER

    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=60)
    conn.putrequest("POST", "/api/reference")
    conn.putheader(TOKEN_HEADER, server.token)
    conn.putheader("X-Photochrom-Name", name)
    conn.putheader("Content-Length", length if length is not None else str(len(data)))
    conn.endheaders()
    if length is None:
        conn.send(data)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, json.loads(body)


def test_a_reference_picked_in_the_page_is_used_and_can_be_cleared(files: dict[str, Path]) -> None:
    server = _serve(files["scan"], None)
    try:
        status, answer = _post_bytes(server, files["reference"].read_bytes(), "family%20colour.png")
        assert status == 200 and answer["reference"]["name"] == "family colour.png" and answer["reference"]["coverage"] > 0.5
        assert json.loads(_request(server, "GET", "/api/scan")[1])["reference"]["coverage"] > 0.5
        assert _request(server, "GET", "/api/reference?t=1")[0] == 200
        status, guided = _post(server, "/api/preview", {"points": []})
        assert status == 200 and np.median(_chroma(guided)) > 5

        # not an image, a gray image, too large: one-line 400/413, the reference kept
        for data, expected in ((b"no image here" * 100, "junk.png: "), (_gray_png(), "has no colour")):
            status, answer = _post_bytes(server, data, "junk.png" if b"no image" in data else "gray.png")
            assert status == 400 and expected in answer["error"] and "\n" not in answer["error"]
            assert "/tmp" not in answer["error"]  # the server's temporary file is not named
        status, answer = _post_bytes(server, b"", "big.png", length=str(65 * 1024 * 1024))
        assert status == 413
        assert json.loads(_request(server, "GET", "/api/scan")[1])["reference"]["coverage"] > 0.5

        status, answer = _post_bytes(server, b"", "")  # an empty body: no reference
        assert status == 200 and answer["reference"] is None
        assert _request(server, "GET", "/api/reference")[0] == 400
    finally:
        server.shutdown()
        server.server_close()


def _gray_png() -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.tile(np.arange(200, dtype=np.uint8), (60, 1))).save(out, "PNG")
    return out.getvalue()
