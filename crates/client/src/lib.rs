//! rzk-client: an async ZooKeeper client.
