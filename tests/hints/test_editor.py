"""`photochrom hints edit`'s server (hints/editor/server.py) with the real renderer (restore/editing.py,
model `ramp`): token, Host, scan info, previews, validated atomic saves, hostile requests."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import socket
import threading
import time
import traceback
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from hints.editor import default_hints_path, make_server
from hints.editor.server import MAX_BODY_BYTES, TOKEN_HEADER
from hints.schema import SCHEMA_ID, load_hint_file, resolve
from restore.editing import ScanRenderer
from tests.hints.strategies import documents, encode, json_values

WIDTH, HEIGHT = 96, 64


@pytest.fixture
def scan(tmp_path: Path) -> Path:
    x = np.linspace(40, 200, WIDTH)[None, :] + np.zeros((HEIGHT, 1))
    path = tmp_path / "street.png"
    Image.fromarray(x.astype(np.uint8), "L").save(path)
    return path


def _serve(scan: Path, hints: Path | None = None):  # noqa: ANN202
    server = make_server(ScanRenderer(scan, "ramp"), hints or default_hints_path(scan))
    # What the server would print as a traceback (an exception out of a handler) is kept
    # here instead, and every test using the `server` fixture ends by checking it is empty.
    server.tracebacks = []
    server.handle_error = lambda request, address: server.tracebacks.append("".join(traceback.format_exc()))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)  # quick to shut down
    thread.start()
    return server


@pytest.fixture
def server(scan: Path):  # noqa: ANN201
    server = _serve(scan)
    yield server
    server.shutdown()
    server.server_close()
    assert server.tracebacks == []


def _request(server, method: str, path: str, body: bytes | None = None, token: str | None = "ok", host: str | None = None):  # noqa: ANN001, ANN202
    address, port = server.server_address[:2]
    conn = http.client.HTTPConnection(address, port, timeout=60)
    headers = {"Content-Type": "application/json"}
    if host is not None:  # else http.client sends the address it connects to, as a browser does
        headers["Host"] = host
    if token == "ok":
        headers[TOKEN_HEADER] = server.token
    elif token is not None:
        headers[TOKEN_HEADER] = token
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def _post(server, path: str, document: object, token: str | None = "ok", host: str | None = None):  # noqa: ANN001, ANN202
    return _request(server, "POST", path, json.dumps(document).encode(), token, host)


def test_binds_loopback_on_a_free_port(server) -> None:  # noqa: ANN001
    host, port = server.server_address[:2]
    assert host == "127.0.0.1" and port > 0
    assert server.socket.getsockname()[:2] == ("127.0.0.1", port)
    assert server.url == f"http://127.0.0.1:{port}/?token={server.token}" and len(server.token) >= 32
    # Bound to 127.0.0.1 itself, not to every address: another address of this machine
    # (127.0.0.2 is one on Linux, as a LAN address would be) is refused.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", port), timeout=5).close()


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1", "127.0.0.1:1", "localhost.evil.example:{port}", ""])
def test_a_foreign_host_header_is_refused(server, scan: Path, host: str) -> None:  # noqa: ANN001
    """DNS rebinding: a page from another site, its name re-pointed at 127.0.0.1, sends that name."""
    host = host.format(port=server.server_address[1])
    for path in ("/", "/api/scan", "/api/image", "/api/lightness?x=1&y=1"):
        status, data = _request(server, "GET", f"{path}", host=host)
        assert status == 403 and "wrong Host header" in json.loads(data)["error"], (path, host)
    for endpoint in ("/api/save", "/api/preview", "/api/render"):
        status, data = _post(server, endpoint, {"points": [{"x": 1, "y": 1, "color": "#ff0000"}]}, host=host)
        assert status == 403 and "wrong Host header" in json.loads(data)["error"]
    assert not (scan.parent / "hints").exists()


def test_the_servers_own_names_are_accepted(server) -> None:  # noqa: ANN001
    port = server.server_address[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        assert _request(server, "GET", "/api/scan", host=host)[0] == 200, host


def test_token_is_required(server, scan: Path) -> None:  # noqa: ANN001
    for path in ("/", "/api/scan", "/api/image", "/api/image?x=0&y=0&w=8&h=8", "/api/lightness?x=1&y=1"):
        assert _request(server, "GET", path, token=None)[0] == 403
        assert _request(server, "GET", path, token="wrong")[0] == 403
        assert _request(server, "GET", f"{path}?token=wrong", token=None)[0] == 403
    status, page = _request(server, "GET", f"/?token={server.token}", token=None)
    assert status == 200 and b"<html" in page
    points = [{"x": 10, "y": 10, "color": "#ff0000"}]
    for token in (None, "wrong"):
        for endpoint in ("/api/save", "/api/preview", "/api/render"):
            status, data = _post(server, endpoint, {"points": points}, token=token)
            assert status == 403 and json.loads(data) == {"error": "missing or wrong token"}
    # a query token is not enough for a POST: only the header, which other sites cannot send
    assert _post(server, f"/api/save?token={server.token}", {"points": points}, token=None)[0] == 403
    assert not server.session.hints_path.exists()
    assert not any(p.suffix == ".json" for p in scan.parent.rglob("*"))


def test_scan_info_and_image(server, scan: Path) -> None:  # noqa: ANN001
    status, data = _request(server, "GET", "/api/scan")
    info = json.loads(data)
    assert status == 200
    assert (info["width"], info["height"]) == (WIDTH, HEIGHT)
    assert info["sha256"] == hashlib.sha256(scan.read_bytes()).hexdigest()
    assert info["name"] == "street.png" and info["hints"] is None
    status, jpeg = _request(server, "GET", "/api/image")
    assert status == 200
    assert Image.open(io.BytesIO(jpeg)).format == "JPEG" and Image.open(io.BytesIO(jpeg)).size == (WIDTH, HEIGHT)


def test_preview_shows_the_hint_at_its_location(server) -> None:  # noqa: ANN001
    status, plain = _post(server, "/api/preview", {"points": []})
    assert status == 200
    status, hinted = _post(server, "/api/preview", {"points": [{"x": 70, "y": 30, "color": "#ff0000", "radius": 4}]})
    assert status == 200
    a = np.asarray(Image.open(io.BytesIO(plain)).convert("RGB")).astype(int)
    b = np.asarray(Image.open(io.BytesIO(hinted)).convert("RGB")).astype(int)
    assert a.shape == b.shape == (HEIGHT, WIDTH, 3)
    near, far = np.abs(a - b)[28:33, 68:73].sum(), np.abs(a - b)[28:33, 5:10].sum()
    assert near > 0 and near > far
    r, g, bl = b[30, 70]
    assert r > g and r > bl  # red at the hint


def test_save_writes_a_valid_file_with_the_points(server, scan: Path) -> None:  # noqa: ANN001
    points = [{"x": 70, "y": 30, "color": "#ff0000", "note": "door"}, {"x": 5, "y": 60, "color": {"rgb": [0, 0, 255]}}]
    status, data = _post(server, "/api/save", {"points": points})
    assert status == 200, data
    target = scan.parent / "hints" / "street.json"
    assert json.loads(data)["path"] == str(target) and target.is_file()
    hint_file = load_hint_file(target)
    sha = hashlib.sha256(scan.read_bytes()).hexdigest()
    assert hint_file.image_sha256 == sha
    resolved = resolve(hint_file, WIDTH, HEIGHT, sha)
    assert [(h.x_px, h.y_px) for h in resolved] == [(70, 30), (5, 60)]
    assert json.loads(target.read_text())["schema"] == SCHEMA_ID
    assert [p.name for p in target.parent.iterdir()] == ["street.json"]  # no temp file left
    # /api/scan now returns it
    assert json.loads(_request(server, "GET", "/api/scan")[1])["hints"]["points"] == points


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "not valid JSON"),
        (json.dumps({"points": [{"x": 1, "y": 1, "color": "#ff0000"}, {"x": 96, "y": 10, "color": "#ff0000"}]}).encode(),
         "point 1: (96.0, 10.0) is outside the image (96x64 pixels)"),
        (json.dumps({"points": [{"x": 1, "y": 1, "color": "#ff0000", "colour": "red"}]}).encode(), "point 0: unknown key 'colour'"),
        (json.dumps({"points": [], "extra": 1}).encode(), "unknown key 'extra'"),
        (json.dumps({"schema": SCHEMA_ID, "image": {"sha256": "ab" * 32}, "points": []}).encode(), "not this scan"),
    ],
)
def test_bad_saves_are_400_with_the_reason_and_write_nothing(server, scan: Path, body: bytes, expected: str) -> None:  # noqa: ANN001
    for endpoint in ("/api/save", "/api/preview", "/api/render"):
        status, data = _request(server, "POST", endpoint, body)
        assert status == 400
        error = json.loads(data)["error"]
        assert expected in error and "\n" not in error
    assert not (scan.parent / "hints").exists()


def test_an_existing_hint_file_is_returned_and_saved_in_place(scan: Path, tmp_path: Path) -> None:
    existing = tmp_path / "mine.json"
    document = {"schema": SCHEMA_ID, "image": {"sha256": hashlib.sha256(scan.read_bytes()).hexdigest()},
                "space": "normalized", "points": [{"x": 0.5, "y": 0.25, "color": "#00ff00"}]}
    existing.write_text(json.dumps(document))
    server = _serve(scan, existing)
    try:
        info = json.loads(_request(server, "GET", "/api/scan")[1])
        assert info["hints"] == document and info["hints_path"] == str(existing)
        document["points"].append({"x": 1.0, "y": 1.0, "color": "#0000ff"})
        assert _post(server, "/api/save", document)[0] == 200
        assert len(load_hint_file(existing).points) == 2
    finally:
        server.shutdown()
        server.server_close()


def test_save_is_recorded_in_the_catalog_with_db(scan: Path, tmp_path: Path) -> None:
    from sqlalchemy import select

    from catalog.db import open_catalog
    from catalog.ingest import ingest
    from catalog.models import HintFileRecord

    db = tmp_path / "archive.db"
    with open_catalog(db) as catalog:
        ingest(catalog, [scan])
    from catalog.queries import record_hint_file

    def on_save(scan_sha256: str, hint_file) -> bool:  # noqa: ANN001 - as `photochrom hints edit --db` does
        with open_catalog(db, create=False) as catalog:
            return record_hint_file(catalog, scan_sha256, hint_file.sha256, hint_file.path, len(hint_file.points))

    server = make_server(ScanRenderer(scan, "ramp"), default_hints_path(scan), on_save)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status, data = _post(server, "/api/save", {"points": [{"x": 3, "y": 4, "color": "#123456"}]})
        assert status == 200 and json.loads(data)["recorded"] is True
    finally:
        server.shutdown()
        server.server_close()
    with open_catalog(db, create=False) as catalog, catalog.read() as session:
        records = session.scalars(select(HintFileRecord)).all()
        assert [(r.path, r.points, r.sha256) for r in records] == [
            (str((scan.parent / "hints" / "street.json").resolve()), 1, json.loads(data)["sha256"])
        ]


def test_the_page_is_self_contained(server) -> None:  # noqa: ANN001
    address, port = server.server_address[:2]
    conn = http.client.HTTPConnection(address, port, timeout=60)
    conn.request("GET", f"/?token={server.token}")
    response = conn.getresponse()
    page = response.read().decode()
    conn.close()
    assert response.status == 200
    policy = response.getheader("Content-Security-Policy")
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert f'const TOKEN = "{server.token}";' in page and "__TOKEN__" not in page
    assert "http://" not in page and "https://" not in page  # nothing to fetch from elsewhere


def _gray(jpeg: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG"
    return np.asarray(image.convert("L")).astype(int)


def test_a_region_of_the_scan_at_the_resolution_asked(server, scan: Path) -> None:  # noqa: ANN001
    original = np.asarray(Image.open(scan)).astype(int)
    status, jpeg = _request(server, "GET", "/api/image?x=10&y=5&w=40&h=20")
    assert status == 200
    region = _gray(jpeg)
    assert region.shape == (20, 40)  # never enlarged
    assert np.abs(region - original[5:25, 10:50]).max() <= 3  # the scan's own gray (JPEG rounding)
    status, jpeg = _request(server, "GET", "/api/image?x=0&y=0&w=96&h=64&long=48")
    assert status == 200 and _gray(jpeg).shape == (32, 48)  # long side at most `long`


def test_lightness_at_a_pixel(server, scan: Path) -> None:  # noqa: ANN001
    from restore.colour import gray_to_lightness

    gray = np.asarray(Image.open(scan))
    status, data = _request(server, "GET", "/api/lightness?x=70&y=30")
    assert status == 200
    answer = json.loads(data)
    assert (answer["x"], answer["y"]) == (70, 30)
    assert answer["l"] == pytest.approx(float(gray_to_lightness(gray)[30, 70]), abs=0.01)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/image?x=0&y=0&w=10", "missing parameter 'h' (a region needs x, y, w and h)"),
        ("/api/image?x=0&y=0&w=10&h=ten", "h must be an integer, got 'ten'"),
        ("/api/image?x=0&y=0&w=10&h=1.5", "h must be an integer, got '1.5'"),
        ("/api/image?x=90&y=0&w=10&h=10", "region x=90 y=0 w=10 h=10 is not inside the image (96x64 pixels)"),
        ("/api/image?x=-1&y=0&w=10&h=10", "is not inside the image"),
        ("/api/image?x=0&y=0&w=0&h=10", "is not inside the image"),
        ("/api/image?x=0&y=0&w=10&h=10&long=5000", "long must be between 16 and 4096, got 5000"),
        ("/api/image?x=0&y=0&w=10&h=10&long=8", "long must be between 16 and 4096, got 8"),
        ("/api/image?x=0&y=0&w=10&h=10&zoom=2", "unknown parameter 'zoom'"),
        ("/api/image?x=0&x=1&y=0&w=10&h=10", "a parameter is given more than once"),
        ("/api/lightness?x=1", "missing parameter 'y'"),
        ("/api/lightness?x=96&y=0", "(96, 0) is outside the image (96x64 pixels)"),
        ("/api/lightness?x=1&y=&", "y must be an integer, got ''"),
        ("/api/scan?verbose=1", "unknown parameter 'verbose'"),
    ],
)
def test_bad_image_and_lightness_requests_are_400(server, path: str, expected: str) -> None:  # noqa: ANN001
    status, data = _request(server, "GET", path)
    assert status == 400
    error = json.loads(data)["error"]
    assert expected in error and "\n" not in error


def test_render_is_the_full_resolution_result_and_writes_nothing(server, scan: Path) -> None:  # noqa: ANN001
    before = sorted(scan.parent.rglob("*"))
    status, jpeg = _post(server, "/api/render", {"points": [{"x": 70, "y": 30, "color": "#ff0000", "radius": 4}]})
    assert status == 200
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG" and image.size == (WIDTH, HEIGHT)
    rgb = np.asarray(image.convert("RGB")).astype(int)
    r, g, b = rgb[30, 70]
    assert r > g + 40 and r > b + 40  # red at the hint
    # The same image as the renderer's own with that hint (tests/restore/test_editing.py
    # compares that with the pipeline's colorize).
    from hints.schema import Hint, colour_to_ab

    direct = server.session.renderer.render_jpeg([Hint(70, 30, colour_to_ab("#ff0000"), 4)])
    assert np.abs(rgb - np.asarray(Image.open(io.BytesIO(direct)).convert("RGB")).astype(int)).max() == 0
    assert sorted(scan.parent.rglob("*")) == before


# -- hostile requests (issue 16): a one-line JSON 4xx each, never a dropped connection or a
# traceback in the server -----------------------------------------------------------------


def _one_line_error(status: int, data: bytes, expected_status: int | tuple[int, ...] = 400) -> str:
    statuses = expected_status if isinstance(expected_status, tuple) else (expected_status,)
    assert status in statuses, (status, data[:200])
    error = json.loads(data)["error"]
    assert isinstance(error, str) and "\n" not in error and len(error) < 400
    return error


HOSTILE_BODIES = [
    ("NaN", b'{"points": [{"x": NaN, "y": 1, "color": "#ff0000"}]}', "point 0: x: NaN is not allowed"),
    ("NaN colour", b'[{"x": 1, "y": 1, "color": {"lab": [50, NaN, 0]}}]', "color.lab[1]: NaN is not allowed"),
    ("Infinity radius", b'[{"x": 1, "y": 1, "color": "#ff0000", "radius": Infinity}]', "radius: Infinity is not allowed"),
    ("1e400", b'[{"x": 1e400, "y": 1, "color": "#ff0000"}]', "1e400 is not allowed"),
    ("400 digits", b'[{"x": 1' + b"0" * 400 + b', "y": 1, "color": "#ff0000"}]', "an integer of 401 digits"),
    ("5000 digits", b'[{"x": 1' + b"0" * 5000 + b', "y": 1, "color": "#ff0000"}]', "an integer of 5001 digits"),
    ("deep", b"[" * 100_000, "nested deeper than 32 levels"),
    ("deep closed", b"[" * 50_000 + b"]" * 50_000, "nested deeper than 32 levels"),
    ("radius beyond the image", b'[{"x": 1, "y": 1, "color": "#ff0000", "radius": 1e9}]', "radius 1e+09 is larger than the image"),
    ("too many points", json.dumps([{"x": 1, "y": 1, "color": "#ff0000"}] * 1001).encode(), "1001 points"),
    ("a number", b"5", "expected a hint document"),
    ("a string", b'"points"', "expected a hint document"),
    ("null", b"null", "expected a hint document"),
    ("points not a list", b'{"points": 5}', "points: 5 is not of type 'array'"),
    ("a point not an object", b"[5]", "point 0: 5 is not of type 'object'"),
    ("schema not a string", b'{"schema": 5, "points": []}', "schema must be"),
    ("image not an object", b'{"image": 5, "points": []}', "image: 5 is not of type 'object'"),
    ("not UTF-8", b"\xff\xfe\xfd{", "not valid JSON"),
    ("lone surrogate", b'[{"x": 1, "y": 1, "color": "#ff0000", "note": "\\udfff"}]', "note: a string holds an unpaired surrogate"),
    ("empty", b"", "not valid JSON"),
]


@pytest.mark.parametrize(("case", "body", "expected"), HOSTILE_BODIES, ids=[c[0] for c in HOSTILE_BODIES])
def test_hostile_bodies_are_one_line_400s(server, scan: Path, case: str, body: bytes, expected: str) -> None:  # noqa: ANN001
    for endpoint in ("/api/preview", "/api/render", "/api/save"):
        status, data = _request(server, "POST", endpoint, body)
        assert expected in _one_line_error(status, data), endpoint
    assert not (scan.parent / "hints").exists()


def _raw(server, request: bytes, pause: float = 0.0) -> tuple[int, dict[str, str], bytes]:  # noqa: ANN001
    """Send bytes as they are; the response's status, headers and body (which must arrive
    whole: a reset connection fails the test)."""
    with socket.create_connection(server.server_address[:2], timeout=30) as conn:
        conn.sendall(request)
        if pause:
            time.sleep(pause)
        reader = conn.makefile("rb")
        status = int(reader.readline().split()[1])
        headers = {}
        while (line := reader.readline().decode("latin-1").strip()):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers, reader.read(int(headers["content-length"]))


def _head(server, *lines: str, path: str = "/api/preview") -> bytes:  # noqa: ANN001
    port = server.server_address[1]
    return "\r\n".join([f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"{TOKEN_HEADER}: {server.token}", *lines, "", ""]).encode()


BODY = b'{"points": []}'


@pytest.mark.parametrize(
    ("case", "lines", "body", "expected_status", "expected"),
    [
        ("not a number", ["Content-Length: ten"], BODY, 400, "Content-Length must be a number of bytes, got 'ten'"),
        ("negative", ["Content-Length: -5"], BODY, 400, "Content-Length must be a number of bytes, got '-5'"),
        ("underscore", ["Content-Length: 1_4"], BODY, 400, "Content-Length must be a number of bytes"),
        ("huge number", ["Content-Length: " + "9" * 5000], BODY, 413, "request body over"),
        ("over the limit", [f"Content-Length: {MAX_BODY_BYTES + 1}"], BODY, 413, "request body over"),
        ("two lengths", ["Content-Length: 14", "Content-Length: 15"], BODY, 400, "Content-Length given more than once"),
        ("missing", [], BODY, 411, "a POST needs a Content-Length"),
        ("chunked", ["Transfer-Encoding: chunked"], b"e\r\n" + BODY + b"\r\n0\r\n\r\n", 411, "a POST needs a Content-Length"),
    ],
)
def test_a_bad_content_length_is_a_4xx_not_a_dropped_connection(  # noqa: PLR0913
    server, case: str, lines: list[str], body: bytes, expected_status: int, expected: str  # noqa: ANN001
) -> None:
    status, headers, data = _raw(server, _head(server, *lines) + body)
    assert expected in _one_line_error(status, data, expected_status)
    assert headers.get("connection") == "close"  # what follows the headers cannot be trusted as a request
    assert _request(server, "GET", "/api/scan")[0] == 200  # and the server goes on


def test_a_body_shorter_than_its_length_times_out_with_408(server, monkeypatch) -> None:  # noqa: ANN001
    from hints.editor import server as editor_server

    monkeypatch.setattr(editor_server._Handler, "timeout", 1.0)
    status, _, data = _raw(server, _head(server, "Content-Length: 100") + BODY)
    assert "request body not received" in _one_line_error(status, data, 408)


@pytest.mark.parametrize(
    "request_line",
    ["PUT /api/save HTTP/1.1", "DELETE / HTTP/1.1", "GET /api/scan HTTP/9.9", "GARBAGE", "GET /" + "a" * 70_000 + " HTTP/1.1"],
)
def test_malformed_requests_get_json_errors(server, request_line: str) -> None:  # noqa: ANN001
    port = server.server_address[1]
    status, _, data = _raw(server, f"{request_line}\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n".encode())
    _one_line_error(status, data, (400, 405, 414, 505))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/image?x=" + "9" * 5000 + "&y=0&w=1&h=1", "x is out of range"),
        ("/api/image?x=0&y=0&w=" + "9" * 19 + "&h=1", "is not inside the image"),
        ("/api/image?x=0&y=0&w=" + "9" * 30 + "&h=1", "w is out of range: more than 20 digits"),
        ("/api/image?x=0&y=0&w=10&h=10&long=-1", "long must be between"),
        ("/api/image?x=1e3&y=0&w=1&h=1", "x must be an integer, got '1e3'"),
        ("/api/image?x=%EF%BC%91&y=0&w=1&h=1", "x must be an integer"),  # a full-width digit one
        ("/api/image?x=%ff&y=0&w=1&h=1", "x must be an integer"),
        ("/api/lightness?x=NaN&y=0", "x must be an integer, got 'NaN'"),
        ("/api/lightness?x=-" + "9" * 40 + "&y=0", "x is out of range"),
        ("/api/lightness?x=-" + "9" * 19 + "&y=0", "is outside the image"),
        ("/api/lightness?x=1_0&y=0", "x must be an integer, got '1_0'"),
    ],
)
def test_hostile_queries_are_one_line_400s(server, path: str, expected: str) -> None:  # noqa: ANN001
    status, data = _request(server, "GET", path)
    assert expected in _one_line_error(status, data)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):  # noqa: ANN001, ANN201
    """One server for the property tests (hypothesis runs each test many times)."""
    folder = tmp_path_factory.mktemp("fuzz")
    x = np.linspace(40, 200, WIDTH)[None, :] + np.zeros((HEIGHT, 1))
    Image.fromarray(x.astype(np.uint8), "L").save(folder / "street.png")
    server = _serve(folder / "street.png")
    yield server
    server.shutdown()
    server.server_close()
    assert server.tracebacks == []


def _answered(status: int, data: bytes) -> None:
    assert 200 <= status < 300 or 400 <= status < 500, (status, data[:200])
    if status >= 400:
        _one_line_error(status, data, status)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=(documents | json_values).map(encode).map(str.encode) | st.binary(max_size=64),
    endpoint=st.sampled_from(["/api/preview", "/api/render", "/api/save"]),
)
def test_any_body_gets_a_2xx_or_a_one_line_4xx(shared_server, body: bytes, endpoint: str) -> None:  # noqa: ANN001
    _answered(*_request(shared_server, "POST", endpoint, body))
    assert shared_server.tracebacks == []


_query_values = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40).map(str), st.text(max_size=12),
    st.sampled_from(["NaN", "inf", "1e3", "9" * 5000, "", "%ff", "0x10"]),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(["/api/image", "/api/lightness", "/api/scan"]),
       query=st.dictionaries(st.sampled_from(["x", "y", "w", "h", "long", "zoom"]), _query_values, max_size=6))
def test_any_query_gets_a_2xx_or_a_one_line_4xx(shared_server, route: str, query: dict[str, str]) -> None:  # noqa: ANN001
    _answered(*_request(shared_server, "GET", f"{route}?{urlencode(query)}" if query else route))
    assert shared_server.tracebacks == []


class FakeRenderer:
    """Any Renderer will do (hints/editor/renderer.py): the server reads no image and runs no model."""

    name, sha256, width, height, model = "fake.tif", "ef" * 32, 40, 30, "fake"
    overview_size, preview_size = (40, 30), (20, 15)

    def __init__(self) -> None:
        self.previews: list[list[object]] = []

    def overview_jpeg(self) -> bytes:
        return b"overview"

    def region_jpeg(self, x: int, y: int, w: int, h: int, long_side: int) -> bytes:
        return f"{x},{y},{w},{h},{long_side}".encode()

    def lightness(self, x: int, y: int) -> float:
        return 12.345

    def preview_jpeg(self, hints) -> bytes:  # noqa: ANN001
        self.previews.append(list(hints))
        return b"preview"

    def render_jpeg(self, hints) -> bytes:  # noqa: ANN001
        return b"render"


def test_the_server_takes_any_renderer(tmp_path: Path) -> None:
    fake = FakeRenderer()
    target = tmp_path / "fake.json"
    server = make_server(fake, target)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        info = json.loads(_request(server, "GET", "/api/scan")[1])
        assert (info["name"], info["sha256"], info["model"], info["hints_path"]) == ("fake.tif", fake.sha256, "fake", str(target))
        assert info["overview"] == {"width": 40, "height": 30} and info["preview"] == {"width": 20, "height": 15}
        assert _request(server, "GET", "/api/image") == (200, b"overview")
        assert _request(server, "GET", "/api/image?x=1&y=2&w=3&h=4&long=20") == (200, b"1,2,3,4,20")
        assert json.loads(_request(server, "GET", "/api/lightness?x=1&y=2")[1]) == {"x": 1, "y": 2, "l": 12.35}
        # Hints reach the renderer resolved, in scan pixels, only when the whole document is valid.
        body = {"space": "normalized", "points": [{"x": 1.0, "y": 0.5, "color": "#ff0000", "note": "n"}]}
        assert _post(server, "/api/preview", body) == (200, b"preview")
        (hint,) = fake.previews[-1]
        assert (hint.x_px, hint.y_px, hint.note) == (39.0, 14.5, "n")
        assert _post(server, "/api/preview", {"points": [{"x": 40, "y": 0, "color": "#ff0000"}]})[0] == 400
        assert len(fake.previews) == 1
        assert _post(server, "/api/render", body) == (200, b"render")
        status, data = _post(server, "/api/save", body)
        assert status == 200 and json.loads(data)["path"] == str(target)
        assert json.loads(target.read_text())["image"] == {"sha256": fake.sha256, "path": "fake.tif"}
    finally:
        server.shutdown()
        server.server_close()
