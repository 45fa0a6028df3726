//! Every ZooKeeper 3.8 server key rzk knows, and what rzk does with it.
//!
//! zoo.cfg keys and the `zookeeper.*` system properties ZooKeeper reads (rzk accepts both
//! spellings, docs/CONFIG.md §1) fall in one of four classes:
//!
//! * [`KeyClass::Implemented`]: read and honoured (config.rs, storage/settings.rs, auth,
//!   tls).
//! * [`KeyClass::NoEffect`]: accepted, does nothing in rzk, and that is harmless; the
//!   reason is logged once at start-up.
//! * [`KeyClass::Refused`]: security-relevant and not implemented: start-up stops with
//!   an error naming the key (fail closed). A server that silently ran without the
//!   protection the operator asked for would be worse than one that does not start.
//! * TLS keys: [`tls_key`], one marked group: implemented, but for the few settings
//!   rzk cannot honour, which are refused.
//!
//! Anything else is unknown: a warning, with a did-you-mean for near misses
//! ([`suggest`]); a near miss of a security-relevant key is refused instead.
//! docs/CONFIG.md §5 is this table for humans; keep the two in step.

/// What rzk does with one key (given its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClass {
    /// Read and honoured by rzk.
    Implemented,
    /// Accepted without effect; the reason says why that is harmless.
    NoEffect(&'static str),
    /// Security-relevant and not implemented: start-up stops.
    Refused(String),
}

/// How a table entry names its keys.
#[derive(Debug, Clone, Copy)]
enum Name {
    /// Exactly this key.
    Exact(&'static str),
    /// Every key starting with this prefix.
    Prefix(&'static str),
}

/// What a table entry does with a key's value.
#[derive(Debug, Clone, Copy)]
enum Rule {
    Implemented,
    NoEffect(&'static str),
    Refused(&'static str),
    /// Decided by a function of the value.
    Check(fn(&str) -> KeyClass),
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
struct Entry {
    name: Name,
    rule: Rule,
    /// Whether a near miss of this name must stop start-up (see [`suggest`]).
    security: bool,
}

const fn imp(name: &'static str) -> Entry {
    Entry {
        name: Name::Exact(name),
        rule: Rule::Implemented,
        security: false,
    }
}

const fn sec(name: &'static str) -> Entry {
    Entry {
        name: Name::Exact(name),
        rule: Rule::Implemented,
        security: true,
    }
}

const fn none(name: &'static str, why: &'static str) -> Entry {
    Entry {
        name: Name::Exact(name),
        rule: Rule::NoEffect(why),
        security: false,
    }
}

const fn refuse(name: Name, why: &'static str) -> Entry {
    Entry {
        name,
        rule: Rule::Refused(why),
        security: true,
    }
}

const fn check(name: Name, f: fn(&str) -> KeyClass, security: bool) -> Entry {
    Entry {
        name,
        rule: Rule::Check(f),
        security,
    }
}

const TUNING: &str = "a tuning knob of ZooKeeper's Java internals; rzk has no equivalent";
const THROTTLE: &str =
    "ZooKeeper's request/connection throttling is not implemented; rzk bounds each connection's outstanding requests and per-IP connections (maxClientCnxns)";
const METRICS_TUNING: &str =
    "a tuning knob of ZooKeeper's Prometheus provider's worker threads and summary rotation; rzk's summaries are lock-free and never rotate";
const JVM: &str = "a JVM setting; rzk is not a JVM program";
const KERBEROS: &str =
    "not a Kerberos setting rzk knows: it runs Kerberos (GSSAPI) on the client port from the JAAS server section, with kerberos.removeHostFromPrincipal and kerberos.removeRealmFromPrincipal (docs/CONFIG.md §7)";
const QUORUM_KERBEROS: &str =
    "Kerberos (GSSAPI) between servers is not supported by rzk: quorum SASL is DIGEST-MD5 only (docs/CONFIG.md §7)";
/// The table. The first entry whose name matches wins, so exact names come before the
/// prefixes that would also match them.
const TABLE: &[Entry] = &[
    // --- Implemented: config.rs ------------------------------------------------------
    imp("dataDir"),
    imp("dataLogDir"),
    imp("clientPort"),
    imp("clientPortAddress"),
    imp("clientPortListenBacklog"),
    imp("tickTime"),
    imp("initLimit"),
    imp("syncLimit"),
    imp("minSessionTimeout"),
    imp("maxSessionTimeout"),
    imp("maxClientCnxns"),
    imp("maxCnxns"),
    imp("jute.maxbuffer"),
    sec("4lw.commands.whitelist"),
    imp("extendedTypesEnabled"),
    imp("forceSync"),
    imp("snapCount"),
    imp("preAllocSize"),
    imp("autopurge.snapRetainCount"),
    imp("autopurge.purgeInterval"),
    imp("standaloneEnabled"),
    imp("reconfigEnabled"),
    // --- Implemented: config.rs + reconfig/ (membership from a dynamic file) ----------
    imp("dynamicConfigFile"),
    imp("version"),
    // --- Implemented: readonly.rs, session/local.rs ------------------------------------
    imp("readonlymode.enabled"),
    imp("localSessionsEnabled"),
    imp("localSessionsUpgradingEnabled"),
    imp("electionAlg"),
    imp("quorumListenOnAllIPs"),
    imp("znode.container.checkIntervalMs"),
    imp("znode.container.maxPerMinute"),
    imp("znode.container.maxNeverUsedIntervalMs"),
    // --- Implemented: storage/settings.rs ---------------------------------------------
    imp("txnLogSizeLimitInKb"),
    imp("snapSizeLimitInKb"),
    imp("snapshot.compression.method"),
    imp("snapshot.trust.empty"),
    imp("datadir.autocreate"),
    imp("db.autocreate"),
    imp("digest.enabled"),
    // --- Implemented: authentication (auth/, net/conn.rs) -------------------------------
    sec("DigestAuthenticationProvider.superDigest"),
    sec("DigestAuthenticationProvider.enabled"),
    check(
        Name::Exact("DigestAuthenticationProvider.digestAlg"),
        digest_alg,
        true,
    ),
    check(Name::Prefix("authProvider."), auth_provider, true),
    sec("superUser"),
    Entry {
        name: Name::Prefix("superUser."),
        rule: Rule::Implemented,
        security: true,
    },
    sec("SASLAuthenticationProvider.superPassword"),
    sec("sasl.serverconfig"),
    sec("allowSaslFailedClients"),
    sec("letAnySaslUserDoX"),
    sec("enforce.auth.enabled"),
    sec("enforce.auth.schemes"),
    sec("sessionRequireClientSASLAuth"),
    sec("java.security.auth.login.config"),
    // Kerberos on the client port (auth/settings.rs, rzk-sasl's gssapi).
    sec("kerberos.removeHostFromPrincipal"),
    sec("kerberos.removeRealmFromPrincipal"),
    sec("security.auth_to_local"),
    sec("requireKerberosConfig"),
    // --- Refused: security-relevant, not implemented ----------------------------------
    refuse(Name::Prefix("kerberos."), KERBEROS),
    refuse(
        Name::Exact("quorum.auth.kerberos.servicePrincipal"),
        QUORUM_KERBEROS,
    ),
    // SASL DIGEST-MD5 between members (net/peer/quorum_sasl.rs).
    sec("quorum.auth.enableSasl"),
    sec("quorum.auth.learnerRequireSasl"),
    sec("quorum.auth.serverRequireSasl"),
    sec("quorum.auth.learner.saslLoginContext"),
    sec("quorum.auth.server.saslLoginContext"),
    // --- Implemented: audit.rs (audit log), prep.rs (quota enforcement) ---------------
    sec("audit.enable"),
    check(Name::Exact("audit.impl.class"), audit_logger, true),
    imp("enforceQuota"),
    // --- Implemented: zab/quorum.rs (hierarchical quorums, read in config.rs) ----------
    Entry {
        name: Name::Prefix("group"),
        rule: Rule::Implemented,
        security: false,
    },
    Entry {
        name: Name::Prefix("weight"),
        rule: Rule::Implemented,
        security: false,
    },
    none(
        "ensembleAuthName",
        "read only by the EnsembleAuthenticationProvider, which rzk refuses as an authProvider",
    ),
    // --- Accepted without effect -----------------------------------------------------
    none("globalOutstandingLimit", THROTTLE),
    none(
        "commitLogCount",
        "fixed at 500 committed proposals kept for learner sync",
    ),
    none(
        "snapshotSizeFactor",
        "rzk syncs learners from the committed-proposal window or a snapshot only",
    ),
    none(
        "fsync.warningthresholdms",
        "rzk logs no fsync timing warnings",
    ),
    none("maxResponseCacheSize", TUNING),
    none("maxGetChildrenResponseCacheSize", TUNING),
    none(
        "syncEnabled",
        "observers always persist the transactions they are sent",
    ),
    none(
        "observer.syncEnabled",
        "observers always persist the transactions they are sent",
    ),
    none(
        "emulate353TTLNodes",
        "rzk always uses ZooKeeper 3.5.4+ TTL session ids",
    ),
    none("watchManagerName", TUNING),
    none("watcherCleanThreadsNum", TUNING),
    none("watcherCleanThreshold", TUNING),
    none("watcherCleanIntervalInSeconds", TUNING),
    none("maxInProcessingDeadWatchers", TUNING),
    none("bitHashCacheSize", TUNING),
    none(
        "fastleader.minNotificationInterval",
        "election timing is fixed (docs/QUORUM-PROTOCOL.md §9)",
    ),
    none(
        "fastleader.maxNotificationInterval",
        "election timing is fixed (docs/QUORUM-PROTOCOL.md §9)",
    ),
    none("connectionMaxTokens", THROTTLE),
    none("connectionTokenFillTime", THROTTLE),
    none("connectionTokenFillCount", THROTTLE),
    none("connectionFreezeTime", THROTTLE),
    none("connectionDropIncrease", THROTTLE),
    none("connectionDropDecrease", THROTTLE),
    none("connectionDecreaseRatio", THROTTLE),
    Entry {
        name: Name::Prefix("connection_throttle_"),
        rule: Rule::NoEffect(THROTTLE),
        security: false,
    },
    none("flushDelay", TUNING),
    none("maxWriteQueuePollTime", TUNING),
    none("maxBatchSize", TUNING),
    none("requestThrottleLimit", THROTTLE),
    none("requestThrottleStallTime", THROTTLE),
    none("requestThrottleDropStale", THROTTLE),
    none("requestStaleLatencyCheck", THROTTLE),
    none("requestStaleConnectionCheck", THROTTLE),
    none("request_throttle_max_requests", THROTTLE),
    none("request_throttle_stall_time", THROTTLE),
    none("request_throttle_drop_stale", THROTTLE),
    none("request_stale_latency_check", THROTTLE),
    none("request_stale_connection_check", THROTTLE),
    none("request_throttler.shutdownTimeout", THROTTLE),
    none("throttled_op_wait_time", THROTTLE),
    none("throttledOpWaitTime", THROTTLE),
    none("advancedFlowControlEnabled", TUNING),
    none("netty.advancedFlowControl.enabled", TUNING),
    none(
        "enableEagerACLCheck",
        "ACLs are checked once, on the leader, before a write is proposed",
    ),
    none("maxConcurrentSnapSyncs", TUNING),
    none("maxConcurrentDiffSyncs", TUNING),
    none("leader.maxConcurrentSnapSyncs", TUNING),
    none("leader.maxConcurrentDiffSyncs", TUNING),
    none("largeRequestMaxBytes", THROTTLE),
    none("largeRequestThreshold", THROTTLE),
    none("outstandingHandshake.limit", TUNING),
    none("netty.server.outstandingHandshake.limit", TUNING),
    none("learner.closeSocketAsync", TUNING),
    none("leader.closeSocketAsync", TUNING),
    none("learner.asyncSending", TUNING),
    none(
        "forward_learner_requests_to_commit_processor_disabled",
        TUNING,
    ),
    none("maxTimeToWaitForEpoch", TUNING),
    none("leader.maxTimeToWaitForEpoch", TUNING),
    none(
        "connectToLearnerMasterLimit",
        "a learner tries its leader or learner master 5 times within initLimit",
    ),
    // node/driver.rs `leader_connect_retry` reads it from Config::unknown.
    imp("leaderConnectDelayDuringRetryMs"),
    none("leaderServes", "the leader always serves clients"),
    none(
        "cnxTimeout",
        "election connection timing is fixed (docs/QUORUM-PROTOCOL.md §9)",
    ),
    none(
        "quorumCnxnTimeoutMs",
        "quorum connection timing is fixed (docs/QUORUM-PROTOCOL.md §9)",
    ),
    none("tcpKeepAlive", TUNING),
    none("clientTcpKeepAlive", TUNING),
    none("electionPortBindRetry", TUNING),
    none("observer.reconnectDelayMs", TUNING),
    none("observer.election.DelayMs", TUNING),
    none(
        "multiAddress.enabled",
        "server.N lines with several addresses (|) are refused when parsed",
    ),
    none("multiAddress.reachabilityCheckTimeoutMs", TUNING),
    none("multiAddress.reachabilityCheckEnabled", TUNING),
    none("follower.skipLearnerRequestToNextProcessor", TUNING),
    none("jute.maxbuffer.extrasize", TUNING),
    none(
        "skipACL",
        "ACLs are always checked (the safe side of this switch)",
    ),
    imp("nio.sessionlessCnxnTimeout"),
    none("nio.numSelectorThreads", TUNING),
    none("nio.numWorkerThreads", TUNING),
    none("commitProcessor.numWorkerThreads", TUNING),
    none("commitProcessor.maxReadBatchSize", TUNING),
    none("commitProcessor.maxCommitBatchSize", TUNING),
    none("messageTracker.BufferSize", TUNING),
    none("messageTracker.Enabled", TUNING),
    // The AdminServer (admin/settings.rs reads these from Config::unknown).
    imp("admin.enableServer"),
    imp("admin.serverAddress"),
    imp("admin.serverPort"),
    imp("admin.commandURL"),
    imp("admin.idleTimeout"),
    none("admin.httpVersion", "rzk's AdminServer speaks HTTP/1.1"),
    // HTTPS on the AdminServer with the ssl.quorum.* key store (tls::admin_server_config).
    sec("admin.portUnification"),
    sec("admin.forceHttps"),
    // Metrics (metrics/settings.rs reads these from Config::unknown); an unknown
    // provider class stops start-up.
    check(
        Name::Exact("metricsProvider.className"),
        metrics_provider,
        false,
    ),
    imp("metricsProvider.httpHost"),
    imp("metricsProvider.httpPort"),
    imp("metricsProvider.exportJvmInfo"),
    Entry {
        name: Name::Prefix("metricsProvider."),
        rule: Rule::NoEffect(METRICS_TUNING),
        security: false,
    },
    imp("jvm.pause.monitor"),
    imp("jvm.pause.sleep.time.ms"),
    imp("jvm.pause.info-threshold.ms"),
    imp("jvm.pause.warn-threshold.ms"),
    none(
        "oraclePath",
        "rzk has no quorum oracle for two-voter ensembles",
    ),
    none(
        "peerType",
        "the role comes from this server's server.N line",
    ),
    // node/observer_master.rs reads it from Config::unknown.
    imp("observerMasterPort"),
    none(
        "closeSessionTxn.enabled",
        "rzk always logs closeSession with the paths of its ephemerals",
    ),
    none(
        "serializeLastProcessedZxid.enabled",
        "rzk never writes the last processed zxid into snapshots",
    ),
    none("quorum.cnxn.threads.size", TUNING),
    // ZooKeeper client-side properties, sometimes shared with a server's JVM flags.
    none("sasl.client", "a ZooKeeper client property"),
    none("sasl.clientconfig", "a ZooKeeper client property"),
    none("sasl.client.username", "a ZooKeeper client property"),
    none(
        "sasl.client.canonicalize.hostname",
        "a ZooKeeper client property",
    ),
    none("server.principal", "a ZooKeeper client property"),
    none("server.realm", "a ZooKeeper client property"),
    none("clientCnxnSocket", "a ZooKeeper client property"),
    none("client.secure", "a ZooKeeper client property"),
    // Process settings ZooKeeper's scripts pass as system properties.
    none("log.dir", "rzk logs to stderr (RUST_LOG / RZK_LOG filter)"),
    none("log.file", "rzk logs to stderr (RUST_LOG / RZK_LOG filter)"),
    none(
        "root.logger",
        "rzk logs to stderr (RUST_LOG / RZK_LOG filter)",
    ),
    none(
        "console.threshold",
        "rzk logs to stderr (RUST_LOG / RZK_LOG filter)",
    ),
    none("jmx.log4j.disable", JVM),
    none("datadir.autocreate.warning", TUNING),
];

// ----------------------------------------------------------------------------------
// TLS GROUP (crates/server/src/tls/). The keys tls/ reads count as implemented: they
// stay in `Config::unknown`, where `tls::property` finds and validates them (a bad store
// or setting stops start-up there). What tls/ cannot honour is refused here: unknown
// `ssl.*` sub-keys (a misspelt store or password would otherwise leave TLS
// unconfigured), certificate reloading, foreign connection factories.
// ----------------------------------------------------------------------------------

/// Whether ZooKeeper reads `bare` only from zoo.cfg (its `QuorumPeerConfig` parses it
/// there, so a `-Dzookeeper.<bare>` system property is never read): `dataDir`,
/// `clientPort`, `sslQuorum`, `portUnification`, `quorum.auth.*`, `server.N`, ...
pub fn is_zoo_cfg_only(bare: &str) -> bool {
    const EXACT: &[&str] = &[
        "autopurge.purgeInterval",
        "autopurge.snapRetainCount",
        "clientPort",
        "clientPortAddress",
        "clientPortListenBacklog",
        "connectToLearnerMasterLimit",
        "dataDir",
        "dataLogDir",
        "dynamicConfigFile",
        "electionAlg",
        "initLimit",
        "localSessionsEnabled",
        "localSessionsUpgradingEnabled",
        "maxClientCnxns",
        "maxSessionTimeout",
        "minSessionTimeout",
        "multiAddress.enabled",
        "multiAddress.reachabilityCheckEnabled",
        "multiAddress.reachabilityCheckTimeoutMs",
        "observerMasterPort",
        "oraclePath",
        "peerType",
        "portUnification",
        "quorum.cnxn.threads.size",
        "quorumListenOnAllIPs",
        "reconfigEnabled",
        "secureClientPort",
        "secureClientPortAddress",
        "sslQuorum",
        "sslQuorumReloadCertFiles",
        "standaloneEnabled",
        "syncEnabled",
        "syncLimit",
        "tickTime",
    ];
    EXACT.contains(&bare)
        || [
            "server.",
            "group",
            "weight",
            "metricsProvider.",
            "quorum.auth.",
            "jvm.pause.",
        ]
        .iter()
        .any(|p| bare.starts_with(p))
}

/// Whether `bare` is security-relevant: a TLS key, an authentication or SASL key, a
/// secret, or a key refused because it asks for protection rzk lacks.
pub fn is_security_key(bare: &str) -> bool {
    is_tls_key(bare) || is_secret_key(bare) || entry_of(bare).is_some_and(|e| e.security)
}

/// Whether `bare` belongs to the TLS group.
pub fn is_tls_key(bare: &str) -> bool {
    bare.starts_with("ssl.")
        || matches!(
            bare,
            "secureClientPort"
                | "secureClientPortAddress"
                | "sslQuorum"
                | "sslQuorumReloadCertFiles"
                | "portUnification"
                | "client.portUnification"
                | "client.certReload"
                | "serverCnxnFactory"
                | "X509AuthenticationProvider.superUser"
                | "fips-mode"
                | "netty.server.earlyDropSecureConnectionHandshakes"
        )
}

/// The `ssl.` / `ssl.quorum.` sub-keys `tls::TlsSettings` reads. `crl`, `ocsp`,
/// `context.supplier.class` and `authProvider` are read to be refused when they ask for
/// something rzk lacks (the error names the key).
pub const TLS_SUBKEYS: &[&str] = &[
    "keyStore.location",
    "keyStore.password",
    "keyStore.passwordPath",
    "keyStore.type",
    "trustStore.location",
    "trustStore.password",
    "trustStore.passwordPath",
    "trustStore.type",
    "protocol",
    "enabledProtocols",
    "ciphersuites",
    "clientAuth",
    "hostnameVerification",
    "handshakeDetectionTimeoutMillis",
    "crl",
    "ocsp",
    "context.supplier.class",
    "authProvider",
];

/// ZooKeeper's Netty connection factory (what ZooKeeper needs for TLS).
pub const NETTY_FACTORY: &str = "org.apache.zookeeper.server.NettyServerCnxnFactory";
/// ZooKeeper's NIO connection factory.
pub const NIO_FACTORY: &str = "org.apache.zookeeper.server.NIOServerCnxnFactory";

/// The TLS group's verdict (see the banner above). Client-port TLS (`secureClientPort`,
/// `client.portUnification`, `ssl.*`; `tls::ClientTlsPlan`), the x509 provider and quorum
/// TLS (`sslQuorum`, `portUnification`, `ssl.quorum.*`; `tls::QuorumTls`) are
/// implemented, certificate reloading too. A Netty-only switch turned on is refused.
pub fn tls_key(bare: &str, value: &str) -> KeyClass {
    const WHY: &str = "a Netty-only TLS setting rzk's networking has no equivalent of";
    if let Some(sub) = bare.strip_prefix("ssl.") {
        let sub = sub.strip_prefix("quorum.").unwrap_or(sub);
        if TLS_SUBKEYS.contains(&sub) {
            return KeyClass::Implemented;
        }
        return KeyClass::Refused(format!(
            "{bare} is not a TLS setting rzk knows (it reads ssl.[quorum.]{})",
            TLS_SUBKEYS.join(", ssl.[quorum.]")
        ));
    }
    match bare {
        "secureClientPort"
        | "secureClientPortAddress"
        | "client.portUnification"
        | "sslQuorum"
        | "portUnification"
        | "sslQuorumReloadCertFiles"
        | "client.certReload"
        | "X509AuthenticationProvider.superUser" => KeyClass::Implemented,
        "serverCnxnFactory" => match value.trim() {
            NETTY_FACTORY => KeyClass::Implemented,
            NIO_FACTORY => KeyClass::NoEffect(
                "rzk has its own networking, which serves what NIOServerCnxnFactory does",
            ),
            other => KeyClass::Refused(format!(
                "{other} is not one of ZooKeeper's connection factories"
            )),
        },
        "netty.server.earlyDropSecureConnectionHandshakes" if !java_true(value) => {
            KeyClass::NoEffect("a TLS switch set to false")
        }
        "fips-mode" => KeyClass::NoEffect("rzk's TLS is configured by the ssl.* keys"),
        _ => KeyClass::Refused(WHY.to_owned()),
    }
}

// ----------------------------------------------------------------------------------

/// `Boolean.parseBoolean`: true only for "true" in any case.
pub fn java_true(v: &str) -> bool {
    v.trim().eq_ignore_ascii_case("true")
}

/// The authentication provider classes rzk has built in, by class name.
pub const DIGEST_PROVIDER: &str = "org.apache.zookeeper.server.auth.DigestAuthenticationProvider";
/// ZooKeeper's ip provider class.
pub const IP_PROVIDER: &str = "org.apache.zookeeper.server.auth.IPAuthenticationProvider";
/// ZooKeeper's SASL provider class: registers the `sasl` scheme.
pub const SASL_PROVIDER: &str = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";
/// ZooKeeper's x509 provider class (TLS group).
pub const X509_PROVIDER: &str = "org.apache.zookeeper.server.auth.X509AuthenticationProvider";

fn auth_provider(class: &str) -> KeyClass {
    match class.trim() {
        DIGEST_PROVIDER | IP_PROVIDER | SASL_PROVIDER => KeyClass::Implemented,
        X509_PROVIDER => KeyClass::Implemented,
        other if other.to_ascii_lowercase().contains("kerberos") => KeyClass::Refused(format!(
            "authentication provider class {other} cannot be loaded: Kerberos clients get sasl ids from {SASL_PROVIDER} (docs/CONFIG.md §7)"
        )),
        other => KeyClass::Refused(format!(
            "authentication provider class {other} cannot be loaded: rzk loads no Java classes and has only the ip, digest, sasl and x509 providers built in"
        )),
    }
}

/// ZooKeeper's one audit logger class; rzk writes the same lines (`audit.rs`).
pub const SLF4J_AUDIT_LOGGER: &str = "org.apache.zookeeper.audit.Slf4jAuditLogger";

fn audit_logger(class: &str) -> KeyClass {
    match class.trim() {
        SLF4J_AUDIT_LOGGER => KeyClass::Implemented,
        other => KeyClass::Refused(format!(
            "audit logger class {other} cannot be loaded: rzk loads no Java classes; its audit log is ZooKeeper's Slf4jAuditLogger format on the `audit` log target"
        )),
    }
}

fn metrics_provider(class: &str) -> KeyClass {
    match crate::metrics::settings::provider_class(class) {
        Ok(_) => KeyClass::Implemented,
        Err(why) => KeyClass::Refused(why),
    }
}

fn digest_alg(alg: &str) -> KeyClass {
    if crate::auth::digest_alg::DigestAlg::from_java_name(alg).is_some() {
        KeyClass::Implemented
    } else {
        KeyClass::Refused(format!(
            "ACL digest algorithm {} is not supported: rzk computes digest ids with SHA1, SHA-224/256/384/512, SHA-512/224, SHA-512/256, SHA3-224/256/384/512 or MD5",
            alg.trim()
        ))
    }
}

fn entry_of(bare: &str) -> Option<&'static Entry> {
    TABLE.iter().find(|e| match e.name {
        Name::Exact(n) => n == bare,
        Name::Prefix(p) => bare.starts_with(p),
    })
}

/// What rzk does with key `bare` (without the `zookeeper.` prefix) set to `value`;
/// `None` for a key rzk does not know. `server.N` lines are not looked up here.
pub fn classify(bare: &str, value: &str) -> Option<KeyClass> {
    if is_tls_key(bare) {
        return Some(tls_key(bare, value));
    }
    // A key naming Kerberos/GSSAPI in its value asks for a login rzk does not do that
    // way: its Kerberos server is set up from the JAAS server section only.
    if value.contains("GSSAPI") || value.contains("Krb5LoginModule") {
        return Some(KeyClass::Refused(format!(
            "{bare} names Kerberos: rzk sets up Kerberos (GSSAPI) only from the JAAS server section's Krb5LoginModule, on the client port (docs/CONFIG.md §7)"
        )));
    }
    let e = entry_of(bare)?;
    Some(match e.rule {
        Rule::Implemented => KeyClass::Implemented,
        Rule::NoEffect(why) => KeyClass::NoEffect(why),
        Rule::Refused(why) => KeyClass::Refused(why.to_owned()),
        Rule::Check(f) => f(value),
    })
}

/// A known key close to `bare` (an unknown key), and whether that key is
/// security-relevant. Case-insensitive Damerau-Levenshtein distance, at most 1 for short
/// names and 2 for names of 8 characters or more.
pub fn suggest(bare: &str) -> Option<(&'static str, bool)> {
    let lower = bare.to_ascii_lowercase();
    let max = if lower.len() >= 8 { 2 } else { 1 };
    let mut best: Option<(usize, &'static str, bool)> = None;
    let candidates = TABLE
        .iter()
        .filter_map(|e| match e.name {
            Name::Exact(n) => Some((n, e.security)),
            Name::Prefix(_) => None,
        })
        .chain(TLS_NAMES.iter().map(|n| (*n, true)));
    for (name, security) in candidates {
        let d = strsim::damerau_levenshtein(&lower, &name.to_ascii_lowercase());
        if d <= max && best.is_none_or(|(bd, _, _)| d < bd) {
            best = Some((d, name, security));
        }
    }
    best.map(|(_, n, s)| (n, s))
}

/// TLS key names offered as did-you-mean targets.
const TLS_NAMES: &[&str] = &[
    "secureClientPort",
    "secureClientPortAddress",
    "sslQuorum",
    "portUnification",
    "client.portUnification",
    "serverCnxnFactory",
    "ssl.keyStore.location",
    "ssl.keyStore.password",
    "ssl.trustStore.location",
    "ssl.trustStore.password",
    "ssl.clientAuth",
    "ssl.quorum.keyStore.location",
    "ssl.quorum.keyStore.password",
    "ssl.quorum.trustStore.location",
    "ssl.quorum.trustStore.password",
];

/// Whether a key's value is a secret: its name contains `password`, `passwd` or
/// `secret` (any case). Such values never appear in logs, errors or admin output.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    // superDigest: an unsalted SHA-1 of the super password, open to an offline guess
    // (ZooKeeper shows it in its AdminServer; rzk does not).
    k.contains("password")
        || k.contains("passwd")
        || k.contains("secret")
        || k.contains("superdigest")
}

/// What may be shown of `value` of `key`: the value itself, or `********` for a secret.
pub fn shown<'a>(key: &str, value: &'a str) -> &'a str {
    if is_secret_key(key) {
        REDACTED
    } else {
        value
    }
}

/// What is shown in place of a secret.
pub const REDACTED: &str = "********";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(classify("tickTime", "2000"), Some(KeyClass::Implemented));
        assert_eq!(
            classify("authProvider.1", SASL_PROVIDER),
            Some(KeyClass::Implemented)
        );
        assert!(matches!(
            classify("authProvider.1", "com.example.MyProvider"),
            Some(KeyClass::Refused(_))
        ));
        assert_eq!(
            classify("authProvider.x509", X509_PROVIDER),
            Some(KeyClass::Implemented)
        );
        assert_eq!(
            classify("kerberos.removeHostFromPrincipal", "true"),
            Some(KeyClass::Implemented)
        );
        // A misspelt Kerberos key is refused rather than ignored.
        assert!(matches!(
            classify("kerberos.removeHostFromPrinciple", "true"),
            Some(KeyClass::Refused(_))
        ));
        assert_eq!(
            classify("quorum.auth.enableSasl", "true"),
            Some(KeyClass::Implemented)
        );
        assert_eq!(
            classify("ssl.keyStore.location", "/x"),
            Some(KeyClass::Implemented)
        );
        assert_eq!(
            classify("ssl.quorum.keyStore.location", "/x"),
            Some(KeyClass::Implemented)
        );
        assert_eq!(classify("sslQuorum", "true"), Some(KeyClass::Implemented));
        assert_eq!(
            classify("sslQuorumReloadCertFiles", "true"),
            Some(KeyClass::Implemented)
        );
        assert_eq!(
            classify("client.certReload", "true"),
            Some(KeyClass::Implemented)
        );
        assert!(matches!(
            classify("ssl.keystore.location", "/x"),
            Some(KeyClass::Refused(_))
        ));
        assert_eq!(
            classify("secureClientPort", "2281"),
            Some(KeyClass::Implemented)
        );
        assert!(matches!(
            classify("netty.server.earlyDropSecureConnectionHandshakes", "false"),
            Some(KeyClass::NoEffect(_))
        ));
        assert!(matches!(
            classify(
                "serverCnxnFactory",
                "org.apache.zookeeper.server.NettyServerCnxnFactory"
            ),
            Some(KeyClass::Implemented)
        ));
        assert!(matches!(
            classify(
                "serverCnxnFactory",
                "org.apache.zookeeper.server.NIOServerCnxnFactory"
            ),
            Some(KeyClass::NoEffect(_))
        ));
        assert_eq!(
            classify("DigestAuthenticationProvider.digestAlg", "SHA3-256"),
            Some(KeyClass::Implemented)
        );
        assert!(matches!(
            classify("DigestAuthenticationProvider.digestAlg", "MD2"),
            Some(KeyClass::Refused(_))
        ));
        assert_eq!(
            classify("DigestAuthenticationProvider.digestAlg", "SHA1"),
            Some(KeyClass::Implemented)
        );
        assert_eq!(
            classify("admin.serverPort", "8080"),
            Some(KeyClass::Implemented)
        );
        assert_eq!(
            classify("admin.forceHttps", "true"),
            Some(KeyClass::Implemented)
        );
        assert!(matches!(
            classify("admin.httpVersion", "11"),
            Some(KeyClass::NoEffect(_))
        ));
        assert!(matches!(
            classify("group.1", "1:2:3"),
            Some(KeyClass::Implemented)
        ));
        assert_eq!(classify("no.such.key", "1"), None);
    }

    #[test]
    fn did_you_mean() {
        assert_eq!(suggest("clientport"), Some(("clientPort", false)));
        assert_eq!(suggest("tickTme"), Some(("tickTime", false)));
        assert_eq!(
            suggest("enforce.auth.enable"),
            Some(("enforce.auth.enabled", true))
        );
        assert_eq!(suggest("secureClientPrt"), Some(("secureClientPort", true)));
        assert_eq!(suggest("completely.different"), None);
    }

    #[test]
    fn secrets() {
        assert!(is_secret_key("ssl.keyStore.password"));
        assert!(is_secret_key("SASLAuthenticationProvider.superPassword"));
        assert!(is_secret_key("my.Secret.thing"));
        assert!(is_secret_key(
            "zookeeper.DigestAuthenticationProvider.superDigest"
        ));
        assert!(!is_secret_key("tickTime"));
        assert_eq!(shown("a.password", "pw"), REDACTED);
        assert_eq!(shown("tickTime", "2000"), "2000");
    }
}
