#!/usr/bin/env bash
# Installs the packaging tools if missing: cargo-deb and cargo-generate-rpm
# (pinned; both build packages without dpkg-buildpackage/rpmbuild).
set -euo pipefail
if ! cargo deb --version 2>/dev/null | grep -q "^cargo-deb 3.8.0"; then
  cargo install --locked --quiet cargo-deb --version 3.8.0
fi
if ! cargo generate-rpm --version 2>/dev/null | grep -q "0.21.1"; then
  cargo install --locked --quiet cargo-generate-rpm --version 0.21.1
fi
