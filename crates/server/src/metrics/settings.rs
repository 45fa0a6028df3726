//! The metrics provider's settings: ZooKeeper's `metricsProvider.*` keys, read from the
//! keys the configuration parser kept in `Config::unknown`.
//!
//! Owns parsing and defaults only; [`crate::metrics::prometheus`] binds and serves. An
//! unknown `metricsProvider.className` never gets here: config/keys.rs refuses it.

use crate::config::{keys, ConfigError, Properties};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// ZooKeeper's default provider: metrics in `mntr` and the AdminServer only.
pub const DEFAULT_PROVIDER: &str = "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider";
/// ZooKeeper's provider that records nothing: rzk's hooks stop recording (the way to
/// measure what metrics cost).
pub const NULL_PROVIDER: &str = "org.apache.zookeeper.metrics.impl.NullMetricsProvider";
/// ZooKeeper's Prometheus provider: a `/metrics` HTTP endpoint.
pub const PROMETHEUS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";
/// `metricsProvider.httpPort`'s default.
pub const DEFAULT_PROMETHEUS_PORT: u16 = 7000;

/// The providers rzk has built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Metrics in `mntr` and the AdminServer's `monitor`.
    Default,
    /// No metrics recorded (`mntr` keeps the server's state only).
    Null,
    /// As [`Provider::Default`], plus the `/metrics` endpoint.
    Prometheus,
}

/// Which provider `metricsProvider.className` names (refusal text for any other).
pub fn provider_class(class: &str) -> Result<Provider, String> {
    match class.trim() {
        DEFAULT_PROVIDER => Ok(Provider::Default),
        NULL_PROVIDER => Ok(Provider::Null),
        PROMETHEUS_PROVIDER => Ok(Provider::Prometheus),
        other => Err(format!(
            "metrics provider class {other} cannot be loaded: rzk loads no Java classes and has only ZooKeeper's default and Prometheus providers built in"
        )),
    }
}

/// The configured provider and where the Prometheus endpoint listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// `metricsProvider.className` (default: ZooKeeper's default provider).
    pub provider: Provider,
    /// `metricsProvider.httpHost` (default 0.0.0.0) : `metricsProvider.httpPort`
    /// (default 7000), when the Prometheus provider is configured.
    pub prometheus: Option<SocketAddr>,
    /// `metricsProvider.exportJvmInfo` (default true): export the process collector's
    /// `process_*` metrics (CPU, memory, open files, threads, start time), what
    /// ZooKeeper's `DefaultExports` report of its process besides the JVM internals.
    pub export_process_info: bool,
}

impl MetricsSettings {
    /// Reads the `metricsProvider.*` keys. Errors name the key: an unknown class, a host
    /// that is not an IP address, a port that is not a number.
    pub fn from_properties(props: &Properties) -> Result<MetricsSettings, ConfigError> {
        let get = |k: &str| props.get(k).map(|v| (k.to_owned(), v.trim().to_owned()));
        let invalid = |key: String, value: String, reason: String| ConfigError::Invalid {
            key,
            value,
            reason,
        };
        let provider = match get("metricsProvider.className") {
            Some((k, v)) => provider_class(&v).map_err(|why| invalid(k, v, why))?,
            None => Provider::Default,
        };
        let export_process_info =
            get("metricsProvider.exportJvmInfo").is_none_or(|(_, v)| keys::java_true(&v));
        if provider != Provider::Prometheus {
            return Ok(MetricsSettings {
                provider,
                prometheus: None,
                export_process_info,
            });
        }
        let ip = match get("metricsProvider.httpHost") {
            Some((k, v)) => v
                .parse::<IpAddr>()
                .map_err(|_| invalid(k, v, "not an IP address".into()))?,
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        let port = match get("metricsProvider.httpPort") {
            Some((k, v)) => v
                .parse::<u16>()
                .map_err(|_| invalid(k, v, "not a port number".into()))?,
            None => DEFAULT_PROMETHEUS_PORT,
        };
        Ok(MetricsSettings {
            provider,
            prometheus: Some(SocketAddr::new(ip, port)),
            export_process_info,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> Properties {
        let mut p = Properties::default();
        for (k, v) in kv {
            p.insert((*k).to_owned(), (*v).to_owned());
        }
        p
    }

    #[test]
    fn defaults_and_prometheus() {
        let none = MetricsSettings::from_properties(&props(&[])).expect("empty");
        assert_eq!(none.prometheus, None);
        assert_eq!(none.provider, Provider::Default);
        assert!(none.export_process_info);
        let p = MetricsSettings::from_properties(&props(&[
            ("metricsProvider.className", PROMETHEUS_PROVIDER),
            ("metricsProvider.httpHost", "127.0.0.1"),
            ("metricsProvider.exportJvmInfo", "false"),
        ]))
        .expect("prometheus");
        assert_eq!(p.prometheus, Some("127.0.0.1:7000".parse().expect("addr")));
        assert!(!p.export_process_info);
    }

    #[test]
    fn unknown_provider_classes_are_refused() {
        use crate::config::keys::{classify, KeyClass};
        assert!(matches!(
            classify("metricsProvider.className", "com.example.StatsdProvider"),
            Some(KeyClass::Refused(_))
        ));
        for ok in [PROMETHEUS_PROVIDER, DEFAULT_PROVIDER, NULL_PROVIDER] {
            assert_eq!(
                classify("metricsProvider.className", ok),
                Some(KeyClass::Implemented)
            );
        }
        assert_eq!(
            classify("metricsProvider.httpPort", "7000"),
            Some(KeyClass::Implemented)
        );
        assert!(matches!(
            classify("metricsProvider.numWorkerThreads", "4"),
            Some(KeyClass::NoEffect(_))
        ));
    }

    #[test]
    fn errors_name_the_key() {
        for (k, v) in [
            ("metricsProvider.className", "com.example.Metrics"),
            ("metricsProvider.httpPort", "seven"),
            ("metricsProvider.httpHost", "not-an-ip"),
        ] {
            let mut kv = vec![("metricsProvider.className", PROMETHEUS_PROVIDER)];
            kv.push((k, v));
            match MetricsSettings::from_properties(&props(&kv)) {
                Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, k),
                other => panic!("{k}={v}: {other:?}"),
            }
        }
    }
}
