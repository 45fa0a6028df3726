#!/usr/bin/env bash
# Compile and run the Apache Curator compatibility program against $ZK_HOSTS
# (default 127.0.0.1:2181), using only Debian's jars (see
# scripts/install-test-deps.sh). Prints PASS/FAIL per recipe; exits non-zero
# if anything failed.
#   usage: tests/compat/curator/run.sh [RecipeName ...]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ZK_HOSTS="${ZK_HOSTS:-127.0.0.1:2181}"
J=/usr/share/java
JARS=(
    "$J/curator-recipes.jar" "$J/curator-framework.jar" "$J/curator-client.jar"
    "$J/zookeeper.jar" "$J/zookeeper-jute.jar" "$J/guava.jar"
    "$J/slf4j-api.jar" "$J/slf4j-simple.jar"
)
for j in "${JARS[@]}"; do
    if [ ! -e "$j" ]; then
        echo "FAIL curator: missing $j (run scripts/install-test-deps.sh)"
        exit 1
    fi
done
CP="$(IFS=:; echo "${JARS[*]}")"

BUILD="$(mktemp -d "${TMPDIR:-/tmp}/curator-compat.XXXXXX")"
trap 'rm -rf "$BUILD"' EXIT

if ! javac -nowarn -d "$BUILD" -cp "$CP" "$HERE/CuratorCompat.java" 2>"$BUILD/javac.log"; then
    cat "$BUILD/javac.log"
    echo "FAIL curator: compilation failed"
    exit 1
fi

exec java -Xmx256m \
    -Dorg.slf4j.simpleLogger.defaultLogLevel="${CURATOR_LOG_LEVEL:-error}" \
    -Dorg.slf4j.simpleLogger.logFile=System.err \
    -Dzookeeper.sasl.client=false \
    -cp "$BUILD:$CP" CuratorCompat "$ZK_HOSTS" "$@"
