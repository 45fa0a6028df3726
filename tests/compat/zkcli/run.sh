#!/usr/bin/env bash
# Scripted sessions of Debian's zkCli (the Java CLI, ZooKeeperMain) against
# $ZK_HOSTS (default 127.0.0.1:2181); checks its output with grep.
# Exits non-zero if any check failed.
#
# Two styles are used:
#   zk CMD ARGS...     one zkCli invocation per command (`zkCli.sh -server H cmd`);
#                      its exit status is 1 when the command failed.
#                      NB: zkCli exits without closing the session, so
#                      ephemerals made this way live until the session times out.
#   session <<EOF      several commands on stdin in one session (JLine is
#                      disabled for non-tty stdin), ended by `quit`, which
#                      closes the session.
set -uo pipefail

ZK_HOSTS="${ZK_HOSTS:-127.0.0.1:2181}"
ZKCLI="${ZKCLI:-/usr/share/zookeeper/bin/zkCli.sh}"
if [ ! -x "$ZKCLI" ]; then
    echo "FAIL zkcli: $ZKCLI not found (run scripts/install-test-deps.sh)"
    exit 1
fi
export CLIENT_JVMFLAGS="${CLIENT_JVMFLAGS:--Xmx128m}"

# Fail fast if nothing listens at the (first) server address.
first="${ZK_HOSTS%%,*}"; first="${first%%/*}"
if ! timeout 5 bash -c 'exec 3<>"/dev/tcp/${1%:*}/${1##*:}"' _ "$first" 2>/dev/null; then
    echo "FAIL zkcli: cannot connect to $first"
    echo "zkcli: 0 passed, 1 failed"
    exit 1
fi

B="/zkcli-compat-$$-$RANDOM"
BOB_DIGEST="bob:fyVmFCwVbTJYrznoSu1koqYEYF0="      # digest of bob:secret
pass=0
fail=0
OUT=""
RC=0

# Drop the CLI's connection chatter so that outputs can be matched exactly.
filter() {
    grep -v -E '^SLF4J:|^Connecting to |^Welcome to ZooKeeper!|^JLine support|^WATCHER::$|^WatchedEvent state:(SyncConnected|Closed) type:None path:null$|^$' || true
}

zk() {
    OUT="$(timeout -k 5 30 "$ZKCLI" -server "$ZK_HOSTS" "$@" 2>&1 < /dev/null | filter)"
    RC=${PIPESTATUS[0]}
}

session() {
    OUT="$(timeout -k 5 60 "$ZKCLI" -server "$ZK_HOSTS" 2>&1 | filter)"
    RC=${PIPESTATUS[0]}
}

ok()     { pass=$((pass + 1)); echo "ok   - $1"; }
not_ok() {
    fail=$((fail + 1)); echo "FAIL - $1"
    echo "       exit status: $RC"
    printf '%s\n' "$OUT" | sed 's/^/       | /'
}

# expect DESC RC REGEX...  : last command exited with RC and its output has
# a line matching each (extended) regex
expect() {
    local desc="$1" want_rc="$2"; shift 2
    if [ "$want_rc" != "-" ] && [ "$RC" != "$want_rc" ]; then
        not_ok "$desc (wanted exit status $want_rc)"; return
    fi
    local re
    for re in "$@"; do
        if ! grep -q -E -- "$re" <<< "$OUT"; then
            not_ok "$desc (no line matching /$re/)"; return
        fi
    done
    ok "$desc"
}

# reject DESC REGEX : output must have no line matching REGEX
reject() {
    if grep -q -E -- "$2" <<< "$OUT"; then
        not_ok "$1 (unexpected line matching /$2/)"
    else
        ok "$1"
    fi
}

echo "zkcli: using $ZKCLI against $ZK_HOSTS, base $B"

# ---------------------------------------------------------------- create / ls
zk version
expect "version prints the CLI version" 0 '^ZooKeeper CLI version: '

zk create "$B" rootdata
expect "create persistent" 0 "^Created $B\$"

zk create "$B" again
expect "create existing fails" 1 "^Node already exists: $B\$"

zk create "$B/missing/child" x
expect "create without parent fails" 1 "^Node does not exist: $B/missing/child\$"

zk create -s "$B/s-" seqdata
expect "create -s appends a 10-digit counter" 0 "^Created $B/s-0000000000\$"

zk create -s "$B/s-" seqdata
expect "second sequential create" 0 "^Created $B/s-0000000001\$"

zk ls "$B"
expect "ls lists children" 0 "^\[s-0000000000, s-0000000001\]\$"

zk ls /
expect "ls / shows base and /zookeeper" 0 "zookeeper" "${B#/}"

zk ls -R "$B"
expect "ls -R lists the subtree" 0 "^$B\$" "^$B/s-0000000000\$" "^$B/s-0000000001\$"

zk ls -s "$B"
expect "ls -s prints children and stat" 0 "^\[s-0000000000, s-0000000001\]\$" \
    '^cversion = 2$' '^numChildren = 2$'

# ------------------------------------------------------------ get / set / stat
zk get "$B"
expect "get prints data" 0 '^rootdata$'

zk get -s "$B"
expect "get -s prints data and stat" 0 '^rootdata$' '^cZxid = 0x[0-9a-f]+$' \
    '^mZxid = 0x[0-9a-f]+$' '^pZxid = 0x[0-9a-f]+$' '^ctime = ' '^mtime = ' \
    '^dataVersion = 0$' '^aclVersion = 0$' '^ephemeralOwner = 0x0$' \
    '^dataLength = 8$' '^numChildren = 2$' '^cversion = 2$'
czxid="$(printf '%s\n' "$OUT" | sed -n 's/^cZxid = //p')"

zk set "$B" newdata
expect "set" 0
zk get "$B"
expect "get after set" 0 '^newdata$'

zk set -s "$B" newer
expect "set -s prints the new stat" 0 '^dataVersion = 2$' '^dataLength = 5$' "^cZxid = $czxid\$"

zk set -v 1 "$B" stale
expect "set with a stale version fails" 1 "^version No is not valid : $B\$"

zk set -v 2 "$B" fresh
expect "set with the current version" 0

zk stat "$B"
expect "stat" 0 '^dataVersion = 3$' '^numChildren = 2$' "^cZxid = $czxid\$"

zk stat "$B/none"
expect "stat of a missing node fails" 1 "^Node does not exist: $B/none\$"

zk get "$B/none"
expect "get of a missing node fails" 1 "^Node does not exist: $B/none\$"

# ------------------------------------------------------ null data vs empty data
# `create` without data stores null data: `get` prints "null". Data "" is empty,
# not null: `get` prints an empty line (dropped by filter), never "null".
N="$B-null"
zk create "$N"
expect "create without data" 0 "^Created $N\$"
zk get -s "$N"
expect "get of a node created without data prints null" 0 '^null$' '^dataLength = 0$'
zk create "$N/empty" ""
expect "create with empty data" 0 "^Created $N/empty\$"
zk get -s "$N/empty"
expect "get of empty data" 0 '^dataLength = 0$'
reject "get of empty data does not print null" '^null$'
zk set "$N" x
zk get "$N"
expect "get after setting data on a null node" 0 '^x$'
zk deleteall "$N"
expect "deleteall of the null-data subtree" 0

# --------------------------------------------------------------------- ACLs
zk getAcl "$B"
expect "getAcl shows world:anyone cdrwa" 0 "^'world,'anyone\$" '^: cdrwa$'

zk create "$B/acl" secret
expect "create with data" 0 "^Created $B/acl\$"
zk setAcl "$B/acl" "digest:$BOB_DIGEST:cdrwa"
expect "setAcl digest" 0

zk get "$B/acl"
expect "get without auth is refused" 1 "^Insufficient permission : $B/acl\$"

zk getAcl "$B/acl"
expect "getAcl without READ/ADMIN is refused" 1 "^Insufficient permission : $B/acl\$"

zk stat "$B/acl"
expect "stat (exists) needs no permission" 0 '^aclVersion = 1$'

session <<EOF
addauth digest bob:secret
get $B/acl
getAcl $B/acl
whoami
set $B/acl changed
get $B/acl
setAcl $B/acl world:anyone:r
quit
EOF
expect "addauth digest then get" - '^secret$'
expect "getAcl with auth shows the digest id" - "^'digest,'$BOB_DIGEST\$" '^: cdrwa$'
expect "whoami lists ip and digest ids" - '^digest: bob$' '^ip: '
expect "set with auth" - '^changed$'

zk getAcl "$B/acl"
expect "setAcl world:anyone:r took effect" 0 "^'world,'anyone\$" '^: r$'

zk set "$B/acl" nope
expect "set on read-only node is refused" 1 "^Insufficient permission : $B/acl\$"

zk create "$B/auth" x
session <<EOF
addauth digest bob:secret
setAcl $B/auth auth::cdrwa
getAcl $B/auth
setAcl $B/auth world:anyone:cdrwa
quit
EOF
expect "setAcl auth:: expands to the authenticated digest" - "^'digest,'$BOB_DIGEST\$"
zk getAcl "$B/auth"
expect "ACL restored by the authenticated session" 0 "^'world,'anyone\$" '^: cdrwa$'

zk create "$B/ipacl" data ip:127.0.0.1:cdrwa
expect "create with an ip ACL" 0 "^Created $B/ipacl\$"
zk get "$B/ipacl"
expect "ip ACL matches the client address" 0 '^data$'

zk setAcl -v 5 "$B/ipacl" world:anyone:cdrwa
expect "setAcl with a stale ACL version fails" 1 "^version No is not valid : $B/ipacl\$"

zk setAcl -v 0 "$B/ipacl" world:anyone:cdrwa
expect "setAcl with the current ACL version" 0

zk getAcl -s "$B/ipacl"
expect "getAcl -s shows the new aclVersion" 0 "^'world,'anyone\$" '^aclVersion = 1$'

zk create "$B/badacl" x bogus
expect "create with a malformed ACL fails" 1 'does not have the form scheme:id:perm'

zk setAcl "$B" "digest:nocolon:cdrwa"
expect "setAcl with an invalid digest id fails" 1 "Acl is not valid : $B"

# --------------------------------------------------- ephemeral + session end
session <<EOF
create -e $B/eph e
create -e -s $B/es- e
ls $B
stat $B/eph
getEphemerals $B
create $B/eph/child x
quit
EOF
expect "create -e" - "^Created $B/eph\$"
expect "create -e -s" - "^Created $B/es-0000000006\$"
expect "ephemeralOwner is the session" - '^ephemeralOwner = 0x[0-9a-f]*[1-9a-f][0-9a-f]*$'
expect "getEphemerals lists the session's ephemerals" - "^\[($B/eph, $B/es-0000000006|$B/es-0000000006, $B/eph)\]\$"
expect "ephemerals cannot have children" - "Ephemerals cannot have children: $B/eph/child"

zk ls "$B"
expect "ephemerals are gone after quit closed the session" 0 "^\["
reject "no ephemeral left behind" 'eph|es-'

# ----------------------------------------------------------- other commands
zk create -c "$B/container" c
expect "create -c (container)" 0 "^Created $B/container\$"

zk create -t 60000 "$B/ttl" t
if grep -q -i 'unimplemented' <<< "$OUT"; then
    echo "skip - create -t (TTL): server replied UNIMPLEMENTED (extendedTypesEnabled off)"
else
    expect "create -t (TTL)" 0 "^Created $B/ttl\$"
    zk stat "$B/ttl"
    expect "TTL node reports ephemeralOwner 0" 0 '^ephemeralOwner = 0x0$'
fi

zk getAllChildrenNumber "$B"
expect "getAllChildrenNumber" 0 '^[0-9]+$'
zk getAllChildrenNumber /zookeeper
expect "getAllChildrenNumber /zookeeper" 0 '^2$'

zk sync "$B"
expect "sync" 0 '^Sync is OK$'

# ----------------------------------------------------------------- deletion
zk delete "$B"
expect "delete of a non-empty node fails" 1 "^Node not empty: $B\$"

zk delete -v 7 "$B/s-0000000000"
expect "delete with a wrong version fails" 1 "^version No is not valid : $B/s-0000000000\$"

zk delete -v 0 "$B/s-0000000000"
expect "delete with the right version" 0

zk delete "$B/s-0000000000"
expect "delete of a missing node fails" 1 "^Node does not exist: $B/s-0000000000\$"

zk delete /zookeeper
expect "the /zookeeper node cannot be deleted" 1 '^Arguments are not valid : /zookeeper$'

zk deleteall "$B"
expect "deleteall removes the subtree" 0
zk ls "$B"
expect "subtree gone" 1 "^Node does not exist: $B\$"

echo "zkcli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
