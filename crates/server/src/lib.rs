//! rzk-server: the coordination service.

pub mod config;
pub mod session;
pub mod storage;
pub mod tls;

pub mod admin;
pub mod audit;
pub mod auth;
pub mod metrics;
pub mod net;
pub mod node;
pub mod prep;
pub mod read;
pub mod readonly;
pub mod reconfig;
pub mod reply;
pub mod request;
pub mod tree;
pub mod watch;
pub mod zab;
