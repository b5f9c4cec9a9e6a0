#!/usr/bin/env bash
# The main job: build the model zoo where it is missing or stale (pretrained torchvision weights, downloaded into the
# torch hub cache and hash-checked when missing -- AIOTBENCH_OFFLINE=1 forbids it, AIOTBENCH_WEIGHTS_MIRROR=URL
# replaces the location -- else random weights, said out loud), then benchmark every case:
# the six AIoTBench models x {tflite fp32, dynamic, int8, fp16; pytorch-mobile; onnxruntime} plus the real
# pretrained MobileNets of the shared folder, on the shared ImageNet images when present (else synthetic images).
set -uo pipefail
BIN=${BIN:-.venv/bin}
RESULTS=${RESULTS:-results}
DATASET=${DATASET:-${AIOTBENCH_SHARED:-../shared}/data/imagenet-val-500}
MODELS=(resnet50 inception_v3 densenet121 squeezenet mobilenet_v2 mnasnet)

for model in "${MODELS[@]}"; do
  "$BIN/aiotbench" zoo build --models "$model"
  status=$?
  if [ $status -eq 2 ]; then
    echo "main-job: WARNING: no pretrained $model weights (offline, or the download failed: see above): building it with random weights (latency only; its accuracy is not scored)" >&2
    "$BIN/aiotbench" zoo build --models "$model" --weights random || echo "main-job: some $model artifacts failed (listed above); their cases will be skipped" >&2
  elif [ $status -ne 0 ]; then
    echo "main-job: some $model artifacts failed (listed above); their cases will be skipped" >&2
  fi
done

echo "main-job: weights used (models/zoo/manifest.json):" >&2
"$BIN/aiotbench" zoo weights >&2 || true

dataset_args=()
if [ -d "$DATASET" ]; then
  dataset_args=(--aiotbench-dataset="$DATASET")
else
  echo "main-job: $DATASET not found: synthetic images (latency only)" >&2
fi
mkdir -p "$RESULTS"
exec "$BIN/pytest" --aiotbench --aiotbench-catalog=models/shared.toml "${dataset_args[@]}" \
  --aiotbench-json="$RESULTS/aiotbench.json" --aiotbench-html="$RESULTS/report.html" \
  --benchmark-json="$RESULTS/benchmark.json" "$@"
