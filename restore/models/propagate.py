"""`propagate`: colorization by optimisation (Levin, Lischinski and Weiss, SIGGRAPH 2004).

No weights: chroma spreads from the hints to neighbouring pixels of similar lightness.
Neighbouring pixels (8-connected) are tied with Levin's affinity
exp(-(Y_r - Y_s)^2 / (2 sigma^2)), sigma^2 the local lightness variance (times 0.6, with
a floor); hinted pixels keep their hint, and every other pixel's a* and b* minimise the
affinity-weighted squared differences to its neighbours. This is the symmetric (graph
Laplacian, as in random-walker segmentation) form of Levin's energy: the system is
symmetric positive definite, so it is solved by conjugate gradients preconditioned with
classical (Ruge-Stueben) algebraic multigrid from pyamg; small systems (`lite`'s residual
solve, 112 x 112) are factorised directly (why: docs/benchmarks.md, "Solvers").
A tiny pull towards zero chroma keeps regions no hint reaches gray. Without hints the
result is gray.
"""

from __future__ import annotations

import cv2
import numpy as np
from pyamg import ruge_stuben_solver
from scipy.sparse import coo_matrix, diags
from scipy.sparse.linalg import splu

from restore.models.base import ModelSpec, check_batch
from restore.models.registry import register

SPEC = ModelSpec(
    name="propagate",
    description="hint propagation by optimisation (Levin et al. 2004); needs hints, no weights",
    input_px=384,
    receptive_field_px=384,  # one solve couples the whole patch
    takes_hints=True,
    licence="MIT (part of photochrom; no weights)",
    batch_size=1,
    needs_hints=True,
    working_px=384,  # one patch: the whole scan at this long side (more would split the solve)
)

# Levin et al.'s constants: the variance is scaled by 0.6, with a floor (Y in 0..1).
_VARIANCE_SCALE = 0.6
_VARIANCE_FLOOR = 2e-6
_PAIR_OFFSETS = [(0, 1), (1, 0), (1, 1), (1, -1)]  # 8-connected, each pair once
_PULL_TO_GRAY = 1e-6
# Cap on the affinity's scale (sigma <= 0.05 in Y, 5 L* units). Levin's local variance is
# large right at an edge, so without a cap the links across it keep about 2% weight, and a
# long edge out-conducts a point hint: colour leaks across (in the test, a hint's region
# reached only half its colour). On 6 dev photos, PSNR with 10 / 100 hints was 27.00 / 29.41
# dB uncapped, 27.01 / 29.45 capped at 0.1 and 27.07 / 29.63 capped at 0.05.
_VARIANCE_CAP = 0.05**2
# Up to this many unknowns a sparse LU (SuperLU in symmetric mode: the system is symmetric
# positive definite, so no pivoting) is faster than AMG's setup plus two CG solves. Measured
# on one core (factorisation + both channels, against setup + both solves, random right-hand
# sides): 112 x 112 (12.5k, lite's residual solve) 42 vs 103 ms, 128 x 128 86 vs 120 ms,
# 144 x 144 92 vs 130 ms, but with the right-hand sides hints give, CG needs fewer iterations
# (15 at 112 x 112, 2 x 35 ms), so the bound sits below where they would cross.
DIRECT_MAX_UNKNOWNS = 16_384


def propagate(
    l_hw: np.ndarray, hint_ab_hw2: np.ndarray, hint_mask_hw: np.ndarray, pull: float = _PULL_TO_GRAY, tol: float = 1e-6
) -> np.ndarray:
    """a*b* (H x W x 2 float32) spreading the hinted pixels' chroma by lightness similarity;
    `pull` ties every pixel to zero chroma (larger: hints reach less far); `tol` is the AMG
    solver's relative residual."""
    height, width = l_hw.shape
    hinted = (hint_mask_hw > 0).ravel()
    if not hinted.any():
        return np.zeros((height, width, 2), np.float32)
    y = l_hw.astype(np.float64) / 100.0
    mean = cv2.blur(y, (3, 3), borderType=cv2.BORDER_REFLECT)
    variance = np.clip(_VARIANCE_SCALE * (cv2.blur(y * y, (3, 3), borderType=cv2.BORDER_REFLECT) - mean**2), _VARIANCE_FLOOR, _VARIANCE_CAP)
    index = np.arange(height * width).reshape(height, width)
    rows, cols, weights = [], [], []
    for dy, dx in _PAIR_OFFSETS:  # each neighbouring pair once
        here = (slice(max(0, -dy), height - max(0, dy)), slice(max(0, -dx), width - max(0, dx)))
        there = (slice(max(0, dy), height - max(0, -dy)), slice(max(0, dx), width - max(0, -dx)))
        sigma2 = (variance[here] + variance[there]) / 2.0
        w = np.exp(-((y[here] - y[there]) ** 2) / (2.0 * sigma2))
        rows.append(index[here].ravel())
        cols.append(index[there].ravel())
        weights.append(w.ravel())
    r, c, w = np.concatenate(rows), np.concatenate(cols), np.concatenate(weights)
    n = height * width
    affinity = coo_matrix((np.concatenate([w, w]), (np.concatenate([r, c]), np.concatenate([c, r]))), shape=(n, n)).tocsr()
    laplacian = (diags(np.asarray(affinity.sum(axis=1)).ravel() + pull) - affinity).tocsr()
    free = ~hinted
    known = hint_ab_hw2.reshape(-1, 2)[hinted].astype(np.float64)
    system = laplacian[free][:, free]
    coupling = laplacian[free][:, hinted]
    ab = np.zeros((n, 2))
    ab[hinted] = known
    rhs = -(coupling @ known)
    if system.shape[0] <= DIRECT_MAX_UNKNOWNS:
        factor = splu(system.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
        ab[free] = factor.solve(rhs)
    else:
        solver = ruge_stuben_solver(system)  # classical AMG: the natural fit for a graph Laplacian
        for channel in range(2):
            ab[free, channel] = solver.solve(rhs[:, channel], tol=tol, accel="cg")
    return ab.reshape(height, width, 2).astype(np.float32)


@register(SPEC)
class Propagate:
    spec = SPEC

    def colorize(self, l_bhw: np.ndarray, hint_ab_bhw2: np.ndarray, hint_mask_bhw: np.ndarray) -> np.ndarray:
        check_batch(self.spec, l_bhw, hint_ab_bhw2, hint_mask_bhw)
        return np.stack([propagate(l, ab, m) for l, ab, m in zip(l_bhw, hint_ab_bhw2, hint_mask_bhw)])
