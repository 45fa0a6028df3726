#!/usr/bin/env bash
# Install everything the compatibility test suites (tests/compat/) need on a
# Debian machine. Idempotent: safe to run again on a machine that already has
# everything installed.
#
#   * Debian's Apache ZooKeeper (server + zkCli):   zookeeper, libzookeeper-java
#   * Debian's C client (cli_mt):                   zookeeper-bin
#   * Apache Curator (recipes/framework/client):    libcurator-*-java
#   * a JDK (javac, to compile the Curator tests)   default-jdk-headless (if javac missing)
#   * TLS tests (tests/tls): netty jars, openssl     libnetty-java openssl (keytool: the JDK)
#   * fault suite (tests/faults): iptables (partitions), setpriv (util-linux)
#   * python3 venv at .venv-tests/ with kazoo + pytest + pure-sasl (from PyPI)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$REPO_ROOT/.venv-tests}"
export DEBIAN_FRONTEND=noninteractive

SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi

debian_pkgs=(
    zookeeper
    zookeeper-bin
    libzookeeper-java
    libcurator-client-java
    libcurator-framework-java
    libcurator-recipes-java
    libslf4j-java
    libnetty-java
    libsnappy-java
    openssl
    make
    gcc
    iptables
    python3
    python3-venv
    python3-pip
    # tests/kerberos: a throwaway MIT KDC (kdb5_util, krb5kdc; kadmin.local; kinit,
    # klist) and the headers PyPI's `kerberos` (kazoo's GSSAPI) builds against.
    krb5-kdc
    krb5-admin-server
    krb5-user
    libkrb5-dev
)
if ! command -v javac >/dev/null 2>&1; then
    debian_pkgs+=(default-jdk-headless)
fi

missing=()
for p in "${debian_pkgs[@]}"; do
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-test-deps: installing Debian packages: ${missing[*]}"
    # Refresh the package lists if they are absent or stale (> 1 day).
    if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | head -n1)" ]; then
        $SUDO apt-get update -q
    fi
    # Non-interactive: krb5-user would otherwise ask for a default realm.
    if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; then
        # Stale lists can make an install fail: refresh once and retry.
        $SUDO apt-get update -q
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
else
    echo "install-test-deps: Debian packages already installed"
fi

# (Debian's zookeeper package installs no service: nothing is started here.
# scripts/start-apache-zk.sh starts a private instance when one is needed.)

# Python venv with kazoo + pytest.
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "install-test-deps: creating venv $VENV"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
fi
# pure-sasl: kazoo's SASL (DIGEST-MD5) support, used by tests/security. objgraph: imported
# by kazoo's own test module test_cache (tests/compat/kazoo_suite_test.py runs it).
if ! "$VENV/bin/python" -c 'import kazoo, pytest, puresasl, objgraph' >/dev/null 2>&1; then
    echo "install-test-deps: installing kazoo + pytest + pure-sasl + objgraph into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check 'kazoo>=2.9' 'pytest>=7' \
        'pure-sasl>=0.6' 'objgraph>=3.5'
else
    echo "install-test-deps: kazoo + pytest + pure-sasl + objgraph already present in $VENV"
fi
# kerberos: pure-sasl's GSSAPI for kazoo (tests/kerberos), built against libkrb5-dev.
if ! "$VENV/bin/python" -c 'import kerberos' >/dev/null 2>&1; then
    echo "install-test-deps: installing kerberos (GSSAPI for pure-sasl) into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check 'kerberos>=1.3'
fi

# Sanity check: everything the suites use is where we expect it.
for f in /usr/share/java/zookeeper.jar /usr/share/java/zookeeper-jute.jar \
         /usr/share/java/curator-recipes.jar /usr/share/java/curator-framework.jar \
         /usr/share/java/curator-client.jar /usr/share/java/slf4j-simple.jar \
         /usr/share/zookeeper/bin/zkCli.sh /usr/lib/zookeeper/bin/cli_mt; do
    if [ ! -e "$f" ]; then
        echo "install-test-deps: ERROR: expected $f to exist" >&2
        exit 1
    fi
done
command -v java >/dev/null && command -v javac >/dev/null || {
    echo "install-test-deps: ERROR: java/javac not found" >&2; exit 1; }
echo "install-test-deps: OK"
