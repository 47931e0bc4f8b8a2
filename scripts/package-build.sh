#!/usr/bin/env bash
# Builds one package from an already built binary.
#
#   scripts/package-build.sh deb|rpm release|dev OUTDIR
#
# `make deb` / `make rpm` use release; CI's package check uses dev (the
# binary the tests built; cargo-deb warns that dev is meant for testing).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=$1 profile=$2 out=$3
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-edge/target}"
mkdir -p "$out"
case "$kind" in
  deb)
    if [ "$profile" = dev ]; then
      cargo deb --no-build --profile dev --no-strip -o "$out/" 2>&1 | grep -v -E "dev profile is not supported|To enable debug symbols|^\s*$" || true
    else
      cargo deb --no-build -o "$out/"
    fi
    ;;
  rpm)
    cargo generate-rpm --profile "$profile" --target-dir "$CARGO_TARGET_DIR" -o "$out/"
    ;;
  *) echo "usage: $0 deb|rpm release|dev OUTDIR" >&2; exit 2 ;;
esac
ls "$out"/*."$kind" >/dev/null
