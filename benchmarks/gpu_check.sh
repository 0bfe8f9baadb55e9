#!/usr/bin/env bash
# The GPU check of trainwell, in a few minutes on one CUDA machine (never run in CI).
#
#   bash benchmarks/gpu_check.sh            # writes gpu_check/ (or $OUT/) with the tables
#
# 1. the test suite's CUDA-marked tests (pytest -m cuda);
# 2. `default` (and `fashion_cnn` when that recipe exists) trained on CUDA in fp32 and bf16,
#    and on the CPU in fp32, 3 epochs each: test accuracy side by side (within noise);
# 3. epoch times: trainwell eager / compiled (CUDA graphs) / bf16 vs a hand-written PyTorch
#    loop, in one process (benchmarks/gpu_timing.py);
# 4. the 2-process DDP check with nccl when the machine has two GPUs (else skipped, said so).
set -u
cd "$(dirname "$0")/.."
PY=${PY:-python}
OUT=${OUT:-gpu_check}
EPOCHS=${EPOCHS:-3}
mkdir -p "$OUT"
REPORT="$OUT/gpu_check.md"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
{
  echo "# trainwell GPU check — $(date -u +%Y-%m-%dT%H:%MZ)"
  "$PY" - <<'PYEOF'
import torch
n = torch.cuda.device_count() if torch.cuda.is_available() else 0
names = ", ".join(torch.cuda.get_device_name(i) for i in range(n)) or "none"
print(f"\ntorch {torch.__version__}, CUDA {torch.version.cuda}, {n} GPU(s): {names}\n")
PYEOF
} > "$REPORT"

echo "## 1. CUDA-marked tests" >> "$REPORT"
"$PY" -m pytest -q -m cuda -p no:cacheprovider tests 2>&1 | tail -15 | tee "$OUT/cuda_tests.txt"
echo '```' >> "$REPORT"; tail -3 "$OUT/cuda_tests.txt" >> "$REPORT"; echo '```' >> "$REPORT"

echo "## 2. Accuracy: CUDA fp32 / bf16 vs CPU fp32 ($EPOCHS epochs)" >> "$REPORT"
echo "| recipe | device | precision | test accuracy | median epoch (s) |" >> "$REPORT"
echo "|---|---|---|---:|---:|" >> "$REPORT"
for recipe in default fashion_cnn; do
  if ! "$PY" -m trainwell recipes 2>/dev/null | grep -qw "$recipe"; then
    echo "| $recipe | — | — | recipe not in this version | |" >> "$REPORT"; continue
  fi
  for combo in "cuda fp32" "cuda bf16" "cpu fp32"; do
    set -- $combo
    dir="$OUT/runs/$recipe-$1-$2"; rm -rf "$dir"
    "$PY" -m trainwell fit "$recipe" --device "$1" --set "train.precision=\"$2\"" \
      --set "train.epochs=$EPOCHS" --quiet --out "$dir" >"$dir.log" 2>&1
    "$PY" - "$dir" "$recipe" "$1" "$2" >> "$REPORT" <<'PYEOF'
import json, sys, glob
d, recipe, dev, prec = sys.argv[1:5]
runs = glob.glob(f"{d}/*/summary.json")
if not runs:
    print(f"| {recipe} | {dev} | {prec} | failed (see {d}.log) | |")
else:
    s = json.load(open(runs[0]))
    acc = (s.get("metrics", {}).get("final", {}) or {}).get("test_accuracy")
    med = s.get("median_epoch_time")
    print(f"| {recipe} | {dev} ({s.get('device_name')}) | {s.get('precision')} | "
          f"{acc:.4f} | {med:.2f} |" if acc is not None else f"| {recipe} | {dev} | {prec} | ? | |")
PYEOF
  done
done

echo "## 3. Epoch times on CUDA (one process)" >> "$REPORT"
"$PY" benchmarks/gpu_timing.py --epochs 3 2>&1 | tee "$OUT/timing.txt" | grep -v "^$" >> "$REPORT"

echo "## 4. Two processes, nccl" >> "$REPORT"
NGPU=$("$PY" -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)")
if [ "$NGPU" -ge 2 ]; then
  "$PY" -m pytest -q -p no:cacheprovider \
    tests/train/test_distributed.py -m cuda -k nccl 2>&1 | tail -5 | tee "$OUT/ddp_nccl.txt"
  echo '```' >> "$REPORT"; tail -2 "$OUT/ddp_nccl.txt" >> "$REPORT"; echo '```' >> "$REPORT"
else
  echo "skipped: this machine has $NGPU GPU(s); the nccl check needs two" | tee -a "$REPORT"
fi
echo; cat "$REPORT"
