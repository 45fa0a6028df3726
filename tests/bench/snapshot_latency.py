#!/usr/bin/env python3
"""setData latency while snapshots are taken: rzk against Apache ZooKeeper 3.8.

Called by scripts/bench-snapshot-latency.sh. Issue 13 asks that a background snapshot
must not pause writes: the p99.9 of setData while a snapshot is taken must not get worse.

For each server (rzk, Apache ZooKeeper with -Xmx1000m), one after the other, on the same
disk, both with forceSync=yes, and for each mode in turn (--repeat times, alternating):

* `snap`:   snapCount=--snap-count (low: at the setData rate a snapshot is due every few
            seconds, so snapshots of the whole tree are written during most of the run);
* `nosnap`: snapCount=--no-snap-count (so high that no snapshot is due during the run);

1. copy a data directory holding ~1M znodes (kept by scripts/bench-memory.sh with KEEP=1:
   <kept>/rzk/data and <kept>/zk/data; cp keeps the logs' preallocation sparse), and
   sync, so the copy's writeback does not land in the measured run;
2. start the server on it and wait until its start-up snapshot is written (mntr
   cnt_snapshottime >= 1: ZooKeeper writes it before serving, rzk in the background after
   the replayed txns are applied), then --settle seconds;
3. run `rzk bench --op set` (--sessions x --inflight, --value-size bytes, --warmup then
   --duration seconds; with --rate, at that offered rate instead of as fast as the server
   answers, so both servers take the same load and snapshot equally often) and read its
   p50/p99/p99.9/max and ops/s; the number of snapshots
   written during the run is the change of mntr cnt_snapshottime (rzk also reports the
   longest clone of the tree under its read lock, mntr rzk_snapshot_pause_max_us);
4. stop it (SIGTERM, by PID).

Prints one table (medians over the repeats) and a `RESULT key=value ...` line. Only the
servers this script started are signalled.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_memory as bm  # noqa: E402

MODES = ("nosnap", "snap")


def snapshots_taken(port):
    return int(bm.mntr_num(port, "cnt_snapshottime") or 0)


def run_bench(args, port):
    cmd = [args.rzk, "bench", "--hosts", f"127.0.0.1:{port}", "--op", "set",
           "--sessions", str(args.sessions), "--inflight", str(args.inflight),
           "--value-size", str(args.value_size), "--warmup", str(args.warmup),
           "--duration", str(args.duration), "--json", "--quiet", "--path", "/snapshot-latency",
           "--rate", str(args.rate)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"rzk bench failed: {r.stderr[-2000:]}")
    lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"rzk bench printed no JSON: {r.stdout[-2000:]}")
    return json.loads(lines[-1])


def one(args, target, mode, run, log):
    snap_count = args.snap_count if mode == "snap" else args.no_snap_count
    work = os.path.join(args.work, f"{target}-{mode}-{run}")
    os.makedirs(work)
    extra = [f"snapCount={snap_count}"]
    if target == "rzk":
        srv, src = bm.Rzk(args.rzk_port, work, args, extra), args.rzk_data
    else:
        srv, src = bm.Zk(args.zk_port, work, args, extra), args.zk_data
    subprocess.run(["cp", "-a", "--sparse=always", src, srv.data], check=True)
    # The copy leaves GiBs of dirty pages; written back during the run they stalled both
    # servers' log fsyncs for up to a second (seen with --rate as p99 of 0.6-1.1 s).
    os.sync()
    try:
        took = srv.start(bm.MARKER, args.start_limit)
        deadline = time.monotonic() + args.start_limit
        while snapshots_taken(srv.port) < 1:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{target}: no start-up snapshot within {args.start_limit}s")
            time.sleep(0.2)
        time.sleep(args.settle)
        nodes = bm.mntr_num(srv.port, "znode_count") or 0
        before = snapshots_taken(srv.port)
        out = run_bench(args, srv.port)
        snaps = snapshots_taken(srv.port) - before
        lat = out["latency"]
        row = {
            "ops_per_sec": out["ops_per_sec"], "errors": out["errors"], "snapshots": snaps,
            "p50_ms": lat["p50_us"] / 1000, "p99_ms": lat["p99_us"] / 1000,
            "p999_ms": lat["p999_us"] / 1000, "max_ms": lat["max_us"] / 1000,
            "max_snapshottime_ms": bm.mntr_num(srv.port, "max_snapshottime") or 0,
        }
        if target == "rzk":
            # The longest time the snapshot thread held the tree's read lock (its clone).
            row["rzk_pause_max_ms"] = (bm.mntr_num(srv.port, "rzk_snapshot_pause_max_us") or 0) / 1000
        log(f"{target} {mode} #{run + 1}: first read after {took:.1f}s, {nodes:.0f} znodes; "
            + " ".join(f"{k}={v}" for k, v in row.items()))
        srv.stop(signal.SIGTERM)
        return row
    finally:
        srv.kill_quietly()
        if not args.keep:
            subprocess.run(["rm", "-rf", work], check=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rzk", required=True, help="rzk binary (server and bench)")
    ap.add_argument("--start-zk", required=True, help="scripts/start-apache-zk.sh")
    ap.add_argument("--work", required=True, help="parent of the data directories")
    ap.add_argument("--rzk-data", help="populated rzk data directory to copy")
    ap.add_argument("--zk-data", help="populated ZooKeeper data directory to copy")
    ap.add_argument("--targets", default="rzk,zk")
    ap.add_argument("--snap-count", type=int, default=100000)
    ap.add_argument("--no-snap-count", type=int, default=100000000)
    ap.add_argument("--sessions", type=int, default=32)
    ap.add_argument("--inflight", type=int, default=8)
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("--rate", type=float, default=0,
                    help="offered setData/s (rzk bench --rate); 0: closed loop, as fast as "
                         "each server answers")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--start-limit", type=float, default=300.0)
    ap.add_argument("--rzk-port", type=int, default=24711)
    ap.add_argument("--zk-port", type=int, default=24712)
    ap.add_argument("--zk-heap", default="-Xmx1000m")
    ap.add_argument("--keep", action="store_true", help="keep the per-run data directories")
    args = ap.parse_args()
    targets = [t for t in args.targets.split(",") if t]
    for t in targets:
        if not getattr(args, f"{t}_data"):
            ap.error(f"--{t}-data is required for target {t}")
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    res = {}
    for run in range(args.repeat):
        for t in targets:
            # Alternate the order, so a slow spell of the shared machine hits both modes.
            for mode in (MODES if run % 2 == 0 else MODES[::-1]):
                res.setdefault((t, mode), []).append(one(args, t, mode, run, log))
    keys = ("ops_per_sec", "p50_ms", "p99_ms", "p999_ms", "max_ms", "snapshots", "errors")
    print()
    print(f"{'server/mode':<14} " + " ".join(f"{k:>11}" for k in keys))
    line = ["RESULT"]
    for (t, mode), rows in res.items():
        med = {k: statistics.median(r[k] for r in rows) for k in keys}
        print(f"{t + ' ' + mode:<14} " + " ".join(f"{med[k]:>11.2f}" for k in keys))
        line += [f"{t}_{mode}_{k}={med[k]:.3f}" for k in keys]
    for (t, mode), rows in res.items():
        print(f"  {t} {mode} p99.9 per run (ms): " + ", ".join(f"{r['p999_ms']:.2f}" for r in rows)
              + "; snapshots per run: " + ", ".join(str(r["snapshots"]) for r in rows))
    print(f"(medians of {args.repeat} runs of {args.duration}s after {args.warmup}s warm-up; "
          f"setData {args.sessions}x{args.inflight}, {args.value_size}B, forceSync=yes, "
          f"rate {'%g/s' % args.rate if args.rate else 'unlimited'}; "
          f"snap: snapCount={args.snap_count}, nosnap: snapCount={args.no_snap_count}; "
          f"ZooKeeper JVM {args.zk_heap})")
    print(" ".join(line))


if __name__ == "__main__":
    main()
