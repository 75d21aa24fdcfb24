"""Synthetic scan damage on clean lightness, with its exact mask, to train and test the damage
segmenter; and the harmless texture of real scans (`add_nuisance`) that must not be flagged.

Every defect is drawn as an opacity layer (0..1, antialiased, soft-edged) and a target
lightness, composited one after another onto the image: bright defects (emulsion gone,
paper showing) go towards L* 85-100, dark ones (dirt, scratches on a negative) towards
L* 0-25. The mask marks the pixels the damage visibly changed (|change| > MASK_CHANGE_L),
not the whole footprint of a faint stroke. Widths are in pixels of the image given, lengths
in fractions of its size, so a crop upscaled before damage shows thin damage on smooth
content as a 6000 px scan does.

Kinds (each image draws its own mix, so some are mostly cracked, some scratched, some dusty):
scratches (thin curved tapering strokes, often in bundles of near-parallel strokes), dust
specks and emulsion flakes, hairs and lint, craquelure (branching crack networks that end
on each other), dried emulsion cracked all over (`network`: a net of jagged cracks around
irregular cells, over a patch of the picture or all of it, as on old studio portraits), folds and creases (a long bright or dark band), tears and missing corners
(paper-white regions with ragged edges).
"""

from __future__ import annotations

import cv2
import numpy as np

#: A pixel is damaged when the damage changed its lightness by more than this (CIE L*):
#: about the smallest step one sees on a smooth gray.
MASK_CHANGE_L = 3.0

KINDS = ("scratch", "dust", "hair", "crack", "fold", "tear", "network")
# How often each kind shows up in an image's mix (relative), and how many defects of it
# an image of REFERENCE_PX x REFERENCE_PX gets at amount 1.
_KIND_WEIGHT = {"scratch": 1.0, "dust": 1.0, "hair": 0.35, "crack": 0.9, "fold": 0.35, "tear": 0.3, "network": 0.5}
_KIND_COUNT = {"scratch": 4.0, "dust": 40.0, "hair": 2.0, "crack": 2.5, "fold": 1.0, "tear": 0.8, "network": 0.6}
REFERENCE_PX = 256
NETWORK_MAX_CELLS = 4000  # a cracked 24 MP scan's cells are larger rather than more
_AA = 4  # sub-pixel bits of cv2's drawing (coordinates in 1/16 px)


def synthesize_damage(l_hw: np.ndarray, rng: np.random.Generator, *, amount: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Return (damaged l_hw float32 L* 0..100, mask_hw bool of damaged pixels).

    `l_hw`: H x W float32 CIE L* (0..100), clean. `amount` scales how much damage is drawn
    (0: none; 1: a typical damaged print; 3: a badly damaged one). Deterministic given `rng`.
    """
    l_hw = np.asarray(l_hw, np.float32)
    if l_hw.ndim != 2:
        raise ValueError(f"l_hw must be H x W, got shape {l_hw.shape}")
    out = l_hw.copy()
    if amount > 0:
        height, width = l_hw.shape
        area_scale = height * width / REFERENCE_PX**2
        chosen = _kind_mix(rng)
        for kind in chosen:
            mean = _KIND_COUNT[kind] * amount * _count_scale(kind, area_scale) * rng.uniform(0.3, 1.7) / len(chosen) * 2
            count = rng.poisson(mean)
            if kind in ("scratch", "crack", "fold", "tear", "network") and count == 0 and kind == chosen[0]:
                count = 1  # the image's main kind shows at least once
            for _ in range(count):
                _DRAW[kind](out, rng)
    np.clip(out, 0.0, 100.0, out=out)
    mask_hw = np.abs(out - l_hw) > MASK_CHANGE_L
    return out, mask_hw


def add_nuisance(l_hw: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Film grain / blur / JPEG artefacts / halftone-like texture: NOT damage (no mask).

    A random subset of: paper texture, vignetting, halftone-like dots, film grain (fine
    or clumped), mild blur, JPEG compression (quality 30-90). `l_hw`: H x W float32 L*."""
    l_hw = np.asarray(l_hw, np.float32)
    height, width = l_hw.shape
    out = l_hw.copy()
    if rng.random() < 0.35:  # paper texture: low-frequency mottling plus fine fibre noise
        mottle = _smooth_noise(rng, height, width, rng.uniform(3, 12)) * rng.uniform(0.5, 2.5)
        fine = _smooth_noise(rng, height, width, 0.7) * rng.uniform(0.2, 1.2)
        out += mottle + fine
    if rng.random() < 0.3:  # vignetting: darker towards the corners
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        radius2 = ((yy - height / 2) / (height / 2)) ** 2 + ((xx - width / 2) / (width / 2)) ** 2
        out *= 1.0 - rng.uniform(0.03, 0.2) * radius2 / 2
    if rng.random() < 0.15:  # halftone-like dot screen
        period_px, angle = rng.uniform(2.5, 7.0), rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        u = (xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period_px
        v = (-xx * np.sin(angle) + yy * np.cos(angle)) * 2 * np.pi / period_px
        out += rng.uniform(0.8, 3.5) * np.cos(u) * np.cos(v)
    if rng.random() < 0.6:  # film grain, stronger in the mid-tones
        sigma_l = rng.uniform(0.5, 4.0)
        grain = rng.standard_normal((height, width)).astype(np.float32)
        if rng.random() < 0.5:  # clumped grain
            grain = cv2.GaussianBlur(grain, (0, 0), rng.uniform(0.5, 1.3))
            grain /= max(float(grain.std()), 1e-6)
        tone = 0.5 + np.clip(out, 0, 100) * (100 - np.clip(out, 0, 100)) / 2500
        out += sigma_l * grain * tone
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 1.0))
    if rng.random() < 0.4:
        out = jpeg(out, int(rng.integers(30, 91)))
    return np.clip(out, 0.0, 100.0).astype(np.float32)


def jpeg(l_hw: np.ndarray, quality: int) -> np.ndarray:
    """`l_hw` through 8-bit gray JPEG at `quality` (its blocking and ringing), back as L*."""
    gray_u8 = np.clip(l_hw * 2.55 + 0.5, 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", gray_u8, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 2.55


# --- the mix -------------------------------------------------------------------------------


def _kind_mix(rng: np.random.Generator) -> list[str]:
    """1-4 kinds for this image, the first its main one."""
    weights = np.array([_KIND_WEIGHT[k] for k in KINDS])
    n = int(rng.choice([1, 2, 3, 4], p=[0.3, 0.35, 0.25, 0.1]))
    picked = rng.choice(len(KINDS), size=n, replace=False, p=weights / weights.sum())
    return [KINDS[i] for i in picked]


def _count_scale(kind: str, area_scale: float) -> float:
    # Small things scale with area; long ones (a fraction of the image long) with its side.
    return area_scale if kind in ("dust", "hair") else max(area_scale, 0.25) ** 0.5


# --- drawing helpers -----------------------------------------------------------------------


def _composite(out: np.ndarray, alpha: np.ndarray, top: int, left: int, target_l: float | np.ndarray) -> None:
    """out[box] = mix of out and target_l by alpha (alpha covering the box at top, left)."""
    h, w = alpha.shape
    box = out[top : top + h, left : left + w]
    box += (target_l - box) * alpha[: box.shape[0], : box.shape[1]]


def _canvas_for(points_xy: np.ndarray, shape: tuple[int, int], margin_px: int) -> tuple[np.ndarray, int, int] | None:
    """A zeroed uint8 canvas covering points (clipped to the image), and its top, left."""
    height, width = shape
    left = max(int(np.floor(points_xy[:, 0].min())) - margin_px, 0)
    right = min(int(np.ceil(points_xy[:, 0].max())) + margin_px + 1, width)
    top = max(int(np.floor(points_xy[:, 1].min())) - margin_px, 0)
    bottom = min(int(np.ceil(points_xy[:, 1].max())) + margin_px + 1, height)
    if right <= left or bottom <= top:
        return None
    return np.zeros((bottom - top, right - left), np.uint8), top, left


def _fixed(points_xy: np.ndarray, top: int, left: int) -> np.ndarray:
    return np.round((points_xy - [left, top]) * (1 << _AA)).astype(np.int32)


def _smooth_1d(rng: np.random.Generator, n: int, knots: int) -> np.ndarray:
    """n samples of a smooth random curve in about -1..1 (knots random values, interpolated)."""
    values = rng.uniform(-1, 1, max(knots, 2))
    return np.interp(np.linspace(0, len(values) - 1, n), np.arange(len(values)), values)


def _smooth_noise(rng: np.random.Generator, height: int, width: int, sigma_px: float) -> np.ndarray:
    noise = rng.standard_normal((height, width)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), sigma_px)
    return noise / max(float(noise.std()), 1e-6)


def _path(rng: np.random.Generator, start_xy: np.ndarray, angle: float, length_px: float, *, bend: float, jitter: float, step_px: float = 1.5) -> np.ndarray:
    """N x 2 points (x, y) of a random curve: heading drifts smoothly by up to `bend` radians
    over its length and wiggles by `jitter` radians per step."""
    n = max(int(length_px / step_px), 2)
    heading = angle + bend * _smooth_1d(rng, n, 3 + int(rng.integers(0, 4))) + jitter * np.cumsum(rng.standard_normal(n)) / np.sqrt(max(n, 1)) * 2
    if jitter > 0:
        heading = heading + jitter * rng.standard_normal(n)
    steps = np.stack([np.cos(heading), np.sin(heading)], axis=1) * step_px
    return start_xy + np.cumsum(steps, axis=0)


def _normals(points_xy: np.ndarray) -> np.ndarray:
    tangent = np.gradient(points_xy, axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-6)
    return np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)


def _stroke(out: np.ndarray, points_xy: np.ndarray, width_px: np.ndarray, opacity: np.ndarray, target_l: float, *, soft_px: float) -> None:
    """A curve drawn with per-point width and opacity (tapering), blurred by soft_px."""
    margin = int(np.ceil(width_px.max() + 3 * soft_px + 2))
    canvas_box = _canvas_for(points_xy, out.shape, margin)
    if canvas_box is None:
        return
    canvas, top, left = canvas_box
    fixed = _fixed(points_xy, top, left)
    chunk = 6
    for i in range(0, len(fixed) - 1, chunk):
        segment = fixed[i : i + chunk + 1]
        mid = min(i + chunk // 2, len(width_px) - 1)
        thickness = max(int(round(width_px[mid])), 1)
        # A stroke under a pixel wide is a 1 px line at lower opacity (its coverage).
        level = opacity[mid] * min(width_px[mid], 1.0)
        colour = int(round(255 * np.clip(level, 0, 1)))
        if colour > 0:
            cv2.polylines(canvas, [segment], False, colour, thickness, cv2.LINE_AA, _AA)
    alpha = canvas.astype(np.float32) / 255
    if soft_px > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), soft_px)
    _composite(out, alpha, top, left, target_l)


def _tone(rng: np.random.Generator, bright_p: float) -> float:
    """The lightness a defect goes to: paper-bright (emulsion gone) or dark (dirt, negative)."""
    return float(rng.uniform(84, 100)) if rng.random() < bright_p else float(rng.uniform(0, 28))


def _strength(rng: np.random.Generator) -> float:
    """Peak opacity: most damage clearly visible (emulsion gone is opaque), some faint."""
    return float(rng.uniform(0.2, 0.5)) if rng.random() < 0.1 else float(rng.uniform(0.75, 1.0))


def _width(rng: np.random.Generator) -> float:
    """A stroke's width in pixels: mostly 1-4, now and then up to 8."""
    return float(rng.choice([1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0], p=[0.3, 0.2, 0.2, 0.13, 0.09, 0.05, 0.03]) * rng.uniform(0.8, 1.2))


def _random_point(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    height, width = shape
    return np.array([rng.uniform(0, width), rng.uniform(0, height)])


def _taper(n: int, rng: np.random.Generator) -> np.ndarray:
    """0..1 along a stroke: ends fade over a random share of its length."""
    t = np.linspace(0, 1, n)
    fade_in, fade_out = rng.uniform(0.02, 0.3, 2)
    return np.clip(np.minimum(t / fade_in, (1 - t) / fade_out), 0, 1) ** 0.7


# --- the kinds -----------------------------------------------------------------------------


def _scratch(out: np.ndarray, rng: np.random.Generator) -> None:
    """One scratch, or a bundle of near-parallel ones (film dragged over grit)."""
    side = max(out.shape)
    length = side * (rng.uniform(0.3, 1.2) if rng.random() < 0.6 else rng.uniform(0.03, 0.3))
    start = _random_point(rng, out.shape)
    angle = rng.uniform(0, 2 * np.pi)
    base = _path(rng, start - length / 2 * np.array([np.cos(angle), np.sin(angle)]), angle, length, bend=rng.uniform(0, 0.5), jitter=rng.uniform(0, 0.02))
    bright = 0.85 if rng.random() < 0.85 else 0.1
    count = 1 if rng.random() < 0.55 else int(rng.integers(2, 9))
    offset = 0.0
    for i in range(count):
        n = len(base)
        lo, hi = (0, n) if i == 0 else np.sort(rng.integers(0, n, 2))
        if hi - lo < 4:
            continue
        points = base[lo:hi] + _normals(base)[lo:hi] * offset
        points = points + _normals(points) * _smooth_1d(rng, len(points), 4)[:, None] * rng.uniform(0, 1.5)
        m = len(points)
        width = _width(rng) * (0.7 + 0.3 * _smooth_1d(rng, m, 5)) * np.maximum(_taper(m, rng), 0.3)
        opacity = _strength(rng) * _taper(m, rng) * (0.88 + 0.12 * _smooth_1d(rng, m, 8))
        _stroke(out, points, width, opacity, _tone(rng, bright), soft_px=rng.uniform(0.0, 0.6))
        offset += rng.choice([-1, 1]) * rng.uniform(2, 25)


def _dust(out: np.ndarray, rng: np.random.Generator) -> None:
    """A speck (1-6 px), sometimes a larger flake of lost emulsion with a ragged outline."""
    centre = _random_point(rng, out.shape)
    flake = rng.random() < 0.06
    radius = rng.uniform(2.5, 8.0) if flake else rng.uniform(0.5, 3.0)
    canvas_box = _canvas_for(centre[None], out.shape, int(np.ceil(radius * 1.6 + 3)))
    if canvas_box is None:
        return
    canvas, top, left = canvas_box
    n = 12
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    radii = radius * rng.uniform(0.55 if flake else 0.7, 1.3, n) * rng.uniform(0.5, 1.0, 1)
    outline = centre + np.stack([np.cos(angles), np.sin(angles)], 1) * radii[:, None]
    cv2.fillPoly(canvas, [_fixed(outline, top, left)], 255, cv2.LINE_AA, _AA)
    alpha = canvas.astype(np.float32) / 255 * _strength(rng)
    alpha = cv2.GaussianBlur(alpha, (0, 0), rng.uniform(0.3, 0.8))
    _composite(out, alpha, top, left, _tone(rng, 0.85 if flake else 0.5))


def _hair(out: np.ndarray, rng: np.random.Generator) -> None:
    """A hair or fibre of lint: a thin curly curve."""
    side = max(out.shape)
    length = rng.uniform(0.04, 0.35) * side
    points = _path(rng, _random_point(rng, out.shape), rng.uniform(0, 2 * np.pi), length, bend=rng.uniform(1.0, 6.0), jitter=rng.uniform(0.0, 0.08), step_px=1.0)
    width = np.full(len(points), rng.uniform(0.8, 2.5)) * (0.8 + 0.2 * _smooth_1d(rng, len(points), 6))
    opacity = _strength(rng) * np.maximum(_taper(len(points), rng), 0.2)
    _stroke(out, points, width, opacity, _tone(rng, 0.4), soft_px=rng.uniform(0.2, 0.7))


def _crack(out: np.ndarray, rng: np.random.Generator) -> None:
    """Craquelure: jagged cracks that branch and end on each other, from one origin."""
    side = max(out.shape)
    bright = 0.8 if rng.random() < 0.85 else 0.15
    tone = _tone(rng, bright)
    base_width = rng.uniform(0.8, 3.0) if rng.random() < 0.85 else rng.uniform(3.0, 6.0)
    strength = _strength(rng)
    shadow = rng.random() < 0.3  # a dark edge beside a bright crack (the lifted emulsion's shade)
    start = _random_point(rng, out.shape)
    pending = [(start, rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 1.0) * side, 0)]
    drawn = 0
    taken = np.zeros(out.shape, np.uint8)  # where cracks run already: new ones end there
    while pending and drawn < 40:
        origin, angle, length, depth = pending.pop()
        points = _path(rng, origin, angle, length, bend=rng.uniform(0.3, 1.5), jitter=rng.uniform(0.05, 0.35), step_px=2.0)
        # End where the crack leaves the image or meets an earlier one (after leaving its origin).
        xi, yi = np.floor(points[:, 0]).astype(int), np.floor(points[:, 1]).astype(int)
        inside = (xi >= 0) & (xi < out.shape[1]) & (yi >= 0) & (yi < out.shape[0])
        hits = ~inside
        hits[inside] = taken[yi[inside], xi[inside]] > 0
        hits[:4] = False
        first = int(np.argmax(hits)) if hits.any() else len(points)
        stop = first + 1 if first < len(points) and inside[first] else first
        points = points[:stop]
        if len(points) < 3:
            continue
        drawn += 1
        m = len(points)
        width = base_width * (0.6 + 0.4 * _smooth_1d(rng, m, 6)) * (0.75**depth) * np.maximum(_taper(m, rng), 0.35)
        width = np.maximum(width, 0.6)
        opacity = strength * (0.8 + 0.2 * _smooth_1d(rng, m, 10)) * np.maximum(_taper(m, rng), 0.4)
        if shadow:
            dark = points + _normals(points) * (width[:, None] / 2 + 1.0)
            _stroke(out, dark, np.maximum(width * 0.7, 1.0), opacity * 0.6, float(rng.uniform(5, 30)), soft_px=0.6)
        _stroke(out, points, width, opacity, tone, soft_px=rng.uniform(0.0, 0.6))
        cv2.polylines(taken, [np.round(points).astype(np.int32)], False, 1, 3)
        if depth < 3:
            for _ in range(rng.poisson(2.5 if depth == 0 else 1.5)):
                k = int(rng.integers(0, m))
                heading = np.arctan2(*(points[min(k + 1, m - 1)] - points[max(k - 1, 0)])[::-1])
                branch = heading + rng.choice([-1, 1]) * rng.uniform(0.4, 1.6)
                pending.append((points[k] + 2.5 * np.array([np.cos(branch), np.sin(branch)]), branch, length * rng.uniform(0.2, 0.7), depth + 1))


def _network(out: np.ndarray, rng: np.random.Generator) -> None:
    """Emulsion cracked all over: the walls of irregular cells (a Voronoi diagram of random
    points, 18-90 px apart), each a jagged crack, some missing, over the parts of the picture
    a smooth random field marks (a patch, or everything)."""
    height, width = out.shape
    cell_px = rng.uniform(18, 90)
    n = int(np.clip(height * width / cell_px**2, 4, NETWORK_MAX_CELLS))
    points = np.stack([rng.uniform(0, width, n), rng.uniform(0, height, n)], 1).astype(np.float32)
    subdiv = cv2.Subdiv2D((-width, -height, 3 * width, 3 * height))
    subdiv.insert([(float(x), float(y)) for x, y in points])
    facets, _ = subdiv.getVoronoiFacetList([])
    region = _coarse_noise(rng, height, width, rng.uniform(0.08, 0.25)) + rng.uniform(-0.5, 1.5)
    tone, strength = _tone(rng, 0.9), _strength(rng)
    base_width = rng.uniform(0.8, 3.5)
    keep = rng.uniform(0.5, 0.9)
    seen: set[tuple[float, ...]] = set()
    for facet in facets:
        for a, b in zip(facet, np.roll(facet, -1, axis=0)):
            key = tuple(np.round(np.concatenate([np.minimum(a, b), np.maximum(a, b)]), 1))
            if key in seen:  # a wall is shared by two cells: drawn once
                continue
            seen.add(key)
            mid = (a + b) / 2
            if not (0 <= mid[0] < width and 0 <= mid[1] < height) or region[int(mid[1]), int(mid[0])] < 0 or rng.random() > keep:
                continue
            length = float(np.linalg.norm(b - a))
            m = max(int(length / 1.5), 3)
            wall = a + (b - a) * np.linspace(0, 1, m)[:, None]
            wall = wall + _normals(wall) * (rng.standard_normal(m) * 0.35 + _smooth_1d(rng, m, 3) * length * 0.12)[:, None]
            widths = np.maximum(base_width * (0.6 + 0.4 * _smooth_1d(rng, m, 4)), 0.6)
            opacity = strength * (0.75 + 0.25 * _smooth_1d(rng, m, 4))
            _stroke(out, wall, widths, opacity, tone, soft_px=rng.uniform(0.0, 0.5))


def _coarse_noise(rng: np.random.Generator, height: int, width: int, sigma_fraction: float) -> np.ndarray:
    """Smooth noise (unit deviation) whose blobs are sigma_fraction of the image's longer side,
    made at 64 px and enlarged (a blur that wide at full size would take minutes on 24 MP)."""
    scale = 64 / max(height, width)
    small = _smooth_noise(rng, max(int(round(height * scale)), 1), max(int(round(width * scale)), 1), max(sigma_fraction * 64, 0.5))
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _fold(out: np.ndarray, rng: np.random.Generator) -> None:
    """A fold or crease: a long line with a bright core and/or a dark band a few px wide."""
    height, width = out.shape
    centre = _random_point(rng, out.shape)
    angle = rng.uniform(0, np.pi)
    normal = np.array([-np.sin(angle), np.cos(angle)])
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    along = (xx - centre[0]) * np.cos(angle) + (yy - centre[1]) * np.sin(angle)
    across = (xx - centre[0]) * normal[0] + (yy - centre[1]) * normal[1]
    side = max(height, width)
    knots = rng.uniform(-1, 1, 6) * rng.uniform(0, 4)
    wobble = np.interp(along, np.linspace(-side, side, len(knots)), knots).astype(np.float32)
    distance = np.abs(across - wobble)
    core_px = rng.uniform(0.6, 2.0)
    band_px = rng.uniform(1.0, 3.0)
    strength = _strength(rng)
    # Broken along its length: the crease shows more in some places than others.
    presence = np.clip(0.6 + 0.6 * np.interp(along, np.linspace(-side, side, 12), rng.uniform(-1, 1, 12)), 0, 1).astype(np.float32)
    half = rng.uniform(0.15, 0.6) * side  # how far the fold runs each way from its centre
    presence *= np.clip((half - np.abs(along)) / 8 + 0.5, 0, 1)
    if rng.random() < 0.7:
        core = np.exp(-0.5 * (distance / core_px) ** 2) * strength * presence
        _composite(out, core, 0, 0, float(rng.uniform(85, 100)))
    if rng.random() < 0.7:
        signed = across - wobble
        offset = (core_px + band_px) * rng.choice([-1, 1])
        band = np.exp(-0.5 * ((signed - offset) / band_px) ** 2) * strength * rng.uniform(0.3, 0.7) * presence
        _composite(out, band, 0, 0, float(rng.uniform(0, 30)))


def _tear(out: np.ndarray, rng: np.random.Generator) -> None:
    """A missing corner or a tear from an edge: paper-white, with a ragged edge."""
    height, width = out.shape
    side = min(height, width)
    size = rng.uniform(0.04, 0.18) * side
    canvas = np.zeros((height, width), np.uint8)
    if rng.random() < 0.5:  # missing corner
        corner = np.array([rng.choice([0, width]), rng.choice([0, height])], float)
        a = corner + [(-1 if corner[0] else 1) * size * rng.uniform(0.5, 1.5), 0]
        b = corner + [0, (-1 if corner[1] else 1) * size * rng.uniform(0.5, 1.5)]
        edge = a + (b - a) * np.linspace(0, 1, 40)[:, None]
        edge += _normals(edge) * (_smooth_1d(rng, 40, 8) * size * 0.15 + rng.standard_normal((40,)) * size * 0.02)[:, None]
        polygon = np.concatenate([corner[None], edge])
    else:  # a wedge-shaped tear from a random edge inwards
        along = rng.uniform(0.1, 0.9)
        edge_choice = int(rng.integers(0, 4))
        base = [np.array([along * width, 0.0]), np.array([along * width, height]), np.array([0.0, along * height]), np.array([width, along * height])][edge_choice]
        inward = [np.array([0, 1.0]), np.array([0, -1.0]), np.array([1.0, 0]), np.array([-1.0, 0])][edge_choice]
        spine = _path(rng, base, np.arctan2(inward[1], inward[0]) + rng.uniform(-0.5, 0.5), size, bend=0.6, jitter=0.2, step_px=max(size / 30, 1.0))
        half_width = rng.uniform(1.5, 0.12 * size + 2) * np.linspace(1, 0.1, len(spine))
        normals = _normals(spine)
        left = spine + normals * (half_width * rng.uniform(0.6, 1.4, len(spine)))[:, None]
        right = spine - normals * (half_width * rng.uniform(0.6, 1.4, len(spine)))[:, None]
        polygon = np.concatenate([base[None] - inward * 5, left, right[::-1]])
    cv2.fillPoly(canvas, [_fixed(polygon, 0, 0)], 255, cv2.LINE_AA, _AA)
    alpha = cv2.GaussianBlur(canvas.astype(np.float32) / 255, (0, 0), rng.uniform(0.3, 0.8))
    paper = float(rng.uniform(82, 99)) + _smooth_noise(rng, height, width, 2.0) * rng.uniform(0.3, 1.5)
    _composite(out, alpha, 0, 0, paper)


_DRAW = {"scratch": _scratch, "dust": _dust, "hair": _hair, "crack": _crack, "fold": _fold, "tear": _tear, "network": _network}
