//! rzk-server: the coordination service.
