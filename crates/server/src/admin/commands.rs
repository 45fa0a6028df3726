//! The AdminServer's commands (ZooKeeper's `org.apache.zookeeper.server.admin.Commands`):
//! names and aliases, and the JSON object each answers with — the same fields as
//! ZooKeeper 3.8, plus `command` (the primary name) and `error` (null, or why not).
//!
//! Owns turning [`crate::admin::data`] (and `mntr`'s rows) into JSON. Only `crst`,
//! `srst` and `stmk` change anything, and only counters or the trace mask: never the
//! tree, sessions or watches.

use crate::admin::data::{self, ConnInfo};
use crate::admin::mntr::{mntr_rows, MntrRows, MntrValue};
use crate::config::{keys, Config, PeerRole, QuorumServer};
use crate::node::status::Status;
use rzk_proto::Zxid;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// A command's keyword arguments (the request's query parameters, first value of each).
pub type Args = HashMap<String, String>;

/// One command: its names (the primary first), whether it needs a serving server, and
/// what it answers.
#[derive(Debug, Clone, Copy)]
pub struct Command {
    /// Primary name, then aliases.
    pub names: &'static [&'static str],
    /// ZooKeeper's `serverRequired`: answered with an error while not serving.
    pub server_required: bool,
    run: fn(Status<'_>, &Args) -> Map<String, Value>,
}

impl Command {
    /// The name `/commands` lists and every answer carries.
    pub fn primary(&self) -> &'static str {
        self.names[0]
    }
}

/// The error of a command that needs a serving server, while it does not serve.
pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

const fn cmd(
    names: &'static [&'static str],
    server_required: bool,
    run: fn(Status<'_>, &Args) -> Map<String, Value>,
) -> Command {
    Command {
        names,
        server_required,
        run,
    }
}

/// Every command of ZooKeeper 3.8's AdminServer.
pub const COMMANDS: &[Command] = &[
    cmd(
        &["connection_stat_reset", "crst"],
        true,
        connection_stat_reset,
    ),
    cmd(&["configuration", "conf", "config"], true, configuration),
    cmd(&["connections", "cons"], true, connections),
    cmd(&["hash"], true, hash),
    cmd(&["dirs"], true, dirs),
    cmd(&["dump"], true, dump),
    cmd(&["environment", "env", "envi"], false, environment),
    cmd(&["get_trace_mask", "gtmk"], false, get_trace_mask),
    cmd(
        &["initial_configuration", "icfg"],
        true,
        initial_configuration,
    ),
    cmd(&["is_read_only", "isro"], true, is_read_only),
    cmd(&["last_snapshot", "lsnp"], true, last_snapshot),
    cmd(&["leader", "lead"], true, leader),
    cmd(&["monitor", "mntr"], false, monitor),
    cmd(
        &["observer_connection_stat_reset", "orst"],
        true,
        observer_connection_stat_reset,
    ),
    cmd(&["ruok"], true, ruok),
    cmd(&["set_trace_mask", "stmk"], false, set_trace_mask),
    cmd(&["server_stats", "srvr"], true, server_stats),
    cmd(&["stats", "stat"], true, stats),
    cmd(&["stat_reset", "srst"], true, stat_reset),
    cmd(&["observers", "obsr"], true, observers),
    cmd(&["system_properties", "sysp"], false, system_properties),
    cmd(&["voting_view"], true, voting_view),
    cmd(&["watches", "wchc"], true, watches),
    cmd(&["watches_by_path", "wchp"], true, watches_by_path),
    cmd(&["watch_summary", "wchs"], true, watch_summary),
    cmd(&["zabstate"], false, zabstate),
];

/// The command named `name` (primary name or alias; case matters, as in ZooKeeper).
pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.names.contains(&name))
}

/// Primary names, sorted (the `/commands` listing).
pub fn primary_names() -> Vec<&'static str> {
    let mut v: Vec<_> = COMMANDS.iter().map(Command::primary).collect();
    v.sort_unstable();
    v
}

/// Runs the command `name` (ZooKeeper's `Commands.runCommand`): its fields, then
/// `command` and `error`. An unknown name, or a command that needs a serving server
/// while none serves, answers only `command` (the name as asked) and `error`.
pub fn run(status: Status<'_>, name: &str, args: &Args) -> Map<String, Value> {
    let Some(c) = find(name) else {
        return error_response(name, format!("Unknown command: {name}"));
    };
    if c.server_required && !status.is_serving() {
        return error_response(name, NOT_SERVING.to_owned());
    }
    let mut m = (c.run)(status, args);
    m.insert("command".into(), Value::from(c.primary()));
    if !m.contains_key("error") {
        m.insert("error".into(), Value::Null);
    }
    m
}

fn error_response(name: &str, error: String) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("command".into(), Value::from(name));
    m.insert("error".into(), Value::from(error));
    m
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn connection_stat_reset(status: Status<'_>, _: &Args) -> Map<String, Value> {
    status.reset_connection_stats();
    Map::new()
}

fn stat_reset(status: Status<'_>, _: &Args) -> Map<String, Value> {
    status.reset_server_stats();
    Map::new()
}

/// rzk has no observer masters (observers follow the leader directly): nothing to reset.
fn observer_connection_stat_reset(_: Status<'_>, _: &Args) -> Map<String, Value> {
    Map::new()
}

fn ruok(_: Status<'_>, _: &Args) -> Map<String, Value> {
    Map::new()
}

fn is_read_only(status: Status<'_>, _: &Args) -> Map<String, Value> {
    obj(json!({ "read_only": status.is_read_only() }))
}

/// ZooKeeper's `ZooKeeperServerConf` fields, taken from the rows `conf` prints.
fn configuration(status: Status<'_>, _: &Args) -> Map<String, Value> {
    const FIELDS: &[(&str, &str)] = &[
        ("clientPort", "client_port"),
        ("dataDir", "data_dir"),
        ("dataLogDir", "data_log_dir"),
        ("tickTime", "tick_time"),
        ("maxClientCnxns", "max_client_cnxns"),
        ("minSessionTimeout", "min_session_timeout"),
        ("maxSessionTimeout", "max_session_timeout"),
        ("serverId", "server_id"),
        ("clientPortListenBacklog", "client_port_listen_backlog"),
    ];
    let lines: HashMap<String, String> = status.summary_lines().into_iter().collect();
    let mut m = Map::new();
    for (conf_key, json_key) in FIELDS {
        let Some(v) = lines.get(*conf_key) else {
            continue;
        };
        let v = keys::shown(conf_key, v);
        let value = match v.parse::<i64>() {
            Ok(n) if *conf_key != "dataDir" && *conf_key != "dataLogDir" => Value::from(n),
            _ => Value::from(v),
        };
        m.insert((*json_key).to_owned(), value);
    }
    m
}

/// One connection as `ServerCnxn.getConnectionInfo(brief)` maps it.
fn conn_json(c: &ConnInfo, brief: bool) -> Value {
    let mut m = obj(json!({
        "remote_socket_address": c.addr.to_string(),
        "interest_ops": c.interest_ops,
        "outstanding_requests": c.queued,
        "packets_received": c.received,
        "packets_sent": c.sent,
    }));
    if let (false, Some(d)) = (brief, &c.session) {
        m.extend(obj(json!({
            "session_id": d.id.0,
            "last_operation": d.last_op,
            "established": d.established_ms,
            "session_timeout": d.timeout_ms,
            "last_cxid": d.last_cxid,
            "last_zxid": d.last_zxid.0,
            "last_response_time": d.last_response_ms,
            "last_latency": d.last_latency_ms,
            "min_latency": d.min_latency_ms,
            "avg_latency": d.avg_latency_ms,
            "max_latency": d.max_latency_ms,
        })));
    }
    Value::Object(m)
}

/// (plain, secure) connection lists: connections of the client port (TLS or not under
/// port unification, as ZooKeeper's plain factory) and of the TLS-only port.
fn conn_lists(status: Status<'_>, brief: bool) -> (Value, Value) {
    let (secure, plain): (Vec<ConnInfo>, Vec<ConnInfo>) = data::connections(status)
        .into_iter()
        .partition(|c| c.secure);
    let list = |v: Vec<ConnInfo>| Value::Array(v.iter().map(|c| conn_json(c, brief)).collect());
    (list(plain), list(secure))
}

fn connections(status: Status<'_>, _: &Args) -> Map<String, Value> {
    let (plain, secure) = conn_lists(status, false);
    obj(json!({ "connections": plain, "secure_connections": secure }))
}

fn hash(status: Status<'_>, _: &Args) -> Map<String, Value> {
    // ZooKeeper lists the digests it logged every 128 zxids; rzk keeps the current one.
    let (zxid, digest) = data::digest(status);
    obj(json!({ "digests": [{
        "zxid": zxid.0,
        "digest_version": crate::tree::digest::DIGEST_VERSION,
        "digest": digest,
    }] }))
}

fn dirs(status: Status<'_>, _: &Args) -> Map<String, Value> {
    let (data_size, log_size) = data::dir_sizes(status);
    obj(json!({ "datadir_size": data_size, "logdir_size": log_size }))
}

fn dump(status: Status<'_>, _: &Args) -> Map<String, Value> {
    let d = data::dump(status);
    let expiry: Map<String, Value> = d
        .expiry_buckets
        .into_iter()
        .map(|(at, ids)| {
            let ids: Vec<i64> = ids.into_iter().map(|s| s.0).collect();
            (at.to_string(), Value::from(ids))
        })
        .collect();
    let eph: Map<String, Value> = d
        .ephemerals
        .into_iter()
        .map(|(id, paths)| (id.0.to_string(), Value::from(paths)))
        .collect();
    obj(json!({
        "expiry_time_to_session_ids": expiry,
        "session_id_to_ephemeral_paths": eph,
    }))
}

fn environment(_: Status<'_>, _: &Args) -> Map<String, Value> {
    data::environment()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::from(keys::shown(k, &v))))
        .collect()
}

fn get_trace_mask(_: Status<'_>, _: &Args) -> Map<String, Value> {
    obj(json!({ "tracemask": crate::admin::trace_mask() }))
}

fn set_trace_mask(_: Status<'_>, args: &Args) -> Map<String, Value> {
    let Some(v) = args.get("traceMask") else {
        return obj(json!({ "error": "setTraceMask requires long traceMask argument" }));
    };
    match v.parse::<i64>() {
        Ok(mask) => {
            crate::admin::set_trace_mask(mask);
            obj(json!({ "tracemask": mask }))
        }
        Err(_) => obj(json!({
            "error": format!("setTraceMask requires long traceMask argument, got {v}")
        })),
    }
}

fn initial_configuration(status: Status<'_>, _: &Args) -> Map<String, Value> {
    obj(json!({ "initial_configuration": status.config().admin.initial_config }))
}

/// The newest snapshot file: (zxid, modification time in seconds since the epoch).
fn newest_snapshot(cfg: &Config) -> Option<(Zxid, i64)> {
    let snaps = crate::storage::files::list_snapshots(&cfg.data_dir.join("version-2")).ok()?;
    let (f, _) = snaps.into_iter().max_by_key(|(f, _)| f.zxid)?;
    let secs = std::fs::metadata(&f.path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(-1, |d| d.as_secs() as i64);
    Some((f.zxid, secs))
}

fn last_snapshot(status: Status<'_>, _: &Args) -> Map<String, Value> {
    let (zxid, ts) = newest_snapshot(status.config()).unwrap_or((Zxid(-1), -1));
    obj(json!({ "zxid": format!("{:x}", zxid.0), "timestamp": ts }))
}

/// Whether this server leads, the leader's id and the host of its `server.N` line (ZooKeeper's
/// `getLeaderAddress`); a standalone server has no leader ("server is not initialized").
fn leader(status: Status<'_>, _: &Args) -> Map<String, Value> {
    let cfg = status.config();
    if !cfg.is_distributed() {
        return obj(json!({ "error": "server is not initialized" }));
    }
    let leader = status.leader();
    let ip = leader
        .and_then(|id| status.members().get(&id).map(|s| s.host.clone()))
        .unwrap_or_default();
    obj(json!({
        "is_leader": status.mode() == "leader",
        "leader_id": leader.map_or(-1, |id| id.0),
        "leader_ip": ip,
    }))
}

fn value_of(rows: &MntrRows, key: &str) -> Option<Value> {
    rows.0
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| mntr_json(v))
}

fn mntr_json(v: &MntrValue) -> Value {
    match v {
        MntrValue::Int(n) => Value::from(*n),
        MntrValue::Float(f) => Value::from(*f),
        MntrValue::Str(s) => Value::from(s.as_str()),
    }
}

fn monitor(status: Status<'_>, _: &Args) -> Map<String, Value> {
    mntr_rows(status)
        .0
        .iter()
        .map(|(k, v)| (k.clone(), mntr_json(v)))
        .collect()
}

/// `BufferStats` (last/min/max size) from three `mntr` rows; -1 where not tracked.
fn buffer_stats(rows: &MntrRows, last: &str, min: &str, max: &str) -> Value {
    let get = |k: &str| value_of(rows, k).unwrap_or(Value::from(-1));
    json!({
        "last_buffer_size": get(last),
        "min_buffer_size": get(min),
        "max_buffer_size": get(max),
    })
}

/// `srvr`'s data as ZooKeeper's `server_stats` command maps `ServerStats`.
fn server_stats(status: Status<'_>, _: &Args) -> Map<String, Value> {
    let d = data::server_summary(status);
    let rows = mntr_rows(status);
    let (data_size, log_size) = data::dir_sizes(status);
    let (min, avg, max) = d.latency;
    let client_response = buffer_stats(
        &rows,
        "last_client_response_size",
        "min_client_response_size",
        "max_client_response_size",
    );
    let row = |k: &str| value_of(&rows, k).unwrap_or(Value::from(0));
    let stats = json!({
        "packets_sent": d.packets_sent,
        "packets_received": d.packets_received,
        "fsync_threshold_exceed_count": row("fsync_threshold_exceed_count"),
        "client_response_stats": client_response,
        "data_dir_size": data_size,
        "log_dir_size": log_size,
        "provider_null": false,
        "server_state": d.mode,
        "last_processed_zxid": d.last_zxid.0,
        "outstanding_requests": d.outstanding,
        "avg_latency": avg,
        "max_latency": max,
        "min_latency": min,
        "num_alive_client_connections": d.alive_connections,
        "uptime": d.uptime_ms,
        "auth_failed_count": d.auth_failed,
        "non_mtlsremote_conn_count": row("non_mtls_remote_conn_count"),
        "non_mtlslocal_conn_count": row("non_mtls_local_conn_count"),
    });
    let mut m = obj(json!({
        "version": d.version,
        "read_only": status.is_read_only(),
        "server_stats": stats,
        "client_response": client_response,
    }));
    if d.mode == "leader" {
        m.insert(
            "proposal_stats".into(),
            buffer_stats(
                &rows,
                "last_proposal_size",
                "min_proposal_size",
                "max_proposal_size",
            ),
        );
    }
    m.insert("node_count".into(), Value::from(d.node_count));
    m
}

fn stats(status: Status<'_>, args: &Args) -> Map<String, Value> {
    let mut m = server_stats(status, args);
    let (plain, secure) = conn_lists(status, true);
    m.insert("connections".into(), plain);
    m.insert("secure_connections".into(), secure);
    m
}

/// Synced observers: their number (rzk does not keep per-observer details, so the
/// list stays empty; see docs/COMPATIBILITY.md).
fn observers(status: Status<'_>, _: &Args) -> Map<String, Value> {
    let synced = if status.mode() == "leader" {
        status.learners().2
    } else {
        0
    };
    obj(json!({ "synced_observers": synced, "observers": [] }))
}

/// rzk is not a JVM: what stands for its system properties are this process's
/// platform facts, the `-D` flags of `SERVER_JVMFLAGS` and `JVMFLAGS`, and the configuration keys
/// ZooKeeper would have turned into `zookeeper.*` properties. Secrets are redacted.
fn system_properties(status: Status<'_>, _: &Args) -> Map<String, Value> {
    let mut props: std::collections::BTreeMap<String, String> = Default::default();
    let env: HashMap<&str, String> = data::environment().into_iter().collect();
    for k in [
        "os.name",
        "os.arch",
        "os.version",
        "user.name",
        "user.home",
        "user.dir",
        "java.io.tmpdir",
    ] {
        props.insert(k.to_owned(), env.get(k).cloned().unwrap_or_default());
    }
    props.insert("file.encoding".into(), "UTF-8".into());
    props.insert("file.separator".into(), "/".into());
    props.insert("path.separator".into(), ":".into());
    props.insert("line.separator".into(), "\n".into());
    let cfg = status.config();
    // The flags first: a zoo.cfg key ZooKeeper turns into a system property overrides
    // a `-D` flag of the same name (`jvm_properties` already hold the values in force).
    props.extend(cfg.jvm_properties.iter().cloned());
    // Then what QuorumPeerConfig does with every zoo.cfg key it does not parse itself:
    // System.setProperty("zookeeper." + key) (server.N lines too, unless a dynamic
    // file holds the membership).
    let dynamic = cfg.dynamic_config_file.is_some();
    for (k, v) in cfg.file_properties.iter() {
        if !(is_quorum_peer_config_key(k) || dynamic && k.starts_with("server.")) {
            props.insert(format!("zookeeper.{k}"), v.clone());
        }
    }
    props
        .into_iter()
        .map(|(k, v)| {
            let v = keys::shown(&k, &v).to_owned();
            (k, Value::from(v))
        })
        .collect()
}

/// The zoo.cfg keys ZooKeeper 3.8's `QuorumPeerConfig.parseProperties` takes itself
/// (every other key becomes the system property `zookeeper.<key>`).
fn is_quorum_peer_config_key(k: &str) -> bool {
    const KEYS: &[&str] = &[
        "dataDir",
        "dataLogDir",
        "clientPort",
        "localSessionsEnabled",
        "localSessionsUpgradingEnabled",
        "clientPortAddress",
        "secureClientPort",
        "secureClientPortAddress",
        "observerMasterPort",
        "clientPortListenBacklog",
        "tickTime",
        "maxClientCnxns",
        "minSessionTimeout",
        "maxSessionTimeout",
        "initLimit",
        "syncLimit",
        "connectToLearnerMasterLimit",
        "electionAlg",
        "quorumListenOnAllIPs",
        "peerType",
        "syncEnabled",
        "dynamicConfigFile",
        "autopurge.snapRetainCount",
        "autopurge.purgeInterval",
        "standaloneEnabled",
        "reconfigEnabled",
        "sslQuorum",
        "portUnification",
        "sslQuorumReloadCertFiles",
        "quorum.auth.enableSasl",
        "quorum.auth.serverRequireSasl",
        "quorum.auth.learnerRequireSasl",
        "quorum.auth.learner.saslLoginContext",
        "quorum.auth.server.saslLoginContext",
        "quorum.auth.kerberos.servicePrincipal",
        "quorum.cnxn.threads.size",
        "jvm.pause.monitor",
        "jvm.pause.info-threshold.ms",
        "jvm.pause.warn-threshold.ms",
        "jvm.pause.sleep.time.ms",
        "metricsProvider.className",
        "multiAddress.enabled",
        "multiAddress.reachabilityCheckTimeoutMs",
        "multiAddress.reachabilityCheckEnabled",
    ];
    KEYS.contains(&k)
        || k.starts_with("metricsProvider.")
        || k.starts_with("group.")
        || k.starts_with("weight.")
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// This server's client address as ZooKeeper prints it (`host:port`).
fn my_client_address(cfg: &Config) -> String {
    let a = cfg.client_addr();
    host_port(&a.ip().to_string(), a.port())
}

/// ZooKeeper's `QuorumPeer.getVotingView()`: the participants in force (a reconfig
/// changes them; observers are not in it).
fn voting_view(status: Status<'_>, _: &Args) -> Map<String, Value> {
    let cfg = status.config();
    let mut view = Map::new();
    if cfg.is_distributed() {
        let members = status.members();
        let voters = members
            .iter()
            .filter(|(_, s)| s.role == PeerRole::Participant);
        for (id, s) in voters {
            let client = if Some(*id) == cfg.my_id {
                my_client_address(cfg)
            } else {
                s.client_addr
                    .as_ref()
                    .map_or_else(String::new, |(h, p)| host_port(h, *p))
            };
            view.insert(
                id.to_string(),
                json!({
                    "server_addresses": [host_port(&s.host, s.quorum_port)],
                    "election_addresses": [host_port(&s.host, s.election_port)],
                    "client_address": client,
                    "learner_type": match s.role {
                        PeerRole::Participant => "participant",
                        PeerRole::Observer => "observer",
                    },
                }),
            );
        }
    }
    obj(json!({ "current_config": view }))
}

fn watches(status: Status<'_>, _: &Args) -> Map<String, Value> {
    let m: Map<String, Value> = data::watches_by_session(status)
        .into_iter()
        .map(|(sid, paths)| (sid.0.to_string(), Value::from(paths)))
        .collect();
    obj(json!({ "session_id_to_watched_paths": m }))
}

fn watches_by_path(status: Status<'_>, _: &Args) -> Map<String, Value> {
    let m: Map<String, Value> = data::watchers_by_path(status)
        .into_iter()
        .map(|(path, sids)| {
            let ids: Vec<i64> = sids.into_iter().map(|s| s.0).collect();
            (path, Value::from(ids))
        })
        .collect();
    obj(json!({ "path_to_session_ids": m }))
}

fn watch_summary(status: Status<'_>, _: &Args) -> Map<String, Value> {
    let (conns, paths, total) = status.watch_summary();
    obj(json!({
        "num_connections": conns,
        "num_paths": paths,
        "num_total_watches": total,
    }))
}

/// A quorum address as Jackson serializes ZooKeeper's `MultipleAddresses` (one address).
fn multi_address(host: &str, port: u16) -> Value {
    let hp = host_port(host, port);
    json!({
        "empty": false,
        "all_addresses": [hp],
        "all_reachable_addresses": [hp],
        "one": hp,
        "reachable_address": hp,
        "wildcard_addresses": [host_port("0.0.0.0", port)],
        "all_ports": [port],
        "all_host_strings": [host],
        "all_reachable_addresses_or_all": [hp],
        "reachable_or_one": hp,
    })
}

fn zabstate(status: Status<'_>, _: &Args) -> Map<String, Value> {
    let cfg = status.config();
    let me: Option<&QuorumServer> = cfg.my_id.and_then(|id| cfg.servers.get(&id));
    // ZooKeeper 3.8.0 answers in full only with a quorum server running (a serving
    // leader, follower or observer); looking, synchronising or read-only, it has none.
    let serving = status.is_serving() && !status.is_read_only();
    let (true, true, Some(me)) = (cfg.is_distributed(), serving, me) else {
        return obj(json!({ "voting": false, "zabstate": "" }));
    };
    let zxid = data::server_summary(status).last_zxid.0;
    let state = "broadcast";
    obj(json!({
        "myid": cfg.server_id().0,
        "is_leader": status.mode() == "leader",
        "quorum_address": multi_address(&me.host, me.quorum_port),
        "election_address": multi_address(&me.host, me.election_port),
        "client_address": my_client_address(cfg),
        "voting": me.role == PeerRole::Participant,
        "last_zxid": format!("0x{zxid:x}"),
        "zab_epoch": zxid >> 32,
        "zab_counter": zxid & 0xffff_ffff,
        "zabstate": state,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_listed_sorted() {
        let mut all: Vec<&str> = COMMANDS
            .iter()
            .flat_map(|c| c.names.iter().copied())
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "a name is registered twice");
        let p = primary_names();
        assert!(p.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(p.len(), 26);
        assert_eq!(find("mntr").map(Command::primary), Some("monitor"));
        assert_eq!(find("config").map(Command::primary), Some("configuration"));
        assert!(find("MNTR").is_none());
    }

    /// `voting_view` and mntr's `quorum_size` show the participants in force: not the
    /// observers, and after a reconfig its members, not the start-up ones (a break-it
    /// review, session 50, saw the start-up members, observers included, after a
    /// reconfig had removed one).
    #[test]
    fn voting_view_and_quorum_size_follow_the_membership_in_force() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("myid"), "1").unwrap();
        let cfgp = dir.path().join("zoo.cfg");
        let servers = "server.1=127.0.0.1:2001:3001:participant;127.0.0.1:4001\n\
                       server.2=127.0.0.1:2002:3002:participant;127.0.0.1:4002\n\
                       server.3=127.0.0.1:2003:3003:participant;127.0.0.1:4003\n\
                       server.4=127.0.0.1:2004:3004:observer;127.0.0.1:4004\n";
        std::fs::write(
            &cfgp,
            format!(
                "dataDir={}\ninitLimit=5\nsyncLimit=2\n{servers}",
                dir.path().display()
            ),
        )
        .unwrap();
        let config = crate::config::Config::load(&cfgp).unwrap();
        let (jobs, _) = tokio::sync::mpsc::channel(1);
        let (shared, mut writer) =
            crate::node::shared::Shared::new(config, crate::tree::DataTree::new(), jobs);
        let view = |shared| {
            let v = voting_view(Status::of(shared), &Args::new());
            let ids: Vec<String> = v["current_config"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            (ids, crate::admin::mntr::quorum_size(Status::of(shared)))
        };
        assert_eq!(view(&shared), (vec!["1".into(), "2".into(), "3".into()], 3));
        // A reconfig removed server 2: /zookeeper/config holds the membership in force.
        let in_force = servers.replace(
            "server.2=127.0.0.1:2002:3002:participant;127.0.0.1:4002\n",
            "",
        );
        crate::storage::open::write_config_node(
            &mut writer.write(),
            &format!("{in_force}version=100000002"),
            rzk_proto::Zxid(0x1_0000_0002),
        );
        assert_eq!(view(&shared), (vec!["1".into(), "3".into()], 2));
    }

    #[test]
    fn addresses_as_zookeeper_prints_them() {
        assert_eq!(host_port("127.0.0.1", 2888), "127.0.0.1:2888");
        assert_eq!(host_port("::1", 2888), "[::1]:2888");
        let m = multi_address("10.0.0.1", 3888);
        assert_eq!(m["wildcard_addresses"][0], "0.0.0.0:3888");
        assert_eq!(m["all_ports"][0], 3888);
    }
}
