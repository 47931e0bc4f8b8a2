#!/usr/bin/env bash
# The packages, checked for real (run by .ci/run; needs root, Debian).
#
#   scripts/package-check.sh [--profile dev|release]    (default: dev)
#
# .deb: build, install with dpkg/apt, check the user, directories, conffile
# and unit, `mcp-edge validate` the installed config, start the installed
# binary the way the unit does (as mcp-edge, run -d), /healthz, upgrade it in
# place (`mcp-edge upgrade`, what `systemctl reload` runs) and /healthz
# again, stop it, reinstall keeping a local config edit, purge, check that
# everything is gone. .rpm: build, check its file list, config flags and
# scripts. CI packages the debug binary (already built by the tests); `make
# deb`/`make rpm` package release builds.
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENSSL_NO_VENDOR=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-edge/target}"

profile=dev
if [ "${1:-}" = "--profile" ]; then profile=${2:?--profile needs dev or release}; fi
out=$(mktemp -d /tmp/mcp-edge-pkg.XXXXXX)
conf=/etc/mcp-edge/mcp-edge.yaml
pidf=/run/mcp-edge/mcp-edge.pid
port=7332

step() { echo "== package-check: $*"; }
fail() { echo "package-check FAILED: $*" >&2; exit 1; }

cleanup() {
  local rc=$?
  if [ -f "$pidf" ]; then kill -TERM "$(cat "$pidf")" 2>/dev/null || true; fi
  pkill -TERM -f "/usr/bin/mcp-edge run" 2>/dev/null || true
  if dpkg -s mcp-edge >/dev/null 2>&1; then dpkg --purge mcp-edge >/dev/null 2>&1 || true; fi
  rm -rf "$out"
  exit $rc
}
trap cleanup EXIT INT TERM

healthz() { # wait up to 10 s for 200 on /healthz
  for _ in $(seq 100); do
    if curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; then return 0; fi
    sleep 0.1
  done
  return 1
}

step "tools"
command -v dpkg-deb >/dev/null || fail "dpkg-deb missing (not Debian?)"
command -v rpm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rpm >/dev/null; }
command -v curl >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null
scripts/package-tools.sh
if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then fail "port $port is in use; the packaged config listens there"; fi
if dpkg -s mcp-edge >/dev/null 2>&1; then fail "mcp-edge is already installed here; remove it first"; fi

step "build ($profile)"
if [ "$profile" = dev ]; then cargo build --quiet; else cargo build --release --quiet; fi
scripts/package-build.sh deb "$profile" "$out"
scripts/package-build.sh rpm "$profile" "$out"
deb=$(ls "$out"/*.deb)
rpmf=$(ls "$out"/*.rpm)

step "install $deb"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" >/dev/null
id mcp-edge >/dev/null || fail "no mcp-edge user"
[ "$(stat -c %U:%G:%a /var/log/mcp-edge)" = "mcp-edge:mcp-edge:750" ] || fail "/var/log/mcp-edge: $(stat -c %U:%G:%a /var/log/mcp-edge)"
[ "$(stat -c %U:%G:%a /run/mcp-edge)" = "mcp-edge:mcp-edge:750" ] || fail "/run/mcp-edge: $(stat -c %U:%G:%a /run/mcp-edge)"
[ "$(stat -c %U:%G:%a $conf)" = "root:mcp-edge:640" ] || fail "$conf: $(stat -c %U:%G:%a $conf)"
dpkg-query -W -f='${Conffiles}\n' mcp-edge | grep -q "$conf" || fail "$conf is not a conffile"
[ -x /usr/bin/mcp-edge ] || fail "/usr/bin/mcp-edge missing"
[ -f /usr/lib/systemd/system/mcp-edge-tunnel@.service ] || fail "the tunnel client unit is missing"
if command -v systemd-analyze >/dev/null; then
  # the unit must be clean; "not running as PID 1"-style notes are environmental
  systemd-analyze verify /usr/lib/systemd/system/mcp-edge.service > "$out/verify.txt" 2>&1 || true
  if grep -i -E "unknown|invalid|failed to parse|not executable|bad " "$out/verify.txt"; then
    fail "systemd-analyze verify complains about the unit"
  fi
fi

step "validate the installed config"
runuser -u mcp-edge -- /usr/bin/mcp-edge validate -c $conf

step "start as the unit does (mcp-edge, run -d)"
runuser -u mcp-edge -- /usr/bin/mcp-edge run -d -c $conf 2> "$out/run.log"
healthz || fail "no /healthz: $(cat "$out/run.log")"
first=$(cat $pidf)
curl -sf "http://127.0.0.1:7333/health" | grep -q '"ready"' || fail "admin /health"
curl -sf -o /dev/null -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
  -d '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' "http://127.0.0.1:$port/mcp" \
  && fail "an unauthenticated call was accepted by the packaged config"

step "upgrade in place (systemctl reload runs this)"
runuser -u mcp-edge -- /usr/bin/mcp-edge upgrade -c $conf > "$out/upgrade.txt" 2>&1 || fail "upgrade: $(cat "$out/upgrade.txt")"
grep -q "^upgraded: pid $first -> " "$out/upgrade.txt" || fail "upgrade said: $(cat "$out/upgrade.txt")"
second=$(cat $pidf)
[ "$second" != "$first" ] || fail "pid file still names $first"
healthz || fail "no /healthz after the upgrade"
test -s /var/log/mcp-edge/audit.jsonl || fail "no audit line in /var/log/mcp-edge/audit.jsonl"

step "stop (SIGTERM drains for grace_period_secs: 30 s in the shipped config, then 5 s shutdown)"
kill -TERM "$second"
for _ in $(seq 250); do kill -0 "$second" 2>/dev/null || break; sleep 0.2; done
kill -0 "$second" 2>/dev/null && fail "pid $second still running 50 s after SIGTERM"
# the replaced process: 5 s close delay + grace period + 5 s after the upgrade
for _ in $(seq 100); do kill -0 "$first" 2>/dev/null || break; sleep 0.2; done
kill -0 "$first" 2>/dev/null && fail "the replaced pid $first did not exit after its grace period"

step "reinstall keeps a local config edit"
echo "# local edit" >> $conf
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall -o Dpkg::Options::=--force-confold "$deb" >/dev/null
grep -q "^# local edit" $conf || fail "the conffile edit was overwritten"

step "purge"
dpkg --purge mcp-edge >/dev/null
[ ! -e /usr/bin/mcp-edge ] || fail "/usr/bin/mcp-edge left behind"
[ ! -e /var/log/mcp-edge ] || fail "/var/log/mcp-edge left behind"
[ ! -e $conf ] || fail "$conf left behind by purge"
if id mcp-edge >/dev/null 2>&1; then fail "mcp-edge user left behind"; fi

step "rpm $rpmf"
rpm -qpl "$rpmf" > "$out/rpm-files.txt"
for f in /usr/bin/mcp-edge $conf /usr/lib/systemd/system/mcp-edge.service /usr/lib/systemd/system/mcp-edge-tunnel@.service /usr/lib/tmpfiles.d/mcp-edge.conf; do
  grep -qx "$f" "$out/rpm-files.txt" || fail "$f not in the rpm: $(cat "$out/rpm-files.txt")"
done
rpm -qpc "$rpmf" | grep -qx "$conf" || fail "$conf is not a %config file in the rpm"
rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpmf" | grep -q "^cn $conf" || fail "$conf is not %config(noreplace)"
rpm -qp --scripts "$rpmf" | grep -q "useradd --system" || fail "the rpm does not create the mcp-edge user"
rpm -qpR "$rpmf" | grep -q "libssl.so.3" || fail "the rpm does not require libssl"

step "ok: .deb installed, validated, served /healthz, upgraded in place, purged; .rpm file list checked"
