//! Curator-style recipes built on [`crate::Client`].
