#!/usr/bin/env bash
# Look at TensorBoard as a user does, without a display: serve LOGDIR, screenshot its tabs with headless
# Chromium into OUTDIR/<tab>.png, stop the server. Open the PNGs in any image viewer.
#   bash tools/screenshot_tensorboard.sh outputs/multirun/<sweep> screenshots [scalars hparams images]
# What to check: the run list names a sweep's jobs by their overrides; HParams lists the compared settings.
# Needs tensorboard (pip install -e ".[dev]") and Chromium (Debian: apt-get install -y chromium).
set -euo pipefail
logdir=${1:?usage: $0 LOGDIR [OUTDIR] [TAB ...]}
outdir=${2:-screenshots}
shift $(( $# > 1 ? 2 : 1 ))
tabs=("$@")
[ ${#tabs[@]} -gt 0 ] || tabs=(scalars hparams images)
port=${PORT:-6066}
mkdir -p "$outdir"
tensorboard --logdir "$logdir" --host 127.0.0.1 --port "$port" >"$outdir/tensorboard.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null' EXIT
for _ in $(seq 120); do  # up to a minute for TensorBoard to load the event files
  python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port')" 2>/dev/null && break
  sleep 0.5
done
for tab in "${tabs[@]}"; do
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,1000 \
    --virtual-time-budget=15000 --screenshot="$outdir/$tab.png" "http://127.0.0.1:$port/#$tab" \
    >"$outdir/chromium_$tab.log" 2>&1
  echo "$outdir/$tab.png"
done
