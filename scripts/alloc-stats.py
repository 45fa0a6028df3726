#!/usr/bin/env python3
"""Summarises jemalloc statistics printed by an `rzk` built with `--features jemalloc-stats`
(crates/rzk/src/alloc_stats.rs): totals, and per small size class holding at least
MIN_MIB, the bytes in use, the slabs, their use and the bytes they hold unused.

    usage: scripts/alloc-stats.py SERVER_LOG [MIN_MIB=0.5]

Reads the last statistics object in the file (the server's stderr).
"""
import json
import sys

MIB = 2**20


def main():
    raw = open(sys.argv[1]).read()
    min_bytes = float(sys.argv[2] if len(sys.argv) > 2 else 0.5) * MIB
    at = raw.rfind('{"jemalloc"')
    if at < 0:
        sys.exit(f"no jemalloc statistics in {sys.argv[1]}")
    j, _ = json.JSONDecoder().raw_decode(raw[at:])
    j = j["jemalloc"]
    s = j["stats"]
    print("  ".join(f"{k} {s[k] / MIB:.1f} MiB" for k in
                    ("allocated", "active", "metadata", "resident", "mapped", "retained")))
    merged = j["stats.arenas"]["merged"]
    print(f"{'class':>6} {'in use':>9} {'MiB':>7} {'slabs':>6} {'use':>5} {'unused MiB':>10}")
    unused_total = 0.0
    for meta, b in zip(j["arenas"]["bin"], merged["bins"]):
        size = meta["size"]
        if b["curslabs"] == 0 or b["curregs"] * size < min_bytes:
            continue
        regions = b["curslabs"] * meta["nregs"]
        unused = (regions - b["curregs"]) * size / MIB
        unused_total += unused
        print(f"{size:>6} {b['curregs']:>9} {b['curregs'] * size / MIB:>7.1f} {b['curslabs']:>6} "
              f"{b['curregs'] / regions:>5.2f} {unused:>10.1f}")
    print(f"unused in these classes {unused_total:.1f} MiB; thread caches "
          f"{merged['tcache_bytes'] / MIB:.1f} MiB")


if __name__ == "__main__":
    main()
