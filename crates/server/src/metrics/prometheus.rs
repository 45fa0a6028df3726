//! The Prometheus endpoint (ZooKeeper's `PrometheusMetricsProvider`): `GET /metrics` in
//! the Prometheus text format 0.0.4, on `metricsProvider.httpHost:httpPort`.
//!
//! Names are the `mntr` keys without `zk_`: the server's gauges, the registry's counters,
//! its summaries as Prometheus summaries with `quantile` labels (0.5 for basic ones;
//! 0.5, 0.9, 0.99 for advanced ones) and `_sum`/`_count`, a summary set's members
//! labelled `key`. With `exportJvmInfo` (default true) the `process_*` metrics of the
//! prometheus crate's process collector follow. Encoding is the prometheus crate's
//! `TextEncoder`; this module only maps rzk's numbers onto its model.

use super::settings::MetricsSettings;
use super::summary::{prometheus_quantiles, Detail, Snapshot};
use super::ServerMetrics;
use crate::admin::mntr::{status_rows, MntrValue};
use crate::config::ConfigError;
use crate::node::shared::Shared;
use crate::node::status::Status;
use prometheus::proto::{
    Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType, Quantile, Summary,
};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Why the Prometheus endpoint could not start (start-up stops).
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A `metricsProvider.*` key with a bad value (the error names it).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The endpoint's port could not be bound.
    #[error("cannot listen for Prometheus scrapes on {addr} (metricsProvider.httpHost/httpPort): {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The bind error.
        source: std::io::Error,
    },
}

fn family(name: &str, ty: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_owned());
    f.set_help(name.to_owned());
    f.set_field_type(ty);
    f.set_metric(metrics);
    f
}

fn gauge(v: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(v);
    let mut m = Metric::default();
    m.set_gauge(g);
    m
}

fn counter(v: f64) -> Metric {
    let mut c = Counter::default();
    c.set_value(v);
    let mut m = Metric::default();
    m.set_counter(c);
    m
}

fn summary(s: &Snapshot, detail: Detail, key: Option<&str>) -> Metric {
    let mut sum = Summary::default();
    sum.set_sample_count(s.count);
    sum.set_sample_sum(s.sum as f64);
    sum.set_quantile(
        prometheus_quantiles(detail)
            .iter()
            .map(|&q| {
                let mut x = Quantile::default();
                x.set_quantile(q);
                x.set_value(s.quantile(q));
                x
            })
            .collect(),
    );
    let mut m = Metric::default();
    m.set_summary(sum);
    if let Some(k) = key {
        let mut l = LabelPair::default();
        l.set_name("key".to_owned());
        l.set_value(k.to_owned());
        m.set_label(vec![l]);
    }
    m
}

/// The registry's counters and summaries as metric families.
pub fn registry_families(m: &ServerMetrics) -> Vec<MetricFamily> {
    let mut out = Vec::new();
    for (name, c) in m.counters() {
        out.push(family(
            name,
            MetricType::COUNTER,
            vec![counter(c.get() as f64)],
        ));
    }
    for (name, s) in m.summaries() {
        out.push(family(
            name,
            MetricType::SUMMARY,
            vec![summary(&s.snapshot(), s.detail(), None)],
        ));
    }
    for (name, set) in m.summary_sets() {
        let members: Vec<Metric> = set
            .snapshot()
            .iter()
            .map(|(k, s)| summary(s, set.detail(), Some(k)))
            .collect();
        // The text format has no empty families.
        if !members.is_empty() {
            out.push(family(name, MetricType::SUMMARY, members));
        }
    }
    out
}

/// ZooKeeper's quota gauge sets (`QuotaMetricsUtils`) and its QUOTAEXCEEDED counter set,
/// one member per namespace labelled `key`, as its Prometheus provider exports them.
fn quota_families(status: Status<'_>) -> Vec<MetricFamily> {
    let labelled = |mut m: Metric, ns: &str| {
        let mut l = LabelPair::default();
        l.set_name("key".to_owned());
        l.set_value(ns.to_owned());
        m.set_label(vec![l]);
        m
    };
    let usage = status.tree().quota_usage_by_namespace();
    let mut out = Vec::new();
    let names = [
        "quota_count_limit_per_namespace",
        "quota_bytes_limit_per_namespace",
        "quota_count_usage_per_namespace",
        "quota_bytes_usage_per_namespace",
    ];
    for (i, name) in names.into_iter().enumerate() {
        let members: Vec<Metric> = usage
            .iter()
            .map(|(ns, u)| {
                let v = [u.count_limit, u.bytes_limit, u.count_usage, u.bytes_usage][i];
                labelled(gauge(v as f64), ns)
            })
            .collect();
        if !members.is_empty() {
            out.push(family(name, MetricType::GAUGE, members));
        }
    }
    let refused: Vec<Metric> = crate::prep::quota_exceeded_counts()
        .iter()
        .map(|(ns, n)| labelled(counter(*n as f64), ns))
        .collect();
    if !refused.is_empty() {
        out.push(family(
            "quota_exceeded_error_per_namespace",
            MetricType::COUNTER,
            refused,
        ));
    }
    out
}

/// rzk's requests by opcode, one counter labelled `key=<opcode name>` each.
fn op_family() -> Option<MetricFamily> {
    let members: Vec<Metric> = super::ops::seen()
        .into_iter()
        .map(|(op, n)| {
            let mut m = counter(n as f64);
            let mut l = LabelPair::default();
            l.set_name("key".to_owned());
            l.set_value(op);
            m.set_label(vec![l]);
            m
        })
        .collect();
    (!members.is_empty()).then(|| family("rzk_requests", MetricType::COUNTER, members))
}

/// Everything one scrape returns, encoded.
pub fn scrape(status: Status<'_>, process_info: bool) -> String {
    let mut families: Vec<MetricFamily> = status_rows(status)
        .0
        .into_iter()
        .filter_map(|(k, v)| {
            let v = match v {
                MntrValue::Int(i) => i as f64,
                MntrValue::Float(f) => f,
                MntrValue::Str(_) => return None,
            };
            Some(family(&k, MetricType::GAUGE, vec![gauge(v)]))
        })
        .collect();
    families.extend(registry_families(super::metrics()));
    families.extend(op_family());
    families.extend(quota_families(status));
    if process_info {
        use prometheus::core::Collector;
        families.extend(prometheus::process_collector::ProcessCollector::for_self().collect());
    }
    let mut out = String::new();
    if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&families, &mut out) {
        tracing::warn!("cannot encode the metrics: {e}");
    }
    out
}

/// When the configuration names the Prometheus provider, makes the summary sets keep
/// a histogram for each member (its basic summaries export a median; without the
/// endpoint they need none: `metrics::summary::SummarySet`). Called before anything is
/// recorded (before the log is replayed), so every member has one. A configuration
/// error is left to [`start`].
pub fn prepare(config: &crate::config::Config) {
    if let Ok(MetricsSettings {
        prometheus: Some(_),
        ..
    }) = MetricsSettings::from_properties(&config.unknown)
    {
        for (_, set) in super::metrics().summary_sets() {
            set.keep_quantiles();
        }
    }
}

/// Applies `metricsProvider.className` (the null provider turns recording off) and
/// starts the endpoint if it names the Prometheus provider:
/// binds at once (a taken port stops start-up) and serves on the current runtime until
/// the returned task is aborted.
pub async fn start(shared: Arc<Shared>) -> Result<Option<JoinHandle<()>>, MetricsError> {
    let settings = MetricsSettings::from_properties(&shared.config.unknown)?;
    super::set_enabled(settings.provider != super::settings::Provider::Null);
    let Some(addr) = settings.prometheus else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| MetricsError::Bind { addr, source })?;
    tracing::info!(
        "Prometheus metrics at http://{bound}/metrics (exportJvmInfo: {})",
        settings.export_process_info
    );
    let process_info = settings.export_process_info;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let shared = shared.clone();
            async move {
                let body = scrape(Status::of(&shared), process_info);
                (
                    [(axum::http::header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
                    body,
                )
            }
        }),
    );
    Ok(Some(tokio::spawn(serve(listener, app, HEAD_TIMEOUT))))
}

/// How long a scrape's request head may take to arrive whole; a client trickling it
/// holds no connection (and descriptor) longer.
const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves `app` on `listener` over HTTP/1.1, one task a connection, until aborted
/// (which ends every connection: they are the future's); a request head must arrive
/// whole within `head_timeout`.
async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    head_timeout: std::time::Duration,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let io = match accepted {
            Ok((io, _)) => io,
            // The client gave up before it was taken: nothing wrong here.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                continue
            }
            Err(e) => {
                // Out of descriptors, most likely: the listener itself is fine; try
                // again shortly rather than spin.
                tracing::warn!("Prometheus endpoint: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        conns.spawn(crate::admin::http::serve_http1(
            io,
            app.clone(),
            None::<()>,
            Some(head_timeout),
            "Prometheus endpoint",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scrape whose head trickles in a byte at a time is closed once the head took
    /// longer than the bound; a prompt one is answered; stopping the endpoint ends the
    /// connections it has open.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_trickled_request_head_is_closed_a_prompt_one_answered() {
        use std::time::Duration;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/metrics", axum::routing::get(|| async { "ok" }));
        let server = tokio::spawn(serve(listener, app, Duration::from_millis(400)));
        let within = |d: u64| Duration::from_secs(d);

        let mut prompt = tokio::net::TcpStream::connect(addr).await.unwrap();
        prompt
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        tokio::time::timeout(within(10), prompt.read_to_string(&mut out))
            .await
            .expect("answered")
            .unwrap();
        assert!(
            out.starts_with("HTTP/1.1 200") && out.ends_with("ok"),
            "{out}"
        );

        let slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut rd, mut wr) = slow.into_split();
        let reader = tokio::spawn(async move {
            let mut out = Vec::new();
            let _ = rd.read_to_end(&mut out).await;
        });
        for b in b"GET /metrics HTTP/1.1\r\nX: ".iter().cycle().take(60) {
            if reader.is_finished() || wr.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Not closed within the 6 s of trickling: the wait below fails the test.
        tokio::time::timeout(within(1), reader)
            .await
            .expect("closed while the head trickled")
            .unwrap();

        server.abort();

        // A connection mid-head (bound: a minute) ends when the endpoint stops.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/metrics", axum::routing::get(|| async { "ok" }));
        let server = tokio::spawn(serve(listener, app, Duration::from_secs(60)));
        let mut kept = tokio::net::TcpStream::connect(addr).await.unwrap();
        kept.write_all(b"GET /metrics HTTP/1.1\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        server.abort();
        let mut rest = Vec::new();
        tokio::time::timeout(within(5), kept.read_to_end(&mut rest))
            .await
            .expect("closed when the endpoint stopped")
            .ok();
    }

    #[test]
    fn counters_summaries_and_sets_in_the_text_format() {
        let m = ServerMetrics::new();
        m.commit_count.add(3);
        for v in [1, 2, 3, 40] {
            m.readlatency.add(v);
        }
        m.fsynctime.add(7);
        super::super::registry::write_stat(&m, "/app/x", 5);
        let mut text = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&registry_families(&m), &mut text)
            .expect("encodes");
        for line in [
            "# TYPE commit_count counter",
            "commit_count 3",
            "# TYPE readlatency summary",
            "readlatency{quantile=\"0.5\"} 2",
            "readlatency{quantile=\"0.99\"} 40",
            "readlatency_sum 46",
            "readlatency_count 4",
            "fsynctime{quantile=\"0.5\"} 7",
            "write_per_namespace{key=\"app\",quantile=\"0.5\"} 11",
            "write_per_namespace_count{key=\"app\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in:\n{text}"
            );
        }
        // No family for a set without members (the text format has no empty families).
        assert!(!text.contains("read_per_namespace"));
    }
}
