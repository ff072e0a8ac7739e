#!/usr/bin/env bash
# The GPU figures of avsal in one run (a few minutes on one recent GPU): inference frames/s of STANet (STA,
# network alone and the whole streaming model), ViNet/AViNet and STAViS, and full-size ViNet training
# iterations/s, each with fp32 and bf16. Random weights (the speed does not depend on them).
#
#   benchmarks/gpu_suite.sh OUTDIR          (PYTHON=... to choose the interpreter; needs torch with CUDA;
#                                            STEPS="stanet vinet stavis train" to run only some steps)
#
# Writes OUTDIR/gpu.txt (device, driver, torch), OUTDIR/{stanet,vinet,stavis}.json (the benchmarks' own JSON)
# OUTDIR/train-vinet-{fp32,bf16}.csv (seconds per iteration) and OUTDIR/suite.log (everything printed). A failing step is logged and the next one still runs.
set -u
OUT=${1:?usage: benchmarks/gpu_suite.sh OUTDIR}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
LOG="$OUT/suite.log"
: >"$LOG"
STEPS=${STEPS:-stanet vinet stavis train}
step() {  # step NAME SECONDS CMD...: run with a time limit, log its output and exit status
    local name=$1 limit=$2
    shift 2
    case " $STEPS " in *" ${name%%-*} "*) ;; *) return 0 ;; esac
    echo "== $name ($(date +%T))" | tee -a "$LOG"
    timeout "$limit" "$@" 2>&1 | tee -a "$LOG"
    echo "== $name: exit ${PIPESTATUS[0]}" | tee -a "$LOG"
}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
  nproc; } >"$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt" | tee -a "$LOG"

step stanet 120 $PY benchmarks/bench_stanet.py --device cuda --frames 256 --batch-size 32 --network-only \
    --json "$OUT/stanet.json"
step vinet 90 $PY benchmarks/bench_vinet.py --device cuda --frames 256 --batch-size 16 --bf16 \
    --json "$OUT/vinet.json"
step stavis 90 $PY benchmarks/bench_stavis.py --device cuda --frames 256 --batch-size 32 \
    --json "$OUT/stavis.json"

# Training: full-size ViNet on a synthetic DHF1K-layout root (16 videos x 40 frames, 360x640; one clip of 32
# frames per video and epoch), batch 8.
DATA=$(mktemp -d)
case " $STEPS " in *" train "*) ;; *) exit 0 ;; esac
$PY - "$DATA" <<'EOF'
import os, sys
import cv2, numpy as np
root, rng = sys.argv[1], np.random.default_rng(0)
y, x = np.mgrid[0:360, 0:640]
for v in range(1, 17):
    os.makedirs(f"{root}/{v:04d}/images"); os.makedirs(f"{root}/{v:04d}/maps")
    for i in range(1, 41):
        cv2.imwrite(f"{root}/{v:04d}/images/{i:04d}.png", rng.integers(0, 256, (360, 640, 3), dtype=np.uint8))
        blob = 255 * np.exp(-((x - 320 - 4 * i) ** 2 + (y - 180) ** 2) / (2 * 40 ** 2))
        cv2.imwrite(f"{root}/{v:04d}/maps/{i:04d}.png", blob.astype(np.uint8))
EOF
for mode in fp32 bf16; do
    flag=$([ $mode = bf16 ] && echo --bf16)
    step "train-vinet-$mode" 90 $PY -m avsal.cli train vinet --data "$DATA" --out "$DATA/run-$mode" --epochs 100 \
        --max-iters 30 --batch-size 8 --workers 4 --device cuda $flag --quiet
    # log.csv: one row per iteration with its seconds (the first ones include cuDNN's autotuning)
    cp "$DATA/run-$mode/log.csv" "$OUT/train-vinet-$mode.csv" 2>/dev/null
done
