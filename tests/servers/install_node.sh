#!/usr/bin/env bash
# Install the node test provider (tests/servers/oidc) if it is not installed yet. Idempotent.
set -euo pipefail
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/oidc"
if [ -d "$dir/node_modules/oidc-provider" ]; then
  exit 0
fi
command -v node >/dev/null || { echo "node is not installed (need Node.js >= 20)" >&2; exit 1; }
cd "$dir"
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  npm install --no-audit --no-fund
fi
