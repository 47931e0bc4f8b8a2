#!/usr/bin/env bash
# Supply-chain checks (`make supply-chain`, .ci/run):
#   cargo deny --offline check   advisories (RustSec snapshot), bans, licenses,
#                                sources; the policy is deny.toml
#   cargo machete                unused dependencies in every Cargo.toml
# Installs cargo-deny and cargo-machete if missing. The advisory database is
# copied from ${ADVISORY_DB_SRC:-<repo>/../shared/advisory-db} (a RustSec
# advisory-db snapshot; CI has no network to fetch one) into a persistent,
# idempotently refreshed git repository under ~/.cache/mcp-edge/. Without the
# snapshot the advisories check is skipped, loudly, and the rest still runs.
# Exits non-zero on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
export OPENSSL_NO_VENDOR=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-edge/target}"

CARGO_DENY_VERSION=0.20.2     # deny.toml uses the 0.20 schema
CARGO_MACHETE_VERSION=0.9.2

# --- tools -------------------------------------------------------------------
# cargo-deny 0.20 has no cargo features to trim (`--no-default-features` builds
# the same thing); a --locked build takes about 3 minutes on 2 cores.
# `env -u CARGO_TARGET_DIR`: build in cargo install's own temporary directory,
# not in the project's target directory.
deny_version=$(cargo deny --version 2>/dev/null || true)
if [[ "$deny_version" != "cargo-deny ${CARGO_DENY_VERSION%.*}."* ]]; then
  echo "supply-chain: installing cargo-deny $CARGO_DENY_VERSION (a few minutes)"
  env -u CARGO_TARGET_DIR cargo install --locked --quiet cargo-deny --version "$CARGO_DENY_VERSION"
fi
if ! command -v cargo-machete >/dev/null; then
  echo "supply-chain: installing cargo-machete $CARGO_MACHETE_VERSION"
  env -u CARGO_TARGET_DIR cargo install --locked --quiet cargo-machete --version "$CARGO_MACHETE_VERSION"
fi

# --- advisory database ---------------------------------------------------------
# deny.toml: db-path = "~/.cache/mcp-edge/advisory-dbs", and cargo-deny looks
# for https://github.com/rustsec/advisory-db in advisory-db-3157b0e258782691.
src="${ADVISORY_DB_SRC:-$repo/../shared/advisory-db}"
dbs="$HOME/.cache/mcp-edge/advisory-dbs"
db="$dbs/advisory-db-3157b0e258782691"
skipped=""
if [ -d "$src/crates" ]; then
  mkdir -p "$dbs"
  exec 9>"$dbs/.prepare.lock"
  flock 9
  # Reuse the prepared copy when it is a git repository whose files are the
  # snapshot's; otherwise rebuild it (one commit), then swap it in.
  if [ -d "$db/.git" ] && [ -n "$(git -C "$db" rev-parse -q --verify HEAD 2>/dev/null)" ] &&
     diff -rq -x .git "$src" "$db" >/dev/null 2>&1; then
    echo "supply-chain: advisory database $db is up to date with $src"
  else
    echo "supply-chain: preparing advisory database $db from $src"
    tmp=$(mktemp -d "$dbs/.new.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    (cd "$src" && tar --exclude=./.git -cf - .) | (cd "$tmp" && tar -xf -)
    chmod -R u+w "$tmp"   # the snapshot may be read-only
    git -C "$tmp" init -q
    git -C "$tmp" add -A
    git -C "$tmp" -c user.name=supply-chain -c user.email=supply-chain@localhost \
      -c commit.gpgsign=false commit -q --no-verify -m "RustSec advisory-db snapshot (from $src)"
    rm -rf "$db"
    mv "$tmp" "$db"
  fi
  exec 9>&-
  grep -m1 '^Snapshot of' "$src/USAGE.md" 2>/dev/null | sed 's/^/supply-chain: /' || true
  checks=(advisories bans licenses sources)
else
  skipped="no RustSec advisory database snapshot at $src (set ADVISORY_DB_SRC to a copy of rustsec/advisory-db)"
  checks=(bans licenses sources)
  {
    echo "supply-chain: ########################################################"
    echo "supply-chain: WARNING: ADVISORIES CHECK SKIPPED: $skipped."
    echo "supply-chain: Known vulnerabilities are NOT being checked in this run."
    echo "supply-chain: ########################################################"
  } >&2
fi

# --- checks --------------------------------------------------------------------
# cargo-deny --offline reads every package's manifest from cargo's cache, for
# all platforms: fetch them first (a no-op once cached; Cargo.lock must be
# up to date).
cargo fetch --locked --quiet

status=0
echo "supply-chain: cargo deny --offline check ${checks[*]}"
if ! cargo deny --offline check --hide-inclusion-graph "${checks[@]}"; then
  status=1
  echo "supply-chain: cargo-deny found problems; the errors again, with the crates that pull them in:" >&2
  cargo deny --offline --log-level error check "${checks[@]}" || true
fi
echo "supply-chain: cargo machete"
if ! cargo machete; then
  status=1
  echo "supply-chain: cargo-machete found unused dependencies: remove them, or list a false positive under [package.metadata.cargo-machete] ignored = [...] with a comment" >&2
fi

if [ -n "$skipped" ]; then
  echo "supply-chain: WARNING: ADVISORIES CHECK SKIPPED: $skipped." >&2
fi
if [ "$status" -ne 0 ]; then
  echo "supply-chain: FAILED" >&2
  exit 1
fi
echo "supply-chain: ok (cargo-deny: ${checks[*]}; cargo-machete)${skipped:+; advisories SKIPPED}"
