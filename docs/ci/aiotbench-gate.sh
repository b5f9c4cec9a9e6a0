#!/usr/bin/env bash
# Gate a pull request's models against the main branch with pytest-aiotbench: the one script the CI recipes
# (docs/ci/github-actions.yml, docs/ci/gitlab-ci.yml) run; run it locally the same way.
#
# Baseline: the catalog and model files as they are on BASE_REF (main), extracted with `git archive` into
# $OUT/base, and timed interleaved with this branch's cases of the same id (A/B: --aiotbench-baseline), so a busy
# CI machine slows both sides alike; accuracy is compared exactly on the same images. With AIOTBENCH_BASE_JSON
# (a run saved on main, e.g. an artifact) the run is compared with that file instead (--aiotbench-compare).
#
# Settings (environment):
#   AIOTBENCH_CATALOG    your catalog, relative to the repository root   (default: aiotbench.toml)
#   BASE_REF             the branch the PR is gated against              (default: origin/main, else main)
#   AIOTBENCH_FAIL_ON    limits, comma-separated                          (default: top1:-0.5pt,latency:+5%)
#   AIOTBENCH_DATASET    labels.csv folder or ImageNet val tree (cached by the recipes); unset: synthetic images,
#                        latency only (an accuracy limit then cannot be judged and fails the gate)
#   AIOTBENCH_BASE_JSON  compare with this saved run instead of an A/B against BASE_REF
#   OUT                  where the reports go (default: aiotbench-out): aiotbench.json, report.html
#   PYTHON               the Python that has pytest-aiotbench installed (default: python)
# Extra arguments go to pytest (e.g. --aiotbench-images 200).
# Exit code: pytest's (0 green, 1 a limit was crossed or a case failed, 4 bad settings).
set -euo pipefail

CATALOG=${AIOTBENCH_CATALOG:-aiotbench.toml}
FAIL_ON=${AIOTBENCH_FAIL_ON:-top1:-0.5pt,latency:+5%}
OUT=${OUT:-aiotbench-out}
PYTHON=${PYTHON:-python}
if [ -z "${BASE_REF:-}" ]; then
  BASE_REF=origin/main
  git rev-parse --verify -q "$BASE_REF^{commit}" >/dev/null || BASE_REF=main
fi

[ -f "$CATALOG" ] || { echo "aiotbench-gate: catalog $CATALOG not found (set AIOTBENCH_CATALOG)" >&2; exit 4; }
rm -rf "$OUT"
mkdir -p "$OUT"

gate_args=()
if [ -n "${AIOTBENCH_BASE_JSON:-}" ]; then
  [ -f "$AIOTBENCH_BASE_JSON" ] || { echo "aiotbench-gate: $AIOTBENCH_BASE_JSON not found" >&2; exit 4; }
  echo "aiotbench-gate: comparing with the saved run $AIOTBENCH_BASE_JSON"
  gate_args=(--aiotbench-compare="$AIOTBENCH_BASE_JSON")
else
  git rev-parse --verify -q "$BASE_REF^{commit}" >/dev/null \
    || { echo "aiotbench-gate: base $BASE_REF not found (fetch it: git fetch origin main)" >&2; exit 4; }
  # The catalog's path inside the repository, whatever folder the script runs from.
  prefix=$(git rev-parse --show-prefix)
  mkdir -p "$OUT/base"
  git archive "$BASE_REF" | tar -x -C "$OUT/base"
  if [ -f "$OUT/base/$prefix$CATALOG" ]; then
    echo "aiotbench-gate: A/B against $BASE_REF ($(git rev-parse --short "$BASE_REF"))"
    gate_args=(--aiotbench-baseline="$OUT/base/$prefix$CATALOG")
  else
    # First PR that adds the catalog: nothing to gate against, the catalog's own thresholds still apply.
    echo "aiotbench-gate: $CATALOG is not on $BASE_REF: no baseline, thresholds only"
  fi
fi

dataset_args=()
[ -n "${AIOTBENCH_DATASET:-}" ] && dataset_args=(--aiotbench-dataset="$AIOTBENCH_DATASET")

# `aiotbench` selects the catalog's cases only (the project's unit tests run in their own job).
status=0
"$PYTHON" -m pytest aiotbench --aiotbench --aiotbench-catalog="$CATALOG" "${dataset_args[@]}" \
  "${gate_args[@]}" --aiotbench-fail-on "$FAIL_ON" \
  --aiotbench-json="$OUT/aiotbench.json" --aiotbench-html="$OUT/report.html" "$@" || status=$?
rm -rf "$OUT/base"
echo "aiotbench-gate: exit $status; reports in $OUT/"
exit $status
