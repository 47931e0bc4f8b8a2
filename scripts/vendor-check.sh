#!/usr/bin/env bash
# Checks that vendor/pingora-proxy and vendor/pingora-core are exactly the
# crates.io sources plus vendor/patches/*.patch: copies the pristine crates
# into a temporary directory, drops the files that are not vendored (the same
# list for every run, below), applies the patches in order with `patch -p1`
# (no fuzz: a patch that does not apply exactly fails) and compares the result
# with vendor/ (`diff -ru`). Exits non-zero with the diff when they differ.
#
# The pristine sources come from cargo's registry cache
# ($CARGO_HOME/registry/src/*/<crate>-<version>), else from static.crates.io.
# The version is the one vendor/pingora-proxy/Cargo.toml declares.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
crates=(pingora-proxy pingora-core)
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' vendor/pingora-proxy/Cargo.toml | head -1)
# Not vendored: cargo's unpack markers, the crates' lock files and original
# manifests, and pingora-proxy's examples and benches (patch 0001 drops their
# manifest entries).
drop=(.cargo-ok .cargo_vcs_info.json Cargo.lock Cargo.toml.orig)
drop_proxy=(benches examples)

work=$(mktemp -d)
# downloads go beside the work tree, not in it (it is searched for leftovers)
dl=$(mktemp -d)
trap 'rm -rf "$work" "$dl"' EXIT

pristine() { # crate -> directory of the pristine source
    local d
    for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"$1-$version"; do
        [ -f "$d/Cargo.toml" ] && { echo "$d"; return; }
    done
    curl -sSfL "https://static.crates.io/crates/$1/$1-$version.crate" | tar -xz -C "$dl"
    echo "$dl/$1-$version"
}

for c in "${crates[@]}"; do
    cp -r "$(pristine "$c")" "$work/$c"
    for f in "${drop[@]}"; do rm -rf "${work:?}/$c/$f"; done
done
for f in "${drop_proxy[@]}"; do rm -rf "${work:?}/pingora-proxy/$f"; done

shopt -s nullglob
patches=("$root"/vendor/patches/*.patch)
[ ${#patches[@]} -gt 0 ] || { echo "vendor-check: no vendor/patches/*.patch" >&2; exit 1; }
for p in "${patches[@]}"; do
    if ! out=$(cd "$work" && patch -p1 --fuzz=0 --no-backup-if-mismatch --batch < "$p" 2>&1); then
        echo "vendor-check: $(basename "$p") does not apply:" >&2
        echo "$out" >&2
        exit 1
    fi
done
if stray=$(cd "$work" && find . -name '*.rej' -o -name '*.orig' | grep .); then
    echo "vendor-check: leftovers from patch: $stray" >&2
    exit 1
fi

status=0
for c in "${crates[@]}"; do
    (cd "$work" && diff -ru "$c" "$root/vendor/$c") || status=1
done
if [ $status -ne 0 ]; then
    echo "vendor-check: vendor/ differs from pristine $version + vendor/patches (diff above)" >&2
    exit 1
fi
echo "vendor-check: vendor/ = crates.io $version + ${#patches[@]} patches"
