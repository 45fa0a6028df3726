//! rzk-sim: a deterministic simulator of an rzk ensemble.
