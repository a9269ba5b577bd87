#!/usr/bin/env bash
# Start a shared MLflow tracking server for cluster jobs: its SQLite database on local disk
# (SQLite on a network file system is not safe), artifacts in a shared directory it serves.
#
#   tools/mlflow-server.sh [DB_FILE] [ARTIFACT_DIR]
#     DB_FILE       default: $MLFLOW_DB or /tmp/$USER-synthmath/mlflow.db (local disk)
#     ARTIFACT_DIR  default: $MLFLOW_ARTIFACTS or results/mlartifacts (shared)
#   environment: HOST (default 127.0.0.1: this machine only; HOST=0.0.0.0 opens it to the
#   network, do that only on a trusted one), PORT (default 5000), WORKERS (default 4).
#
# Then point jobs at it: export MLFLOW_TRACKING_URI=http://<this host>:<port>, or
# `tracking: {uri: http://<this host>:<port>}` in the config.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
db="${1:-${MLFLOW_DB:-/tmp/${USER:-$(id -un)}-synthmath/mlflow.db}}"
artifacts="${2:-${MLFLOW_ARTIFACTS:-results/mlartifacts}}"
host="${HOST:-127.0.0.1}"
port="${PORT:-5000}"
workers="${WORKERS:-4}"
mlflow="${MLFLOW:-$here/.venv/bin/mlflow}"
[[ -x "$mlflow" ]] || mlflow="$(command -v mlflow || true)"
if [[ -z "$mlflow" ]]; then
    echo "mlflow-server.sh: no mlflow executable (run tools/setup.sh, or set MLFLOW=...)" >&2
    exit 2
fi
if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
    echo "mlflow-server.sh: PORT must be a number in 1..65535 (got '$port')" >&2
    exit 2
fi

mkdir -p "$(dirname "$db")" "$artifacts"
db="$(cd "$(dirname "$db")" && pwd)/$(basename "$db")"
artifacts="$(cd "$artifacts" && pwd)"
if [[ "$host" != "127.0.0.1" && "$host" != "localhost" ]]; then
    echo "mlflow-server.sh: listening on $host: anyone who reaches port $port can read and" \
        "write runs" >&2
fi
reach="$host"
[[ "$host" == "0.0.0.0" ]] && reach="$(hostname)"
echo "mlflow-server.sh: database $db, artifacts $artifacts;" \
    "jobs: MLFLOW_TRACKING_URI=http://$reach:$port" >&2
exec "$mlflow" server \
    --backend-store-uri "sqlite:///$db" \
    --artifacts-destination "$artifacts" \
    --serve-artifacts \
    --host "$host" \
    --port "$port" \
    --workers "$workers"
