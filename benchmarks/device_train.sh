#!/usr/bin/env bash
# Train the shipped decoder (edge net + decoder + upsampler) on one GPU in a fixed time budget.
#
#   bash benchmarks/device_train.sh prepare       # here: copy a <= 50 MB training subset to devcache/
#   bash benchmarks/device_train.sh [ARGS...]     # on the GPU machine (repository root, no pip install)
#
# Fine-tune the shipped decoder (runs 11 and 13, docs/training.md; carry devcache, timeout 600 s):
#   CONFIG=gpu-finetune BUDGET_MIN=8.7 OUT=$OUT/run bash benchmarks/device_train.sh
# Keep local_train off on a GPU: the per-image inference path ran at 6 s per step of batch 8
# on an H200, the whole-image path at 0.36 s. Keep amp off too (the gpu-finetune default): bf16
# autocast ran at 0.46 s per step (run 12).
#
# Environment: OUT (output folder, default runs/device), BUDGET_MIN (total minutes including data
# and embeddings, default 8), DEVICE (default cuda), CONFIG (default gpu), DATA_ROOT (default
# devcache/data). Extra ARGS go to inter2former-train (e.g. --set batch_size=8).
# Writes to OUT: checkpoint.pt, optimizer.pt, inter2former_decoder.safetensors, train_log.jsonl,
# config.json, summary.json, stdout.log. Never reads data/eval.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "prepare" ]]; then
    SRC=${SHARED_DATA:-../shared/data}/train
    DST=devcache/data/train
    rm -rf devcache/data
    mkdir -p "$DST/coco_mval/images" "$DST/coco_mval/masks"
    cp -r "$SRC/plantseg" "$SRC/bian" "$DST/"
    # every third COCO-MVal object (sorted by name), up to about 20 MB of images (the working tree that travels is capped at 64 MiB)
    ls "$SRC/coco_mval/images" | sort | awk 'NR % 3 == 1' | while read -r f; do
        size=$(du -sm "$DST/coco_mval/images" | cut -f1)
        [[ $size -ge 20 ]] && break
        stem="${f%.*}"
        cp "$SRC/coco_mval/images/$f" "$DST/coco_mval/images/"
        cp "$SRC/coco_mval/masks/$stem".* "$DST/coco_mval/masks/"
    done
    echo "devcache: $(ls $DST/coco_mval/images | wc -l) COCO objects, $(du -sh devcache | cut -f1) in all"
    exit 0
fi

export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-runs/device}
mkdir -p "$OUT"
echo "== device_train.sh $(date -u +%FT%TZ) out=$OUT budget=${BUDGET_MIN:-8} min device=${DEVICE:-cuda}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python - <<'PY'
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PY
python -m napari_inter2former.training.train \
    --config "${CONFIG:-gpu}" \
    --device "${DEVICE:-cuda}" \
    --data-root "${DATA_ROOT:-devcache/data}" \
    --out "$OUT" \
    --time-budget-min "${BUDGET_MIN:-8}" \
    --no-resume \
    "$@" 2>&1 | tee "$OUT/stdout.log"
echo "== files in $OUT"
ls -la "$OUT"
