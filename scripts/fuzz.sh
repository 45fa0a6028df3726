#!/usr/bin/env bash
# Fuzzing (issue 14): runs every cargo-fuzz (libFuzzer) target in fuzz/ in turn, one at a
# time, each for SECONDS (default 600), starting from the committed corpus
# fuzz/corpus/<target>/. New inputs go to a scratch corpus (the committed one is not
# touched unless --cmin); a crash stops the script with the target's artifact path.
#
#   bash scripts/fuzz.sh [SECONDS-PER-TARGET] [--cmin] [TARGET...]
#
#   --cmin     afterwards, merge what each target found into fuzz/corpus/<target>/ and
#              minimize it (cargo fuzz cmin), for committing
#   TARGET...  only these (default: all, see `cargo +nightly fuzz list` in fuzz/)
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`); stable CI
# never builds fuzz/ (it is not a workspace member). Seeds: fuzz/seed.py (kazoo frames
# and data files from rzk and Apache ZooKeeper). What was run and found: docs/TESTING.md.
# Environment: FUZZ_WORK (scratch corpora, default a temp dir), RSS_MB (libFuzzer
# -rss_limit_mb, default 2048).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECS=600
CMIN=0
TARGETS=()
for a in "$@"; do
    case "$a" in
        --cmin) CMIN=1 ;;
        ''|*[!0-9]*) TARGETS+=("$a") ;;
        *) SECS="$a" ;;
    esac
done
if [ ${#TARGETS[@]} -eq 0 ]; then
    mapfile -t TARGETS < <(cargo +nightly fuzz list)
fi
WORK="${FUZZ_WORK:-$(mktemp -d -t rzk-fuzz-XXXXXX)}"
echo "fuzzing ${TARGETS[*]} for ${SECS}s each; new inputs in $WORK"

cargo +nightly fuzz build -O
for t in "${TARGETS[@]}"; do
    mkdir -p "$WORK/$t" "corpus/$t"
    start=$(date +%s)
    echo "== $t: ${SECS}s"
    if ! cargo +nightly fuzz run -O "$t" "$WORK/$t" "corpus/$t" -- \
        -max_total_time="$SECS" -timeout=20 -rss_limit_mb="${RSS_MB:-2048}" \
        -print_final_stats=1; then
        echo "FAIL $t: crash after $(( $(date +%s) - start ))s; see fuzz/artifacts/$t/" >&2
        exit 1
    fi
    echo "ok $t: $(( $(date +%s) - start ))s clean"
    if [ "$CMIN" = 1 ]; then
        cp -n "$WORK/$t"/* "corpus/$t/" 2>/dev/null || true
        cargo +nightly fuzz cmin -O "$t" "corpus/$t"
    fi
done
echo "all ${#TARGETS[@]} targets clean"
