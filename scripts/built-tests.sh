#!/usr/bin/env bash
# Runs test executables of one package as `cargo test --workspace` built them:
#   scripts/built-tests.sh PACKAGE [TEST-TARGET ...] [-- TEST-ARGS ...]
# PACKAGE `!NAME` runs those of every package but NAME.
# e.g. `scripts/built-tests.sh rzk-client -- --test-threads=2`, `scripts/built-tests.sh rzk dump bench`.
# Why not `cargo test -p PACKAGE`: cargo unifies features over the packages selected, so
# `-p rzk-client` alone rebuilds ~30 crates with another feature set (about 90 s of a CI
# run on 2 cores). The executables are listed by `cargo test --workspace --no-run`
# (already built by the cargo-test stage) and run from the package's directory, as cargo
# runs them. Exits non-zero when any fails or none is found.
set -uo pipefail
cd "$(dirname "$0")/.."
pkg=$1; shift
targets=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do targets+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
list=$(cargo test --workspace --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
pkg, targets = sys.argv[1], set(sys.argv[2:])
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact" or not m.get("executable") or not m["profile"]["test"]:
        continue
    # "path+file:///dir/crates/sasl#rzk-sasl@0.1.0", or "...crates/rzk#0.1.0" when the
    # directory is named as the package.
    url, _, frag = m["package_id"].partition("#")
    name = frag.split("@")[0] if "@" in frag else url.rstrip("/").rsplit("/", 1)[-1]
    if (name == pkg[1:]) if pkg.startswith("!") else (name != pkg):
        continue
    if targets and m["target"]["name"] not in targets:
        continue
    print(m["manifest_path"].rsplit("/", 1)[0] + "\t" + m["executable"])
' "$pkg" "${targets[@]}")
[ -n "$list" ] || { echo "no test executables of $pkg ${targets[*]}"; exit 1; }
rc=0
while IFS=$'\t' read -r dir exe; do
  echo "     Running $(basename "$exe")"
  (cd "$dir" && "$exe" "$@") || rc=1
done <<< "$list"
exit $rc
