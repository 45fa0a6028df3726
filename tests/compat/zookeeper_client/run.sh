#!/usr/bin/env bash
# Rust's zookeeper-client crate (0.9.3) against the server at $ZK_HOSTS: builds
# tests/compat/zookeeper_client (debug build; its own lock file; target dir target/compat-zookeeper-client
# of the repository) and runs its checks. Prints one line per check and exits 1 if any failed.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_ZKC:-$ROOT/target/compat-zookeeper-client}"
cargo build --quiet --manifest-path "$HERE/Cargo.toml"
exec "$CARGO_TARGET_DIR/debug/rzk-compat-zookeeper-client" "${ZK_HOSTS:-127.0.0.1:2181}"
