"""Series consistency: a reference photo's colours carried to a scan where the same things
appear, and nowhere else (`--reference`).

Matching is by correspondence, not by global colour statistics. At a working resolution
(MATCH_PX on the long side) both lightness images get SIFT keypoints (OpenCV); a keypoint
pair is kept when each is the other's nearest neighbour and clearly nearer than the
second nearest (Lowe's ratio). The kept pairs are explained by up to MAX_PLANES
homographies found one after another by RANSAC (MAGSAC++): one for a reframed, rescaled,
rotated or re-photographed flat scene, several for a street's facades and ground. A plane
needs MIN_INLIERS agreeing pairs; an unrelated reference gets none, and then nothing at all
changes.

Each plane warps the reference's L*a*b* onto the scan, within reach of its own inliers,
and every pixel gets a confidence (0..1) from three things:
- lightness compatibility: the scan's L* against the warped reference's after a tone fit
  (a * L + b over the plane, for lighting, exposure and fading), Gaussian in the residual;
- local agreement: the normalised cross-correlation of the two lightnesses in a small
  window (the same structure at the same place; flat against flat counts as agreeing);
- the plane's support (its inlier count).
Where several planes reach a pixel, the most confident one gives its colour.

The pipeline (restore/passes.py) brings the confident colours in softly: as hints to the
models that take hints (never held exactly: matches can be wrong), and as a pull of the
result's a*b* towards them weighted by the confidence. Curator hints are held afterwards,
so they win. Where nothing matched confidently, the model's own colours stay.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from restore.colour import rgb_to_lab
from restore.scanio.probe import ScanError
from restore.scanio.read import fit_long_side, read_colour

#: Long side (px) of the images matched; the scan's match is resized to its working size.
MATCH_PX = 1024
SIFT_FEATURES = 4000
RATIO = 0.8  # Lowe's ratio test
RANSAC_PX = 3.0  # reprojection error (px at MATCH_PX) for a pair to agree with a plane
MIN_INLIERS = 20  # agreeing pairs a plane needs
MAX_PLANES = 3
#: Inliers at which a plane's support counts fully (fewer: proportionally less).
FULL_SUPPORT_INLIERS = 60
#: A plane reaches this far (in MATCH_PX px) beyond the convex hull of its inliers.
PLANE_REACH_PX = 48
#: Lightness residual (CIE L*, after the tone fit) at which confidence falls to e^-1/2.
LIGHTNESS_SIGMA = 8.0
#: Window (px at MATCH_PX) of the local agreement, and the L* spread below which it is flat.
AGREEMENT_WINDOW_PX = 9
FLAT_STD_L = 1.5


class ReferenceError(Exception):
    """A reference that cannot be used; the message names it and says why (one line)."""


@dataclass(frozen=True)
class Reference:
    """A reference image: its name (for messages), the SHA-256 of its file (what results
    record), and its CIE L*a*b* at no more than MATCH_PX on the long side."""

    name: str
    sha256: str
    lab_hw3: np.ndarray


@dataclass(frozen=True)
class ReferenceMatch:
    """Where a reference matched a scan, on the scan's grid at matching resolution: the
    reference's a*b* there (H x W x 2 float32) and the confidence of each pixel (H x W
    float32, 0 where nothing matched)."""

    ab_hw2: np.ndarray
    confidence_hw: np.ndarray
    planes: int
    inliers: int
    pairs: int

    @property
    def coverage(self) -> float:
        """The share of the scan matched with confidence above one half."""
        return float((self.confidence_hw > 0.5).mean())

    def summary(self) -> dict[str, object]:
        return {"planes": self.planes, "inliers": self.inliers, "pairs": self.pairs, "coverage": round(self.coverage, 4)}


def reference_from_file(path: Path) -> Reference:
    """A reference from a colour image file (any format and depth a scan may have). Raises
    ReferenceError for a file that cannot be read or holds no colour."""
    path = Path(path)
    try:
        rgb, sha256 = read_colour(path)
    except ScanError as exc:
        raise ReferenceError(f"reference {path}: {exc.reason}") from None
    except OSError as exc:  # missing, unreadable, a FIFO or device
        raise ReferenceError(f"reference {path}: {exc.strerror or exc}") from None
    lab = reference_lab(rgb)
    if float(np.hypot(lab[..., 1], lab[..., 2]).mean()) < 1.0:
        raise ReferenceError(f"reference {path}: it has no colour (a gray image gives nothing to carry)")
    return Reference(path.name, sha256, lab)


def reference_from_array(rgb: np.ndarray, name: str = "reference") -> Reference:
    """A reference from H x W x 3 uint8 or uint16 RGB in memory (its SHA-256: of the array's bytes)."""
    rgb = np.ascontiguousarray(rgb)
    return Reference(name, hashlib.sha256(rgb.tobytes()).hexdigest(), reference_lab(rgb))


def reference_lab(rgb: np.ndarray) -> np.ndarray:
    """H x W x 3 RGB (uint8 or uint16) -> float32 L*a*b* at no more than MATCH_PX on the long side."""
    height, width = rgb.shape[:2]
    small_h, small_w = fit_long_side(height, width, MATCH_PX)
    if (small_h, small_w) != (height, width):
        rgb = cv2.resize(rgb, (small_w, small_h), interpolation=cv2.INTER_AREA)
    return rgb_to_lab(rgb).astype(np.float32)


def match_reference(l_hw: np.ndarray, reference: Reference) -> ReferenceMatch:
    """Match `reference` to a scan's L* (H x W float32, any size: matched at no more than
    MATCH_PX on the long side; the result is on that reduced grid)."""
    height, width = l_hw.shape
    small_h, small_w = fit_long_side(height, width, MATCH_PX)
    target_l = cv2.resize(l_hw, (small_w, small_h), interpolation=cv2.INTER_AREA) if (small_h, small_w) != (height, width) else l_hw
    target_l = np.ascontiguousarray(target_l, np.float32)
    # The best plane's colours and confidence so far, per pixel (none yet: zero confidence).
    best_ab, best_confidence = np.zeros((small_h, small_w, 2), np.float32), np.zeros((small_h, small_w), np.float32)
    target_points, reference_points = _pairs(target_l, reference.lab_hw3[..., 0])
    if len(target_points) < MIN_INLIERS:
        return ReferenceMatch(best_ab, best_confidence, 0, 0, len(target_points))
    remaining = np.ones(len(target_points), bool)
    planes = inliers_total = 0
    for _ in range(MAX_PLANES):
        if remaining.sum() < MIN_INLIERS:
            break
        plane = _plane(reference_points[remaining], target_points[remaining])
        if plane is None:
            break
        homography, inlier_flags = plane
        inliers = np.flatnonzero(remaining)[inlier_flags]
        remaining[inliers] = False
        warped = _warp(reference.lab_hw3, homography, (small_h, small_w))
        if warped is None:
            continue
        confidence = _confidence(target_l, warped, target_points[inliers])
        better = confidence > best_confidence
        best_confidence[better] = confidence[better]
        best_ab[better] = warped[..., 1:][better]
        planes += 1
        inliers_total += len(inliers)
    return ReferenceMatch(best_ab, best_confidence, planes, inliers_total, len(target_points))


def _as_u8(l_hw: np.ndarray) -> np.ndarray:
    return np.clip(l_hw * 2.55 + 0.5, 0, 255).astype(np.uint8)


def _pairs(target_l: np.ndarray, reference_l: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n x 2, n x 2) float32 (x, y) keypoint positions in the scan and the reference of the
    pairs that are mutual nearest neighbours passing the ratio test."""
    sift = cv2.SIFT_create(nfeatures=SIFT_FEATURES)
    target_keys, target_desc = sift.detectAndCompute(_as_u8(target_l), None)
    reference_keys, reference_desc = sift.detectAndCompute(_as_u8(reference_l), None)
    empty = np.zeros((0, 2), np.float32)
    if target_desc is None or reference_desc is None or len(target_keys) < 2 or len(reference_keys) < 2:
        return empty, empty
    matcher = cv2.BFMatcher(cv2.NORM_L2)
    forward = matcher.knnMatch(target_desc, reference_desc, k=2)
    backward = {m.queryIdx: m.trainIdx for m in matcher.match(reference_desc, target_desc)}
    kept = [
        pair[0]
        for pair in forward
        if len(pair) == 2 and pair[0].distance < RATIO * pair[1].distance and backward.get(pair[0].trainIdx) == pair[0].queryIdx
    ]
    if not kept:
        return empty, empty
    target_points = np.float32([target_keys[m.queryIdx].pt for m in kept])
    reference_points = np.float32([reference_keys[m.trainIdx].pt for m in kept])
    return target_points, reference_points


def _plane(reference_points: np.ndarray, target_points: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The homography (reference -> scan) most pairs agree with and which pairs do, or None
    if fewer than MIN_INLIERS agree or it folds or squashes the image implausibly."""
    homography, flags = cv2.findHomography(reference_points, target_points, cv2.USAC_MAGSAC, RANSAC_PX, maxIters=2000, confidence=0.999)
    if homography is None or flags is None:
        return None
    inliers = flags.ravel().astype(bool)
    if inliers.sum() < MIN_INLIERS:
        return None
    linear = homography[:2, :2] / homography[2, 2]
    scale = abs(float(np.linalg.det(linear)))
    if not 1 / 16 < scale < 16 or not np.all(np.isfinite(homography)):
        return None
    return homography, inliers


def _warp(reference_lab: np.ndarray, homography: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray | None:
    """The reference's L*a*b* on the scan's grid, L* = -1 where it does not reach."""
    height, width = size_hw
    warped = cv2.warpPerspective(
        reference_lab, homography, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(-1.0, 0.0, 0.0)
    )
    return warped if (warped[..., 0] >= 0).any() else None


def _confidence(target_l: np.ndarray, warped: np.ndarray, inlier_points: np.ndarray) -> np.ndarray:
    """Each pixel's confidence in the warped reference (see the module docstring)."""
    height, width = target_l.shape
    reach = np.zeros((height, width), np.uint8)
    hull = cv2.convexHull(inlier_points.reshape(-1, 1, 2).astype(np.float32)).astype(np.int32)
    cv2.fillConvexPoly(reach, hull, 1)
    size = 2 * PLANE_REACH_PX + 1
    reach = cv2.dilate(reach, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))).astype(bool)
    valid = reach & (cv2.erode((warped[..., 0] >= 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    if valid.sum() < 16:
        return np.zeros((height, width), np.float32)
    reference_l = np.where(valid, warped[..., 0], 0).astype(np.float32)
    toned = _tone_fit(reference_l[valid], target_l[valid])(reference_l)
    lightness = np.exp(-0.5 * ((target_l - toned) / LIGHTNESS_SIGMA) ** 2)
    agreement = _agreement(target_l, toned)
    support = min(1.0, len(inlier_points) / FULL_SUPPORT_INLIERS)
    confidence = np.where(valid, lightness * agreement * support, 0.0).astype(np.float32)
    # A pixel's confidence is its neighbourhood's: isolated agreements are chance.
    return cv2.blur(confidence, (5, 5)) * valid


def _tone_fit(reference_l: np.ndarray, target_l: np.ndarray):  # noqa: ANN202
    """L* -> L*: the line (a * L + b, a in 0.5..2) best mapping the reference's lightness to
    the scan's, refitted once without the worst residuals (occlusions, changed things)."""
    keep = np.ones(reference_l.shape, bool)
    a, b = 1.0, 0.0
    for _ in range(2):
        x, y = reference_l[keep].astype(np.float64), target_l[keep].astype(np.float64)
        if len(x) < 16 or float(x.std()) < 1e-3:
            break
        a, b = np.polyfit(x, y, 1)
        a = float(np.clip(a, 0.5, 2.0))
        b = float(np.mean(y - a * x))
        residual = np.abs(target_l - (a * reference_l + b))
        keep = residual <= np.percentile(residual, 80)
    return lambda l_hw: (a * l_hw + b).astype(np.float32)


def _agreement(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Local normalised cross-correlation (clipped to 0..1) of two lightness images in
    AGREEMENT_WINDOW_PX windows; 1 where both are flat, 0 where one only is."""
    window = (AGREEMENT_WINDOW_PX, AGREEMENT_WINDOW_PX)
    mean_1, mean_2 = cv2.blur(first, window), cv2.blur(second, window)
    var_1 = np.maximum(cv2.blur(first * first, window) - mean_1**2, 0)
    var_2 = np.maximum(cv2.blur(second * second, window) - mean_2**2, 0)
    covariance = cv2.blur(first * second, window) - mean_1 * mean_2
    flat_1, flat_2 = var_1 < FLAT_STD_L**2, var_2 < FLAT_STD_L**2
    ncc = covariance / np.sqrt(np.maximum(var_1 * var_2, 1e-6))
    return np.where(flat_1 & flat_2, 1.0, np.where(flat_1 | flat_2, 0.0, np.clip(ncc, 0.0, 1.0))).astype(np.float32)
