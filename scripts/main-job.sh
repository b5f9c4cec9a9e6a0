#!/usr/bin/env bash
# The main job: build the model zoo where it is missing or stale (pretrained torchvision weights, downloaded into the
# torch hub cache and hash-checked when missing -- AIOTBENCH_OFFLINE=1 forbids it, AIOTBENCH_WEIGHTS_MIRROR=URL
# replaces the location -- else random weights, said out loud), then benchmark every case:
# the six AIoTBench models x {tflite fp32, dynamic, int8, fp16; pytorch-mobile; onnxruntime} plus the real
# pretrained MobileNets of the shared folder, on the shared ImageNet images when present (else synthetic images).
set -uo pipefail
BIN=${BIN:-.venv/bin}
RESULTS=${RESULTS:-results}
SHARED=${AIOTBENCH_SHARED:-../shared}  # the Makefile exports AIOTBENCH_SHARED; this is the one fallback
DATASET=${DATASET:-$SHARED/data/imagenet-val-500}
# The six AIoTBench models, as the zoo defines them (one list: pytest_aiotbench.zoo.MODELS).
read -r -a MODELS <<< "$("$BIN/python" -c 'from pytest_aiotbench.zoo import MODELS; print(*MODELS)')" || exit 1
[ ${#MODELS[@]} -gt 0 ] || { echo "main-job: cannot read the zoo's model list" >&2; exit 1; }
# int8 calibration: the shared sample photos, never the evaluation images.
calibration_args=()
[ -d "$SHARED/data/samples" ] && calibration_args=(--calibration "$SHARED/data/samples")
[ -d "$DATASET" ] && calibration_args+=(--exclude "$DATASET")

for model in "${MODELS[@]}"; do
  "$BIN/aiotbench" zoo build --models "$model" "${calibration_args[@]}"
  status=$?
  if [ $status -eq 2 ]; then
    echo "main-job: WARNING: no pretrained $model weights (offline, or the download failed: see above): building it with random weights (latency only; its accuracy is not scored)" >&2
    "$BIN/aiotbench" zoo build --models "$model" --weights random "${calibration_args[@]}" || echo "main-job: some $model artifacts failed (listed above); their cases will be skipped" >&2
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
# The built-in suite is named (a --aiotbench-catalog alone replaces it); `aiotbench` collects only the cases,
# not the project's own tests.
exec "$BIN/pytest" aiotbench --aiotbench --aiotbench-suite=aiotbench --aiotbench-catalog=models/shared.toml \
  "${dataset_args[@]}" \
  --aiotbench-json="$RESULTS/aiotbench.json" --aiotbench-html="$RESULTS/report.html" \
  --benchmark-json="$RESULTS/benchmark.json" "$@"
