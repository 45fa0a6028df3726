//! The peer links of an ensemble member (sockets only; decisions are `zab/`'s, routing is
//! `node/driver.rs`'s):
//! * `election_net` — the election port: ZooKeeper's connection rule (only a connection
//!   initiated by the larger sid survives), framed notifications, newest-only send queues;
//! * `learner_net` — the quorum port: the leader's learner listener and the learner's
//!   connection, one ordered packet stream per link, SNAP streaming;
//! * `observer_master_net` — a follower's `observerMasterPort` listener for observers;
//! * `reachability` — which peers cannot be reached, and when that is worth a warning;
//! * `wire` — packet / frame / snapshot-stream encodings over async streams;
//! * `stream` — the sockets under both, plaintext or TLS (quorum TLS);
//! * `quorum_sasl` — SASL DIGEST-MD5 logins between members (`quorum.auth.*`) at the
//!   start of each connection.

pub mod election_net;
pub mod learner_net;
pub mod observer_master_net;
pub mod quorum_sasl;
pub mod reachability;
pub mod stream;
pub mod wire;
