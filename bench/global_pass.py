"""The default model's global pass: one image at model resolution (224 x 224), L* plus
hints in, a*b* out, timed as the pipeline calls it (`Lite.colorize`, numpy in and out).

Reports the median and 90th percentile over repeated runs after a warm-up, at batch 1
(the global pass) and per image at the pipeline's patch batch; on CUDA too when torch
sees a GPU (then with the model moved there, in bfloat16 autocast).

    .venv/bin/python bench/global_pass.py [--runs 50] [--random-weights]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from restore.models.lite import SPEC, Lite, LiteColorNet, LiteConfig, save_weights  # noqa: E402


def timings(call, runs: int) -> list[float]:  # noqa: ANN001
    for _ in range(5):
        call()
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def summary(seconds: list[float], per: int = 1) -> dict[str, float]:
    ordered = sorted(s / per * 1000 for s in seconds)
    return {"median_ms": round(statistics.median(ordered), 2), "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--random-weights", action="store_true", help="time the architecture without the shipped weights")
    args = parser.parse_args()
    side, batch = SPEC.input_px, SPEC.batch_size
    if args.random_weights:
        with tempfile.TemporaryDirectory(prefix="photochrom-bench-") as folder:  # untrained, loaded as the shipped ones are
            save_weights(LiteColorNet(LiteConfig()), Path(folder) / "lite.pt")
            model = Lite(Path(folder) / "lite.pt")
    else:
        model = Lite()
    rng = np.random.default_rng(0)
    l_one = rng.uniform(0, 100, (1, side, side)).astype(np.float32)
    hint_ab, hint_mask = np.zeros((1, side, side, 2), np.float32), np.zeros((1, side, side), np.float32)
    report: dict[str, object] = {"threads": torch.get_num_threads(), "torch": torch.__version__}
    # Without curator hints (the global pass of most scans): the network alone.
    report["cpu_batch1"] = summary(timings(lambda: model.colorize(l_one, hint_ab, hint_mask), args.runs))
    # With 10 hints: the network and the solve that spreads its leftover hint error.
    hinted_ab, hinted_mask = hint_ab.copy(), hint_mask.copy()
    for y, x in rng.integers(0, side - 2, (10, 2)):
        hinted_mask[0, y : y + 2, x : x + 2] = 1
        hinted_ab[0, y : y + 2, x : x + 2] = rng.uniform(-40, 40, 2)
    report["cpu_batch1_10_hints"] = summary(timings(lambda: model.colorize(l_one, hinted_ab, hinted_mask), max(5, args.runs // 5)))
    rep = (batch, 1, 1)
    l_b, ab_b, m_b = np.tile(l_one, rep), np.tile(hint_ab, rep + (1,)), np.tile(hint_mask, rep)
    report[f"cpu_batch{batch}_per_image"] = summary(timings(lambda: model.colorize(l_b, ab_b, m_b), max(5, args.runs // 5)), batch)
    if torch.cuda.is_available():
        net = model.net.cuda()
        report["gpu"] = torch.cuda.get_device_name()
        for size in (1, 64):
            inputs = [torch.from_numpy(np.tile(a, (size,) + (1,) * (a.ndim - 1))).cuda() for a in (l_one, hint_ab, hint_mask)]

            def run(inputs=inputs) -> None:  # noqa: ANN001
                with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
                    net(inputs[0][:, None], inputs[1].permute(0, 3, 1, 2), inputs[2][:, None])
                torch.cuda.synchronize()

            report[f"gpu_batch{size}_per_image"] = summary(timings(run, args.runs), size)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
