//! `rzk server`: loads zoo.cfg (or defaults), recovers the database from dataDir /
//! dataLogDir, starts the server, stops cleanly on SIGTERM / Ctrl-C.
//!
//! Owns process-level concerns only (config source, runtime, signals, exit codes); the
//! service itself is `rzk_server::node::Server`.

use rzk_server::config::Config;
use rzk_server::node::{QuorumError, Server, ServerError};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// zoo.cfg to read (Java properties). Without it: 127.0.0.1:2181, dataDir ./rzk-data.
    #[arg(
        long,
        short = 'c',
        value_name = "ZOO_CFG",
        conflicts_with = "config_file"
    )]
    config: Option<PathBuf>,
    /// The same zoo.cfg given positionally, as `zkServer.sh start zoo.cfg` takes it.
    #[arg(value_name = "ZOO_CFG")]
    config_file: Option<PathBuf>,
    /// Override the client port (0 picks a free port).
    #[arg(long)]
    port: Option<u16>,
    /// Override dataDir (and dataLogDir when it was not set separately).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// The krb5.conf a ZooKeeper server's JVM would read: `-Djava.security.krb5.conf` from
/// `SERVER_JVMFLAGS`/`JVMFLAGS`, else /etc/krb5.conf (main.rs hands it to the Kerberos
/// library as KRB5_CONFIG).
pub fn krb5_conf() -> String {
    let system =
        rzk_server::config::jvm_flag_properties(&rzk_server::config::server_jvm_flags_from_env());
    system
        .into_iter()
        .rev()
        .find(|(k, _)| k == "java.security.krb5.conf")
        .map_or_else(
            || rzk_server::auth::settings::DEFAULT_KRB5_CONF.to_owned(),
            |(_, c)| c,
        )
}

fn load_config(args: &Args) -> Result<Config, String> {
    // The `-Dname=value` flags of SERVER_JVMFLAGS and JVMFLAGS, read as system
    // properties, as ZooKeeper's zkServer.sh passes both to its JVM (docs/CONFIG.md §1).
    let system =
        rzk_server::config::jvm_flag_properties(&rzk_server::config::server_jvm_flags_from_env());
    let mut cfg = match args.config.as_ref().or(args.config_file.as_ref()) {
        Some(p) => {
            let c = Config::load_with(p, &system).map_err(|e| format!("{}: {e}", p.display()))?;
            tracing::info!("configuration read from {}", p.display());
            c
        }
        None => {
            tracing::info!(
                "no --config given: using built-in defaults (127.0.0.1, clientPort 2181, dataDir ./rzk-data; --port/--data-dir override)"
            );
            Config::defaults_with(&system).map_err(|e| format!("SERVER_JVMFLAGS/JVMFLAGS: {e}"))?
        }
    };
    cfg.log_notes();
    if let Some(port) = args.port {
        cfg.client_port = port;
        cfg.client_port_given = true;
    }
    if let Some(d) = &args.data_dir {
        if cfg.data_log_dir == cfg.data_dir {
            cfg.data_log_dir = d.clone();
        }
        cfg.data_dir = d.clone();
    }
    Ok(cfg)
}

/// Reports why the server cannot start or stopped, exactly once: as an ERROR log line
/// when the log filter lets errors through (the log goes to stderr), otherwise as a
/// plain line on stderr, so that `RUST_LOG=off` still shows it.
fn fatal(msg: &str) {
    if tracing::enabled!(tracing::Level::ERROR) {
        tracing::error!("{msg}");
    } else {
        // Not `eprintln!`: it panics when stderr cannot be written (a full disk).
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "rzk server: {msg}");
    }
}

pub fn run(args: Args) -> ExitCode {
    let cfg = match load_config(&args) {
        Ok(c) => c,
        Err(e) => {
            fatal(&format!("invalid configuration: {e}"));
            return ExitCode::from(2);
        }
    };
    // With datadir.autocreate=false nothing is created: storage::open refuses a missing
    // directory, as ZooKeeper does.
    if rzk_server::storage::settings::datadir_autocreate(&cfg) {
        for dir in [&cfg.data_dir, &cfg.data_log_dir] {
            if let Err(e) = std::fs::create_dir_all(dir) {
                // ZooKeeper's ExitCode.UNABLE_TO_ACCESS_DATADIR, as for a missing one.
                fatal(&format!(
                    "unable to access the data directory {}: cannot create it: {e}",
                    dir.display()
                ));
                return ExitCode::from(3);
            }
        }
    }
    let abs = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
    tracing::info!(
        "data directory {} (transaction logs in {})",
        abs(&cfg.data_dir).display(),
        abs(&cfg.data_log_dir).display()
    );
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("rzk-net")
        // Connection threads in SCHED_BATCH: a client's request that wakes one does not
        // preempt the applier, disk or driver thread mid-batch (docs/ARCHITECTURE.md,
        // "Threads and locks"). A failure only changes timing (logged at debug level).
        .on_thread_start(|| {
            let _ = rzk_server::node::sched::batch_policy_for_current_thread();
        })
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            fatal(&format!("cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        // Recovery runs before anything listens: a damaged data dir stops start-up here
        // with the file and offset in the message.
        let server = match Server::start(cfg).await {
            Ok(s) => s,
            Err(e) => {
                if let ServerError::Open(rzk_server::storage::OpenError::MissingDataDir(why)) = &e
                {
                    // ZooKeeper's ExitCode.UNABLE_TO_ACCESS_DATADIR.
                    fatal(why);
                    return ExitCode::from(3);
                }
                if let ServerError::Open(rzk_server::storage::OpenError::NotWritable { .. }) = &e {
                    // Nothing damaged: ZooKeeper's DatadirException, exit code
                    // UNABLE_TO_ACCESS_DATADIR.
                    fatal(&e.to_string());
                    return ExitCode::from(3);
                }
                if let ServerError::DataDirInUse(_) = &e {
                    // As a data directory rzk cannot use: ZooKeeper's
                    // ExitCode.UNABLE_TO_ACCESS_DATADIR.
                    fatal(&e.to_string());
                    return ExitCode::from(3);
                }
                if let ServerError::Open(open) = &e {
                    let hint = match open {
                        rzk_server::storage::OpenError::Epoch(_) => "",
                        _ => " (see `rzk log dump`)",
                    };
                    fatal(&format!("{e}; refusing to start rather than lose data: repair or move the named file{hint}"));
                    return ExitCode::from(3);
                }
                fatal(&e.to_string());
                match e {
                    // A TLS key rzk cannot honour, server.N lines it cannot use, or a bad
                    // metricsProvider.* value are an invalid configuration (ZooKeeper's
                    // ExitCode.INVALID_INVOCATION).
                    ServerError::Tls(_)
                    | ServerError::Quorum(QuorumError::Config(_))
                    | ServerError::Metrics(rzk_server::metrics::prometheus::MetricsError::Config(
                        _,
                    )) => return ExitCode::from(2),
                    // ZooKeeper's ExitCode.ERROR_STARTING_ADMIN_SERVER.
                    ServerError::Admin(_) => return ExitCode::from(4),
                    _ => {}
                }
                return ExitCode::FAILURE;
            }
        };
        let reason = wait_for_signal(&server).await;
        tracing::info!("{reason}: stopping");
        let fatal_error = server.shared().lifecycle.fatal_error();
        server.shutdown().await;
        match fatal_error {
            Some(why) => {
                fatal(&format!("stopped after a fatal error: {why}"));
                ExitCode::FAILURE
            }
            None => ExitCode::SUCCESS,
        }
    })
}

async fn wait_for_signal(server: &Server) -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => return "interrupted",
                    _ = server.stopped() => return "server stopped",
                }
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "interrupted",
            _ = term.recv() => "SIGTERM received",
            _ = server.stopped() => "server stopped",
        }
    }
    #[cfg(not(unix))]
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "interrupted",
            _ = server.stopped() => "server stopped",
        }
    }
}
