//! `rzk bench`: a closed-loop load generator over the ZooKeeper client protocol.
//!
//! N sessions (one rzk-client session task each, requests pipelined on its socket) with
//! K requests in flight per session; each in-flight slot issues its next request when the
//! previous one answers. The sessions are spread over `--threads` load threads, each a
//! single-threaded tokio runtime that runs its sessions' connection tasks and their slots
//! (`LoadThreads`): a slot and its session's task then wake each other on one thread, and
//! the requests the slots issue while a reply batch is handled leave in one socket write.
//! On a multi-threaded runtime each request went out in a `sendto` of its own (a slot on
//! one worker woke the connection task on another), which cost the client ~8 us of CPU per
//! request against ~3 us now, on the same cores as the server it measures. Latencies
//! after the warm-up go into hdrhistograms, one pair per load thread. Prints ops/s
//! and p50/p90/p99/p99.9 (for `--op mixed` also reads and writes apart), then one
//! machine-readable `RESULT key=value ...` line, or with `--json` one JSON object instead.
//! A progress line (ops/s, errors) goes to stderr every second. Creates its data under
//! `--path` and deletes all of it afterwards (including `--path` itself when it created it
//! and nothing else is left under it). Never talks to anything but `--hosts`.
//! ZooKeeper has no equivalent in its distribution (its `zk-smoketest`/`zkbench` are
//! separate projects).

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rzk_client::{open_acl_unsafe, Client, CreateMode, Error};

/// Highest latency the histograms track (60 s, in microseconds).
const MAX_LATENCY_US: u64 = 60_000_000;
/// How long a slot waits after a CONNECTIONLOSS / OPERATIONTIMEOUT before its next
/// request, so a bench against a server that is down does not spin on errors.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchOp {
    Create,
    Set,
    Get,
    Mixed,
}

/// The write of `--op mixed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WriteOp {
    Set,
    Create,
}

/// `rzk bench --hosts H --sessions N --inflight K --op create|set|get|mixed ...`
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Connect string (host:port[,host:port...]).
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub hosts: String,
    /// Number of sessions (connections).
    #[arg(long, default_value_t = 32, value_parser = at_least_one)]
    pub sessions: usize,
    /// Requests in flight per session.
    #[arg(long, default_value_t = 8, value_parser = at_least_one)]
    pub inflight: usize,
    /// Operation mix.
    #[arg(long, value_enum, default_value_t = BenchOp::Set)]
    pub op: BenchOp,
    /// For `--op mixed`: fraction of reads (get) vs writes (`--write-op`).
    #[arg(long, default_value_t = 0.9, value_parser = fraction)]
    pub read_ratio: f64,
    /// For `--op mixed`: what a write is: `set` (setData of the session's key) or
    /// `create` (a new znode, as `--op create` makes them).
    #[arg(long, value_enum, default_value_t = WriteOp::Set)]
    pub write_op: WriteOp,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100, value_parser = whole::<usize>)]
    pub value_size: usize,
    /// Measured duration in seconds (after the warm-up).
    #[arg(long, default_value_t = 10.0, value_parser = seconds)]
    pub duration: f64,
    /// Warm-up in seconds (requests run but are not measured).
    #[arg(long, default_value_t = 2.0, value_parser = seconds)]
    pub warmup: f64,
    /// Parent node for the benchmark's znodes.
    #[arg(long, default_value = "/rzk-bench")]
    pub path: String,
    /// Session timeout in milliseconds.
    #[arg(long, default_value_t = 30000, value_parser = whole::<u64>)]
    pub session_timeout: u64,
    /// How long to wait for each session's first connection, in milliseconds.
    #[arg(long, default_value_t = 5000, value_parser = whole::<u64>)]
    pub connect_timeout: u64,
    /// Leave the created znodes in place.
    #[arg(long)]
    pub no_cleanup: bool,
    /// For `--op create`: stop after this many znodes were created in total (over all
    /// sessions), or at the end of `--duration`, whichever comes first. 0: no limit.
    /// With `--warmup 0 --no-cleanup` this populates a server with exactly N znodes.
    #[arg(long, default_value_t = 0, value_parser = whole::<u64>)]
    pub count: u64,
    /// Print the result as one JSON object on stdout (instead of the text report).
    #[arg(long)]
    pub json: bool,
    /// No per-second progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Offered load in requests per second over all sessions; 0: closed loop (each slot
    /// sends its next request as soon as the previous one is answered). With a rate,
    /// slot i of the S = sessions x inflight slots sends its requests at
    /// `start + (i + j * S) / rate` (j = 0, 1, ...), and a request sent behind its
    /// scheduled time (the slot was still waiting for its previous reply) is timed from
    /// that scheduled time, so a stall is charged to every request it delayed
    /// (coordinated omission). Requests on schedule are timed from when they are sent
    /// (the runtime's timers wake a slot up to ~1 ms late). The run ends at
    /// `--duration` whatever is still scheduled: ops/s below the rate means the server
    /// fell behind.
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    pub rate: f64,
    /// Load threads (each one single-threaded runtime driving its share of the sessions).
    /// 0: as many as CPUs this process may run on (`taskset` counts).
    #[arg(long, default_value_t = 0, value_parser = whole::<usize>)]
    pub threads: usize,
    /// TLS (`--tls-ca`, `--tls-cert`, `--tls-key`, `--tls-no-hostname-check`).
    #[command(flatten)]
    pub tls: crate::shell::TlsArgs,
}

/// A whole number, refused in an operator's words (clap would print Rust's
/// "invalid digit found in string").
fn whole<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.trim()
        .parse()
        .map_err(|_| "not a whole number (expected 0, 1, 2, ...)".to_owned())
}

/// A whole number of at least 1 (sessions, requests in flight).
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("not a whole number of at least 1".to_owned()),
    }
}

/// Seconds: a number of 0 or more, fractions allowed (`0.5`).
fn seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err("not a number of seconds (expected 0 or more, e.g. 10 or 0.5)".to_owned()),
    }
}

/// Requests per second: 0 (no limit) or more, fractions allowed.
fn rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err("not a rate (expected requests per second, 0 or more, e.g. 20000)".to_owned()),
    }
}

/// A fraction from 0 to 1 (`0.9`: nine reads in ten).
fn fraction(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err("not a fraction (expected a number from 0 to 1, e.g. 0.9)".to_owned()),
    }
}

/// Entry point for `main.rs`.
pub fn main(args: Args) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
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

/// Counters shared by all slots, read by the progress printer.
#[derive(Default)]
struct Counters {
    /// Successful requests, warm-up included.
    done: AtomicU64,
    /// Failed requests, warm-up included.
    errors: AtomicU64,
}

/// The load threads: `n` OS threads named `rzk-bench-N`, each driving one
/// single-threaded tokio runtime until dropped. Session `i` lives on thread `i % n` (its
/// connection task is spawned where it connected), its slots are spawned there too and
/// record into that thread's histograms.
struct LoadThreads {
    each: Vec<LoadThread>,
    /// Dropping a sender ends its thread's `block_on`.
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// One load thread: its runtime and the latencies its slots measured.
struct LoadThread {
    handle: tokio::runtime::Handle,
    hists: SharedHists,
}

impl LoadThreads {
    /// Starts `n` (>= 1) threads. Errors: a runtime or thread that cannot be created.
    fn start(n: usize) -> Result<LoadThreads, String> {
        debug_assert!(n >= 1);
        let mut lt = LoadThreads {
            each: Vec::with_capacity(n),
            stops: Vec::with_capacity(n),
            threads: Vec::with_capacity(n),
        };
        for i in 0..n {
            // The runtime is built, run and dropped on its own thread: a runtime dropped
            // here (inside the caller's `block_on`, e.g. when the thread cannot be
            // spawned) would panic ("Cannot drop a runtime in a context where blocking is
            // not allowed").
            let (handle_tx, handle_rx) = std::sync::mpsc::sync_channel(1);
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            lt.stops.push(stop_tx);
            let t = std::thread::Builder::new()
                .name(format!("rzk-bench-{i}"))
                .spawn(move || {
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ =
                                handle_tx.send(Err(format!("cannot start a load runtime: {e}")));
                            return;
                        }
                    };
                    let _ = handle_tx.send(Ok(rt.handle().clone()));
                    let _ = rt.block_on(stop_rx);
                })
                .map_err(|e| format!("cannot start a load thread: {e}"))?;
            lt.threads.push(t);
            let handle = handle_rx
                .recv()
                .map_err(|_| "a load thread ended at its start".to_owned())??;
            let hists = Arc::new(std::sync::Mutex::new(Hists {
                reads: new_hist()?,
                writes: new_hist()?,
            }));
            lt.each.push(LoadThread { handle, hists });
        }
        Ok(lt)
    }

    /// The load thread of session `i`.
    fn of(&self, i: usize) -> &LoadThread {
        &self.each[i % self.each.len()]
    }
}

impl Drop for LoadThreads {
    fn drop(&mut self) {
        self.stops.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// `--threads 0`: the CPUs this process may run on (its affinity mask), at least 1.
fn load_thread_count(a: &Args) -> usize {
    let n = if a.threads > 0 {
        a.threads
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    };
    // A thread without a session would only idle (and hold two histograms).
    n.min(a.sessions).max(1)
}

fn new_hist() -> Result<Histogram<u64>, String> {
    Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3).map_err(|e| e.to_string())
}

/// Latencies measured on one load thread, shared by its slots (they run on that one
/// thread, so the lock is never contended). One pair per thread rather than per slot:
/// 2 x 256 histograms of ~140 KiB each made every record a cache miss (6 % of the
/// bench's CPU at 32 x 8).
struct Hists {
    reads: Histogram<u64>,
    writes: Histogram<u64>,
}

type SharedHists = Arc<std::sync::Mutex<Hists>>;

struct SlotResult {
    errors: u64,
    /// The sequence numbers of the znodes it created ([`create_path`] gives their paths
    /// again for cleanup, after the clock stopped: a `String` kept per create cost the
    /// client a reallocation of a growing list in the measured window).
    created: Vec<u64>,
}

/// The path of a create slot's `n`th znode: its `create_prefix` followed by `n`.
fn create_path(prefix: &str, n: u64) -> String {
    format!("{prefix}{n}")
}

async fn ensure(zk: &Client, path: &str, data: &[u8]) -> Result<bool, Error> {
    match zk
        .create(path, data, &open_acl_unsafe(), CreateMode::Persistent)
        .await
    {
        Ok(_) => Ok(true),
        Err(Error::NodeExists) => Ok(false),
        Err(e) => Err(e),
    }
}

/// What one in-flight slot does until `until`.
struct SlotPlan {
    op: BenchOp,
    key: String,
    create_prefix: String,
    value: Arc<Vec<u8>>,
    read_ratio: f64,
    /// For `BenchOp::Mixed`: what its writes are (`Set` otherwise).
    write_op: WriteOp,
    seed: u64,
    measure_from: Instant,
    until: Instant,
    /// `--count`: creates left to claim (shared by all slots); `None`: no limit.
    budget: Option<Arc<AtomicU64>>,
    /// `--rate`: this slot's first send time and the time between its sends.
    schedule: Option<(Instant, Duration)>,
}

/// One closed-loop slot. On a session-ending error it stops early and still returns
/// what it created, so that cleanup can remove it.
async fn slot(
    zk: Client,
    p: SlotPlan,
    counters: Arc<Counters>,
    hists: SharedHists,
) -> Result<SlotResult, String> {
    let mut res = SlotResult {
        errors: 0,
        created: Vec::new(),
    };
    let mut rng = XorShift(p.seed | 1);
    let mut n = 0u64;
    let mut sends = 0u32;
    loop {
        let mut start = Instant::now();
        if start >= p.until {
            // Real time, not the schedule: a slot that fell behind does not drain its
            // backlog past --duration (what it did not send is simply not counted).
            break;
        }
        if let Some((first, every)) = p.schedule {
            let due = every
                .checked_mul(sends)
                .and_then(|d| first.checked_add(d))
                .unwrap_or(p.until);
            sends = sends.saturating_add(1);
            if due >= p.until {
                // The offered load runs until --duration, not until this slot's last
                // send: the run's measured span (and so its ops/s) is the whole of it.
                tokio::time::sleep_until(p.until.into()).await;
                break;
            }
            if due > start {
                tokio::time::sleep_until(due.into()).await;
                start = Instant::now();
            } else {
                // Behind schedule: timed from when it should have been sent.
                start = due;
            }
        }
        if start >= p.until {
            break;
        }
        let is_read = match p.op {
            BenchOp::Get => true,
            BenchOp::Mixed => rng.next_f64() < p.read_ratio,
            _ => false,
        };
        if let Some(b) = &p.budget {
            let claimed = b.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(1)
            });
            if claimed.is_err() {
                break;
            }
        }
        let creates = p.op == BenchOp::Create || (!is_read && p.write_op == WriteOp::Create);
        let r = if creates {
            let path = create_path(&p.create_prefix, n);
            let r = zk
                .create(&path, &p.value, &open_acl_unsafe(), CreateMode::Persistent)
                .await;
            if r.is_ok() {
                res.created.push(n);
            }
            n += 1;
            r.map(|_| ())
        } else if is_read {
            zk.get_data(&p.key).await.map(|_| ())
        } else {
            zk.set_data(&p.key, &p.value, None).await.map(|_| ())
        };
        let end = Instant::now();
        if let Err(e) = r {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            if start >= p.measure_from {
                res.errors += 1;
            }
            if e.is_session_terminal() {
                tracing::warn!(error = %e, "bench session ended; this slot stops");
                break;
            }
            if e.is_retryable() {
                // The server is down or the client is reconnecting: do not spin (a slot
                // used to fail ~40 k times a second per core here).
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            continue;
        }
        counters.done.fetch_add(1, Ordering::Relaxed);
        if start >= p.measure_from {
            let us = end
                .duration_since(start)
                .as_micros()
                .clamp(1, MAX_LATENCY_US as u128) as u64;
            let mut h = hists.lock().map_err(|_| "a slot panicked".to_owned())?;
            let h = if is_read { &mut h.reads } else { &mut h.writes };
            let _ = h.record(us);
        }
    }
    Ok(res)
}

/// Prints `[ 3s] ops/s: N errors: M` to stderr once a second until aborted.
async fn progress(counters: Arc<Counters>, start: Instant, measure_from: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let (mut last_done, mut last_err) = (0u64, 0u64);
    let mut last_at = Instant::now();
    loop {
        tick.tick().await;
        let now = Instant::now();
        let done = counters.done.load(Ordering::Relaxed);
        let err = counters.errors.load(Ordering::Relaxed);
        let dt = now.duration_since(last_at).as_secs_f64().max(1e-9);
        let phase = if now < measure_from { " (warm-up)" } else { "" };
        eprintln!(
            "[{:>4.0}s] ops/s: {:.1}  errors: {} (total {}){phase}",
            now.duration_since(start).as_secs_f64(),
            (done - last_done) as f64 / dt,
            err - last_err,
            err
        );
        (last_done, last_err, last_at) = (done, err, now);
    }
}

/// Latency summary of one histogram, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        Latency {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }

    fn text(&self) -> String {
        format!(
            "p50={} p90={} p99={} p99.9={} max={}",
            self.p50, self.p90, self.p99, self.p999, self.max
        )
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "ops": self.count, "p50_us": self.p50, "p90_us": self.p90,
            "p99_us": self.p99, "p999_us": self.p999, "max_us": self.max,
        })
    }
}

/// Connects the sessions one by one, session `i` from load thread `i % threads` so its
/// connection task runs there.
async fn connect_all(a: &Args, load: &LoadThreads) -> Result<Vec<Client>, String> {
    let timeout = Duration::from_millis(a.session_timeout);
    let tls = a.tls.options().map_err(|e| e.to_string())?;
    let mut clients = Vec::with_capacity(a.sessions);
    for i in 0..a.sessions {
        let mut b = Client::builder(&a.hosts)
            .session_timeout(timeout)
            .connect_timeout(Duration::from_millis(a.connect_timeout));
        if let Some(t) = &tls {
            b = b.tls(t.clone());
        }
        let connected = load
            .of(i)
            .handle
            .spawn(async move { b.connect().await })
            .await
            .map_err(|e| format!("load thread: {e}"))?;
        match connected {
            Ok(c) => clients.push(c),
            Err(e) => {
                for c in &clients {
                    let _ = c.close().await;
                }
                return Err(format!(
                    "no server of {} gave a session within {} ms ({e}); is it running? (--connect-timeout)",
                    a.hosts, a.connect_timeout
                ));
            }
        }
    }
    Ok(clients)
}

/// Runs the benchmark and prints the report.
pub async fn run(a: Args) -> Result<(), String> {
    if a.sessions == 0 || a.inflight == 0 {
        return Err("--sessions and --inflight must be > 0".into());
    }
    if !a.quiet {
        eprintln!(
            "rzk bench: connecting {} sessions to {}",
            a.sessions, a.hosts
        );
    }
    let load = LoadThreads::start(load_thread_count(&a))?;
    let clients = connect_all(&a, &load).await?;
    let mut created = Created::default();
    let outcome = measure(&a, &clients, &load, &mut created).await;
    if !a.no_cleanup {
        if let Err(e) = cleanup(&clients, created).await {
            eprintln!("rzk bench: cleanup incomplete: {e}");
        }
    }
    for c in &clients {
        let _ = c.close().await;
    }
    let (ops, errors, all, reads, writes, secs) = outcome?;
    report(&a, ops, errors, &all, &reads, &writes, secs);
    Ok(())
}

/// (measured ops, errors, all, reads, writes, measured seconds).
type Outcome = (u64, u64, Latency, Latency, Latency, f64);

/// Creates the nodes (recording each in `created`, parents first), runs the slots and
/// merges their histograms.
async fn measure(
    a: &Args,
    clients: &[Client],
    load: &LoadThreads,
    created: &mut Created,
) -> Result<Outcome, String> {
    let admin = &clients[0];
    if ensure(admin, &a.path, b"")
        .await
        .map_err(|e| format!("create {}: {e}", a.path))?
    {
        created.parents.push(a.path.clone());
    }
    let run_id = format!("{:x}", admin.session_id());
    let base = format!("{}/{run_id}", a.path.trim_end_matches('/'));
    if ensure(admin, &base, b"").await.map_err(|e| e.to_string())? {
        created.parents.push(base.clone());
    }
    let value = Arc::new(vec![b'x'; a.value_size]);
    for s in 0..a.sessions {
        let k = format!("{base}/k{s}");
        if ensure(admin, &k, &value).await.map_err(|e| e.to_string())? {
            created.leaves.push(k);
        }
    }
    if !a.json {
        println!(
            "rzk bench: op={:?} sessions={} inflight={} value={}B warmup={}s duration={}s threads={} rate={} hosts={}",
            a.op, a.sessions, a.inflight, a.value_size, a.warmup, a.duration, load.each.len(),
            if a.rate > 0.0 { format!("{}/s", a.rate) } else { "unlimited".to_owned() }, a.hosts
        );
    }
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(a.warmup);
    let until = measure_from + Duration::from_secs_f64(a.duration);
    let counters = Arc::new(Counters::default());
    let budget =
        (a.op == BenchOp::Create && a.count > 0).then(|| Arc::new(AtomicU64::new(a.count)));
    let ticker = (!a.quiet).then(|| tokio::spawn(progress(counters.clone(), start, measure_from)));
    let mut tasks = Vec::new();
    for (s, zk) in clients.iter().enumerate() {
        for k in 0..a.inflight {
            let plan = SlotPlan {
                op: a.op,
                key: format!("{base}/k{s}"),
                create_prefix: format!("{base}/c{s}-{k}-"),
                value: value.clone(),
                read_ratio: a.read_ratio,
                write_op: if a.op == BenchOp::Mixed {
                    a.write_op
                } else {
                    WriteOp::Set
                },
                seed: (s as u64) << 32 | k as u64,
                measure_from,
                until,
                budget: budget.clone(),
                schedule: (a.rate > 0.0).then(|| {
                    let slots = (a.sessions * a.inflight) as f64;
                    let i = (s * a.inflight + k) as f64;
                    // Rates so low that a slot's first send is beyond any clock
                    // simply never send.
                    (
                        Duration::try_from_secs_f64(i / a.rate)
                            .ok()
                            .and_then(|d| start.checked_add(d))
                            .unwrap_or(until),
                        Duration::try_from_secs_f64(slots / a.rate).unwrap_or(Duration::MAX),
                    )
                }),
            };
            let lt = load.of(s);
            let prefix = plan.create_prefix.clone();
            let run = slot(zk.clone(), plan, counters.clone(), lt.hists.clone());
            tasks.push((prefix, lt.handle.spawn(run)));
        }
    }
    let (mut reads, mut writes) = (new_hist()?, new_hist()?);
    let mut errors = 0u64;
    let mut failure = None;
    for (prefix, t) in tasks {
        match t.await.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(r) => {
                errors += r.errors;
                created
                    .leaves
                    .extend(r.created.iter().map(|&n| create_path(&prefix, n)));
            }
            Err(e) => failure = Some(e),
        }
    }
    for lt in &load.each {
        let h = lt.hists.lock().map_err(|_| "a slot panicked".to_owned())?;
        reads.add(&h.reads).map_err(|e| e.to_string())?;
        writes.add(&h.writes).map_err(|e| e.to_string())?;
    }
    // The measured span: `--duration`, or less when `--count` ran out first.
    let secs = Instant::now()
        .saturating_duration_since(measure_from)
        .as_secs_f64()
        .min(a.duration);
    if let Some(t) = ticker {
        t.abort();
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let mut all = reads.clone();
    all.add(&writes).map_err(|e| e.to_string())?;
    Ok((
        all.len(),
        errors,
        Latency::of(&all),
        Latency::of(&reads),
        Latency::of(&writes),
        secs,
    ))
}

fn report(
    a: &Args,
    ops: u64,
    errors: u64,
    all: &Latency,
    reads: &Latency,
    writes: &Latency,
    secs: f64,
) {
    let rate = ops as f64 / secs.max(1e-9);
    let split = a.op == BenchOp::Mixed;
    if a.json {
        let mut v = serde_json::json!({
            "op": format!("{:?}", a.op).to_lowercase(),
            "hosts": a.hosts, "sessions": a.sessions, "inflight": a.inflight,
            "value_size": a.value_size, "warmup_s": a.warmup, "duration_s": a.duration,
            "rate": a.rate,
            "ops": ops, "ops_per_sec": (rate * 10.0).round() / 10.0, "errors": errors,
            "latency": all.json(),
        });
        if split {
            v["write_op"] = format!("{:?}", a.write_op).to_lowercase().into();
            v["read_latency"] = reads.json();
            v["write_latency"] = writes.json();
        }
        println!("{v}");
        return;
    }
    println!("ops: {ops}  ops/s: {rate:.1}  errors: {errors}");
    println!("latency us: {}", all.text());
    if split {
        println!("read latency us ({} ops): {}", reads.count, reads.text());
        println!("write latency us ({} ops): {}", writes.count, writes.text());
    }
    let mut line = format!(
        "RESULT op={:?} sessions={} inflight={} value_size={} ops={} ops_per_sec={:.1} p50_us={} p90_us={} p99_us={} p999_us={} max_us={} errors={}",
        a.op, a.sessions, a.inflight, a.value_size, ops, rate, all.p50, all.p90, all.p99, all.p999, all.max, errors
    );
    if split {
        line.push_str(&format!(" write_op={:?}", a.write_op));
        for (k, l) in [("read", reads), ("write", writes)] {
            line.push_str(&format!(
                " {k}_ops={} {k}_p50_us={} {k}_p99_us={} {k}_p999_us={}",
                l.count, l.p50, l.p99, l.p999
            ));
        }
    }
    if a.rate > 0.0 {
        // The offered load of an open-loop run (requests per second asked for).
        line.push_str(&format!(" rate={}", a.rate));
    }
    println!("{line}");
}

/// The znodes a run created (and so must delete).
#[derive(Default)]
struct Created {
    /// `--path` (if it did not exist) and the run's own parent, outermost first.
    parents: Vec<String>,
    /// Everything below the run's parent.
    leaves: Vec<String>,
}

/// Deletes what the run created, children before parents: the leaves pipelined over all
/// sessions, then the parents one by one (a parent another run still uses stays).
async fn cleanup(clients: &[Client], created: Created) -> Result<(), String> {
    let Created { parents, leaves } = created;
    let chunks: Vec<Vec<String>> = leaves
        .chunks(leaves.len().div_ceil(clients.len() * 8).max(1))
        .map(|c| c.to_vec())
        .collect();
    let mut tasks = Vec::new();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let zk = clients[i % clients.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut failed = 0u64;
            for p in chunk {
                match zk.delete(&p, None).await {
                    Ok(()) | Err(Error::NoNode) => {}
                    Err(_) => failed += 1,
                }
            }
            failed
        }));
    }
    let mut failed = 0u64;
    for t in tasks {
        failed += t.await.unwrap_or(1);
    }
    for p in parents.iter().rev() {
        match clients[0].delete(p, None).await {
            Ok(()) | Err(Error::NoNode) | Err(Error::NotEmpty) => {}
            Err(e) => return Err(format!("delete {p}: {e}")),
        }
    }
    if failed > 0 {
        return Err(format!("{failed} znodes could not be deleted"));
    }
    Ok(())
}

#[cfg(test)]
mod arg_tests {
    use super::Args;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn refusal(argv: &[&str]) -> String {
        let argv = std::iter::once("bench").chain(argv.iter().copied());
        Cli::try_parse_from(argv).unwrap_err().to_string()
    }

    /// Bad numbers are refused in an operator's words, not Rust's parse errors.
    #[test]
    fn bad_numbers_are_explained() {
        let e = refusal(&["--sessions", "abc"]);
        assert!(
            e.contains("'abc' for '--sessions <SESSIONS>': not a whole number of at least 1"),
            "{e}"
        );
        assert!(refusal(&["--sessions", "0"]).contains("at least 1"));
        let e = refusal(&["--read-ratio", "x"]);
        assert!(
            e.contains("not a fraction (expected a number from 0 to 1"),
            "{e}"
        );
        assert!(refusal(&["--read-ratio", "1.5"]).contains("not a fraction"));
        let e = refusal(&["--duration", "ten"]);
        assert!(e.contains("not a number of seconds"), "{e}");
        let e = refusal(&["--connect-timeout", "5s"]);
        assert!(e.contains("not a whole number"), "{e}");
        for e in [
            e,
            refusal(&["--value-size", "-3"]),
            refusal(&["--count", "1e3"]),
        ] {
            assert!(
                !e.contains("invalid digit") && !e.contains("float literal"),
                "{e}"
            );
        }
        let ok = Cli::try_parse_from(["bench", "--sessions", "4", "--duration", "0.5"]).unwrap();
        assert_eq!((ok.args.sessions, ok.args.duration), (4, 0.5));
    }

    /// No load thread without a session: `--threads` (and its CPU-count default) is
    /// capped at `--sessions`.
    #[test]
    fn load_threads_are_capped_at_sessions() {
        let args = |argv: &[&str]| {
            let argv = std::iter::once("bench").chain(argv.iter().copied());
            Cli::try_parse_from(argv).unwrap().args
        };
        assert_eq!(
            super::load_thread_count(&args(&["--sessions", "2", "--threads", "8"])),
            2
        );
        assert_eq!(
            super::load_thread_count(&args(&["--sessions", "8", "--threads", "3"])),
            3
        );
        assert_eq!(super::load_thread_count(&args(&["--sessions", "1"])), 1);
    }
}
