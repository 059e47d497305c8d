#!/usr/bin/env bash
# Run only the Temporal dev server with this project's search attributes and dynamic config.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .data
exec .venv/bin/simpletuner temporal-dev "$@"
