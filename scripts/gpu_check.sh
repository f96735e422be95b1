#!/usr/bin/env bash
# The one prepared GPU check (run from the repository root on a CUDA machine; results land in $OUT):
# GPU-marked tests and the exactness tests, bench-insert at two shapes, a safety run on a ~0.7B
# real-architecture pair, and the planner's prediction for the same pair.
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD"
OUT="${OUT:-/tmp/otterbench-gpu}"
mkdir -p "$OUT"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
} | tee "$OUT/gpu.txt"
timeout 120 python3 -m pytest -q -o addopts="" -p no:cacheprovider tests/test_gpu.py tests/test_trackers.py \
  tests/test_env.py tests/test_otter_exact.py -s 2>&1 | grep -E "fused on cuda|passed|failed|Error|error" | tee "$OUT/pytest.txt"
for shape in 1b tiny; do
  timeout 60 python3 -m otterbench bench-insert --device cuda --dtype bfloat16 --preset "$shape" --repeats 30 \
    --json > "$OUT/bench_${shape}_bf16.json" 2>/dev/null || echo "bench-insert $shape failed"
done
timeout 45 python3 scripts/gpu_pair.py /tmp/pair
timeout 150 python3 -m otterbench run --suite safety --num-prompts 16 --repeats 2 --base /tmp/pair/llm --reward-model /tmp/pair/rm \
  --device cuda --dtype bfloat16 --out /tmp/gpu-results 2>&1 | tee "$OUT/run.txt" | tail -25
cp /tmp/gpu-results/safety/*/results.json "$OUT/run_safety_pair.json" 2>/dev/null
python3 -m otterbench plan --base /tmp/pair/llm --reward-model /tmp/pair/rm --dtype bfloat16 --batch-size 8 \
  --context 64 --json > "$OUT/plan_pair.json" 2>/dev/null || echo "plan failed"
python3 - "$OUT" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
for name in ("bench_1b_bf16.json", "bench_tiny_bf16.json"):
    try:
        data = json.loads((out / name).read_text())
    except Exception as error:
        print(name, "missing", error); continue
    for t in data["layouts"]:
        print(name, t["layout"], f"{t['median_s']*1e3:.3f} ms", t["extra_time_share"], t["extra_flops_share"], t["ratio"])
PY
