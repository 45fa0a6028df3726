//! The AdminServer over HTTP (ZooKeeper's `JettyAdminServer`), served with axum on the
//! server's tokio runtime: `GET <commandURL>` lists the commands as HTML links,
//! `GET <commandURL>/<name>?k=v` runs one ([`crate::admin::commands`]) and answers JSON.
//!
//! Owns the listener and HTTP handling only; what a command answers is
//! `commands.rs`'s. Connections idle for `admin.idleTimeout` are closed; the server
//! stops when the node shuts down. With `admin.forceHttps` every connection is TLS; with
//! `admin.portUnification` a connection whose first byte opens a TLS handshake is TLS
//! and any other is plain HTTP (Jetty's `UnifiedConnectionFactory` in ZooKeeper). TLS
//! handshakes run in tasks of their own, so a slow one holds up no other connection.

use crate::admin::commands;
use crate::admin::settings::{AdminScheme, AdminSettings};
use crate::node::shared::Shared;
use crate::node::status::Status;
use axum::body::Body;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::Request;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::serve::Listener as _;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_io_timeout::TimeoutStream;
use tokio_rustls::rustls::ServerConfig;
use tower_service::Service as _;

/// Why the AdminServer could not start.
#[derive(Debug, thiserror::Error)]
#[error("Problem starting AdminServer on address {addr} and command URL {url}: {source}")]
pub struct AdminServerError {
    /// The address it tried to bind (`admin.serverAddress`:`admin.serverPort`).
    pub addr: SocketAddr,
    /// `admin.commandURL`.
    pub url: String,
    /// The bind error.
    pub source: std::io::Error,
}

/// A running AdminServer.
#[derive(Debug)]
pub struct AdminServer {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl AdminServer {
    /// Binds `settings.addr` and serves until the node begins shutting down. `tls` is
    /// the HTTPS configuration (`crate::tls::admin_server_config`), needed unless
    /// `settings.scheme` is [`AdminScheme::Http`]; without it the port serves plain HTTP.
    pub async fn start(
        shared: Arc<Shared>,
        settings: &AdminSettings,
        tls: Option<Arc<ServerConfig>>,
    ) -> Result<AdminServer, AdminServerError> {
        let err = |source| AdminServerError {
            addr: settings.addr,
            url: settings.command_url.clone(),
            source,
        };
        let listener = TcpListener::bind(settings.addr).await.map_err(err)?;
        let local_addr = listener.local_addr().map_err(err)?;
        let app = Router::new().fallback(handle).with_state(App {
            shared: shared.clone(),
            url: settings.command_url.clone(),
        });
        debug_assert!(tls.is_some() || settings.scheme == AdminScheme::Http);
        let tls = match (settings.scheme, tls) {
            (AdminScheme::Http, _) | (_, None) => None,
            (AdminScheme::Https, Some(c)) => Some((tokio_rustls::TlsAcceptor::from(c), false)),
            (AdminScheme::Unified, Some(c)) => Some((tokio_rustls::TlsAcceptor::from(c), true)),
        };
        let https = tls.is_some();
        let (ready_tx, ready_rx) = mpsc::channel(READY_QUEUE);
        let listener = AdminListener {
            inner: listener,
            idle: settings.idle_timeout,
            tls,
            ready_tx,
            ready_rx,
            handshakes: JoinSet::new(),
        };
        let stop = shared.lifecycle.subscribe();
        let task = tokio::spawn(serve(listener, app, stop));
        tracing::info!(
            "Started AdminServer on address {}, port {} and command URL {}{}",
            local_addr.ip(),
            local_addr.port(),
            settings.command_url,
            match (https, settings.scheme) {
                (false, _) => "",
                (true, AdminScheme::Unified) => " (HTTPS and HTTP)",
                (true, _) => " (HTTPS)",
            }
        );
        Ok(AdminServer { local_addr, task })
    }

    /// The bound address (useful when `admin.serverPort` was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and drops the serving task.
    pub fn stop(self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct App {
    shared: Arc<Shared>,
    url: String,
}

/// The `Strict-Transport-Security` value of every HTTPS answer (Jetty's
/// `SecureRequestCustomizer` as ZooKeeper sets it: a day, sub-domains included).
const STS: &str = "max-age=86400; includeSubDomains";

/// Every request: the listing, a command, or 404 outside the command URL; over TLS with
/// the `Strict-Transport-Security` header ZooKeeper's AdminServer adds.
async fn handle(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    method: Method,
    uri: Uri,
    query: Query<Vec<(String, String)>>,
) -> Response {
    let mut r = answer(app, method, uri, query);
    if peer.tls {
        r.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            header::HeaderValue::from_static(STS),
        );
    }
    r
}

/// The answer to one request, whatever the connection.
fn answer(
    app: App,
    method: Method,
    uri: Uri,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let path = uri.path();
    let Some(rest) = path.strip_prefix(app.url.as_str()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let name = match rest {
        "" | "/" => return listing(&app.url),
        r => match r.strip_prefix('/') {
            Some(name) => name,
            None => return StatusCode::NOT_FOUND.into_response(),
        },
    };
    let name = percent_decode(name);
    let mut args = commands::Args::new();
    for (k, v) in query {
        args.entry(k).or_insert(v);
    }
    let answer = commands::run(Status::of(&app.shared), &name, &args);
    match serde_json::to_string_pretty(&answer) {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!("admin command {name}: cannot encode the answer: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The command list: one link per primary name, sorted, as ZooKeeper's servlet prints it.
fn listing(url: &str) -> Response {
    let mut body = String::new();
    for name in commands::primary_names() {
        body.push_str(&format!("<a href=\"{url}/{name}\">{name}</a>\n<br/>\n"));
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html;charset=utf-8")],
        Body::from(body),
    )
        .into_response()
}

/// `%XX` escapes of a path segment decoded (invalid escapes kept as written).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The most a request's line and headers may take, in bytes: Jetty's default
/// `requestHeaderSize` in ZooKeeper's AdminServer. A longer head is answered `431
/// Request Header Fields Too Large` and the connection closed, as Jetty does (hyper's
/// read buffer limit, whose floor is this same 8 KiB).
pub const MAX_REQUEST_HEAD: usize = 8192;

/// Serves the listener's connections, each in a task of its own over HTTP/1.1, until
/// `stop` turns true; the connections still open then are dropped with the task.
async fn serve(mut listener: AdminListener, app: Router, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    // A request's head must arrive whole within the idle timeout, not only byte by byte
    // within it: a client trickling a header byte a second holds no connection (and
    // descriptor) for ever. Jetty has no such bound; rzk's AdminServer is stricter.
    let head_timeout = (!listener.idle.is_zero()).then_some(listener.idle);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|v| *v) => return,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        conns.spawn(serve_http1(
            io,
            app.clone(),
            Some(ConnectInfo(peer)),
            head_timeout,
            "AdminServer",
        ));
    }
}

/// Serves `app` on one connection over HTTP/1.1 (the AdminServer's and the Prometheus
/// endpoint's way): request heads of at most [`MAX_REQUEST_HEAD`] bytes (431 above),
/// each to arrive whole within `head_timeout` (none: no bound); `info` (axum's connect
/// info) put in every request's extensions. `what` names the endpoint in the debug log
/// line of a connection that ends with an error.
pub(crate) async fn serve_http1<I, C>(
    io: I,
    app: Router,
    info: Option<C>,
    head_timeout: Option<Duration>,
    what: &'static str,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    C: Clone + Send + Sync + 'static,
{
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        if let Some(info) = &info {
            req.extensions_mut().insert(info.clone());
        }
        let mut app = app.clone();
        app.call(req)
    });
    let served = hyper::server::conn::http1::Builder::new()
        .max_buf_size(MAX_REQUEST_HEAD)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(head_timeout)
        .serve_connection(TokioIo::new(io), service)
        .await;
    if let Err(e) = served {
        tracing::debug!("{what} connection ended: {e}");
    }
}

/// How many finished TLS handshakes may wait for the serving loop to take them.
const READY_QUEUE: usize = 64;

/// An accepted connection as axum serves it: plain or TLS, over a socket that closes
/// after the idle timeout.
trait AdminIo: AsyncRead + AsyncWrite + Send {}
impl<T: AsyncRead + AsyncWrite + Send> AdminIo for T {}

type Io = Pin<Box<dyn AdminIo>>;

/// What the handler knows of a connection (axum's connect info): whether it is TLS.
#[derive(Debug, Clone, Copy)]
struct Peer {
    tls: bool,
}

type IdleTcp = Pin<Box<TimeoutStream<TcpStream>>>;

/// The AdminServer's listener: connections close after `idle` without reads or writes
/// (Jetty's connector idle timeout). With `tls`, each connection's handshake (and, on a
/// unified port, the look at its first byte) runs in a task of `handshakes`, which hands
/// the finished stream back through `ready_*`; dropping the listener ends them.
struct AdminListener {
    inner: TcpListener,
    idle: Duration,
    /// The acceptor, and whether a connection that does not open with a TLS handshake is
    /// served as plain HTTP (`admin.portUnification`).
    tls: Option<(tokio_rustls::TlsAcceptor, bool)>,
    ready_tx: mpsc::Sender<(Io, Peer)>,
    ready_rx: mpsc::Receiver<(Io, Peer)>,
    handshakes: JoinSet<()>,
}

impl AdminListener {
    /// `stream` with the idle timeout on both directions (none when it is zero, as
    /// Jetty's idle timeout of 0 or less).
    fn idle_stream(&self, stream: TcpStream) -> IdleTcp {
        let _ = stream.set_nodelay(true);
        let mut s = TimeoutStream::new(stream);
        let idle = (!self.idle.is_zero()).then_some(self.idle);
        s.set_read_timeout(idle);
        s.set_write_timeout(idle);
        Box::pin(s)
    }
}

/// A TLS connection's start, in its own task: on a unified port, whether it opens with a
/// handshake (waiting at most `detect` for a first byte: a silent client is plain, as
/// Jetty's read-ahead of one byte finds no data), then the handshake (at most
/// [`crate::tls::HANDSHAKE_TIMEOUT`]). A failed handshake closes the connection.
async fn start_connection(
    acceptor: tokio_rustls::TlsAcceptor,
    accept_plain: bool,
    detect: Duration,
    stream: IdleTcp,
    addr: SocketAddr,
    ready: mpsc::Sender<(Io, Peer)>,
) {
    let tls = !accept_plain
        || crate::tls::starts_with_tls(stream.as_ref().get_ref().get_ref(), detect).await;
    let io: Io = if tls {
        match tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(s)) => Box::pin(s),
            Ok(Err(e)) => {
                tracing::debug!("AdminServer TLS handshake with {addr} failed: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!("AdminServer TLS handshake with {addr} timed out");
                return;
            }
        }
    } else {
        crate::metrics::metrics().insecure_admin_count.inc();
        stream
    };
    // Fails only once the listener is gone (the AdminServer stopped).
    let _ = ready.send((io, Peer { tls })).await;
}

impl axum::serve::Listener for AdminListener {
    type Io = Io;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                accepted = self.inner.accept() => match accepted {
                    Ok((stream, addr)) => {
                        let stream = self.idle_stream(stream);
                        let Some((acceptor, accept_plain)) = &self.tls else {
                            return (stream, Peer { tls: false });
                        };
                        // Jetty waits for the first byte as long as for any read.
                        let detect = if self.idle.is_zero() {
                            crate::tls::DEFAULT_HANDSHAKE_DETECTION_TIMEOUT
                        } else {
                            self.idle
                        };
                        self.handshakes.spawn(start_connection(
                            acceptor.clone(),
                            *accept_plain,
                            detect,
                            stream,
                            addr,
                            self.ready_tx.clone(),
                        ));
                    }
                    Err(e) => {
                        // Out of descriptors and the like: back off instead of spinning.
                        tracing::debug!("AdminServer accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(ready) = self.ready_rx.recv() => return ready,
                Some(_) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {}
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr().map(|_| Peer {
            tls: self.tls.is_some(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn decodes_escapes() {
        assert_eq!(percent_decode("ruok"), "ruok");
        assert_eq!(percent_decode("a%2Fb"), "a/b");
        assert_eq!(percent_decode("bad%zz"), "bad%zz");
        assert_eq!(percent_decode("end%4"), "end%4");
    }
}
