#!/usr/bin/env bash
# Installs what builds and tests need on Debian: system packages (apt, as root),
# the npm test peers (tests/peers/package-lock.json) and the PyPI test peers
# (tests/peers/requirements.txt). Idempotent: installed things are skipped.
#   scripts/deps.sh                 everything
#   scripts/deps.sh --system-only   apt packages only
#   scripts/deps.sh --peers-only    npm + pip only
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-all}

if [ "$mode" != "--peers-only" ]; then
  pkgs=(cmake libssl-dev pkg-config openssl curl nginx-light wrk redis-server nodejs npm)
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # node/npm may come from elsewhere than Debian's packages
  if command -v node >/dev/null && command -v npm >/dev/null; then
    missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
  fi
  read -ra missing <<< "${missing[*]}"
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
      exit 1
    fi
    echo "apt: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

if [ "$mode" != "--system-only" ]; then
  if [ ! -d tests/peers/node_modules/@modelcontextprotocol/sdk ] || [ tests/peers/package-lock.json -nt tests/peers/node_modules/.package-lock.json ]; then
    echo "npm: installing test peers"
    (cd tests/peers && npm ci --no-audit --no-fund --loglevel=error)
  fi
  # pinned versions already present: pip answers from the local install
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r tests/peers/requirements.txt
fi
