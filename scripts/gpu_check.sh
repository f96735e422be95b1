#!/usr/bin/env bash
# The prepared GPU check (run from the repository root on a CUDA machine; what comes back lands in $OUT):
#   scripts/gpu_check.sh [tests] [bench] [1b] [7b]      (no argument: all four, in that order)
# tests: GPU-marked tests and the exactness tests, first. bench: bench-insert at two shapes. 1b / 7b: the
# safety and detox suites on random-weight Llama-shape pairs (bf16, scripts/gpu_pair.py), every combination of
# engine (eager, compiled) and layout (fused, split). Each run's results.json is copied to
# docs/measurements/<name>.json (to commit) and all of them are packed into $OUT/measurements.tar.gz (the
# device returns at most 8 files), beside gpu.txt, pytest.txt and one summary line per run in runs.txt.
# A command may run 10 minutes at most: call one stage per command and narrow a size stage with ENGINES,
# LAYOUTS and SUITES, e.g. `ENGINES=compiled LAYOUTS=fused SUITES=safety scripts/gpu_check.sh 7b`. A size's
# pair is built once and kept for later calls; the other size's pair and fused checkpoints are removed first
# (a 7B pair plus its fused checkpoint is ~57 GB of a 64 GB disk).
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD"
OUT="${OUT:-/tmp/otterbench-gpu}"
WORK="${WORK:-/tmp/otterbench-gpu-work}"  # model pairs, fused-checkpoint cache and run folders (not returned)
MEASUREMENTS="docs/measurements"
STAGES="${*:-tests bench 1b 7b}"
ENGINES="${ENGINES:-eager compiled}"
LAYOUTS="${LAYOUTS:-fused split}"
SUITES="${SUITES:-safety detox}"
mkdir -p "$OUT" "$WORK" "$MEASUREMENTS"

# Llama shapes: 1B as Llama-3.2-1B (GQA 32/8 heads), 7B as Llama-2-7B (MHA); vocab = the shipped tokenizer's
shape_1b="--hidden 2048 --layers 16 --heads 32 --kv-heads 8 --ffn 8192"
shape_7b="--hidden 4096 --layers 32 --heads 32 --kv-heads 32 --ffn 11008"
# the workload: batch 1 (the memory-bound regime of the paper's goal), short enough to fit the time budget
workload="--batch-size 1 --num-prompts 8 --max-new-tokens 32 --repeats 3 --warmup 1"

environment() {
  { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
  } | tee "$OUT/gpu.txt"
}

gpu_tests() {
  timeout 300 python3 -m pytest -q -o addopts="" -p no:cacheprovider tests/test_gpu.py tests/test_trackers.py \
    tests/test_env.py tests/test_otter_exact.py tests/test_fused_checkpoint.py -s 2>&1 \
    | grep -E "fused on cuda|passed|failed|Error|error" | tee "$OUT/pytest.txt"
}

bench() {
  for shape in 1b tiny; do
    timeout 90 python3 -m otterbench bench-insert --device cuda --dtype bfloat16 --preset "$shape" --repeats 30 \
      --json > "$OUT/bench_${shape}_bf16.json" 2>/dev/null || echo "bench-insert $shape failed"
  done
}

# one run: suite, size, engine, layout, then the model options; results.json -> docs/measurements/<name>.json
one_run() {
  local suite="$1" size="$2" engine="$3" layout="$4"
  shift 4
  local name="${suite}_${size}_${engine}_${layout}" runs="$WORK/runs"
  local before
  before="$(ls "$runs/$suite" 2>/dev/null | sort | tail -1)"
  # shellcheck disable=SC2086  # $workload is a list of options
  timeout 540 python3 -m otterbench run --suite "$suite" "$@" --device cuda --dtype bfloat16 $workload \
    --engine "$engine" --layout "$layout" --out "$runs" > "$WORK/$name.txt" 2>&1
  local status=$? latest
  latest="$(ls "$runs/$suite" 2>/dev/null | sort | tail -1)"
  if [ -n "$latest" ] && [ "$latest" != "$before" ] && [ -f "$runs/$suite/$latest/results.json" ]; then
    cp "$runs/$suite/$latest/results.json" "$MEASUREMENTS/$name.json"
  fi
  echo "$name exit=$status $(grep -E '^non-disruption' "$WORK/$name.txt" | head -1)" | tee -a "$OUT/runs.txt"
}

suites_at() {
  local size="$1" shape="$2" pair="$WORK/pair_$1" other
  for other in "$WORK"/pair_*; do
    [ "$other" = "$pair" ] || rm -rf "$other" "$WORK/runs/fused-cache"
  done
  if [ ! -f "$pair/expert/config.json" ]; then
    # shellcheck disable=SC2086  # $shape is a list of options
    timeout 300 python3 scripts/gpu_pair.py "$pair" $shape --models llm,rm,expert || { echo "pair $size failed"; return; }
  fi
  for engine in $ENGINES; do
    for layout in $LAYOUTS; do
      case " $SUITES " in *" safety "*)
        one_run safety "$size" "$engine" "$layout" --base "$pair/llm" --reward-model "$pair/rm" ;;
      esac
      # DExperts: expert = its own random LM, anti-expert = the base's weights (no fourth 7B copy on disk)
      case " $SUITES " in *" detox "*)
        one_run detox "$size" "$engine" "$layout" --base "$pair/llm" --expert "$pair/expert" \
          --anti-expert "$pair/llm" ;;
      esac
    done
  done
}

pack() {
  tar czf "$OUT/measurements.tar.gz" "$MEASUREMENTS"/*.json 2>/dev/null || echo "no results.json to pack"
  python3 - "$MEASUREMENTS" <<'PY' | tee "$OUT/table.txt"
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("*_*_*_*.json")):
    data = json.loads(path.read_text())
    for s in data.get("savings", []):
        predicted = s.get("predicted") or {}
        print(path.stem, s["separate_arm"], "space", s["extra_space_saved_pct"], "time", s["extra_time_saved_pct"],
              "decode", s.get("extra_decode_time_saved_pct"), "predicted(bytes)", predicted.get("time_bytes_pct"))
PY
}

environment
for stage in $STAGES; do
  case "$stage" in
    tests) gpu_tests ;;
    bench) bench ;;
    1b) suites_at 1b "$shape_1b" ;;
    7b) suites_at 7b "$shape_7b" ;;
    *) echo "unknown stage $stage: choose from tests bench 1b 7b" >&2; exit 2 ;;
  esac
done
pack
