#!/usr/bin/env bash
# The prepared GPU check: one call of at most ~9 minutes on one CUDA device, from the repository root.
#
#   scripts/gpu_check.sh
#
# Phases, in order of importance, each timed (`[phase] NAME SECONDS s exit=CODE`) and each cut to what is left
# of the budget (BUDGET_S, default 540 s), so a slow phase costs the later ones, never the whole call:
#   env       the card, driver, torch and transformers
#   pair      a random-weight Llama pair (LLM + one-label reward model) of SIZE's shape (scripts/gpu_pair.py)
#   compiled  the safety suite, --engine compiled, the default layout, all four ARGS arms (the run builds the
#             layout's checkpoint first, streamed on the device; results.json records its seconds); its
#             arms share one compile cache, and its yardstick sets eager against the compiled engine.
#             Every run of the call shares one kept compile cache ($WORK/compile-cache): the layouts'
#             runs load the base's graphs this run compiled, so their base compile_s are hits
#   eager     the same, --engine eager (the checkpoint is reused); its yardstick takes the static stand-in
#             (--yardstick-engine static): the compiled run's holds the same eager-vs-compiled comparison
#   layouts   --engine compiled, base + otter-args, each other layout (LAYOUTS minus DEFAULT_LAYOUT)
#   cudnn     the ARGS arms' eager step with and without cuDNN attention (scripts/args_bench.py)
#   tests     the GPU-marked tests (exactness on the device)
# Every run's results.json goes to docs/measurements/gpu-<size>-<engine>-<layout>.json (to commit) and into
# $OUT/measurements.tar.gz; every run's terminal output into $OUT/logs.tar.gz; the last table into
# $OUT/summary.txt (the device returns at most 8 files).
#
# Try it on a CPU first, at the tiny shape: SIZE=tiny DEVICE=cpu DTYPE=float32 scripts/gpu_check.sh
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TOKENIZERS_PARALLELISM=false
OUT="${OUT:-/tmp/otterbench-gpu}"
WORK="${WORK:-/tmp/otterbench-gpu-work}"  # the model pair, checkpoint caches and run folders (not returned)
SIZE="${SIZE:-7b}"
DEVICE="${DEVICE:-cuda}"
DTYPE="${DTYPE:-bfloat16}"
BUDGET_S="${BUDGET_S:-540}"
# the compiled engine's layouts, its preferred (a run's default) first: read from the backend registry
SERVED="$(python3 -c 'from otterbench.backends import backend_spec; print(*backend_spec("compiled").layouts)')"
DEFAULT_LAYOUT="${DEFAULT_LAYOUT:-${SERVED%% *}}"
LAYOUTS="${LAYOUTS:-$SERVED}"
PHASES="${PHASES:-env pair compiled eager layouts cudnn tests}"
MEASUREMENTS="docs/measurements"
mkdir -p "$OUT" "$WORK/logs" "$MEASUREMENTS"
START=$(date +%s)

case "$SIZE" in  # Llama-2-7B (MHA) and Llama-3.2-1B (GQA) shapes; vocab = the shipped tokenizer's
  7b) shape="--hidden 4096 --layers 32 --heads 32 --kv-heads 32 --ffn 11008" ;;
  1b) shape="--hidden 2048 --layers 16 --heads 32 --kv-heads 8 --ffn 8192" ;;
  tiny) shape="--hidden 128 --layers 4 --heads 4 --kv-heads 2 --ffn 256" ;;
  *) echo "SIZE=$SIZE: choose 7b, 1b or tiny" >&2; exit 2 ;;
esac
# batch 1 (the memory-bound regime the paper's claim is about), 3 prompts x 32 new tokens, 3 measured repeats
workload="--batch-size 1 --num-prompts 3 --max-new-tokens 32 --repeats 3 --warmup 1"
pair="$WORK/pair_$SIZE"

left() { echo $((BUDGET_S - ($(date +%s) - START))); }

# phase NAME CAP_S FUNCTION ARGS...: runs FUNCTION under min(CAP_S, what is left of the budget) in a child
# shell (so `timeout` can stop it with everything it started), prints its seconds and exit code
phase() {
  local name="$1" cap="$2" budget t0 status
  shift 2
  budget=$(left)
  [ "$budget" -lt "$cap" ] && cap="$budget"
  if [ "$cap" -le 10 ]; then
    echo "[phase] $name skipped: ${cap}s of the budget left" | tee -a "$OUT/phases.txt"
    return
  fi
  t0=$(date +%s%N)
  timeout --kill-after=10 "$cap" bash -c '"$@"' _ "$@"
  status=$?
  local ms=$((($(date +%s%N) - t0) / 1000000))
  printf '[phase] %s %d.%d s exit=%d%s\n' "$name" $((ms / 1000)) $((ms % 1000 / 100)) "$status" \
    "$([ "$status" = 124 ] && echo ' (cut at its time limit)')" | tee -a "$OUT/phases.txt"
}

environment() {
  { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
    python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
  } | tee "$OUT/gpu.txt"
}

gpu_tests() {
  python3 -m pytest -q -o addopts="" -p no:cacheprovider -m gpu tests/test_gpu.py 2>&1 | tail -5
}

build_pair() {
  [ -f "$pair/rm/config.json" ] && return 0
  # shellcheck disable=SC2086  # $shape is a list of options
  python3 scripts/gpu_pair.py "$pair" $shape --models llm,rm --dtype "$DTYPE"
}

# one safety run: engine, layout, arms; results.json -> docs/measurements/gpu-<size>-<engine>-<layout>.json
safety_run() {
  local engine="$1" layout="$2" arms="$3" name="gpu-$SIZE-$1-$2" runs="$WORK/runs" yardstick=compiled
  [ "$engine" = eager ] && yardstick=static  # the compiled run measures eager vs compiled already
  # one checkpoint cache for every run, so each layout's checkpoint is built once in the call
  mkdir -p "$runs/$name" "$WORK/fused-cache"
  ln -sfn "$WORK/fused-cache" "$runs/$name/fused-cache"
  # shellcheck disable=SC2086  # $workload is a list of options
  python3 -m otterbench run --suite safety --base "$pair/llm" --reward-model "$pair/rm" --arms "$arms" \
    --device "$DEVICE" --dtype "$DTYPE" $workload --engine "$engine" --layout "$layout" --yardstick-engine "$yardstick" \
    --compile-cache "$WORK/compile-cache" --out "$runs/$name" \
    > "$WORK/logs/$name.txt" 2>&1
  local status=$?
  grep -E "^non-disruption|^error" "$WORK/logs/$name.txt" | head -3
  return $status
}

args_cudnn() {
  local flag
  for flag in "" --no-cudnn-sdpa; do
    # shellcheck disable=SC2086  # $shape is a list of options; $flag is one or none
    python3 scripts/args_bench.py --device "$DEVICE" $shape \
      --dtypes "$DTYPE" --engines eager --prompts 1 --new-tokens 16 --rounds 3 $flag 2>&1 | tail -6
  done
}

other_layouts() {
  local layout
  for layout in $LAYOUTS; do
    [ "$layout" = "$DEFAULT_LAYOUT" ] && continue
    phase "compiled-$layout" "$(left)" safety_run compiled "$layout" base,otter-args
  done
}

summary() {
  local run found
  for run in "$WORK"/runs/gpu-"$SIZE"-*; do  # a run cut by its limit still wrote its finished repeats
    found="$(find "$run" -name results.json 2>/dev/null | sort | tail -1)"
    [ -n "$found" ] && cp "$found" "$MEASUREMENTS/$(basename "$run").json"
  done
  python3 scripts/gpu_summary.py "$MEASUREMENTS"/gpu-"$SIZE"-*.json | tee "$OUT/summary.txt"
  cat "$OUT/phases.txt" >> "$OUT/summary.txt"
  tar czf "$OUT/measurements.tar.gz" "$MEASUREMENTS"/gpu-"$SIZE"-*.json 2>/dev/null
  tar czf "$OUT/logs.tar.gz" -C "$WORK" logs 2>/dev/null
}

# otter-args second: if a phase is cut, the saving against args-faithful is the one still measured
ARGS_ARMS="base,otter-args,args-faithful,args-optimized"
export OUT WORK SIZE DEVICE DTYPE MEASUREMENTS shape workload pair
export -f environment gpu_tests build_pair safety_run args_cudnn
for name in $PHASES; do
  case "$name" in
    env) phase env 30 environment ;;
    tests) phase tests 60 gpu_tests ;;
    pair) phase pair 150 build_pair ;;
    compiled) phase "compiled-$DEFAULT_LAYOUT" 250 safety_run compiled "$DEFAULT_LAYOUT" "$ARGS_ARMS" ;;
    eager) phase "eager-$DEFAULT_LAYOUT" 150 safety_run eager "$DEFAULT_LAYOUT" "$ARGS_ARMS" ;;
    layouts) other_layouts ;;
    cudnn) phase cudnn 120 args_cudnn ;;
    *) echo "unknown phase $name: choose from env pair compiled eager layouts cudnn tests" >&2; exit 2 ;;
  esac
done
summary
