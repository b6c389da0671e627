#!/usr/bin/env bash
# Look at MLflow's UI as a user does, without a display: serve the store of logger=mlflow, screenshot the
# experiment's runs table and its first run's metrics with headless Chromium into OUTDIR, stop the server.
#   bash tools/screenshot_mlflow.sh [outputs/mlflow.db] [screenshots]
# What to check: each run named by its overrides, its params and metrics (Model training view).
# Needs mlflow (pip install -e ".[track]") and Chromium (Debian: apt-get install -y chromium).
set -euo pipefail
store=${1:-outputs/mlflow.db}
outdir=${2:-screenshots}
port=${PORT:-5055}
mkdir -p "$outdir"
mlflow ui --backend-store-uri "sqlite:///$store" --host 127.0.0.1 --port "$port" >"$outdir/mlflow.log" 2>&1 &
server=$!
trap 'pkill -P "$server" 2>/dev/null; kill "$server" 2>/dev/null' EXIT
for _ in $(seq 120); do  # up to a minute for the server to start
  python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port')" 2>/dev/null && break
  sleep 0.5
done
read -r experiment run < <(python - "$store" <<'PY'
import sys
from mlflow import MlflowClient
client = MlflowClient(f"sqlite:///{sys.argv[1]}")
experiment = client.get_experiment_by_name("pima_lightning")
print(experiment.experiment_id, client.search_runs([experiment.experiment_id], max_results=1)[0].info.run_id)
PY
)
for page in "runs?viewMode=TABLE" "runs/$run/overview"; do
  name=$( [ "$page" = "runs?viewMode=TABLE" ] && echo runs || echo run )
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1500,1000 \
    --virtual-time-budget=20000 --screenshot="$outdir/mlflow_$name.png" \
    "http://127.0.0.1:$port/#/experiments/$experiment/$page" >"$outdir/chromium_$name.log" 2>&1
  echo "$outdir/mlflow_$name.png"
done
