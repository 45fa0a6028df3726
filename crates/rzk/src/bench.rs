//! `rzk bench`: a closed-loop load generator over the ZooKeeper client protocol.
//!
//! N sessions (one rzk-client session task each, requests pipelined on its socket) with
//! K requests in flight per session; each in-flight slot issues its next request when the
//! previous one answers. Latencies after the warm-up go into hdrhistograms. Prints ops/s
//! and p50/p90/p99/p99.9, then one machine-readable `RESULT key=value ...` line. Creates its
//! data under `--path` and deletes it afterwards. Never talks to anything but `--hosts`.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rzk_client::{open_acl_unsafe, Client, CreateMode, Error};

/// Highest latency the histograms track (60 s, in microseconds).
const MAX_LATENCY_US: u64 = 60_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchOp {
    Create,
    Set,
    Get,
    Mixed,
}

/// `rzk bench --hosts H --sessions N --inflight K --op create|set|get|mixed ...`
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Connect string (host:port[,host:port...]).
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub hosts: String,
    /// Number of sessions (connections).
    #[arg(long, default_value_t = 32)]
    pub sessions: usize,
    /// Requests in flight per session.
    #[arg(long, default_value_t = 8)]
    pub inflight: usize,
    /// Operation mix.
    #[arg(long, value_enum, default_value_t = BenchOp::Set)]
    pub op: BenchOp,
    /// For `--op mixed`: fraction of reads (get) vs writes (set).
    #[arg(long, default_value_t = 0.9)]
    pub read_ratio: f64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Measured duration in seconds (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Warm-up in seconds (requests run but are not measured).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Parent node for the benchmark's znodes.
    #[arg(long, default_value = "/rzk-bench")]
    pub path: String,
    /// Session timeout in milliseconds.
    #[arg(long, default_value_t = 30000)]
    pub session_timeout: u64,
    /// Leave the created znodes in place.
    #[arg(long)]
    pub no_cleanup: bool,
    /// TLS (`--tls-ca`, `--tls-cert`, `--tls-key`, `--tls-no-hostname-check`).
    #[command(flatten)]
    pub tls: crate::shell::TlsArgs,
}

/// Entry point for `main.rs`.
pub fn main(args: Args) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Small deterministic PRNG (xorshift64*), enough to pick reads vs writes.
struct XorShift(u64);
impl XorShift {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct SlotResult {
    hist: Histogram<u64>,
    ops: u64,
    errors: u64,
    created: Vec<String>,
}

async fn ensure(zk: &Client, path: &str, data: &[u8]) -> Result<(), Error> {
    match zk
        .create(path, data, &open_acl_unsafe(), CreateMode::Persistent)
        .await
    {
        Ok(_) | Err(Error::NodeExists) => Ok(()),
        Err(e) => Err(e),
    }
}

#[allow(clippy::too_many_arguments)]
async fn slot(
    zk: Client,
    op: BenchOp,
    key: String,
    create_prefix: String,
    value: Arc<Vec<u8>>,
    read_ratio: f64,
    seed: u64,
    measure_from: Instant,
    until: Instant,
    total: Arc<AtomicU64>,
) -> Result<SlotResult, String> {
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3).map_err(|e| e.to_string())?;
    let mut rng = XorShift(seed | 1);
    let (mut ops, mut errors, mut n) = (0u64, 0u64, 0u64);
    let mut created = Vec::new();
    loop {
        let start = Instant::now();
        if start >= until {
            break;
        }
        let is_read = match op {
            BenchOp::Get => true,
            BenchOp::Mixed => rng.next_f64() < read_ratio,
            _ => false,
        };
        let r = if op == BenchOp::Create {
            let p = format!("{create_prefix}{n}");
            n += 1;
            let r = zk
                .create(&p, &value, &open_acl_unsafe(), CreateMode::Persistent)
                .await;
            if r.is_ok() {
                created.push(p);
            }
            r.map(|_| ())
        } else if is_read {
            zk.get_data(&key).await.map(|_| ())
        } else {
            zk.set_data(&key, &value, None).await.map(|_| ())
        };
        let end = Instant::now();
        if let Err(e) = r {
            errors += 1;
            if e.is_session_terminal() {
                return Err(format!("session ended: {e}"));
            }
            continue;
        }
        if start >= measure_from {
            ops += 1;
            let us = end
                .duration_since(start)
                .as_micros()
                .clamp(1, MAX_LATENCY_US as u128) as u64;
            let _ = hist.record(us);
            total.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(SlotResult {
        hist,
        ops,
        errors,
        created,
    })
}

/// Runs the benchmark and prints the report.
pub async fn run(a: Args) -> Result<(), String> {
    if a.sessions == 0 || a.inflight == 0 {
        return Err("--sessions and --inflight must be > 0".into());
    }
    let timeout = Duration::from_millis(a.session_timeout);
    let tls = a.tls.options().map_err(|e| e.to_string())?;
    let mut clients = Vec::with_capacity(a.sessions);
    for _ in 0..a.sessions {
        let mut b = Client::builder(&a.hosts).session_timeout(timeout);
        if let Some(t) = &tls {
            b = b.tls(t.clone());
        }
        clients.push(
            b.connect()
                .await
                .map_err(|e| format!("connect {}: {e}", a.hosts))?,
        );
    }
    let admin = clients[0].clone();
    ensure(&admin, &a.path, b"")
        .await
        .map_err(|e| format!("create {}: {e}", a.path))?;
    let run_id = format!("{:x}", admin.session_id());
    let base = format!("{}/{run_id}", a.path);
    ensure(&admin, &base, b"")
        .await
        .map_err(|e| e.to_string())?;
    let value = Arc::new(vec![b'x'; a.value_size]);
    for s in 0..a.sessions {
        ensure(&admin, &format!("{base}/k{s}"), &value)
            .await
            .map_err(|e| e.to_string())?;
    }
    println!(
        "rzk bench: op={:?} sessions={} inflight={} value={}B warmup={}s duration={}s hosts={}",
        a.op, a.sessions, a.inflight, a.value_size, a.warmup, a.duration, a.hosts
    );
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(a.warmup);
    let until = measure_from + Duration::from_secs_f64(a.duration);
    let total = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (s, zk) in clients.iter().enumerate() {
        for k in 0..a.inflight {
            tasks.push(tokio::spawn(slot(
                zk.clone(),
                a.op,
                format!("{base}/k{s}"),
                format!("{base}/c{s}-{k}-"),
                value.clone(),
                a.read_ratio,
                (s as u64) << 32 | k as u64,
                measure_from,
                until,
                total.clone(),
            )));
        }
    }
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3).map_err(|e| e.to_string())?;
    let (mut ops, mut errors) = (0u64, 0u64);
    let mut created = Vec::new();
    for t in tasks {
        let r = t.await.map_err(|e| e.to_string())??;
        hist.add(&r.hist).map_err(|e| e.to_string())?;
        ops += r.ops;
        errors += r.errors;
        created.extend(r.created);
    }
    let secs = a.duration.max(1e-9);
    let rate = ops as f64 / secs;
    let q = |p: f64| hist.value_at_quantile(p);
    println!("ops: {ops}  ops/s: {rate:.1}  errors: {errors}");
    println!(
        "latency us: p50={} p90={} p99={} p99.9={} max={}",
        q(0.50),
        q(0.90),
        q(0.99),
        q(0.999),
        hist.max()
    );
    if !a.no_cleanup {
        cleanup(&clients, &base, created, a.sessions).await;
    }
    for c in &clients {
        let _ = c.close().await;
    }
    println!(
        "RESULT op={:?} sessions={} inflight={} value_size={} ops={} ops_per_sec={:.1} p50_us={} p90_us={} p99_us={} p999_us={} max_us={} errors={}",
        a.op,
        a.sessions,
        a.inflight,
        a.value_size,
        ops,
        rate,
        q(0.50),
        q(0.90),
        q(0.99),
        q(0.999),
        hist.max(),
        errors
    );
    Ok(())
}

/// Deletes what the run created, pipelined over all sessions.
async fn cleanup(clients: &[Client], base: &str, mut created: Vec<String>, sessions: usize) {
    for s in 0..sessions {
        created.push(format!("{base}/k{s}"));
    }
    let chunks: Vec<Vec<String>> = created
        .chunks(created.len().div_ceil(clients.len() * 8).max(1))
        .map(|c| c.to_vec())
        .collect();
    let mut tasks = Vec::new();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let zk = clients[i % clients.len()].clone();
        tasks.push(tokio::spawn(async move {
            for p in chunk {
                let _ = zk.delete(&p, None).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let _ = clients[0].delete(base, None).await;
}
