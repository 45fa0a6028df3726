//! rzk-server: the coordination service.

// --- net engineer: configuration, sessions, persistence seam, networking, admin ---
pub mod config;
pub mod session;
pub mod storage;
