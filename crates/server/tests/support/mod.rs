//! Test support: start an in-process server on 127.0.0.1:<ephemeral> and a raw-socket
//! client that speaks the ZooKeeper wire protocol through rzk-proto.

#![allow(dead_code)]

use bytes::Bytes;
use rzk_proto::records::*;
use rzk_proto::{Jute, Reader};
use rzk_server::config::{Config, FourLetterWhitelist};
use rzk_server::node::Server;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

pub fn test_config() -> Config {
    Config {
        client_port: 0,
        client_port_address: Some("127.0.0.1".parse().unwrap()),
        tick_time_ms: 100,
        min_session_timeout_ms: 200,
        max_session_timeout_ms: 10_000,
        four_letter_whitelist: FourLetterWhitelist::All,
        data_dir: std::env::temp_dir().join("rzk-net-tests"),
        data_log_dir: std::env::temp_dir().join("rzk-net-tests"),
        ..Config::default()
    }
}

/// Starts a server on `cfg`, in a fresh data directory of its own unless the test chose
/// one (anything but the default of [`test_config`]).
pub async fn start(mut cfg: Config) -> Server {
    if cfg.data_dir == test_config().data_dir {
        let dir = fresh_dir();
        cfg.data_dir = dir.clone();
        cfg.data_log_dir = dir;
    }
    Server::start(cfg).await.expect("server starts")
}

/// A new empty directory under the system temp dir (kept after the test, for its logs).
pub fn fresh_dir() -> std::path::PathBuf {
    tempfile::Builder::new()
        .prefix("rzk-test-")
        .tempdir()
        .expect("temp dir")
        .keep()
}

/// A raw protocol client.
pub struct Client {
    pub s: TcpStream,
    pub session: i64,
    pub passwd: Bytes,
    pub timeout: i32,
    pub xid: i32,
    /// Notifications received, in order.
    pub events: Vec<WatcherEvent>,
    /// Every frame's xid in arrival order (to check ordering).
    pub arrivals: Vec<i32>,
}

pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

pub async fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    tokio::time::timeout(IO_TIMEOUT, s.read_exact(&mut len))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "timeout"))??;
    let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
    tokio::time::timeout(IO_TIMEOUT, s.read_exact(&mut buf))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "timeout"))??;
    Ok(buf)
}

/// True if the server closed the connection (EOF or reset) within the timeout.
pub async fn is_closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(
        tokio::time::timeout(IO_TIMEOUT, s.read(&mut b)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

pub async fn connect_raw(
    addr: SocketAddr,
    req: &ConnectRequest,
) -> (TcpStream, std::io::Result<ConnectResponse>) {
    let mut s = TcpStream::connect(addr).await.expect("tcp connect");
    s.write_all(&frame(&req.to_bytes())).await.expect("send");
    let r = read_frame(&mut s)
        .await
        .and_then(|b| ConnectResponse::from_bytes(&b).map_err(std::io::Error::other));
    (s, r)
}

impl Client {
    pub async fn connect(addr: SocketAddr, timeout: i32) -> Client {
        Client::resume(addr, timeout, 0, Bytes::from(vec![0u8; 16]))
            .await
            .expect("handshake")
    }

    pub async fn resume(
        addr: SocketAddr,
        timeout: i32,
        session: i64,
        passwd: Bytes,
    ) -> Result<Client, (TcpStream, ConnectResponse)> {
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: timeout,
            session_id: session,
            passwd,
            read_only: Some(false),
        };
        let (s, r) = connect_raw(addr, &req).await;
        let resp = r.expect("connect response");
        if resp.timeout_ms <= 0 {
            return Err((s, resp));
        }
        Ok(Client {
            s,
            session: resp.session_id,
            passwd: resp.passwd,
            timeout: resp.timeout_ms,
            xid: 0,
            events: Vec::new(),
            arrivals: Vec::new(),
        })
    }

    pub async fn send(&mut self, xid: i32, op: i32, body: &[u8]) {
        let mut payload = RequestHeader { xid, op }.to_bytes();
        payload.extend_from_slice(body);
        self.s.write_all(&frame(&payload)).await.expect("send");
    }

    /// Reads one frame; notifications are recorded and returned like any other.
    pub async fn recv(&mut self) -> std::io::Result<(ReplyHeader, Vec<u8>)> {
        let buf = read_frame(&mut self.s).await?;
        let mut r = Reader::new(&buf);
        let h: ReplyHeader = r.read().map_err(std::io::Error::other)?;
        let body = r.rest().to_vec();
        self.arrivals.push(h.xid);
        if h.xid == -1 {
            let ev = WatcherEvent::from_bytes(&body).map_err(std::io::Error::other)?;
            self.events.push(ev);
        }
        Ok((h, body))
    }

    /// Reads until the reply with `xid`.
    pub async fn reply(&mut self, xid: i32) -> (ReplyHeader, Vec<u8>) {
        loop {
            let (h, b) = self.recv().await.expect("reply");
            if h.xid == xid {
                return (h, b);
            }
            assert_eq!(
                h.xid, -1,
                "unexpected reply xid {} while waiting for {xid}",
                h.xid
            );
        }
    }

    pub async fn call(&mut self, op: i32, body: &[u8]) -> (ReplyHeader, Vec<u8>) {
        self.xid += 1;
        let xid = self.xid;
        self.send(xid, op, body).await;
        self.reply(xid).await
    }

    pub async fn create(&mut self, path: &str, data: &[u8], flags: i32) -> (i32, String) {
        let req = CreateRequest {
            path: path.into(),
            data: Bytes::copy_from_slice(data).into(),
            acl: Acl::open_unsafe(),
            flags,
        };
        let (h, b) = self.call(1, &req.to_bytes()).await;
        if h.err != 0 {
            return (h.err, String::new());
        }
        (
            0,
            CreateResponse::from_bytes(&b).expect("CreateResponse").path,
        )
    }

    pub async fn get_data(&mut self, path: &str, watch: bool) -> Result<(Bytes, Stat), i32> {
        let req = GetDataRequest {
            path: path.into(),
            watch,
        };
        let (h, b) = self.call(4, &req.to_bytes()).await;
        if h.err != 0 {
            return Err(h.err);
        }
        let r = GetDataResponse::from_bytes(&b).expect("GetDataResponse");
        Ok((r.data.bytes(), r.stat))
    }

    pub async fn exists(&mut self, path: &str, watch: bool) -> Result<Stat, i32> {
        let (h, b) = self
            .call(
                3,
                &ExistsRequest {
                    path: path.into(),
                    watch,
                }
                .to_bytes(),
            )
            .await;
        if h.err != 0 {
            return Err(h.err);
        }
        Ok(ExistsResponse::from_bytes(&b).expect("ExistsResponse").stat)
    }

    pub async fn set_data(&mut self, path: &str, data: &[u8], version: i32) -> Result<Stat, i32> {
        let req = SetDataRequest {
            path: path.into(),
            data: Bytes::copy_from_slice(data).into(),
            version,
        };
        let (h, b) = self.call(5, &req.to_bytes()).await;
        if h.err != 0 {
            return Err(h.err);
        }
        Ok(SetDataResponse::from_bytes(&b)
            .expect("SetDataResponse")
            .stat)
    }

    pub async fn delete(&mut self, path: &str, version: i32) -> i32 {
        let (h, _) = self
            .call(
                2,
                &DeleteRequest {
                    path: path.into(),
                    version,
                }
                .to_bytes(),
            )
            .await;
        h.err
    }

    pub async fn children(&mut self, path: &str) -> Result<Vec<String>, i32> {
        let (h, b) = self
            .call(
                8,
                &GetChildrenRequest {
                    path: path.into(),
                    watch: false,
                }
                .to_bytes(),
            )
            .await;
        if h.err != 0 {
            return Err(h.err);
        }
        Ok(GetChildrenResponse::from_bytes(&b)
            .expect("children")
            .children)
    }

    pub async fn ping(&mut self) -> ReplyHeader {
        self.send(-2, 11, &[]).await;
        self.reply(-2).await.0
    }

    pub async fn close_session(&mut self) -> ReplyHeader {
        self.call(-11, &[]).await.0
    }
}

/// Runs a four-letter word and returns the text answer.
pub async fn four_letter(addr: SocketAddr, word: &str) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(word.as_bytes()).await.expect("send");
    let mut out = Vec::new();
    tokio::time::timeout(IO_TIMEOUT, s.read_to_end(&mut out))
        .await
        .expect("4lw answer in time")
        .expect("read");
    String::from_utf8(out).expect("utf8")
}

/// `n` distinct free TCP ports on 127.0.0.1 (bound once, then released).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

/// Configurations of an `n`-voter ensemble on 127.0.0.1, each member in its own fresh
/// data directory (member `i` has myid `i + 1`).
pub fn ensemble_configs(n: usize) -> Vec<Config> {
    use rzk_server::config::{PeerRole, QuorumServer};
    let ports = free_ports(3 * n);
    let mut servers = std::collections::BTreeMap::new();
    for i in 0..n {
        let id = i as u64 + 1;
        servers.insert(
            id,
            QuorumServer {
                id,
                host: "127.0.0.1".into(),
                quorum_port: ports[3 * i + 1],
                election_port: ports[3 * i + 2],
                role: PeerRole::Participant,
                client_addr: None,
            },
        );
    }
    (0..n)
        .map(|i| {
            let dir = fresh_dir();
            Config {
                client_port: ports[3 * i],
                data_dir: dir.clone(),
                data_log_dir: dir,
                servers: servers.clone(),
                my_id: Some(i as u64 + 1),
                init_limit: Some(10),
                sync_limit: Some(5),
                ..test_config()
            }
        })
        .collect()
}

/// Starts every member and waits until all of them serve (one leader); returns the
/// servers and the index of the leader.
pub async fn start_ensemble(cfgs: Vec<Config>) -> (Vec<Server>, usize) {
    let mut servers = Vec::new();
    for c in cfgs {
        servers.push(Server::start(c).await.expect("member starts"));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let modes: Vec<&str> = servers
            .iter()
            .map(|s| {
                let q = &s.shared().quorum;
                if q.is_serving() {
                    q.mode_name()
                } else {
                    "not serving"
                }
            })
            .collect();
        let leaders: Vec<usize> = (0..modes.len()).filter(|i| modes[*i] == "leader").collect();
        if leaders.len() == 1 && modes.iter().all(|m| *m == "leader" || *m == "follower") {
            return (servers, leaders[0]);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ensemble did not settle: {modes:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The txn (zxid 1) creating an ephemeral `path` owned by `session`: applied to a tree
/// whose session table lacks `session`, it makes an orphan ephemeral.
pub fn ephemeral_create(session: i64, path: &str) -> rzk_proto::txn::TxnRecord {
    use rzk_proto::txn::{CreateTxn, Txn, TxnHeader, TxnRecord};
    TxnRecord {
        header: TxnHeader {
            client_id: session,
            cxid: 1,
            zxid: 1,
            time: 1,
            txn_type: 1,
        },
        txn: Txn::Create(
            1,
            CreateTxn {
                path: path.into(),
                data: Bytes::new().into(),
                acl: Acl::open_unsafe(),
                ephemeral: true,
                parent_cversion: 1,
            },
        ),
        digest: None,
    }
}
