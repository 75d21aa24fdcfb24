#!/usr/bin/env bash
# The restore figures on a lent GPU machine (the `device` tool), in one call. That machine
# has torch, timm, OpenCV, scikit-image and tifffile but not the rest of our dependencies,
# and reaches no registry, so they travel as wheels in the git-ignored .whl/ (named in
# `carry`), downloaded here for its Python 3.12:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl dask distributed sqlalchemy greenlet partd locket tblib zict tornado typer click rich \
#     typing_extensions pydantic pydantic_core annotated-types typing-inspection pyamg jsonschema \
#     jsonschema-specifications referencing rpds-py
# Then `bash scripts/bench_on_device.sh` there. Everything lands in $OUT as it is made.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-device-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  > "$OUT/pip.log" 2>&1 || { tail -5 "$OUT/pip.log"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
nproc
python3 -c "
import torch, timm, dask, distributed, sqlalchemy, typer, cv2, skimage, tifffile, numpy
print('python', __import__('sys').version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(),
      'timm', timm.__version__, 'dask', dask.__version__, 'numpy', numpy.__version__, 'opencv', cv2.__version__)
" || exit 1

echo "== tests that need a GPU, and the models' tests, on the GPU"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/restore/models/test_device.py \
  tests/restore/models/test_models_in_the_pipeline.py tests/restore/models/test_lite.py > "$OUT/tests.log" 2>&1
echo "pytest exit $?"; tail -8 "$OUT/tests.log"

echo "== bench/restore.py, models on the GPU"
timeout 300 python3 bench/restore.py --out /tmp/bench --workers 1,2,4 > "$OUT/restore_gpu.jsonl" 2> "$OUT/restore_gpu.log"
echo "bench exit $?"; cat "$OUT/restore_gpu.jsonl"; tail -3 "$OUT/restore_gpu.log"

echo "== the same 24 MP scan with the models on this machine's CPU, for comparison"
PHOTOCHROM_DEVICE=cpu timeout 100 python3 bench/restore.py --out /tmp/bench --skip-100mp --skip-batch \
  > "$OUT/restore_cpu.jsonl" 2> "$OUT/restore_cpu.log"
echo "bench exit $?"; cat "$OUT/restore_cpu.jsonl"; tail -3 "$OUT/restore_cpu.log"
