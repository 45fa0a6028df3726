#!/usr/bin/env bash
# Drive the ZooKeeper C client's shell `cli_mt` (Debian package zookeeper-bin)
# against $ZK_HOSTS (default 127.0.0.1:2181) and check its output.
# Exits non-zero if any check failed.
#
# cli_mt notes (libzookeeper-mt 3.8):
#   * `-c CMD` ("batch mode") runs one command and exits once its completion
#     has run. Only the asynchronous commands complete that way: create,
#     create2, get, set, ls, ls2, delete, sync. `exists`, `wexists`, `myid`
#     and `addauth` never end batch mode, so they are run in an interactive
#     session fed on stdin instead, paced with short sleeps because the
#     commands are asynchronous.
#   * `create [+[e|s|c|t=ttl]] PATH` always stores the data "new"; `ls` and
#     `get` leave a watch behind.
#   * Exiting (quit / end of batch) closes the session.
set -uo pipefail

ZK_HOSTS="${ZK_HOSTS:-127.0.0.1:2181}"
CLI="${CLI_MT:-/usr/lib/zookeeper/bin/cli_mt}"
if [ ! -x "$CLI" ]; then
    echo "FAIL cli_mt: $CLI not found (run scripts/install-test-deps.sh)"
    exit 1
fi

# Fail fast if nothing listens at the (first) server address.
first="${ZK_HOSTS%%,*}"; first="${first%%/*}"
if ! timeout 5 bash -c 'exec 3<>"/dev/tcp/${1%:*}/${1##*:}"' _ "$first" 2>/dev/null; then
    echo "FAIL cli_mt: cannot connect to $first"
    echo "cli_mt: 0 passed, 1 failed"
    exit 1
fi

B="/climt-compat-$$-$RANDOM"
pass=0
fail=0
OUT=""
RC=0

batch() {
    OUT="$(timeout 20 "$CLI" -h "$ZK_HOSTS" -c "$*" 2>&1 < /dev/null)"
    RC=$?
}

# interactive LINE... : feed each line (or "!shell command" to run in the
# middle of the session), 0.3 s apart, then quit.
interactive() {
    OUT="$(
        {
            local l
            for l in "$@"; do
                if [ "${l:0:1}" = "!" ]; then
                    bash -c "${l:1}" >/dev/null 2>&1
                else
                    printf '%s\n' "$l"
                fi
                sleep 0.3
            done
            echo quit
            sleep 0.5
        } | timeout 30 "$CLI" -h "$ZK_HOSTS" 2>&1
    )"
    RC=$?
}

ok()     { pass=$((pass + 1)); echo "ok   - $1"; }
not_ok() {
    fail=$((fail + 1)); echo "FAIL - $1"
    echo "       exit status: $RC"
    printf '%s\n' "$OUT" | sed 's/^/       | /'
}

# expect DESC REGEX... : output has a line matching each extended regex
expect() {
    local desc="$1"; shift
    if [ "$RC" = 124 ]; then not_ok "$desc (timed out)"; return; fi
    local re
    for re in "$@"; do
        if ! grep -q -E -- "$re" <<< "$OUT"; then
            not_ok "$desc (no line matching /$re/)"; return
        fi
    done
    ok "$desc"
}

reject() {
    if grep -q -E -- "$2" <<< "$OUT"; then
        not_ok "$1 (unexpected line matching /$2/)"
    else
        ok "$1"
    fi
}

T=$'\t'
echo "cli_mt: using $CLI against $ZK_HOSTS, base $B"

batch create "$B"
expect "create" "^\[$B\]: rc = 0\$" "^${T}name = $B\$" 'Got a new session id: 0x[0-9a-f]+'

batch create "$B"
expect "create existing -> ZNODEEXISTS (-110)" "^\[$B\]: rc = -110\$"

batch create "$B/no/parent"
expect "create without parent -> ZNONODE (-101)" "^\[$B/no/parent\]: rc = -101\$"

batch get "$B"
expect "get" "^$B: rc = 0\$" '^ value_len = 3$' '^new$' "^${T}version=0${T}aversion=0\$" \
    "^${T}ephemeralOwner = 0\$" "^${T}czxid=[0-9a-f]+\$"
czxid="$(printf '%s\n' "$OUT" | sed -n "s/^${T}czxid=//p")"

batch set "$B" world
expect "set" "^$B: rc = 0" "^${T}version=1${T}aversion=0\$" "^${T}czxid=$czxid\$"

batch get "$B"
expect "get after set" '^ value_len = 5$' '^world$' "^${T}version=1${T}"

batch get "$B/none"
expect "get missing -> ZNONODE (-101)" "^$B/none: rc = -101\$"

batch set "$B/none" x
expect "set missing -> ZNONODE (-101)" "^$B/none: rc = -101"

batch create +s "$B/s-"
expect "create +s (sequential)" "^${T}name = $B/s-0000000000\$"

batch create +s "$B/s-"
expect "second sequential" "^${T}name = $B/s-0000000001\$"

batch create2 "$B/c2"
expect "create2 returns the stat" "^\[$B/c2\]: rc = 0\$" "^${T}name = $B/c2\$" \
    "^${T}czxid=[0-9a-f]+\$" "^${T}version=0${T}aversion=0\$"

batch ls "$B"
expect "ls" "^$B: rc = 0\$" "^${T}s-0000000000\$" "^${T}s-0000000001\$" "^${T}c2\$"

batch ls2 "$B"
expect "ls2 (children + stat)" "^$B: rc = 0\$" "^${T}c2\$" "^${T}czxid=$czxid\$" "^${T}version=1${T}"

batch ls "$B/none"
expect "ls missing -> ZNONODE (-101)" "^$B/none: rc = -101\$"

batch sync "$B"
expect "sync" "^\[$B\]: rc = 0\$"

batch create "$B/ext"
batch create +c "$B/ext/cont"
expect "create +c (container)" "^\[$B/ext/cont\]: rc = 0\$"

batch create +t=60000 "$B/ext/ttl"
if grep -q -E "rc = -6\$" <<< "$OUT"; then
    echo "skip - create +t (TTL): server answered ZUNIMPLEMENTED (-6), extendedTypesEnabled off"
else
    expect "create +t=60000 (TTL)" "^\[$B/ext/ttl\]: rc = 0\$"
fi

# ------------------------------------------------ one interactive session
interactive \
    "create +e $B/eph" \
    "create +es $B/es-" \
    "exists $B/none" \
    "wexists $B/watched" \
    "!timeout 20 $CLI -h $ZK_HOSTS -c 'create $B/watched'" \
    "ls $B/watched" \
    "!timeout 20 $CLI -h $ZK_HOSTS -c 'create $B/watched/kid'" \
    "addauth digest bob:secret" \
    "create $B/eph/child" \
    "get $B/eph"
expect "create +e (ephemeral)" "^\[$B/eph\]: rc = 0\$"
expect "create +es (ephemeral sequential)" "^${T}name = $B/es-0000000005\$"
expect "exists on a missing node" "^Error -101 for $B/none\$"
expect "wexists watch fires on create" "^Watcher CREATED_EVENT state = CONNECTED_STATE for path $B/watched\$"
expect "ls leaves a child watch" "^Watcher CHILD_EVENT state = CONNECTED_STATE for path $B/watched\$"
reject "addauth digest succeeds" 'AUTH_FAILED|Authentication failure'
expect "ephemerals cannot have children (-108)" "^\[$B/eph/child\]: rc = -108\$"
expect "ephemeralOwner is the session" "^${T}ephemeralOwner = [0-9a-f]*[1-9a-f][0-9a-f]*\$"

batch ls "$B"
expect "ephemerals gone after the session quit" "^$B: rc = 0\$"
reject "no ephemeral left" "^${T}(eph|es-)"

# ------------------------------------------------------------- deletes
batch delete "$B"
expect "delete non-empty -> ZNOTEMPTY (-111)" "^$B: rc = -111\$"

batch delete "$B/none"
expect "delete missing -> ZNONODE (-101)" "^$B/none: rc = -101\$"

batch delete "$B/ext/ttl"      # absent if the server has no TTL support
for n in s-0000000000 s-0000000001 c2 ext/cont ext watched/kid watched; do
    batch delete "$B/$n"
    if ! grep -q -E "^$B/$n: rc = 0\$" <<< "$OUT"; then
        not_ok "delete $B/$n"
    fi
done
batch delete "$B"
expect "delete emptied base" "^$B: rc = 0\$"

batch get "$B"
expect "base is gone" "^$B: rc = -101\$"

echo "cli_mt: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
