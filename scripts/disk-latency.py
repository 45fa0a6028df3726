#!/usr/bin/env python3
"""How long a durable log append takes on this disk, and how that depends on how long
the disk was idle before it.

    usage: scripts/disk-latency.py [DIR=/tmp] [--count N=2000] [--size BYTES=8192]
                                   [--gaps 0,30,100,300,1000]

Writes a 32 MiB file of zeros in DIR (fsynced first, so every block is allocated and
written, as rzk's transaction log is ahead of its records: docs/STORAGE.md), then for
each gap G (microseconds) appends N writes of SIZE bytes in a row, waiting G between
the end of one and the start of the next, and prints the p50 / p90 / p99 / mean time
of each durable write, two ways:

  fdatasync   pwrite into the page cache, then fdatasync (what rzk's log and
              ZooKeeper's do for each group commit);
  O_DSYNC     the same pwrite on a descriptor opened O_DIRECT | O_DSYNC (skipped where
              the file system refuses O_DIRECT).

The wait is spent spinning, so the CPU stays busy: what varies is only how long the
disk had nothing to do. On a disk whose latency does not depend on that, every row
shows about the same times. On the development VM (docs/TESTING.md, session 50) a
write after 30 us or more of idle disk often took 300-1,500 us instead of 50-60 us;
that is the largest part of what bounds a benchmark with one request in flight per
session (scripts/bench-compare.sh with INFLIGHT=1), for ZooKeeper as for rzk.

The file is removed at the end.
"""
import argparse
import mmap
import os
import sys
import time


def spin(us):
    end = time.perf_counter() + us / 1e6
    while time.perf_counter() < end:
        pass


def measure(path, flags, sync, count, size, gap_us, buf):
    fd = os.open(path, os.O_WRONLY | flags)
    times = []
    off = 0
    try:
        for _ in range(count):
            t = time.perf_counter()
            os.pwrite(fd, buf, off)
            if sync:
                os.fdatasync(fd)
            times.append((time.perf_counter() - t) * 1e6)
            off += size
            if gap_us:
                spin(gap_us)
    finally:
        os.close(fd)
    times.sort()
    n = len(times)
    return times[n // 2], times[n * 9 // 10], times[n * 99 // 100], sum(times) / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", nargs="?", default="/tmp")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--size", type=int, default=8192, help="bytes per write (a multiple of 4096)")
    ap.add_argument("--gaps", default="0,30,100,300,1000", help="idle microseconds between writes")
    a = ap.parse_args()
    if a.size <= 0 or a.size % 4096:
        sys.exit("--size must be a positive multiple of 4096 (O_DIRECT needs aligned writes)")
    gaps = [int(g) for g in a.gaps.split(",") if g.strip()]
    file_size = max(32 << 20, a.count * a.size)
    path = os.path.join(a.dir, f".rzk-disk-latency.{os.getpid()}")
    with open(path, "wb") as f:
        chunk = b"\0" * (1 << 20)
        for _ in range(file_size // len(chunk) + 1):
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    # O_DIRECT needs an aligned buffer: an anonymous mapping is page-aligned.
    buf = mmap.mmap(-1, a.size)
    buf.write(b"x" * a.size)
    modes = [("fdatasync", 0, True)]
    try:
        fd = os.open(path, os.O_WRONLY | os.O_DIRECT | os.O_DSYNC)
        os.pwrite(fd, buf, 0)
        os.close(fd)
        modes.append(("O_DSYNC", os.O_DIRECT | os.O_DSYNC, False))
    except OSError as e:
        print(f"O_DIRECT refused on {a.dir}: {e}; only fdatasync is measured")
    print(f"{a.count} writes of {a.size} B per row, file in {a.dir}; microseconds per durable write")
    print(f"{'mode':10s} {'idle_us':>8s} {'p50':>7s} {'p90':>7s} {'p99':>7s} {'mean':>7s}")
    try:
        for name, flags, sync in modes:
            for g in gaps:
                p50, p90, p99, mean = measure(path, flags, sync, a.count, a.size, g, buf)
                print(f"{name:10s} {g:8d} {p50:7.0f} {p90:7.0f} {p99:7.0f} {mean:7.0f}", flush=True)
    finally:
        os.unlink(path)


if __name__ == "__main__":
    main()
