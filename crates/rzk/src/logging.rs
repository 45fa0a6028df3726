//! Log set-up for every subcommand: which environment variable chooses the log filter,
//! and the `tracing` subscriber writing to stderr.
//!
//! ZooKeeper takes its log levels from log4j/logback files; rzk takes them from the
//! environment, as Rust programs do: `RUST_LOG` first, then `RZK_LOG` (the name rzk
//! used first, kept as an alias), else `info`. The syntax is `tracing_subscriber`'s
//! `EnvFilter` (`debug`, `rzk_server::net=debug,info`, ...).

use tracing_subscriber::EnvFilter;

/// The variable read first.
pub const PRIMARY_VAR: &str = "RUST_LOG";
/// The alias read when [`PRIMARY_VAR`] is unset or empty.
pub const ALIAS_VAR: &str = "RZK_LOG";
/// The filter without either variable.
pub const DEFAULT_FILTER: &str = "info";

/// Shown at the end of `rzk --help` and `rzk server --help`.
pub const HELP: &str = "\
Logging (to stderr):
  RUST_LOG=<filter>   log filter, e.g. RUST_LOG=debug or RUST_LOG=rzk_server::net=debug,info
  RZK_LOG=<filter>    the same, read only when RUST_LOG is unset or empty
  Without either the level is info. Filter syntax: tracing-subscriber's EnvFilter.";

/// Where the filter came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterChoice {
    /// The directives to use.
    pub spec: String,
    /// The variable that gave them (`None`: the default).
    pub source: Option<&'static str>,
}

/// Picks the filter from the two variables' values (`RUST_LOG` wins; an empty or
/// blank value counts as unset).
pub fn choose_filter(rust_log: Option<String>, rzk_log: Option<String>) -> FilterChoice {
    let set = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    if let Some(spec) = set(rust_log) {
        return FilterChoice {
            spec,
            source: Some(PRIMARY_VAR),
        };
    }
    if let Some(spec) = set(rzk_log) {
        return FilterChoice {
            spec,
            source: Some(ALIAS_VAR),
        };
    }
    FilterChoice {
        spec: DEFAULT_FILTER.to_owned(),
        source: None,
    }
}

/// Installs the stderr subscriber with the filter the environment chooses. A filter that
/// does not parse is reported once and replaced by the default.
pub fn init() {
    use std::io::IsTerminal;
    let choice = choose_filter(
        std::env::var(PRIMARY_VAR).ok(),
        std::env::var(ALIAS_VAR).ok(),
    );
    let (filter, bad) = match EnvFilter::try_new(&choice.spec) {
        Ok(f) => (f, None),
        Err(e) => (EnvFilter::new(DEFAULT_FILTER), Some(e)),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // A failed write of a log line (stderr on a full disk, a closed pipe) is dropped:
        // the fallback would print to the same stderr, and Rust's `eprintln!` panics
        // when that fails, which on a `rzk-net` worker took sessions down.
        .log_internal_errors(false)
        .init();
    if let (Some(e), Some(var)) = (bad, choice.source) {
        tracing::warn!(
            "{var}={:?} is not a valid log filter ({e}); logging at {DEFAULT_FILTER}",
            choice.spec
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn rust_log_wins_over_the_alias() {
        let c = choose_filter(s("debug"), s("warn"));
        assert_eq!(c.spec, "debug");
        assert_eq!(c.source, Some("RUST_LOG"));
    }

    #[test]
    fn the_alias_is_read_when_rust_log_is_unset_or_blank() {
        for rust in [None, s(""), s("  ")] {
            let c = choose_filter(rust, s("rzk_server=trace"));
            assert_eq!(c.spec, "rzk_server=trace");
            assert_eq!(c.source, Some("RZK_LOG"));
        }
    }

    #[test]
    fn default_is_info() {
        let c = choose_filter(None, s(""));
        assert_eq!(c.spec, "info");
        assert_eq!(c.source, None);
    }
}
