//! The AdminServer over HTTP (ZooKeeper's `JettyAdminServer`), served with axum on the
//! server's tokio runtime: `GET <commandURL>` lists the commands as HTML links,
//! `GET <commandURL>/<name>?k=v` runs one ([`crate::admin::commands`]) and answers JSON.
//!
//! Owns the listener and HTTP handling only; what a command answers is
//! `commands.rs`'s. Connections idle for `admin.idleTimeout` are closed; the server
//! stops when the node shuts down.

use crate::admin::commands;
use crate::admin::settings::AdminSettings;
use crate::node::shared::Shared;
use crate::node::status::Status;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_io_timeout::TimeoutStream;

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
    /// Binds `settings.addr` and serves until the node begins shutting down.
    pub async fn start(
        shared: Arc<Shared>,
        settings: &AdminSettings,
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
        let listener = IdleListener {
            inner: listener,
            idle: settings.idle_timeout,
        };
        let mut stop = shared.lifecycle.subscribe();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|v| *v).await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!("AdminServer stopped: {e}");
            }
        });
        tracing::info!(
            "Started AdminServer on address {}, port {} and command URL {}",
            local_addr.ip(),
            local_addr.port(),
            settings.command_url
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

/// Every request: the listing, a command, or 404 outside the command URL.
async fn handle(
    State(app): State<App>,
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

/// The TCP listener whose connections close after `idle` without reads or writes
/// (Jetty's connector idle timeout).
struct IdleListener {
    inner: TcpListener,
    idle: Duration,
}

impl axum::serve::Listener for IdleListener {
    type Io = Pin<Box<TimeoutStream<TcpStream>>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let mut s = TimeoutStream::new(stream);
                    // Zero: admin.idleTimeout was 0 or less, no timeout (as Jetty).
                    let idle = (!self.idle.is_zero()).then_some(self.idle);
                    s.set_read_timeout(idle);
                    s.set_write_timeout(idle);
                    return (Box::pin(s), addr);
                }
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::debug!("AdminServer accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
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
