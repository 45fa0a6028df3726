//! Server configuration: ZooKeeper's `zoo.cfg` (Java properties syntax) and `dataDir/myid`.
//!
//! Owns parsing and validation of every key rzk understands, with ZooKeeper's defaults.
//! Every key is classified by [`keys`]: implemented, accepted without effect, or refused
//! (security-relevant and not implemented: start-up stops naming the key, fail closed).
//! Unknown keys are kept with a warning (and a did-you-mean). An invalid value stops
//! start-up with an error naming the key. What is worth telling the operator is
//! collected in [`Config::notes`] and logged once by [`Config::log_notes`]. Values of
//! keys named like secrets never appear in a note, an error or `Debug` output. This
//! module must never open sockets or touch the data directory beyond reading `myid`
//! (and the JAAS file, [`Config::load_jaas`]).

pub mod keys;

use crate::auth::settings::{AuthConfigError, AuthKeys, AuthSettings, JaasOutcome};
use keys::KeyClass;
use rzk_proto::{ServerId, Zxid};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};

/// Default data directory of `rzk server` without a config file.
pub const DEFAULT_DATA_DIR: &str = "./rzk-data";
/// Default client port.
pub const DEFAULT_CLIENT_PORT: u16 = 2181;
/// ZooKeeper's default tickTime when the key is absent.
pub const DEFAULT_TICK_TIME_MS: u32 = 3000;
/// ZooKeeper's default per-IP connection limit.
pub const DEFAULT_MAX_CLIENT_CNXNS: i32 = 60;
/// `jute.maxbuffer` default (0xfffff).
pub const DEFAULT_JUTE_MAX_BUFFER: usize = rzk_proto::jute::DEFAULT_MAX_BUFFER;
/// `znode.container.checkIntervalMs` default.
pub const DEFAULT_CONTAINER_CHECK_INTERVAL_MS: u64 = 60_000;
/// `znode.container.maxPerMinute` default.
pub const DEFAULT_CONTAINER_MAX_PER_MINUTE: u32 = 10_000;
/// `snapCount` default.
pub const DEFAULT_SNAP_COUNT: u64 = 100_000;
/// Largest `preAllocSize` taken, KiB: 16 TiB, the most an ext4 file can grow to (a larger
/// padding fails the first log write).
const MAX_PRE_ALLOC_SIZE_KB: u64 = 1 << 34;

/// A session timeout bound that is `ticks` ticks (ZooKeeper's default min 2, max 20), at
/// most `i32::MAX` ms (ZooKeeper's int product would wrap negative).
fn session_default(tick_ms: u32, ticks: u32) -> i32 {
    i32::try_from(tick_ms.saturating_mul(ticks)).unwrap_or(i32::MAX)
}

/// `preAllocSize` default, KiB.
pub const DEFAULT_PRE_ALLOC_SIZE_KB: u64 = 65_536;

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key's value is invalid (`value` is redacted for secrets).
    #[error("{key}={value}: {reason}")]
    Invalid {
        /// The key as written.
        key: String,
        /// The value as written, or `********` for a secret.
        value: String,
        /// Why.
        reason: String,
    },
    /// Keys that are inconsistent with each other.
    #[error("{0}")]
    Inconsistent(String),
    /// Security-relevant keys rzk does not implement (fail closed).
    #[error("{}", refusal_text(.0))]
    Refused(Vec<Refusal>),
    /// The authentication settings are unusable.
    #[error(transparent)]
    Auth(#[from] AuthConfigError),
}

/// One refused key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The key as written.
    pub key: String,
    /// Why rzk will not start with it.
    pub reason: String,
}

fn refusal_text(r: &[Refusal]) -> String {
    let mut s = String::from("refusing to start: ");
    if r.len() > 1 {
        s.push_str("these settings ask for protection rzk does not implement:");
        for x in r {
            s.push_str(&format!("\n  {}: {}", x.key, x.reason));
        }
    } else if let Some(x) = r.first() {
        s.push_str(&format!("{}: {}", x.key, x.reason));
    }
    s
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        value: keys::shown(key, value).to_owned(),
        reason: reason.into(),
    }
}

/// How loud a [`ConfigNote`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteLevel {
    /// Informational (a key accepted without effect, the SASL server's users).
    Info,
    /// Worth fixing (an unknown key, a value ZooKeeper would correct).
    Warn,
}

/// Something start-up should tell the operator about the configuration, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigNote {
    /// Info or warning.
    pub level: NoteLevel,
    /// The key concerned.
    pub key: String,
    /// The text (never a secret's value).
    pub message: String,
}

/// Keys rzk keeps as properties for the modules that read them (storage settings, TLS),
/// and keys it does not use. `Debug` redacts the values of secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Properties(BTreeMap<String, String>);

impl Deref for Properties {
    type Target = BTreeMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Properties {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| (k, keys::shown(k, v))))
            .finish()
    }
}

/// Properties in order (JVM flags), as (name, value); `Debug` redacts secrets' values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PropertyList(pub Vec<(String, String)>);

impl Deref for PropertyList {
    type Target = Vec<(String, String)>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl fmt::Debug for PropertyList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, v)| (k, keys::shown(k, v))))
            .finish()
    }
}

/// The environment variables whose `-Dname=value` flags a ZooKeeper server's JVM gets:
/// zkServer.sh runs `java $SERVER_JVMFLAGS $JVMFLAGS ...` (so on a duplicate the
/// `JVMFLAGS` one, later on the command line, wins). docs/CONFIG.md §1.
pub const SERVER_JVM_FLAG_ENVS: [&str; 2] = ["SERVER_JVMFLAGS", "JVMFLAGS"];

/// The server's JVM flags from the environment ([`SERVER_JVM_FLAG_ENVS`], in order),
/// as one string for [`jvm_flag_properties`].
pub fn server_jvm_flags_from_env() -> String {
    SERVER_JVM_FLAG_ENVS
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The system properties of JVM flags (`-Dname=value` in `SERVER_JVMFLAGS` and
/// `JVMFLAGS`, as ZooKeeper's zkServer.sh passes them) that a ZooKeeper server reads: `zookeeper.*`,
/// `java.security.auth.login.config`, `jute.maxbuffer`, `znode.container.*`,
/// `readonlymode.enabled`, the JVM's default trust store
/// ([`JVM_TRUST_STORE_PROPERTIES`]) and Kerberos settings ([`JVM_KERBEROS_PROPERTIES`]).
/// Other flags (heap size, logging, ...) are dropped.
pub fn jvm_flag_properties(flags: &str) -> Vec<(String, String)> {
    flags
        .split_whitespace()
        .filter_map(|t| t.strip_prefix("-D"))
        .map(|t| match t.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (t.to_owned(), String::new()),
        })
        .filter(|(k, _)| {
            k.starts_with("zookeeper.")
                || k.starts_with("znode.container.")
                || matches!(
                    k.as_str(),
                    "java.security.auth.login.config" | "jute.maxbuffer" | "readonlymode.enabled"
                )
                || is_jvm_own_property(k)
        })
        .collect()
}

/// The JVM's own properties for its default trust store (JSSE's `TrustStoreManager`):
/// the store, its password and its type. ZooKeeper's quorum TLS falls back to that
/// default trust store when `ssl.quorum.trustStore.location` is unset
/// (`X509Util` passes no trust manager to `SSLContext.init`), so rzk reads them from
/// the JVM flags (`tls::TlsSettings::from_config`). Only a `-D` flag sets them: a zoo.cfg
/// line of the same name becomes `zookeeper.javax.net.ssl...` in ZooKeeper, which the
/// JVM does not read.
pub const JVM_TRUST_STORE_PROPERTIES: [&str; 3] = [
    "javax.net.ssl.trustStore",
    "javax.net.ssl.trustStorePassword",
    "javax.net.ssl.trustStoreType",
];

/// The JVM's own Kerberos properties a ZooKeeper server's Kerberos login reads: its
/// krb5.conf and default realm (rzk: the default realm of Kerberos names, and the
/// krb5.conf its Kerberos library reads, `KRB5_CONFIG`).
pub const JVM_KERBEROS_PROPERTIES: [&str; 2] =
    ["java.security.krb5.conf", "java.security.krb5.realm"];

/// Whether `key` is one of the JVM's own properties rzk reads
/// ([`JVM_TRUST_STORE_PROPERTIES`], [`JVM_KERBEROS_PROPERTIES`]): set by a `-D` flag
/// only, never by zoo.cfg.
fn is_jvm_own_property(key: &str) -> bool {
    JVM_TRUST_STORE_PROPERTIES.contains(&key) || JVM_KERBEROS_PROPERTIES.contains(&key)
}

/// Role of a `server.N` member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    Participant,
    Observer,
}

/// One `server.N=host:quorumPort:electionPort[:role][;[clientHost:]clientPort]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumServer {
    pub id: ServerId,
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    pub role: PeerRole,
    pub client_addr: Option<(String, u16)>,
}

/// Which four-letter words may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FourLetterWhitelist {
    All,
    Only(BTreeSet<String>),
}

impl FourLetterWhitelist {
    pub fn allows(&self, cmd: &str) -> bool {
        match self {
            FourLetterWhitelist::All => true,
            FourLetterWhitelist::Only(s) => s.contains(cmd),
        }
    }

    /// ZooKeeper's parsing: comma separated, `*` = all, `srvr` always added.
    pub fn parse(v: &str) -> FourLetterWhitelist {
        let mut set = BTreeSet::new();
        for w in v.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            if w == "*" {
                return FourLetterWhitelist::All;
            }
            set.insert(w.to_owned());
        }
        set.insert("srvr".to_owned());
        FourLetterWhitelist::Only(set)
    }
}

impl Default for FourLetterWhitelist {
    fn default() -> Self {
        FourLetterWhitelist::Only(BTreeSet::from(["srvr".to_owned()]))
    }
}

/// The whole server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the config came from (`None` = built-in defaults).
    pub source: Option<PathBuf>,
    pub client_port: u16,
    /// `clientPort` was set (or no file was read). With only `secureClientPort` set,
    /// ZooKeeper opens no plaintext port, and neither does rzk (`tls::ClientTlsPlan`).
    pub client_port_given: bool,
    /// This server's `server.N` line has a client part (`;[host:]port`), which gave
    /// [`Config::client_port`] (ZooKeeper's `QuorumPeerConfig.setupClientPort`).
    pub client_port_in_line: bool,
    pub client_port_address: Option<IpAddr>,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    pub tick_time_ms: u32,
    pub init_limit: Option<u32>,
    pub sync_limit: Option<u32>,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// Connections per client IP; 0 or less = unlimited (ZooKeeper's int, shown as given).
    pub max_client_cnxns: i32,
    pub client_port_listen_backlog: i32,
    /// Connections per client port in all (`maxCnxns`); 0 or less = unlimited, the
    /// default (ZooKeeper's `ServerCnxnFactory.maxCnxns`).
    pub max_cnxns: i32,
    pub jute_max_buffer: usize,
    /// Bytes of client requests the write pipeline holds at once
    /// (`node::jobs::pipeline_budget`); `None`: `node::jobs::PIPELINE_BYTES`. Not a
    /// zoo.cfg key: tests set it to reach the bound with small loads.
    pub pipeline_bytes: Option<usize>,
    pub four_letter_whitelist: FourLetterWhitelist,
    /// `super:<base64 sha1>` digest id that grants super.
    pub super_digest: Option<String>,
    /// `authProvider.N` entries (class names in ZooKeeper; [`Config::auth`] has what
    /// they register).
    pub auth_providers: BTreeMap<String, String>,
    pub extended_types_enabled: bool,
    pub force_sync: bool,
    pub snap_count: u64,
    pub pre_alloc_size_kb: u64,
    pub autopurge_snap_retain_count: u32,
    pub autopurge_purge_interval_hours: u32,
    pub standalone_enabled: bool,
    /// `quorumListenOnAllIPs`: the election, quorum and observer-master ports listen on
    /// every address (the wildcard of the member's own address family) instead of the
    /// member's own `server.N` address.
    pub quorum_listen_on_all_ips: bool,
    pub reconfig_enabled: bool,
    /// `readonlymode.enabled` (ZooKeeper: the JVM system property, `-D` only): a member
    /// cut off from its quorum serves read-only clients (`crate::readonly`). As Java's
    /// `Boolean.getBoolean`, only `true` (any case) turns it on.
    pub read_only_mode_enabled: bool,
    /// `localSessionsEnabled`: sessions are created local to the server a client
    /// connects to, without a createSession txn (`crate::session::local`).
    pub local_sessions_enabled: bool,
    /// `localSessionsUpgradingEnabled`: a local session's first ephemeral create upgrades
    /// it to a global session (a createSession txn) instead of failing with
    /// EPHEMERALONLOCALSESSION.
    pub local_sessions_upgrading_enabled: bool,
    pub container_check_interval_ms: u64,
    pub container_max_per_minute: u32,
    /// `znode.container.maxNeverUsedIntervalMs`: a container that never had a child is
    /// deleted once unmodified for longer than this (ms); 0 (the default) never.
    pub container_max_never_used_ms: i64,
    /// `zookeeper.nio.sessionlessCnxnTimeout` (ms, default 10,000): how long a new
    /// connection may stay silent before its first request (ConnectRequest or
    /// four-letter word) is complete; each byte received starts the time again.
    pub sessionless_cnxn_timeout_ms: u32,
    /// `jvm.pause.*`: ZooKeeper's JvmPauseMonitor settings, for rzk's pause monitor
    /// (`crate::metrics::pause`).
    pub pause_monitor: PauseMonitorSettings,
    pub servers: BTreeMap<ServerId, QuorumServer>,
    /// Hierarchical quorums of the membership (`group.G=` / `weight.S=` lines next to the
    /// `server.N` lines or in the dynamic file); `None` for plain majorities.
    pub groups: Option<crate::reconfig::Groups>,
    /// Version of the membership, ZooKeeper's `QuorumVerifier.getVersion()`: the hex
    /// `version=` key next to the `server.N` lines in zoo.cfg, or the hex suffix of the
    /// dynamic file's name (`zoo.cfg.dynamic.100000000`); 0 without either. The zxid of
    /// the reconfig txn that made the membership, never negative (both readers refuse a
    /// version above `i64::MAX`).
    pub config_version: Zxid,
    /// `dynamicConfigFile`: the file the `server.N` lines were read from
    /// ([`Config::load_dynamic`]); `None` when they are in zoo.cfg.
    pub dynamic_config_file: Option<PathBuf>,
    /// Contents of `dataDir/myid`, if present.
    pub my_id: Option<ServerId>,
    /// Keys not parsed into the fields above (ZooKeeper would turn them into system
    /// properties): those storage/settings.rs and tls/ read, and unknown ones.
    pub unknown: Properties,
    /// The system properties given as JVM flags ([`jvm_flag_properties`]), each with
    /// the value in force: zoo.cfg's where it sets the same key (with or without the
    /// `zookeeper.` prefix), as in ZooKeeper, where zoo.cfg keys become system
    /// properties over the `-D` ones. The AdminServer's `system_properties` shows them.
    pub jvm_properties: PropertyList,
    /// zoo.cfg's own keys and values (the last of a repeated key, as Java's
    /// `Properties`; no JVM flag): the AdminServer's `system_properties` shows those
    /// ZooKeeper turns into `zookeeper.<key>`. Debug output hides secrets.
    pub file_properties: Properties,
    /// Authentication: providers, enforce.auth, super users, the SASL server.
    pub auth: AuthSettings,
    /// What start-up should tell the operator ([`Config::log_notes`]).
    pub notes: Vec<ConfigNote>,
    /// The AdminServer (`admin.*` keys; none without a configuration file).
    pub admin: crate::admin::settings::AdminSettings,
}

impl Default for Config {
    /// `rzk server` without a config file: 127.0.0.1:2181, dataDir `./rzk-data`.
    fn default() -> Self {
        let tick = DEFAULT_TICK_TIME_MS;
        Config {
            source: None,
            client_port: DEFAULT_CLIENT_PORT,
            client_port_given: true,
            client_port_in_line: false,
            client_port_address: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            data_log_dir: PathBuf::from(DEFAULT_DATA_DIR),
            tick_time_ms: tick,
            init_limit: None,
            sync_limit: None,
            min_session_timeout_ms: 2 * tick as i32,
            max_session_timeout_ms: 20 * tick as i32,
            max_client_cnxns: DEFAULT_MAX_CLIENT_CNXNS,
            client_port_listen_backlog: -1,
            max_cnxns: 0,
            jute_max_buffer: DEFAULT_JUTE_MAX_BUFFER,
            pipeline_bytes: None,
            four_letter_whitelist: FourLetterWhitelist::default(),
            super_digest: None,
            auth_providers: BTreeMap::new(),
            extended_types_enabled: false,
            force_sync: true,
            snap_count: DEFAULT_SNAP_COUNT,
            pre_alloc_size_kb: DEFAULT_PRE_ALLOC_SIZE_KB,
            autopurge_snap_retain_count: 3,
            autopurge_purge_interval_hours: 0,
            standalone_enabled: true,
            quorum_listen_on_all_ips: false,
            reconfig_enabled: false,
            read_only_mode_enabled: false,
            local_sessions_enabled: false,
            local_sessions_upgrading_enabled: false,
            container_check_interval_ms: DEFAULT_CONTAINER_CHECK_INTERVAL_MS,
            container_max_per_minute: DEFAULT_CONTAINER_MAX_PER_MINUTE,
            container_max_never_used_ms: 0,
            pause_monitor: PauseMonitorSettings::default(),
            sessionless_cnxn_timeout_ms: 10_000,
            servers: BTreeMap::new(),
            groups: None,
            config_version: Zxid::ZERO,
            dynamic_config_file: None,
            my_id: None,
            unknown: Properties::default(),
            jvm_properties: PropertyList::default(),
            file_properties: Properties::default(),
            auth: AuthSettings::default(),
            notes: Vec::new(),
            admin: Default::default(),
        }
    }
}

/// The address a `server.N` line's client part (`;[host:]port`, host as parsed into
/// [`QuorumServer::client_addr`]: without brackets, `0.0.0.0` for every address) listens
/// on: an IP as is, a host name resolved (the wildcard address when it does not resolve).
/// ZooKeeper's `QuorumServer.clientAddr`.
pub fn client_addr_of_line(host: &str, port: u16) -> SocketAddr {
    use std::net::ToSocketAddrs;
    let ip = host.parse::<IpAddr>().ok().or_else(|| {
        (host, port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .map(|a| a.ip())
    });
    SocketAddr::new(ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port)
}

impl Config {
    /// Whether this server has a plaintext client port: `clientPort` (not 0) or a client
    /// part in its own `server.N` line. Without either, ZooKeeper 3.8 logs `clientPort is
    /// not set` and opens no plaintext listener (with no `secureClientPort` either, it
    /// serves no clients: a voter only); so does rzk.
    pub fn has_plain_client_port(&self) -> bool {
        self.client_port_given || self.client_port_in_line
    }

    /// The address the client port listens on (meaningful when
    /// [`Config::has_plain_client_port`]).
    pub fn client_addr(&self) -> SocketAddr {
        let ip = self
            .client_port_address
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        SocketAddr::new(ip, self.client_port)
    }

    /// Whether this is a quorum (distributed) configuration, per ZooKeeper's rule.
    pub fn is_distributed(&self) -> bool {
        let voters = self
            .servers
            .values()
            .filter(|s| s.role == PeerRole::Participant)
            .count();
        !self.servers.is_empty() && (!self.standalone_enabled || voters >= 2)
    }

    /// Server id used in session ids: myid when distributed, else 1... ZooKeeper
    /// standalone uses 1 unless a myid is configured.
    pub fn server_id(&self) -> ServerId {
        if self.is_distributed() {
            self.my_id.unwrap_or(ServerId(1))
        } else {
            ServerId(1)
        }
    }

    /// Reads and validates a zoo.cfg file, `dataDir/myid` if it exists, and the JAAS
    /// file if one is configured.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, &[])
    }

    /// The value in force of the system property `key` given as a JVM flag
    /// ([`Config::jvm_properties`]; of repeated flags the last, as the JVM takes it).
    pub fn jvm_property(&self, key: &str) -> Option<&str> {
        self.jvm_properties
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// [`Config::load`] with system properties (e.g. [`jvm_flag_properties`]) that
    /// zoo.cfg's own keys override, as ZooKeeper's zoo.cfg overrides `-D` flags.
    pub fn load_with(path: &Path, system: &[(String, String)]) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut cfg = Config::from_properties_with(&text, system)?;
        cfg.source = Some(path.to_owned());
        cfg.load_dynamic()?;
        cfg.load_my_id()?;
        cfg.load_jaas()?;
        Ok(cfg)
    }

    /// The built-in defaults of `rzk server` without a config file (127.0.0.1:2181,
    /// dataDir `./rzk-data`), with system properties applied, JAAS file loaded.
    pub fn defaults_with(system: &[(String, String)]) -> Result<Config, ConfigError> {
        let text = format!(
            "dataDir={DEFAULT_DATA_DIR}\nclientPort={DEFAULT_CLIENT_PORT}\nclientPortAddress=127.0.0.1\n"
        );
        let mut cfg = Config::from_properties_with(&text, system)?;
        // No AdminServer (0.0.0.0:8080 otherwise) unless a JVM flag asks for it: a
        // server started without a configuration file is a local one (docs/CONFIG.md §10).
        if cfg.jvm_property("zookeeper.admin.enableServer").is_none() {
            cfg.admin.enabled = false;
        }
        cfg.load_jaas()?;
        Ok(cfg)
    }

    /// Reads the JAAS file named by `java.security.auth.login.config` and sets up the
    /// SASL server from its server section ([`AuthSettings::load_jaas`]).
    pub fn load_jaas(&mut self) -> Result<(), ConfigError> {
        let key = "java.security.auth.login.config";
        match self.auth.load_jaas()? {
            JaasOutcome::NoFile => {}
            JaasOutcome::NoServerSection { section } => {
                // As ZooKeeper: no server section, no SASL. Loud when sasl ACLs were
                // asked for, since every SASL login will then fail.
                let level = if self.auth.providers.sasl {
                    NoteLevel::Warn
                } else {
                    NoteLevel::Info
                };
                self.note(
                    level,
                    key,
                    format!("the JAAS file has no '{section}' section: SASL authentication is off"),
                )
            }
            outcome @ (JaasOutcome::Users(_) | JaasOutcome::Kerberos(_)) => {
                let what = match outcome {
                    JaasOutcome::Kerberos(principal) => {
                        let names = self
                            .auth
                            .kerberos
                            .as_ref()
                            .map(|k| k.names.clone())
                            .unwrap_or_default();
                        let kept = |removed: bool| if removed { "removed" } else { "kept" };
                        format!(
                            "SASL GSSAPI (Kerberos) authentication on, accepting as {principal}; sasl ids: default realm {:?}, host {}, realm {}",
                            names.default_realm,
                            kept(names.remove_host),
                            kept(names.remove_realm)
                        )
                    }
                    _ => format!(
                        "SASL DIGEST-MD5 authentication on, {} user(s) in the JAAS server section",
                        self.auth.sasl.as_ref().map_or(0, |u| u.len())
                    ),
                };
                self.note(NoteLevel::Info, key, what);
                if !self.auth.providers.sasl {
                    self.note(
                        NoteLevel::Warn,
                        key,
                        format!(
                            "SASL logins succeed but no authProvider.N={} is set: sasl ACLs are refused and never match",
                            keys::SASL_PROVIDER
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    fn note(&mut self, level: NoteLevel, key: &str, message: String) {
        self.notes.push(ConfigNote {
            level,
            key: key.to_owned(),
            message,
        });
    }

    /// Logs the notes (each once): warnings at WARN, the rest at INFO.
    pub fn log_notes(&self) {
        for n in &self.notes {
            match n.level {
                NoteLevel::Warn => tracing::warn!(key = %n.key, "{}", n.message),
                NoteLevel::Info => tracing::info!(key = %n.key, "{}", n.message),
            }
        }
    }

    /// Reads `dataDir/myid` (required when distributed).
    pub fn load_my_id(&mut self) -> Result<(), ConfigError> {
        let p = self.data_dir.join("myid");
        match std::fs::read_to_string(&p) {
            Ok(s) => {
                let line = s.lines().next().unwrap_or("");
                let id = line
                    .parse::<u64>()
                    .ok()
                    .and_then(|n| ServerId::try_from(n).ok())
                    .ok_or_else(|| {
                        invalid("myid", line, format!("{} is not a number", p.display()))
                    })?;
                self.my_id = Some(id);
            }
            // A dataDir that is a file: ZooKeeper reads myid only in an ensemble (and
            // then says it is missing); standalone, storage refuses the dataDir itself.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                if self.is_distributed() {
                    return Err(ConfigError::Inconsistent(format!(
                        "{} file is missing",
                        p.display()
                    )));
                }
            }
            Err(source) => return Err(ConfigError::Io { path: p, source }),
        }
        if let Some(id) = self.my_id {
            if self.is_distributed() {
                if !self.servers.contains_key(&id) {
                    return Err(ConfigError::Inconsistent(format!(
                        "myid {id} has no server.{id} line"
                    )));
                }
                let max = if self.extended_types_enabled {
                    254
                } else {
                    255
                };
                if id.0 > max {
                    return Err(invalid(
                        "myid",
                        &id.to_string(),
                        format!("must be <= {max}"),
                    ));
                }
                self.client_addr_from_server_line(id)?;
            }
        }
        Ok(())
    }

    /// The client address of this server's `server.N` line (`;[host:]port`), as
    /// ZooKeeper's `QuorumPeerConfig.setupClientPort` takes it: without `clientPort` it is
    /// how the member listens (after a reconfig's zoo.cfg rewrite removed
    /// `clientPort`/`clientPortAddress`); with `clientPort` it must agree with it (the same
    /// port on the wildcard address, else the same address) and then wins, so
    /// `clientPort=2181` with `;127.0.0.1:2181` listens on 127.0.0.1 only. A host that is
    /// no IP address is resolved; unresolvable, the wildcard address.
    fn client_addr_from_server_line(&mut self, id: ServerId) -> Result<(), ConfigError> {
        let Some((host, port)) = self.servers.get(&id).and_then(|s| s.client_addr.clone()) else {
            return Ok(());
        };
        let line = client_addr_of_line(&host, port);
        if self.client_port_given {
            let given = self.client_addr();
            let differs = if given.ip().is_unspecified() {
                given.port() != line.port()
            } else {
                given != line
            };
            if differs {
                return Err(ConfigError::Inconsistent(format!(
                    "client address for this server (id = {id}) in clientPort/clientPortAddress \
                     is {given}, different from the one in its server.{id} line: {line}"
                )));
            }
        }
        self.client_port = port;
        self.client_port_address = Some(line.ip()).filter(|ip| !ip.is_unspecified());
        self.client_port_in_line = true;
        Ok(())
    }

    /// Parses zoo.cfg text (no file access; the JAAS file is read by
    /// [`Config::load_jaas`]).
    pub fn from_properties(text: &str) -> Result<Config, ConfigError> {
        Config::from_properties_with(text, &[])
    }

    /// [`Config::from_properties`] with system properties applied first (zoo.cfg wins).
    pub fn from_properties_with(
        text: &str,
        system: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let file = parse_properties(text);
        let bare = |k: &str| k.strip_prefix("zookeeper.").unwrap_or(k).to_owned();
        // Precedence, lowest first (each later setting of a key replaces an earlier one):
        // zoo.cfg keys spelt as system properties (`zookeeper.X`: rzk reads them as X;
        // ZooKeeper stores them as the property `zookeeper.zookeeper.X`, which nothing
        // reads), then the JVM flags' `-D` properties, then zoo.cfg's own keys (ZooKeeper
        // sets `zookeeper.X` from zoo.cfg's X over a `-D`). So where ZooKeeper has a
        // value, rzk takes the same one; a `zookeeper.X` line only fills a gap.
        let (file_sysprops, file_own): (Vec<_>, Vec<_>) = file
            .iter()
            .cloned()
            .partition(|(k, _)| k.starts_with("zookeeper."));
        // A security setting spelt that way is refused below: rzk would grant or enforce
        // what ZooKeeper does not.
        let (refused_sysprops, file_sysprops): (Vec<_>, Vec<_>) = file_sysprops
            .into_iter()
            .partition(|(k, _)| keys::is_security_key(&bare(k)));
        // `-D` flags ZooKeeper never reads: keys its QuorumPeerConfig takes from zoo.cfg
        // only (`-Dzookeeper.portUnification=true` must not open a TLS quorum port to
        // plaintext peers).
        let (flags, flags_ignored): (Vec<_>, Vec<_>) = system
            .iter()
            .cloned()
            .partition(|(k, _)| !keys::is_zoo_cfg_only(&bare(k)));
        let jvm_properties = PropertyList(
            system
                .iter()
                .map(|(k, v)| {
                    // zoo.cfg cannot set a JVM property (ZooKeeper prefixes its keys).
                    let in_file = (!is_jvm_own_property(k))
                        .then(|| file_own.iter().rev().find(|(f, _)| *f == bare(k)))
                        .flatten();
                    (k.clone(), in_file.map_or(v, |(_, fv)| fv).clone())
                })
                .collect(),
        );
        let mut props = file_sysprops.clone();
        props.extend(flags.iter().cloned());
        props.extend(file_own.iter().cloned());
        // The JVM's trust-store properties are read from the flags only
        // (`jvm_properties`); they are no zoo.cfg keys.
        props.retain(|(k, _)| !is_jvm_own_property(k));
        let mut cfg = Config {
            client_port_address: None,
            client_port_given: false,
            jvm_properties,
            file_properties: Properties(file.into_iter().collect()),
            ..Config::default()
        };
        // A `zookeeper.X` line that another setting of X replaces: named in a warning.
        for (k, v) in &file_sysprops {
            let b = bare(k);
            let Some((winner, _)) = props
                .iter()
                .rev()
                .find(|(o, _)| bare(o) == b)
                .filter(|(_, ov)| ov != v)
            else {
                continue;
            };
            let from = if file_own.iter().any(|(o, _)| o == winner) {
                "zoo.cfg"
            } else {
                "the JVM flags"
            };
            cfg.note(
                NoteLevel::Warn,
                k,
                format!(
                    "{k} in zoo.cfg is overridden by {winner} from {from} (ZooKeeper ignores a zoo.cfg key spelt zookeeper.*)"
                ),
            );
        }
        for (k, _) in file_own.iter().filter(|(k, _)| is_jvm_own_property(k)) {
            cfg.note(
                NoteLevel::Warn,
                k,
                format!(
                    "{k} in zoo.cfg is not read: ZooKeeper makes it the property zookeeper.{k}, which its JVM does not read; pass -D{k} in SERVER_JVMFLAGS"
                ),
            );
        }
        for (k, _) in &flags_ignored {
            cfg.note(
                NoteLevel::Warn,
                k,
                format!(
                    "-D{k} is ignored: ZooKeeper reads {} only from zoo.cfg",
                    bare(k)
                ),
            );
        }
        let mut refusals: Vec<Refusal> = refused_sysprops
            .iter()
            .map(|(k, _)| Refusal {
                key: k.clone(),
                reason: format!(
                    "ZooKeeper ignores a zoo.cfg key spelt zookeeper.* (it would set the property zookeeper.{k}), so rzk refuses this security setting rather than apply it: write {} in zoo.cfg, or -D{k} in SERVER_JVMFLAGS",
                    bare(k)
                ),
            })
            .collect();
        let mut auth = AuthKeys::default();
        let mut client_port: Option<u16> = None;
        let mut data_dir: Option<PathBuf> = None;
        let mut data_log_dir: Option<PathBuf> = None;
        let mut min_to: Option<i32> = None;
        let mut max_to: Option<i32> = None;
        let dynamic_file_given = props.iter().any(|(k, _)| k == "dynamicConfigFile");
        // ZooKeeper loads `audit.impl.class` only when auditing is on (as audit.rs reads
        // `audit.enable`): a class rzk cannot load is refused only then.
        let audit_on = ["audit.enable", "zookeeper.audit.enable"]
            .iter()
            .find_map(|name| props.iter().rev().find(|(k, _)| k == name))
            .is_some_and(|(_, v)| v.trim().eq_ignore_ascii_case("true"));
        for (key, value) in &props {
            let (k, v) = (key.as_str(), value.as_str());
            // Keys ZooKeeper reads as `zookeeper.<key>` system properties may be given
            // either way.
            let bare = k.strip_prefix("zookeeper.").unwrap_or(k);
            if !k.starts_with("server.") {
                match keys::classify(bare, v) {
                    Some(KeyClass::Refused(_)) if bare == "audit.impl.class" && !audit_on => {
                        cfg.note(
                            NoteLevel::Info,
                            k,
                            format!("{k} is ignored: audit.enable is not true"),
                        );
                    }
                    Some(KeyClass::Refused(reason)) => {
                        // A reason may quote the value (a class name); never a secret's.
                        let reason = if keys::is_secret_key(k) && !v.is_empty() {
                            reason.replace(v, keys::REDACTED)
                        } else {
                            reason
                        };
                        refusals.push(Refusal {
                            key: k.to_owned(),
                            reason,
                        });
                        continue;
                    }
                    Some(KeyClass::NoEffect(why)) => cfg.note(
                        NoteLevel::Info,
                        k,
                        format!("{k} is accepted without effect in rzk: {why}"),
                    ),
                    Some(KeyClass::Implemented) => {}
                    None => match keys::suggest(bare) {
                        Some((near, true)) => {
                            refusals.push(Refusal {
                                key: k.to_owned(),
                                reason: format!(
                                    "unknown key; did you mean {near}? (a misspelt security setting is refused rather than ignored)"
                                ),
                            });
                            continue;
                        }
                        Some((near, false)) => cfg.note(
                            NoteLevel::Warn,
                            k,
                            format!("unknown key {k} ignored; did you mean {near}?"),
                        ),
                        None => cfg.note(
                            NoteLevel::Warn,
                            k,
                            format!("unknown key {k} ignored (not a ZooKeeper 3.8 server setting rzk knows)"),
                        ),
                    },
                }
            }
            if bare.starts_with("authProvider.") {
                cfg.auth_providers.insert(bare.to_owned(), v.to_owned());
            }
            if auth.take(bare, v) {
                continue;
            }
            check_value_without_effect(bare, k, v)?;
            match bare {
                // As ZooKeeper: 0 leaves the client port unset.
                "clientPort" => client_port = Some(parse_port(k, v)?).filter(|p| *p != 0),
                "clientPortAddress" => cfg.client_port_address = Some(resolve_host(k, v)?),
                "dataDir" => data_dir = Some(PathBuf::from(v)),
                "dataLogDir" => data_log_dir = Some(PathBuf::from(v)),
                "tickTime" => {
                    // ZooKeeper reads it as an int: larger values do not start it.
                    const RANGE: &str = "must be from 1 to 2147483647 milliseconds";
                    match v.trim().parse::<i32>() {
                        Ok(t) if t > 0 => cfg.tick_time_ms = t.unsigned_abs(),
                        _ => return Err(invalid(k, v, RANGE)),
                    }
                }
                "initLimit" => cfg.init_limit = parse_limit(k, v)?,
                "syncLimit" => cfg.sync_limit = parse_limit(k, v)?,
                "minSessionTimeout" => min_to = Some(parse_num(k, v)?),
                "maxSessionTimeout" => max_to = Some(parse_num(k, v)?),
                // As ZooKeeper: 0 or less is no limit (and `conf` shows it as given).
                "maxClientCnxns" => cfg.max_client_cnxns = parse_num(k, v)?,
                "clientPortListenBacklog" => cfg.client_port_listen_backlog = parse_num(k, v)?,
                // ZooKeeper reads it as the system property zookeeper.maxCnxns
                // (Integer.getInteger: what it cannot decode keeps the default, 0).
                "maxCnxns" => match java_integer(v) {
                    Some(n) => cfg.max_cnxns = n,
                    None => cfg.note(
                        NoteLevel::Warn,
                        k,
                        format!("{k}={v} is not a Java int; 0 (no limit) is used (as ZooKeeper does)"),
                    ),
                },
                // ZooKeeper: Integer.getInteger (Integer.decode: 0x.., #.., 0.. octal; a
                // value it cannot decode, or beyond int, keeps the default 0xfffff).
                // Zero or less would start a server that refuses every frame: refused.
                "jute.maxbuffer" => match java_integer(v) {
                    Some(n) if n <= 0 => {
                        return Err(invalid(
                            k,
                            v,
                            "must be positive (ZooKeeper would refuse every request)",
                        ))
                    }
                    Some(n) => cfg.jute_max_buffer = n.unsigned_abs() as usize,
                    None => {
                        cfg.jute_max_buffer = DEFAULT_JUTE_MAX_BUFFER;
                        cfg.note(
                            NoteLevel::Warn,
                            k,
                            format!(
                                "{k}={v} is not a Java int; the default {DEFAULT_JUTE_MAX_BUFFER} bytes is used (as ZooKeeper does)"
                            ),
                        )
                    }
                },
                "4lw.commands.whitelist" => {
                    cfg.four_letter_whitelist = FourLetterWhitelist::parse(v)
                }
                "DigestAuthenticationProvider.superDigest" => {
                    if !v.contains(':') {
                        // Not echoed: a password pasted here by mistake stays out of logs.
                        return Err(invalid(k, keys::REDACTED, "expected user:<base64 sha1>"));
                    }
                    cfg.super_digest = Some(v.to_owned());
                }
                "extendedTypesEnabled" => cfg.extended_types_enabled = parse_bool(k, v)?,
                // ZooKeeper's FileTxnLog: fsync is off for exactly "no", on for anything
                // else ("false" and "NO" included); it never refuses a value.
                "forceSync" => {
                    cfg.force_sync = v != "no";
                    if v != "no" && v != "yes" {
                        cfg.note(
                            NoteLevel::Warn,
                            k,
                            format!(
                                "{k}={v}: only \"no\" turns fsync off (as in ZooKeeper); the transaction log is fsynced"
                            ),
                        );
                    }
                }
                // ZooKeeper: Integer.getInteger (a value it cannot decode keeps the
                // default), then at least 2.
                "snapCount" => match java_integer(v) {
                    Some(n) => {
                        if n < 2 {
                            cfg.note(
                                NoteLevel::Warn,
                                k,
                                format!(
                                    "{k} should be 2 or more; {n} reset to 2 (as ZooKeeper does)"
                                ),
                            );
                        }
                        cfg.snap_count = u64::try_from(n.max(2)).unwrap_or(DEFAULT_SNAP_COUNT);
                    }
                    None => cfg.note(
                        NoteLevel::Warn,
                        k,
                        format!("{k}={v} is not a number; the default {DEFAULT_SNAP_COUNT} is used (as ZooKeeper does)"),
                    ),
                },
                // ZooKeeper: Long.parseLong, a value it cannot parse is warned about and
                // the default kept.
                "preAllocSize" => match v.parse::<u64>() {
                    Ok(n) if n > MAX_PRE_ALLOC_SIZE_KB => {
                        return Err(invalid(
                            k,
                            v,
                            "more kilobytes than a log file can grow to (16 TiB)",
                        ))
                    }
                    Ok(n) => cfg.pre_alloc_size_kb = n,
                    Err(_) => cfg.note(
                        NoteLevel::Warn,
                        k,
                        format!("{k}={v} is not a valid value; the default {DEFAULT_PRE_ALLOC_SIZE_KB} KB is used (as ZooKeeper does)"),
                    ),
                },
                "autopurge.snapRetainCount" => {
                    let n: i64 = parse_num(k, v)?;
                    if n < 3 {
                        cfg.note(
                            NoteLevel::Warn,
                            k,
                            format!("invalid {k}: {n}; defaulting to 3 (as ZooKeeper does)"),
                        );
                    }
                    cfg.autopurge_snap_retain_count = u32::try_from(n.max(3)).unwrap_or(u32::MAX);
                }
                // As ZooKeeper: 0 or less leaves the purge off.
                "autopurge.purgeInterval" => {
                    cfg.autopurge_purge_interval_hours =
                        parse_num::<i32>(k, v)?.max(0).unsigned_abs()
                }
                "standaloneEnabled" => cfg.standalone_enabled = parse_bool(k, v)?,
                "quorumListenOnAllIPs" => cfg.quorum_listen_on_all_ips = parse_bool(k, v)?,
                "reconfigEnabled" => cfg.reconfig_enabled = parse_bool(k, v)?,
                "readonlymode.enabled" => {
                    cfg.read_only_mode_enabled = v.eq_ignore_ascii_case("true")
                }
                "localSessionsEnabled" => cfg.local_sessions_enabled = parse_bool(k, v)?,
                "localSessionsUpgradingEnabled" => {
                    cfg.local_sessions_upgrading_enabled = parse_bool(k, v)?
                }
                "znode.container.checkIntervalMs" => {
                    let n: u64 = parse_num(k, v)?;
                    if n == 0 {
                        return Err(invalid(k, v, "must be positive"));
                    }
                    cfg.container_check_interval_ms = n;
                }
                "znode.container.maxPerMinute" => {
                    let n: u32 = parse_num(k, v)?;
                    if n == 0 {
                        return Err(invalid(k, v, "must be positive"));
                    }
                    cfg.container_max_per_minute = n;
                }
                // ZooKeeper: Long.getLong (Long.decode: 0x.., #.., 0.. octal; a value it
                // cannot decode keeps the default 0).
                "znode.container.maxNeverUsedIntervalMs" => match java_decode(v) {
                    Some(n) => cfg.container_max_never_used_ms = n,
                    None => cfg.note(
                        NoteLevel::Warn,
                        k,
                        format!("{k}={v} is not a number; 0 (never) is used (as ZooKeeper does)"),
                    ),
                },
                // ZooKeeper: Integer.getInteger (what it cannot decode keeps the default);
                // zero or less stops its start-up (its connection expiry queue divides
                // by it).
                "nio.sessionlessCnxnTimeout" => {
                    match java_integer(v) {
                        Some(n) if n <= 0 => return Err(invalid(k, v, "must be positive")),
                        Some(n) => cfg.sessionless_cnxn_timeout_ms = n.unsigned_abs(),
                        None => cfg.note(
                            NoteLevel::Warn,
                            k,
                            format!("{k}={v} is not a Java int; 10000 ms is used (as ZooKeeper does)"),
                        ),
                    }
                }
                // ZooKeeper: parseBoolean for the switch, Long.parseLong for the rest.
                "jvm.pause.monitor" => cfg.pause_monitor.enabled = parse_bool(k, v)?,
                "jvm.pause.sleep.time.ms" => cfg.pause_monitor.sleep_ms = parse_num(k, v)?,
                "jvm.pause.info-threshold.ms" => cfg.pause_monitor.info_ms = parse_num(k, v)?,
                "jvm.pause.warn-threshold.ms" => cfg.pause_monitor.warn_ms = parse_num(k, v)?,
                "electionAlg" => {
                    if v != "3" {
                        return Err(invalid(k, v, "only electionAlg=3 is supported"));
                    }
                }
                "dynamicConfigFile" => cfg.dynamic_config_file = Some(PathBuf::from(v)),
                "version" => cfg.config_version = parse_hex_version(k, v)?,
                _ if (k.starts_with("server.") || is_group_key(k)) && dynamic_file_given => {
                    // As ZooKeeper's QuorumPeerConfig.
                    return Err(ConfigError::Inconsistent(format!(
                        "parameter: {k} must be in a separate dynamic config file"
                    )));
                }
                _ if k.starts_with("server.") => {
                    let s = parse_server_line(k, v)?;
                    cfg.servers.insert(s.id, s);
                }
                // Read below from the untrimmed values (`read_groups_of`).
                _ if is_group_key(k) => {}
                _ => {
                    cfg.unknown.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        if !refusals.is_empty() {
            return Err(ConfigError::Refused(refusals));
        }
        cfg.groups = read_groups_of(text, &cfg.servers)?;
        // The JVM's Kerberos properties come from the -D flags only (a zoo.cfg line of
        // that name would be ZooKeeper's zookeeper.java.security..., which nothing reads).
        for key in JVM_KERBEROS_PROPERTIES {
            if let Some(v) = cfg.jvm_property(key).map(str::to_owned) {
                auth.take(key, &v);
            }
        }
        cfg.auth = auth.finish()?;
        cfg.admin = crate::admin::settings::AdminSettings::from_properties(&cfg.unknown, text)?;
        let data_dir =
            data_dir.ok_or_else(|| ConfigError::Inconsistent("dataDir is not set".into()))?;
        cfg.data_log_dir = data_log_dir.unwrap_or_else(|| data_dir.clone());
        cfg.data_dir = data_dir;
        // -1 (or no key) means the default, as ZooKeeper's QuorumPeerConfig reads them.
        cfg.min_session_timeout_ms = min_to
            .filter(|&v| v != -1)
            .unwrap_or(session_default(cfg.tick_time_ms, 2));
        cfg.max_session_timeout_ms = max_to
            .filter(|&v| v != -1)
            .unwrap_or(session_default(cfg.tick_time_ms, 20));
        if cfg.min_session_timeout_ms > cfg.max_session_timeout_ms {
            return Err(ConfigError::Inconsistent(
                "minSessionTimeout must not be larger than maxSessionTimeout".into(),
            ));
        }
        match client_port {
            Some(p) => {
                cfg.client_port = p;
                cfg.client_port_given = true;
            }
            None => {
                if cfg.client_port_address.is_some() {
                    return Err(ConfigError::Inconsistent(
                        "clientPortAddress is set but clientPort is not set".into(),
                    ));
                }
                // A client port may come from this server's server.N line; resolved once
                // myid is known. Keep ZooKeeper's conventional default meanwhile.
                cfg.client_port = DEFAULT_CLIENT_PORT;
            }
        }
        if cfg.dynamic_config_file.is_none() {
            cfg.check_membership()?;
        }
        Ok(cfg)
    }

    /// The checks that need the membership: the quorum keys a distributed configuration
    /// requires, ZooKeeper's complaint about a lone voter.
    fn check_membership(&self) -> Result<(), ConfigError> {
        let voters = self
            .servers
            .values()
            .filter(|s| s.role == PeerRole::Participant)
            .count();
        // ZooKeeper's QuorumPeerConfig refuses both (exit 2), with or without server.N
        // lines or a dynamic file: a member whose dynamic file lost its lines must not
        // come back as a server of its own on the ensemble's data.
        if voters == 0 && !self.standalone_enabled {
            return Err(ConfigError::Inconsistent(
                "standaloneEnabled = false then number of participants should be >0".into(),
            ));
        }
        if voters == 0 && !self.servers.is_empty() {
            return Err(ConfigError::Inconsistent(
                "Observers w/o participants is an invalid configuration".into(),
            ));
        }
        if self.is_distributed() {
            if self.init_limit.is_none() {
                return Err(ConfigError::Inconsistent("initLimit is not set".into()));
            }
            if self.sync_limit.is_none() {
                return Err(ConfigError::Inconsistent("syncLimit is not set".into()));
            }
            debug_assert!(voters > 0, "refused above");
        } else if !self.servers.is_empty() {
            tracing::error!(
                "server.N lines present but fewer than 2 voting members and standaloneEnabled=true: running standalone"
            );
        }
        Ok(())
    }

    /// Reads the membership from `dynamicConfigFile`, as ZooKeeper 3.8's
    /// `QuorumPeerConfig.parse`: only `server.N` lines and the `group`/`weight` lines of
    /// hierarchical quorums (any other key is "Unrecognised parameter"),
    /// no `version=` inside (the version is the hex suffix of the file name, 0 without
    /// one). Does nothing without `dynamicConfigFile`. A relative path is taken from the
    /// working directory, as ZooKeeper does.
    ///
    /// Errors: the file cannot be read ([`ConfigError::Inconsistent`], naming the key and
    /// the file), a line is invalid or a key
    /// not allowed ([`ConfigError::Invalid`] / [`ConfigError::Inconsistent`]), or the
    /// membership then lacks the quorum keys it needs.
    pub fn load_dynamic(&mut self) -> Result<(), ConfigError> {
        let Some(path) = self.dynamic_config_file.clone() else {
            return Ok(());
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ConfigError::Inconsistent(format!(
                "dynamicConfigFile={}: cannot read it: {e}",
                path.display()
            ))
        })?;
        self.load_dynamic_text(&text, &path.display().to_string())?;
        self.check_membership()
    }

    /// [`Config::load_dynamic`] on the file's text; `name` gives the version.
    pub fn load_dynamic_text(&mut self, text: &str, name: &str) -> Result<(), ConfigError> {
        let mut servers = BTreeMap::new();
        for (k, v) in parse_properties(text) {
            if k == "version" {
                return Err(ConfigError::Inconsistent(format!(
                    "{name}: dynamic file shouldn't have version inside"
                )));
            } else if k.starts_with("server.") {
                let s = parse_server_line(&k, &v)?;
                servers.insert(s.id, s);
            } else if is_group_key(&k) {
                // Read below from the untrimmed values.
            } else {
                return Err(ConfigError::Inconsistent(format!(
                    "{name}: Unrecognised parameter: {k}"
                )));
            }
        }
        self.groups = read_groups_of(text, &servers)?;
        self.servers = servers;
        self.config_version = crate::reconfig::version_from_filename(name).unwrap_or(Zxid::ZERO);
        Ok(())
    }

    /// The membership text ZooKeeper keeps in `/zookeeper/config` and prints in `conf`
    /// ([`crate::reconfig::membership_text`]); `None` when the server runs standalone
    /// (ZooKeeper's standalone server leaves the node empty).
    pub fn membership_text(&self) -> Option<String> {
        self.is_distributed().then(|| {
            crate::reconfig::membership_text(
                &self.servers,
                self.groups.as_ref(),
                self.config_version,
            )
        })
    }

    /// Clamps a requested session timeout to [minSessionTimeout, maxSessionTimeout].
    pub fn negotiate_timeout(&self, requested: i32) -> i32 {
        requested
            .max(self.min_session_timeout_ms)
            .min(self.max_session_timeout_ms)
    }

    /// Looks up a config value by its zoo.cfg name for reporting (`conf`).
    pub fn summary_lines(&self) -> Vec<(String, String)> {
        let mut v = vec![
            // As ZooKeeper's conf: -1 without a plaintext client port.
            (
                "clientPort".to_owned(),
                if self.has_plain_client_port() {
                    self.client_port.to_string()
                } else {
                    "-1".to_owned()
                },
            ),
            (
                "secureClientPort".to_owned(),
                // As ZooKeeper's conf: the TLS client port, -1 without one.
                crate::tls::property(self, "secureClientPort")
                    .and_then(|v| v.trim().parse::<u16>().ok())
                    .map_or_else(|| "-1".to_owned(), |p| p.to_string()),
            ),
            ("dataDir".to_owned(), version2(&self.data_dir)),
            (
                "dataDirSize".to_owned(),
                dir_size(&self.data_dir).to_string(),
            ),
            ("dataLogDir".to_owned(), version2(&self.data_log_dir)),
            (
                "dataLogSize".to_owned(),
                dir_size(&self.data_log_dir).to_string(),
            ),
            ("tickTime".to_owned(), self.tick_time_ms.to_string()),
            (
                "maxClientCnxns".to_owned(),
                self.max_client_cnxns.to_string(),
            ),
            (
                "minSessionTimeout".to_owned(),
                self.min_session_timeout_ms.to_string(),
            ),
            (
                "maxSessionTimeout".to_owned(),
                self.max_session_timeout_ms.to_string(),
            ),
            (
                "clientPortListenBacklog".to_owned(),
                self.client_port_listen_backlog.to_string(),
            ),
            (
                "serverId".to_owned(),
                if self.is_distributed() {
                    self.my_id.map_or(0, |id| id.0)
                } else {
                    0
                }
                .to_string(),
            ),
        ];
        if self.is_distributed() {
            v.push(("initLimit".into(), self.init_limit.unwrap_or(0).to_string()));
            v.push(("syncLimit".into(), self.sync_limit.unwrap_or(0).to_string()));
            v.push(("electionAlg".into(), "3".into()));
            // QuorumZooKeeperServer.dumpConf: this member's ports and LearnerType ordinal.
            if let Some(me) = self.my_id.and_then(|id| self.servers.get(&id)) {
                v.push(("electionPort".into(), me.election_port.to_string()));
                v.push(("quorumPort".into(), me.quorum_port.to_string()));
                let peer_type = match me.role {
                    PeerRole::Participant => "0",
                    PeerRole::Observer => "1",
                };
                v.push(("peerType".into(), peer_type.into()));
            }
        }
        v
    }
}

/// `<dir>/version-2` as ZooKeeper reports its snap/log directories.
fn version2(dir: &Path) -> String {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    abs.join("version-2").display().to_string()
}

/// Total size in bytes of regular files directly in `<dir>/version-2`.
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir.join("version-2")) else {
        return 0;
    };
    rd.filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// A whole-number type a zoo.cfg key is read into, with its range for error messages.
trait WholeNumber: std::str::FromStr {
    /// The smallest and largest value, as an operator writes them.
    fn range() -> (String, String);
}

macro_rules! whole_number {
    ($($t:ty),*) => {$(
        impl WholeNumber for $t {
            fn range() -> (String, String) {
                (<$t>::MIN.to_string(), <$t>::MAX.to_string())
            }
        }
    )*};
}
whole_number!(u16, u32, u64, usize, i32, i64);

/// What a numeric key counts, for error messages.
fn unit_of(key: &str) -> &'static str {
    match key.strip_prefix("zookeeper.").unwrap_or(key) {
        "tickTime"
        | "minSessionTimeout"
        | "maxSessionTimeout"
        | "znode.container.checkIntervalMs"
        | "znode.container.maxNeverUsedIntervalMs"
        | "nio.sessionlessCnxnTimeout"
        | "jvm.pause.sleep.time.ms"
        | "jvm.pause.info-threshold.ms"
        | "jvm.pause.warn-threshold.ms" => "milliseconds",
        "initLimit" | "syncLimit" => "ticks",
        "maxClientCnxns" | "clientPortListenBacklog" => "connections",
        "jute.maxbuffer" => "bytes",
        "preAllocSize" => "kilobytes",
        "snapCount" => "transactions",
        "autopurge.snapRetainCount" => "snapshots",
        "autopurge.purgeInterval" => "hours",
        "znode.container.maxPerMinute" => "containers per minute",
        _ => "",
    }
}

/// A whole number; the error names the range (and the unit) instead of a Rust type.
fn parse_num<T: WholeNumber>(k: &str, v: &str) -> Result<T, ConfigError> {
    v.trim().parse().map_err(|_| {
        let unit = unit_of(k);
        let unit = if unit.is_empty() {
            String::new()
        } else {
            format!(" {unit}")
        };
        let (min, max) = T::range();
        invalid(
            k,
            v,
            format!("not a whole number (expected{unit} from {min} to {max})"),
        )
    })
}

/// `initLimit` / `syncLimit`: ticks, read as ZooKeeper reads them (a Java int, so
/// beyond 2147483647 does not start it; 0 is "not set", which a quorum refuses).
/// Negative values, which ZooKeeper takes and then fails on when a learner connects,
/// are refused here.
fn parse_limit(k: &str, v: &str) -> Result<Option<u32>, ConfigError> {
    match v.trim().parse::<i32>() {
        Ok(n) if n >= 0 => Ok(Some(n.unsigned_abs()).filter(|n| *n > 0)),
        _ => Err(invalid(
            k,
            v,
            "must be from 1 to 2147483647 ticks (0: not set)",
        )),
    }
}

/// A TCP port (0 allowed: ZooKeeper reads `clientPort=0` as "not set").
fn parse_port(k: &str, v: &str) -> Result<u16, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| invalid(k, v, "not a port number (expected 1-65535)"))
}

/// ZooKeeper's JvmPauseMonitor settings (`jvm.pause.*` in zoo.cfg): whether the monitor
/// runs, how long it sleeps between checks, and the pauses it logs at INFO and WARN.
/// Times in milliseconds; defaults as ZooKeeper's: off, 500, 1,000, 10,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PauseMonitorSettings {
    /// `jvm.pause.monitor`.
    pub enabled: bool,
    /// `jvm.pause.sleep.time.ms`.
    pub sleep_ms: i64,
    /// `jvm.pause.info-threshold.ms`: a longer pause is logged at INFO.
    pub info_ms: i64,
    /// `jvm.pause.warn-threshold.ms`: a longer pause is logged at WARN.
    pub warn_ms: i64,
}

impl Default for PauseMonitorSettings {
    fn default() -> Self {
        PauseMonitorSettings {
            enabled: false,
            sleep_ms: 500,
            info_ms: 1000,
            warn_ms: 10_000,
        }
    }
}

/// Keys rzk takes without effect (config/keys.rs) whose values ZooKeeper's
/// QuorumPeerConfig still checks: a value it refuses stops its start-up, and rzk's (a
/// break-it review, session 50, saw rzk start on them). Other keys pass.
fn check_value_without_effect(bare: &str, k: &str, v: &str) -> Result<(), ConfigError> {
    match bare {
        "syncEnabled"
        | "multiAddress.enabled"
        | "multiAddress.reachabilityCheckEnabled"
        | "sslQuorumReloadCertFiles" => parse_bool(k, v).map(drop),
        // Integer.parseInt.
        "connectToLearnerMasterLimit"
        | "quorum.cnxn.threads.size"
        | "multiAddress.reachabilityCheckTimeoutMs" => parse_num::<i32>(k, v).map(drop),
        "peerType" if !matches!(v.to_lowercase().as_str(), "observer" | "participant") => Err(
            invalid(k, v, "Unrecognised peertype (observer or participant)"),
        ),
        _ => Ok(()),
    }
}

fn parse_bool(k: &str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(k, v, "expected true or false")),
    }
}

/// What Java's `Integer.getInteger` reads from a system property: [`java_decode`] within
/// `int` range; `None` where it keeps the property's default.
pub fn java_integer(v: &str) -> Option<i32> {
    java_decode(v).and_then(|n| i32::try_from(n).ok())
}

/// Java's `Long.decode`, which `Long.getLong` and (within `int` range) `Integer.getInteger`
/// use: an optional sign, then `0x`/`0X`/`#` for hexadecimal, a leading `0` for octal,
/// else decimal; `None` where Java throws NumberFormatException.
pub fn java_decode(v: &str) -> Option<i64> {
    let (neg, rest) = match v.as_bytes().first()? {
        b'-' => (true, &v[1..]),
        b'+' => (false, &v[1..]),
        _ => (false, v),
    };
    let (radix, digits) = if let Some(d) = rest.strip_prefix("0x").or(rest.strip_prefix("0X")) {
        (16, d)
    } else if let Some(d) = rest.strip_prefix('#') {
        (16, d)
    } else if rest.len() > 1 && rest.starts_with('0') {
        (8, &rest[1..])
    } else {
        (10, rest)
    };
    if digits.is_empty() || digits.starts_with(['-', '+']) {
        return None;
    }
    // Through i128 so that the most negative value parses as Java's does.
    let n = i128::from_str_radix(digits, radix).ok()?;
    i64::try_from(if neg { -n } else { n }).ok()
}

/// A membership version as ZooKeeper's `Long.parseLong(v, 16)` (non-negative only).
fn parse_hex_version(k: &str, v: &str) -> Result<Zxid, ConfigError> {
    let digits = v.strip_prefix('+').unwrap_or(v);
    u64::from_str_radix(digits, 16)
        .ok()
        .filter(|_| !digits.starts_with('+'))
        .and_then(|n| i64::try_from(n).ok())
        .map(Zxid)
        .ok_or_else(|| {
            invalid(
                k,
                v,
                "expected a hexadecimal version from 0 to 7fffffffffffffff",
            )
        })
}

/// One `server.N` line (`k` = `server.N`, `v` = its value) as ZooKeeper's
/// `QuorumServer(id, addressStr)` reads it; also used for a reconfig's joining servers.
/// An address key's value (`clientPortAddress`, `secureClientPortAddress`): an IP, or a
/// host name resolved now, as ZooKeeper's `InetSocketAddress(host, port)` does (its
/// first IPv4 address, else its first address).
pub fn resolve_host(key: &str, v: &str) -> Result<IpAddr, ConfigError> {
    if let Ok(ip) = v.parse() {
        return Ok(ip);
    }
    use std::net::ToSocketAddrs;
    let addrs: Vec<IpAddr> = (v, 0)
        .to_socket_addrs()
        .map_err(|e| {
            invalid(
                key,
                v,
                format!("not an IP address, and the host name does not resolve: {e}"),
            )
        })?
        .map(|a| a.ip())
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| invalid(key, v, "the host name resolves to no address"))
}

pub(crate) fn parse_server_line(k: &str, v: &str) -> Result<QuorumServer, ConfigError> {
    // Long.parseLong as ZooKeeper reads it: a sign allowed, so `server.-1` is a member
    // (one that never connects unless its myid is -1, which rzk refuses: `load_my_id`).
    // i64::MIN is ServerId::NONE, the no-server mark of votes.
    let id = k["server.".len()..]
        .parse::<i64>()
        .ok()
        .map(ServerId)
        .filter(|id| *id != ServerId::NONE)
        .ok_or_else(|| invalid(k, v, "server id must be a decimal number"))?;
    // The value as a whole is trimmed (parse_properties), its parts are not: ZooKeeper
    // refuses `host:2888:3888; 2181` (Integer.parseInt(" 2181")).
    let (addr, client) = match v.split_once(';') {
        Some((a, c)) => (a, Some(c)),
        None => (v, None),
    };
    // IPv6 host in brackets.
    let (host, rest) = if let Some(stripped) = addr.strip_prefix('[') {
        let end = stripped
            .find(']')
            .ok_or_else(|| invalid(k, v, "unterminated [ in IPv6 host"))?;
        let rest = stripped[end + 1..]
            .strip_prefix(':')
            .ok_or_else(|| invalid(k, v, "expected host:quorumPort:electionPort"))?;
        (stripped[..end].to_owned(), rest)
    } else {
        let (h, rest) = addr
            .split_once(':')
            .ok_or_else(|| invalid(k, v, "expected host:quorumPort:electionPort"))?;
        (h.to_owned(), rest)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return Err(invalid(
            k,
            v,
            "expected host:quorumPort:electionPort[:participant|:observer]",
        ));
    }
    let port = |what: &str, p: &str| -> Result<u16, ConfigError> {
        match p.parse::<u16>() {
            Ok(n) if n != 0 => Ok(n),
            _ => Err(invalid(
                k,
                v,
                format!("{what} {p:?} is not a port number (expected 1-65535)"),
            )),
        }
    };
    let quorum_port = port("quorum port", parts[0])?;
    let election_port = port("election port", parts[1])?;
    if quorum_port == election_port {
        return Err(invalid(k, v, "quorum and election ports must differ"));
    }
    // The role alone is trimmed, as ZooKeeper's QuorumServer does (`:observer ;2181`).
    let role = match parts.get(2).map(|s| s.trim().to_ascii_lowercase()) {
        None => PeerRole::Participant,
        Some(r) if r == "participant" => PeerRole::Participant,
        Some(r) if r == "observer" => PeerRole::Observer,
        Some(_) => return Err(invalid(k, v, "role must be participant or observer")),
    };
    let client_addr = match client {
        None | Some("") => None,
        Some(c) => {
            let (h, p) = match c.rsplit_once(':') {
                Some((h, p)) => (h.trim_matches(|ch| ch == '[' || ch == ']').to_owned(), p),
                None => ("0.0.0.0".to_owned(), c),
            };
            let port: u16 = p.parse().map_err(|_| invalid(k, v, "bad client port"))?;
            Some((h, port))
        }
    };
    Ok(QuorumServer {
        id,
        host,
        quorum_port,
        election_port,
        role,
        client_addr,
    })
}

/// Parses Java `.properties` text into (key, value) pairs in file order (duplicates
/// kept; callers apply them in order so the last one wins). Handles `=`, `:` or
/// whitespace separators, `#`/`!` comments, backslash line continuation and the
/// escapes `\t \n \r \f \uXXXX`. Keys and values are trimmed as ZooKeeper does.
/// `text`'s lines as Java's `Properties` reads them, each with its terminator: a line
/// ends at `\r\n`, a lone `\r` or `\n` (`str::lines` knows no lone `\r`).
pub fn physical_lines(text: &str) -> impl Iterator<Item = &str> + '_ {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = match rest.find(['\r', '\n']) {
            None => rest.len(),
            Some(i) if rest[i..].starts_with("\r\n") => i + 2,
            Some(i) => i + 1,
        };
        let (line, tail) = rest.split_at(end);
        rest = tail;
        Some(line)
    })
}

/// A hierarchical quorum key (`group.G`, `weight.S`): ZooKeeper takes any key that starts
/// with `group` or `weight` for one.
pub fn is_group_key(k: &str) -> bool {
    k.starts_with("group") || k.starts_with("weight")
}

/// The hierarchical quorums of a properties text for `servers`
/// ([`crate::reconfig::groups_of_text`]).
///
/// # Errors
/// [`ConfigError::Inconsistent`] naming the line or server, as ZooKeeper's
/// `QuorumHierarchical` refuses it.
fn read_groups_of(
    text: &str,
    servers: &BTreeMap<ServerId, QuorumServer>,
) -> Result<Option<crate::reconfig::Groups>, ConfigError> {
    crate::reconfig::groups_of_text(text, servers)
        .map_err(|e| ConfigError::Inconsistent(e.to_string()))
}

pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    parse_properties_with(text, true)
}

/// [`parse_properties`] with each value as `java.util.Properties` holds it: leading
/// whitespace gone, trailing whitespace kept (ZooKeeper trims most values itself, but
/// hands the `group`/`weight` ones of hierarchical quorums to `Long.parseLong` as they
/// are, which refuses a space).
pub fn parse_properties_untrimmed(text: &str) -> Vec<(String, String)> {
    parse_properties_with(text, false)
}

fn parse_properties_with(text: &str, trim_values: bool) -> Vec<(String, String)> {
    // Join logical lines.
    let mut logical: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut continuing = false;
    for raw in physical_lines(text).map(|l| l.trim_end_matches(['\r', '\n'])) {
        let line = if continuing {
            raw.trim_start()
        } else {
            let t = raw.trim_start();
            if t.is_empty() || t.starts_with('#') || t.starts_with('!') {
                continue;
            }
            t
        };
        let trailing = line.chars().rev().take_while(|&c| c == '\\').count();
        if trailing % 2 == 1 {
            cur.push_str(&line[..line.len() - 1]);
            continuing = true;
        } else {
            cur.push_str(line);
            logical.push(std::mem::take(&mut cur));
            continuing = false;
        }
    }
    if !cur.is_empty() {
        logical.push(cur);
    }
    logical
        .iter()
        .map(|l| {
            let (k, v) = split_key_value(l);
            let v = unescape(&v);
            (
                unescape(&k).trim().to_owned(),
                if trim_values { v.trim().to_owned() } else { v },
            )
        })
        .collect()
}

fn split_key_value(line: &str) -> (String, String) {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut key = String::new();
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            key.push(c);
            key.push(chars[i + 1]);
            i += 2;
            continue;
        }
        if c == '=' || c == ':' || c.is_whitespace() {
            break;
        }
        key.push(c);
        i += 1;
    }
    // Skip whitespace, then at most one separator, then whitespace.
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    if i < chars.len() && (chars[i] == '=' || chars[i] == ':') {
        i += 1;
    }
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    (key, chars[i..].iter().collect())
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = (0..4).filter_map(|_| it.next()).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => out.push_str(&hex),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_syntax() {
        let p = parse_properties(
            "# comment\n! also\n  a = 1 \nb:2\nc 3\nd=x\\\n   y\ne=\\u0041\\tz\nf\n",
        );
        let m: BTreeMap<_, _> = p.into_iter().collect();
        assert_eq!(m["a"], "1");
        assert_eq!(m["b"], "2");
        assert_eq!(m["c"], "3");
        assert_eq!(m["d"], "xy");
        assert_eq!(m["e"], "A\tz");
        assert_eq!(m["f"], "");
    }

    #[test]
    fn standalone_defaults() {
        let c = Config::from_properties("dataDir=/tmp/x\nclientPort=2182\n").unwrap();
        assert_eq!(c.tick_time_ms, 3000);
        assert_eq!(c.min_session_timeout_ms, 6000);
        assert_eq!(c.max_session_timeout_ms, 60000);
        assert_eq!(c.data_log_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.client_addr().to_string(), "0.0.0.0:2182");
        assert!(!c.is_distributed());
        assert_eq!(c.four_letter_whitelist, FourLetterWhitelist::default());
        assert_eq!(c.negotiate_timeout(1000), 6000);
        assert_eq!(c.negotiate_timeout(100_000), 60000);
        assert_eq!(c.negotiate_timeout(10_000), 10000);
    }

    #[test]
    fn keys_and_errors() {
        let c = Config::from_properties(
            "dataDir=/d\ntickTime=2000\n4lw.commands.whitelist=ruok, stat\nDigestAuthenticationProvider.superDigest=super:abc=\nfoo.bar=1\nznode.container.checkIntervalMs=500\nforceSync=no\nclientPortAddress=127.0.0.1\nclientPort=1\n",
        )
        .unwrap();
        assert!(c.four_letter_whitelist.allows("ruok"));
        assert!(c.four_letter_whitelist.allows("srvr"));
        assert!(!c.four_letter_whitelist.allows("mntr"));
        assert_eq!(c.super_digest.as_deref(), Some("super:abc="));
        assert_eq!(c.unknown["foo.bar"], "1");
        assert_eq!(c.container_check_interval_ms, 500);
        assert!(!c.force_sync);
        assert_eq!(c.min_session_timeout_ms, 4000);

        let e = Config::from_properties("dataDir=/d\ntickTime=abc\n").unwrap_err();
        assert!(e.to_string().contains("tickTime"), "{e}");
        let e = Config::from_properties("dataDir=/d\ntickTime=0\n").unwrap_err();
        assert!(e.to_string().contains("tickTime"), "{e}");
        // ZooKeeper's int: larger values and negative ones are refused, naming the key
        // (2147483648 used to start with session timeouts of 0..0 ms).
        for bad in ["-5", "2147483648", "4294967295"] {
            let e = Config::from_properties(&format!("dataDir=/d\ntickTime={bad}\n")).unwrap_err();
            assert!(e.to_string().contains("tickTime"), "{bad}: {e}");
        }
        // The largest int tick gives the largest timeouts, not wrapped ones.
        let c = Config::from_properties("dataDir=/d\ntickTime=2147483647\n").unwrap();
        assert_eq!(
            (c.min_session_timeout_ms, c.max_session_timeout_ms),
            (i32::MAX, i32::MAX)
        );
        // A padding larger than a file can be stops start-up, naming the key (it used to
        // kill the server at its first write).
        let e =
            Config::from_properties("dataDir=/d\npreAllocSize=9223372036854775807\n").unwrap_err();
        assert!(e.to_string().contains("preAllocSize"), "{e}");
        let e = Config::from_properties("clientPort=1\n").unwrap_err();
        assert!(e.to_string().contains("dataDir"), "{e}");
        let e = Config::from_properties("dataDir=/d\nminSessionTimeout=10\nmaxSessionTimeout=5\n")
            .unwrap_err();
        assert!(e.to_string().contains("minSessionTimeout"), "{e}");
        // -1 is the default (2 and 20 ticks), as in ZooKeeper; other values are literal.
        let c = Config::from_properties(
            "dataDir=/d\ntickTime=2000\nminSessionTimeout=-1\nmaxSessionTimeout=-1\n",
        )
        .unwrap();
        assert_eq!(
            (c.min_session_timeout_ms, c.max_session_timeout_ms),
            (4000, 40000)
        );
        let c = Config::from_properties("dataDir=/d\nminSessionTimeout=-1\nmaxSessionTimeout=0\n");
        assert!(c.is_err(), "-1 min becomes 6000 > 0");
        assert!(
            Config::from_properties("dataDir=/d\n4lw.commands.whitelist=*\n")
                .unwrap()
                .four_letter_whitelist
                .allows("dump")
        );
    }

    #[test]
    fn classification_notes_and_refusals() {
        let c = Config::from_properties(
            "dataDir=/d\nclientport=1\nadmin.httpVersion=11\nautopurge.snapRetainCount=1\nmy.db.password=hunter2\n",
        )
        .unwrap();
        let has = |level: NoteLevel, key: &str, text: &str| {
            c.notes
                .iter()
                .any(|n| n.level == level && n.key == key && n.message.contains(text))
        };
        assert!(has(
            NoteLevel::Warn,
            "clientport",
            "did you mean clientPort"
        ));
        assert!(has(NoteLevel::Info, "admin.httpVersion", "without effect"));
        assert!(has(
            NoteLevel::Warn,
            "autopurge.snapRetainCount",
            "defaulting to 3"
        ));
        assert_eq!(c.autopurge_snap_retain_count, 3);
        // Secrets stay out of notes and Debug output.
        assert!(c.notes.iter().all(|n| !n.message.contains("hunter2")));
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.unknown["my.db.password"], "hunter2");

        let e = Config::from_properties(
            "dataDir=/d\naudit.enable=true\naudit.impl.class=com.example.Audit\nkerberos.removeHostFromPrinciple=true\nenforce.auth.enable=true\nauthProvider.secret=com.example.Hunter2Provider\n",
        )
        .unwrap_err();
        let ConfigError::Refused(r) = &e else {
            panic!("refused expected: {e}")
        };
        let keys: Vec<&str> = r.iter().map(|x| x.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "audit.impl.class",
                "kerberos.removeHostFromPrinciple",
                "enforce.auth.enable",
                "authProvider.secret"
            ]
        );
        let text = e.to_string();
        assert!(text.contains("did you mean enforce.auth.enabled"), "{text}");
        assert!(!text.contains("Hunter2Provider"), "{text}");

        let e = Config::from_properties("dataDir=/d\nenforce.auth.enabled=true\n").unwrap_err();
        assert!(e.to_string().contains("enforce.auth.schemes"), "{e}");
        let sys = jvm_flag_properties(
            "-Xmx1g -Dzookeeper.superUser=admin -Dfile.encoding=UTF-8 -Djava.security.auth.login.config=/j",
        );
        assert_eq!(
            sys,
            [
                ("zookeeper.superUser".to_owned(), "admin".to_owned()),
                (
                    "java.security.auth.login.config".to_owned(),
                    "/j".to_owned()
                )
            ]
        );
        let c = Config::from_properties_with("dataDir=/d\n", &sys).unwrap();
        assert!(c.auth.is_sasl_super_user("admin"));
        assert_eq!(c.auth.jaas_file.as_deref(), Some(Path::new("/j")));
        // zoo.cfg's superUser replaces the flag's, as in ZooKeeper: they do not add up
        // (found by a break-it review: both were super users).
        let c = Config::from_properties_with("dataDir=/d\nsuperUser=bob\n", &sys).unwrap();
        assert!(!c.auth.is_sasl_super_user("admin") && c.auth.is_sasl_super_user("bob"));
        let c = Config::from_properties(
            "dataDir=/d\nsuperUser=alice\nsuperUser=bob\nsuperUser.2=carol\n",
        )
        .unwrap();
        assert!(!c.auth.is_sasl_super_user("alice"));
        assert!(c.auth.is_sasl_super_user("bob") && c.auth.is_sasl_super_user("carol"));
    }

    #[test]
    fn server_lines() {
        let c = Config::from_properties(
            "dataDir=/d\ninitLimit=5\nsyncLimit=2\nserver.1=zk1:2888:3888\nserver.2=zk2:2888:3888;2181\nserver.3=[::1]:2888:3888:observer;127.0.0.1:2182\n",
        )
        .unwrap();
        assert!(c.is_distributed());
        assert_eq!(c.servers[&ServerId(1)].host, "zk1");
        assert_eq!(
            c.servers[&ServerId(2)].client_addr,
            Some(("0.0.0.0".into(), 2181))
        );
        assert_eq!(c.servers[&ServerId(3)].host, "::1");
        assert_eq!(c.servers[&ServerId(3)].role, PeerRole::Observer);
        assert_eq!(
            c.servers[&ServerId(3)].client_addr,
            Some(("127.0.0.1".into(), 2182))
        );
        let e =
            Config::from_properties("dataDir=/d\nserver.1=zk1:2888:3888\nserver.2=zk2:2888:3888\n")
                .unwrap_err();
        assert!(e.to_string().contains("initLimit"), "{e}");
        let e = Config::from_properties("dataDir=/d\nserver.1=zk1:2888\n").unwrap_err();
        assert!(e.to_string().contains("server.1"), "{e}");
        // Ids are ZooKeeper's long: i64::MAX is the largest, -1 is an id too.
        let big = Config::from_properties(
            "dataDir=/d\ninitLimit=5\nsyncLimit=2\nserver.9223372036854775807=a:1:2\nserver.-1=b:1:2\n",
        )
        .expect("i64::MAX and -1 are ids");
        assert!(big.servers.contains_key(&ServerId(i64::MAX)));
        assert!(big.servers.contains_key(&ServerId(-1)));
        for id in ["9223372036854775808", "-9223372036854775808", "1x"] {
            let e =
                Config::from_properties(&format!("dataDir=/d\nserver.{id}=a:1:2\n")).unwrap_err();
            assert!(e.to_string().contains("decimal number"), "{id}: {e}");
        }
    }

    /// Loads a zoo.cfg of `lines` (after `dataDir`, which is a fresh directory holding
    /// `myid`) as a member does.
    fn load_member(myid: &str, lines: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("myid"), myid).unwrap();
        let cfgp = dir.path().join("zoo.cfg");
        std::fs::write(&cfgp, format!("dataDir={}\n{lines}", dir.path().display())).unwrap();
        Config::load(&cfgp)
    }

    #[test]
    fn myid_file() {
        let c = load_member(
            "2\n",
            "initLimit=5\nsyncLimit=2\nserver.1=a:1:2\nserver.2=b:1:2\n",
        )
        .unwrap();
        assert_eq!(c.my_id, Some(ServerId(2)));
        assert_eq!(c.server_id(), ServerId(2));
    }

    /// A server has a plaintext client port only from `clientPort` (not 0) or its own
    /// `server.N` line's client part; with neither, ZooKeeper 3.8 opens no client
    /// listener and `conf` says `clientPort=-1` (rzk listened on 2181 until session 51).
    #[test]
    fn a_client_port_comes_from_client_port_or_the_own_server_line_only() {
        let conf_port = |c: &Config| {
            c.summary_lines()
                .into_iter()
                .find(|(k, _)| k == "clientPort")
                .map(|(_, v)| v)
        };
        let none = Config::from_properties(
            "dataDir=/d
",
        )
        .unwrap();
        assert!(!none.has_plain_client_port());
        assert_eq!(conf_port(&none).as_deref(), Some("-1"));
        let zero = Config::from_properties(
            "dataDir=/d
clientPort=0
",
        )
        .unwrap();
        assert!(!zero.has_plain_client_port());
        let given = Config::from_properties(
            "dataDir=/d
clientPort=2182
",
        )
        .unwrap();
        assert!(given.has_plain_client_port());
        assert_eq!(conf_port(&given).as_deref(), Some("2182"));
        let quorum = "initLimit=5\nsyncLimit=2\nserver.2=b:1:2\n";
        let in_line =
            load_member("1\n", &format!("{quorum}server.1=127.0.0.1:1:2;2183\n")).unwrap();
        assert!(in_line.has_plain_client_port());
        assert_eq!(in_line.client_addr().port(), 2183);
        let member = load_member("1\n", &format!("{quorum}server.1=127.0.0.1:1:2\n")).unwrap();
        assert!(!member.has_plain_client_port());
        assert!(Config::default().has_plain_client_port());
    }

    /// A member's `clientPort` / `clientPortAddress` against the client part of its own
    /// `server.N` line, as ZooKeeper's `QuorumPeerConfig.setupClientPort` checks them.
    #[test]
    fn client_port_and_the_server_lines_client_address() {
        let load = |keys: &str, client: &str| {
            let lines = format!(
                "initLimit=5\nsyncLimit=2\n{keys}\n\
                 server.1=127.0.0.1:1:2:participant;{client}\nserver.2=b:1:2\n"
            );
            load_member("1\n", &lines).map(|c| c.client_addr().to_string())
        };
        // The line alone, and the line agreeing with clientPort: the line's address.
        assert_eq!(load("", "127.0.0.1:2181").unwrap(), "127.0.0.1:2181");
        assert_eq!(load("clientPort=2181", "2181").unwrap(), "0.0.0.0:2181");
        assert_eq!(
            load("clientPort=2181", "127.0.0.1:2181").unwrap(),
            "127.0.0.1:2181",
            "the wildcard clientPort takes the line's address (ZooKeeper binds that)"
        );
        assert_eq!(
            load(
                "clientPort=2181\nclientPortAddress=127.0.0.1",
                "127.0.0.1:2181"
            )
            .unwrap(),
            "127.0.0.1:2181"
        );
        // Disagreeing: refused, naming the keys and the line.
        for (keys, client) in [
            ("clientPort=2181", "2182"),
            (
                "clientPort=2181\nclientPortAddress=127.0.0.1",
                "0.0.0.0:2181",
            ),
            (
                "clientPort=2181\nclientPortAddress=127.0.0.1",
                "127.0.0.2:2181",
            ),
        ] {
            let e = load(keys, client).unwrap_err().to_string();
            assert!(
                e.contains("clientPort/clientPortAddress") && e.contains("server.1 line"),
                "{keys} / {client}: {e}"
            );
        }
    }

    #[test]
    fn dynamic_config_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("myid"), "2\n").unwrap();
        let dynp = dir.path().join("zoo.cfg.dynamic.100000000");
        std::fs::write(
            &dynp,
            "server.1=a:1:2:participant;127.0.0.1:2181\nserver.2=b:1:2\nserver.3=c:1:2:observer\n",
        )
        .unwrap();
        let cfgp = dir.path().join("zoo.cfg");
        let base = format!(
            "dataDir={}\ninitLimit=5\nsyncLimit=2\ndynamicConfigFile={}\n",
            dir.path().display(),
            dynp.display()
        );
        std::fs::write(&cfgp, &base).unwrap();
        let c = Config::load(&cfgp).unwrap();
        assert_eq!(c.servers.len(), 3);
        assert_eq!(c.config_version, Zxid::new(1, 0));
        assert!(c.is_distributed());
        assert_eq!(
            c.membership_text().unwrap(),
            "server.1=a:1:2:participant;127.0.0.1:2181\nserver.2=b:1:2:participant\n\
             server.3=c:1:2:observer\nversion=100000000"
        );
        // server.N next to dynamicConfigFile, version= inside the file, other keys.
        std::fs::write(&cfgp, format!("{base}server.4=d:1:2\n")).unwrap();
        let e = Config::load(&cfgp).unwrap_err().to_string();
        assert!(
            e.contains("must be in a separate dynamic config file"),
            "{e}"
        );
        std::fs::write(&cfgp, &base).unwrap();
        std::fs::write(&dynp, "server.1=a:1:2\nserver.2=b:1:2\nversion=5\n").unwrap();
        let e = Config::load(&cfgp).unwrap_err().to_string();
        assert!(e.contains("shouldn't have version inside"), "{e}");
        std::fs::write(&dynp, "server.1=a:1:2\nserver.2=b:1:2\ntickTime=5\n").unwrap();
        let e = Config::load(&cfgp).unwrap_err().to_string();
        assert!(e.contains("Unrecognised parameter: tickTime"), "{e}");
        // A name without a hex suffix: version 0; a missing file is an error.
        let plain = dir.path().join("zoo.cfg.dynamic");
        std::fs::write(&plain, "server.1=a:1:2\nserver.2=b:1:2\n").unwrap();
        std::fs::write(
            &cfgp,
            base.replace(&dynp.display().to_string(), &plain.display().to_string()),
        )
        .unwrap();
        assert_eq!(Config::load(&cfgp).unwrap().config_version, Zxid::ZERO);
        std::fs::remove_file(&plain).unwrap();
        assert!(Config::load(&cfgp).is_err());
    }

    #[test]
    fn hierarchical_quorum_lines() {
        let base = "dataDir=/d\ninitLimit=5\nsyncLimit=2\nserver.1=a:1:2\nserver.2=b:1:2\n\
                    server.3=c:1:2\nserver.4=d:1:2:observer\n";
        let c = Config::from_properties(&format!("{base}group.1=1:2\ngroup.2=3\nweight.2=3\n"))
            .unwrap();
        let g = c.groups.as_ref().expect("groups");
        assert_eq!(g.weights().get(&ServerId(2)), Some(&3));
        assert_eq!(g.weights().get(&ServerId(1)), Some(&1));
        assert!(
            c.membership_text().unwrap().ends_with(
                "server.4=d:1:2:observer\ngroup.1=1:2\ngroup.2=3\nweight.1=1\nweight.2=3\n\
                 weight.3=1\nversion=0"
            ),
            "{:?}",
            c.membership_text()
        );
        assert!(Config::from_properties(base).unwrap().groups.is_none());
        // ZooKeeper's refusals, naming the server or the line.
        let e = |extra: &str| {
            Config::from_properties(&format!("{base}{extra}"))
                .unwrap_err()
                .to_string()
        };
        assert!(e("group.1=1:2\n").contains("Server 3 is not in a group"));
        assert!(e("group.1=1:2:3\ngroup.2=3\n").contains("Server 3 is in multiple groups"));
        assert!(e("group.1=1:2:x\n").contains("group.1"));
        // Properties keeps a value's trailing space, which Long.parseLong refuses.
        assert!(e("group.1=1:2:3 \n").contains("group.1"));
        assert!(Config::from_properties(&format!("{base}group.1=1:2:3:\n")).is_ok());
        assert!(e("weight.1=one\ngroup.1=1:2:3\n").contains("weight.1"));
        // In a dynamic file, not beside dynamicConfigFile.
        let e = e("dynamicConfigFile=/nonexistent\ngroup.1=1:2:3\n");
        assert!(
            e.contains("must be in a separate dynamic config file"),
            "{e}"
        );
        let mut c = Config::from_properties("dataDir=/d\ninitLimit=5\nsyncLimit=2\n").unwrap();
        c.load_dynamic_text(
            "server.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\ngroup.7=1:2:3\nweight.3=0\n",
            "zoo.cfg.dynamic.100000000",
        )
        .unwrap();
        assert_eq!(
            c.groups
                .as_ref()
                .map(|g| g.weights().get(&ServerId(3)).copied()),
            Some(Some(0))
        );
    }

    #[test]
    fn static_version_key() {
        let c = Config::from_properties(
            "dataDir=/d\ninitLimit=5\nsyncLimit=2\nserver.1=a:1:2\nserver.2=b:1:2\nversion=1a\n",
        )
        .unwrap();
        assert_eq!(c.config_version, Zxid(0x1a));
        assert!(c.membership_text().unwrap().ends_with("\nversion=1a"));
        assert!(Config::from_properties("dataDir=/d\nversion=xyz\n").is_err());
        // Long.parseLong(v, 16): one optional `+`, no `-`, up to Long.MAX_VALUE.
        let version = |v: &str| {
            Config::from_properties(&format!("dataDir=/d\nversion={v}\n"))
                .map(|c| c.config_version)
                .ok()
        };
        assert_eq!(version("+1a"), Some(Zxid(0x1a)));
        assert_eq!(version("++1a"), None);
        assert_eq!(version("-1a"), None);
        assert_eq!(version("8000000000000000"), None);
        assert_eq!(version("7fffffffffffffff"), Some(Zxid(i64::MAX)));
        // Standalone: no membership in /zookeeper/config.
        assert_eq!(
            Config::from_properties("dataDir=/d\n")
                .unwrap()
                .membership_text(),
            None
        );
    }

    /// Operator-facing parse errors name the key, the value as written and what a valid
    /// value looks like, never a Rust type.
    #[test]
    fn bad_values_are_explained_in_operator_words() {
        let err = |text: &str| {
            Config::from_properties(&format!("dataDir=/d\n{text}\n"))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("clientPort=abc"),
            "clientPort=abc: not a port number (expected 1-65535)"
        );
        assert_eq!(
            err("clientPort=70000"),
            "clientPort=70000: not a port number (expected 1-65535)"
        );
        assert_eq!(
            err("tickTime=2s"),
            "tickTime=2s: must be from 1 to 2147483647 milliseconds"
        );
        assert_eq!(
            err("initLimit=-1"),
            "initLimit=-1: must be from 1 to 2147483647 ticks (0: not set)"
        );
        // ZooKeeper reads them as Java ints: a larger value does not start it.
        for kv in [
            "initLimit=3000000000",
            "syncLimit=2147483648",
            "syncLimit=abc",
        ] {
            assert!(
                err(kv).contains("must be from 1 to 2147483647 ticks"),
                "{kv}"
            );
        }
        // 0 is "not set", which a quorum refuses (as ZooKeeper's "initLimit is not set").
        let quorum = "dataDir=/d\nserver.1=127.0.0.1:2888:3888\nserver.2=127.0.0.2:2888:3888\n";
        for (kv, want) in [
            ("initLimit=0\nsyncLimit=2", "initLimit is not set"),
            ("initLimit=5\nsyncLimit=0", "syncLimit is not set"),
        ] {
            let e = Config::from_properties(&format!("{quorum}{kv}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{kv}: {e}");
        }
        let e = err("server.1=127.0.0.1:2888:x\ninitLimit=5\nsyncLimit=2");
        assert_eq!(
            e,
            "server.1=127.0.0.1:2888:x: election port \"x\" is not a port number (expected 1-65535)"
        );
        for e in [
            err("maxClientCnxns=many"),
            err("quorum.cnxn.threads.size=abc"),
        ] {
            assert!(
                !e.contains("u32") && !e.contains("usize") && !e.contains("u64"),
                "{e}"
            );
            assert!(e.contains("not a whole number (expected"), "{e}");
        }
        // Keys rzk takes without effect whose values ZooKeeper still checks (a break-it
        // review, session 50): refused as ZooKeeper refuses them.
        for kv in [
            "syncEnabled=maybe",
            "multiAddress.enabled=maybe",
            "multiAddress.reachabilityCheckEnabled=1",
            "sslQuorumReloadCertFiles=yes",
            "connectToLearnerMasterLimit=abc",
            "multiAddress.reachabilityCheckTimeoutMs=1s",
            "peerType=bogus",
        ] {
            assert!(err(kv).starts_with(&format!("{kv}: ")), "{kv}: {}", err(kv));
        }
        for kv in [
            "syncEnabled=TRUE",
            "peerType=Observer",
            "quorum.cnxn.threads.size=20",
        ] {
            assert!(
                Config::from_properties(&format!("dataDir=/d\n{kv}\n")).is_ok(),
                "{kv}"
            );
        }
        // maxCnxns is ZooKeeper's system property zookeeper.maxCnxns (Integer.getInteger):
        // an undecodable value keeps 0, with a warning, where rzk used to refuse it.
        let c = Config::from_properties("dataDir=/d\nmaxCnxns=4M\n").unwrap();
        assert_eq!(c.max_cnxns, 0);
        assert!(
            c.notes.iter().any(|n| n.message.contains("maxCnxns=4M")),
            "{:?}",
            c.notes
        );
        let c = Config::from_properties("dataDir=/d\nmaxCnxns=0x10\n").unwrap();
        assert_eq!(c.max_cnxns, 16);
        // ZooKeeper reads clientPort=0 as "not set".
        let c = Config::from_properties("dataDir=/d\nclientPort=0\n").unwrap();
        assert!(!c.client_port_given);
        // The storage and container properties ZooKeeper reads as system properties
        // never refuse: fsync is off only for exactly "no" (found by a review: rzk took
        // forceSync=false as off, where ZooKeeper keeps fsyncing); an undecodable number
        // keeps the default (with a warning).
        let c = |text: &str| Config::from_properties(&format!("dataDir=/d\n{text}\n")).unwrap();
        for (v, on) in [
            ("no", false),
            ("yes", true),
            ("false", true),
            ("NO", true),
            ("maybe", true),
        ] {
            assert_eq!(c(&format!("forceSync={v}")).force_sync, on, "{v}");
        }
        assert!(c("forceSync=false")
            .notes
            .iter()
            .any(|n| n.key == "forceSync"));
        assert_eq!(c("snapCount=1e6").snap_count, DEFAULT_SNAP_COUNT);
        assert_eq!(c("snapCount=-5").snap_count, 2);
        assert_eq!(c("snapCount=0x10").snap_count, 16);
        assert_eq!(
            c("preAllocSize=abc").pre_alloc_size_kb,
            DEFAULT_PRE_ALLOC_SIZE_KB
        );
        let never = |v: &str| {
            c(&format!("znode.container.maxNeverUsedIntervalMs={v}")).container_max_never_used_ms
        };
        assert_eq!(
            [
                never("3000"),
                never("0x7D0"),
                never("#10"),
                never("010"),
                never("-1"),
                never("abc"),
                never("")
            ],
            [3000, 2000, 16, 8, -1, 0, 0]
        );
        assert_eq!(java_decode("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(java_decode("9223372036854775808"), None);
        assert_eq!(java_decode("0x-5"), None);
        assert_eq!(java_decode("+"), None);
        assert_eq!(java_decode("0"), Some(0));
        assert_eq!(java_decode("08"), None);
        // jute.maxbuffer as ZooKeeper's Integer.getInteger: Integer.decode's forms; what it
        // cannot decode (or beyond int) keeps the default (found by a review: rzk refused
        // 0x100000 and took 2^31 as a 2 GiB frame limit).
        let max = |v: &str| c(&format!("jute.maxbuffer={v}")).jute_max_buffer;
        assert_eq!(
            [
                max("4194304"),
                max("0x100000"),
                max("#10"),
                max("010"),
                max("4M"),
                max("2147483648"),
                max("2147483647")
            ],
            [4194304, 0x100000, 16, 8, 0xfffff, 0xfffff, 2147483647]
        );
        assert!(c("jute.maxbuffer=4M")
            .notes
            .iter()
            .any(|n| n.key == "jute.maxbuffer"));
        for v in ["0", "-1", "0x0"] {
            assert!(
                err(&format!("jute.maxbuffer={v}")).contains("must be positive"),
                "{v}"
            );
        }
        // zookeeper.nio.sessionlessCnxnTimeout (with or without the prefix).
        assert_eq!(c("").sessionless_cnxn_timeout_ms, 10_000);
        assert_eq!(
            c("zookeeper.nio.sessionlessCnxnTimeout=30000").sessionless_cnxn_timeout_ms,
            30_000
        );
        assert_eq!(
            c("nio.sessionlessCnxnTimeout=x").sessionless_cnxn_timeout_ms,
            10_000
        );
        assert!(err("nio.sessionlessCnxnTimeout=0").contains("must be positive"));
        // jvm.pause.*: off by default; ZooKeeper's parseBoolean and Long.parseLong.
        assert_eq!(c("").pause_monitor, PauseMonitorSettings::default());
        let p = c("jvm.pause.monitor=TRUE\njvm.pause.sleep.time.ms=+200\n\
                   jvm.pause.info-threshold.ms=50\njvm.pause.warn-threshold.ms=900")
        .pause_monitor;
        assert_eq!(
            p,
            PauseMonitorSettings {
                enabled: true,
                sleep_ms: 200,
                info_ms: 50,
                warn_ms: 900
            }
        );
        assert!(err("jvm.pause.monitor=yes").contains("jvm.pause.monitor"));
        let e = err("jvm.pause.warn-threshold.ms=10s");
        assert!(
            e.contains("jvm.pause.warn-threshold.ms") && e.contains("milliseconds"),
            "{e}"
        );
        let c = Config::from_properties("dataDir=/d\nclientPort=0\n").unwrap();
        assert!(!c.client_port_given);
        assert!(err("clientPort=0\nclientPortAddress=127.0.0.1")
            .contains("clientPortAddress is set but clientPort is not set"));
    }

    /// Found by a break-it review of zoo.cfg handling against ZooKeeper 3.8.
    #[test]
    fn values_zookeeper_takes_and_refuses_as_it_does() {
        let ok = |text: &str| Config::from_properties(&format!("dataDir=/d\n{text}\n"));
        // 0 or less is no limit / no purge, as in ZooKeeper (rzk used to refuse -1).
        let c = ok("maxClientCnxns=-1\nautopurge.purgeInterval=-1").unwrap();
        assert_eq!(
            (c.max_client_cnxns, c.autopurge_purge_interval_hours),
            (-1, 0)
        );
        assert!(ok("maxClientCnxns=-2147483649").is_err());
        // A host name is resolved, as InetSocketAddress does.
        let c = ok("clientPort=2181\nclientPortAddress=localhost").unwrap();
        assert!(c.client_addr().ip().is_loopback());
        assert!(ok("clientPort=2181\nclientPortAddress=no-such-host.invalid").is_err());
        // Only the value as a whole is trimmed: ZooKeeper refuses a space inside.
        let quorum = "initLimit=5\nsyncLimit=2\nserver.2=127.0.0.1:2890:2891\n";
        assert!(ok(&format!("{quorum}server.1=127.0.0.1:2888:2889;2181")).is_ok());
        assert!(ok(&format!(
            "{quorum}server.1=127.0.0.1:2888:2889:participant ;2181"
        ))
        .is_ok());
        for line in [
            "server.1=127.0.0.1:2888:2889; 2181",
            "server.1=127.0.0.1:2888:2889 ;2181",
            "server.1=127.0.0.1: 2888:2889",
        ] {
            assert!(ok(&format!("{quorum}{line}")).is_err(), "{line}");
        }
        // An ensemble of observers only never serves: ZooKeeper exits, so does rzk; with
        // standaloneEnabled=false, no participant at all is refused too (no server.N).
        let e = ok("standaloneEnabled=false\ninitLimit=5\nsyncLimit=2\nserver.1=127.0.0.1:2888:2889:observer;2181")
            .unwrap_err()
            .to_string();
        assert!(e.contains("number of participants should be >0"), "{e}");
        let e = ok("standaloneEnabled=false").unwrap_err().to_string();
        assert!(e.contains("number of participants should be >0"), "{e}");
        let e = ok("server.1=127.0.0.1:2888:2889:observer;2181")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Observers w/o participants"), "{e}");
        // A member whose dynamic file is empty (or only comments) does not start alone.
        let dir = tempfile::tempdir().unwrap();
        let dynamic = dir.path().join("zoo.cfg.dynamic.100000000");
        for text in ["", "# nothing left\n"] {
            std::fs::write(&dynamic, text).unwrap();
            let mut c = ok(&format!(
                "standaloneEnabled=false\nreconfigEnabled=true\ninitLimit=5\nsyncLimit=2\n\
                 dynamicConfigFile={}",
                dynamic.display()
            ))
            .unwrap();
            let e = c.load_dynamic().unwrap_err().to_string();
            assert!(e.contains("number of participants should be >0"), "{e}");
        }
        // A malformed superDigest is not echoed (it may be a pasted password).
        let e = ok("DigestAuthenticationProvider.superDigest=hunter2")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    /// The JVM flags' system properties carry the value in force: zoo.cfg's where it
    /// sets the same key, as ZooKeeper's zoo.cfg keys override `-D` flags; a zoo.cfg key
    /// spelt `zookeeper.X` does not (ZooKeeper ignores it).
    #[test]
    fn secrets_of_flags_and_file_stay_out_of_debug() {
        let c = Config::from_properties_with(
            "dataDir=/d\nssl.trustStore.password=filepw-1\n",
            &[(
                "zookeeper.ssl.keyStore.password".to_owned(),
                "flagpw-2".to_owned(),
            )],
        )
        .unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("filepw-1") && !d.contains("flagpw-2"), "{d}");
        assert_eq!(c.file_properties["ssl.trustStore.password"], "filepw-1");
    }

    #[test]
    fn jvm_properties_hold_the_value_in_force() {
        let flags = jvm_flag_properties(
            "-Xmx1g -Dzookeeper.DigestAuthenticationProvider.superDigest=super:FLAG= -Dzookeeper.forceSync=no -Dzookeeper.snapCount=5000",
        );
        let c = Config::from_properties_with(
            "dataDir=/d\nDigestAuthenticationProvider.superDigest=super:FILE=\nzookeeper.forceSync=yes\n",
            &flags,
        )
        .unwrap();
        assert_eq!(c.super_digest.as_deref(), Some("super:FILE="));
        assert!(
            !c.force_sync,
            "zoo.cfg's zookeeper.forceSync=yes beat -D...=no"
        );
        assert!(c
            .notes
            .iter()
            .any(|n| n.key == "zookeeper.forceSync" && n.message.contains("overridden")));
        assert_eq!(
            *c.jvm_properties,
            [
                (
                    "zookeeper.DigestAuthenticationProvider.superDigest".to_owned(),
                    "super:FILE=".to_owned()
                ),
                ("zookeeper.forceSync".to_owned(), "no".to_owned()),
                ("zookeeper.snapCount".to_owned(), "5000".to_owned()),
            ]
        );
        // Both variables, SERVER_JVMFLAGS first (zkServer.sh's order).
        assert_eq!(SERVER_JVM_FLAG_ENVS, ["SERVER_JVMFLAGS", "JVMFLAGS"]);
    }

    /// `rzk server` without a configuration file runs no AdminServer unless a JVM flag
    /// asks for one (docs review, session 40: it listened on 0.0.0.0:8080, against the
    /// documentation, as the defaults went through the zoo.cfg parser).
    #[test]
    fn no_admin_server_without_a_config_file_unless_asked() {
        assert!(!Config::defaults_with(&[]).unwrap().admin.enabled);
        let on = jvm_flag_properties("-Dzookeeper.admin.enableServer=true");
        assert!(Config::defaults_with(&on).unwrap().admin.enabled);
        let off = jvm_flag_properties("-Dzookeeper.admin.enableServer=false");
        assert!(!Config::defaults_with(&off).unwrap().admin.enabled);
        // With a file, ZooKeeper's default: on.
        assert!(
            Config::from_properties("dataDir=/d\n")
                .unwrap()
                .admin
                .enabled
        );
    }

    /// The JVM's trust-store properties come from the flags only: the last flag wins, a
    /// zoo.cfg line of the same name neither overrides it nor is read (a warning says
    /// so), and neither is taken for an unknown key.
    #[test]
    fn jvm_trust_store_properties_come_from_the_flags_only() {
        let flags = jvm_flag_properties(
            "-Djavax.net.ssl.trustStore=/a.jks -Djavax.net.ssl.trustStore=/b.jks -Djavax.net.ssl.trustStorePassword=pw -Djavax.net.ssl.keyStore=/k.jks",
        );
        let c = Config::from_properties_with(
            "dataDir=/d\njavax.net.ssl.trustStore=/file.jks\n",
            &flags,
        )
        .unwrap();
        assert_eq!(c.jvm_property("javax.net.ssl.trustStore"), Some("/b.jks"));
        assert_eq!(
            c.jvm_property("javax.net.ssl.trustStorePassword"),
            Some("pw")
        );
        assert_eq!(c.jvm_property("javax.net.ssl.keyStore"), None);
        assert!(c.unknown.get("javax.net.ssl.trustStore").is_none());
        let notes: Vec<_> = c
            .notes
            .iter()
            .filter(|n| n.key.starts_with("javax."))
            .collect();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].message.contains("not read"), "{notes:?}");
        assert!(!format!("{:?}", c.jvm_properties).contains("pw"));
    }

    /// A zoo.cfg key spelt as a system property (`zookeeper.X`), which ZooKeeper ignores,
    /// never overrides X from zoo.cfg or from a `-D` flag; a security one is refused (found
    /// by break-it reviews: a later `zookeeper.sessionRequireClientSASLAuth=false` turned
    /// off the enforcement `sessionRequireClientSASLAuth=true` asked for, and a lone
    /// `zookeeper.ssl.trustStore.location` made client certificates identities where
    /// ZooKeeper trusts none). Other keys spelt that way fill a gap.
    #[test]
    fn a_key_spelt_as_a_system_property_only_fills_a_gap() {
        let sasl = "dataDir=/d\nauthProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n";
        for line in [
            "sessionRequireClientSASLAuth=true\nzookeeper.sessionRequireClientSASLAuth=false",
            "zookeeper.sessionRequireClientSASLAuth=true",
            "zookeeper.ssl.trustStore.location=/t.p12",
            "zookeeper.superUser=eve",
            "zookeeper.DigestAuthenticationProvider.superDigest=super:abc=",
            "zookeeper.enforce.auth.enabled=yes",
        ] {
            let Err(ConfigError::Refused(r)) = Config::from_properties(&format!("{sasl}{line}\n"))
            else {
                panic!("{line}: not refused")
            };
            let key = line.lines().last().unwrap().split('=').next().unwrap();
            assert_eq!(r[0].key, key, "{line}");
            assert!(r[0].reason.contains("ignores"), "{line}: {}", r[0].reason);
        }
        // A flag is read; zoo.cfg's own key beats it, as in ZooKeeper.
        let flag = |k: &str, v: &str| vec![(format!("zookeeper.{k}"), v.to_owned())];
        let c = Config::from_properties_with(
            "dataDir=/d\nssl.clientAuth=want\n",
            &flag("ssl.clientAuth", "need"),
        )
        .unwrap();
        assert_eq!(crate::tls::property(&c, "ssl.clientAuth"), Some("want"));
        let c =
            Config::from_properties_with("dataDir=/d\n", &flag("ssl.clientAuth", "need")).unwrap();
        assert_eq!(crate::tls::property(&c, "ssl.clientAuth"), Some("need"));
        // Not a security key: fills a gap, loses to a flag or the bare key.
        let c = Config::from_properties("dataDir=/d\nzookeeper.forceSync=no\n").unwrap();
        assert!(!c.force_sync);
        let c =
            Config::from_properties("dataDir=/d\nforceSync=yes\nzookeeper.forceSync=no\n").unwrap();
        assert!(c.force_sync);
        assert!(c.notes.iter().any(
            |n| n.key == "zookeeper.forceSync" && n.message.contains("overridden by forceSync")
        ));
    }

    /// `-D` flags for keys ZooKeeper reads only from zoo.cfg are ignored, with a warning
    /// (found by a break-it review: `-Dzookeeper.portUnification=true` made a TLS quorum
    /// accept plaintext peers; ZooKeeper ignores the flag).
    #[test]
    fn flags_for_zoo_cfg_only_keys_are_ignored() {
        let flags = jvm_flag_properties(
            "-Dzookeeper.portUnification=true -Dzookeeper.sslQuorum=true -Dzookeeper.tickTime=5 -Dzookeeper.snapCount=7",
        );
        let c = Config::from_properties_with("dataDir=/d\n", &flags).unwrap();
        assert_ne!(c.tick_time_ms, 5);
        assert_eq!(crate::tls::property(&c, "portUnification"), None);
        assert_eq!(crate::tls::property(&c, "sslQuorum"), None);
        for k in [
            "zookeeper.portUnification",
            "zookeeper.sslQuorum",
            "zookeeper.tickTime",
        ] {
            assert!(
                c.notes
                    .iter()
                    .any(|n| n.key == k && n.message.contains("only from zoo.cfg")),
                "{k}"
            );
        }
        assert!(!c.notes.iter().any(|n| n.key == "zookeeper.snapCount"));
    }

    /// `authProvider.N` lines of one N replace each other (ZooKeeper: the last system
    /// property of that name): a shadowed digest provider does not come back after
    /// `DigestAuthenticationProvider.enabled=false` (found by a break-it review).
    #[test]
    fn auth_providers_of_one_key_replace_each_other() {
        let c = Config::from_properties(
            "dataDir=/d\nDigestAuthenticationProvider.enabled=false\nauthProvider.1=org.apache.zookeeper.server.auth.DigestAuthenticationProvider\nauthProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n",
        )
        .unwrap();
        assert!(!c.auth.providers.digest && c.auth.providers.sasl);
        // An empty switch reads as false, as in ZooKeeper.
        let c = Config::from_properties(
            "dataDir=/d\nenforce.auth.enabled=\nsessionRequireClientSASLAuth=\n",
        )
        .unwrap();
        assert_eq!(c.auth.enforce_schemes, None);
    }

    /// A lone CR ends a line, as in Java's `Properties` (found by a break-it review:
    /// `note=x\rsuperUser=bob` made bob a super user on ZooKeeper, not on rzk).
    #[test]
    fn a_lone_cr_ends_a_line() {
        assert_eq!(
            parse_properties("note=x\rsuperUser=bob\r\na=1\n\rb=2"),
            [
                ("note".to_owned(), "x".to_owned()),
                ("superUser".to_owned(), "bob".to_owned()),
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "2".to_owned()),
            ]
        );
        let c = Config::from_properties("dataDir=/d\rsuperUser=bob\r").unwrap();
        assert!(c.auth.is_sasl_super_user("bob"));
    }

    /// An enforcement switch that is neither true nor false stops start-up: ZooKeeper
    /// reads `yes` as false and enforces nothing.
    #[test]
    fn enforcement_switches_must_be_true_or_false() {
        let sasl = "dataDir=/d\nauthProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n";
        for line in [
            "sessionRequireClientSASLAuth=yes",
            "enforce.auth.enabled=1\nenforce.auth.schemes=sasl",
        ] {
            let e = Config::from_properties(&format!("{sasl}{line}\n"))
                .unwrap_err()
                .to_string();
            let key = line.split('=').next().unwrap();
            assert!(
                e.contains(key) && e.contains("true or false"),
                "{line}: {e}"
            );
        }
        for line in [
            "sessionRequireClientSASLAuth=FALSE",
            "enforce.auth.enabled=false",
        ] {
            let c = Config::from_properties(&format!("{sasl}{line}\n")).unwrap();
            assert_eq!(c.auth.enforce_schemes, None, "{line}");
        }
    }

    /// ZooKeeper loads audit.impl.class only with audit.enable=true: a leftover class
    /// name (3.6's Log4jAuditLogger) in a config with auditing off starts (found by a
    /// break-it review: rzk refused to start).
    #[test]
    fn audit_logger_class_is_checked_only_when_auditing() {
        let off = "dataDir=/d\naudit.impl.class=org.apache.zookeeper.audit.Log4jAuditLogger\n";
        let c = Config::from_properties(off).unwrap();
        assert!(c
            .notes
            .iter()
            .any(|n| n.key == "audit.impl.class" && n.message.contains("ignored")));
        let on = format!("{off}audit.enable=true\n");
        let Err(ConfigError::Refused(r)) = Config::from_properties(&on) else {
            panic!("a class rzk cannot load with auditing on is refused")
        };
        assert_eq!(r[0].key, "audit.impl.class");
    }
}
