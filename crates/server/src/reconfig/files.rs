//! The text of the configuration files a membership change writes, byte for byte as
//! ZooKeeper 3.8's `QuorumPeerConfig.writeDynamicConfig` and `editStaticConfig` write
//! them (on Java 9 and later, where `java.util.Properties` keeps its entries in a
//! `ConcurrentHashMap`).
//!
//! * The dynamic file (`zoo.cfg.dynamic.<hex version>`, and `zoo.cfg.dynamic.next` for a
//!   proposed membership): the membership text read as properties, one `key=value` line
//!   per entry, sorted as strings, joined by `\n` with no newline after the last; the
//!   `version` line only in `.next`.
//! * The static file (zoo.cfg): its entries read as properties (comments, blank lines
//!   and continuations gone, the last value of a repeated key), in the iteration order of
//!   the `Properties` table they were loaded into, as `key=value\n`; without `server.*`,
//!   `group*`, `weight*`, `dynamicConfigFile*`, `peerType*`, and `clientPort*` when the
//!   member's own `server.N` line names a client address; then
//!   `dynamicConfigFile=<canonical path of the new dynamic file>\n`.
//!
//! Owns: the texts and the emulation of the table's order. Never does IO
//! (`node/reconfig.rs` writes the files).

use crate::config::parse_properties;

/// The dynamic file's text for a membership text (`server.N=...` lines and
/// `version=<hex>`, as `reconfig::membership_text` renders it); `keep_version`: with the
/// `version=` line (`zoo.cfg.dynamic.next`), else without (`zoo.cfg.dynamic.<version>`).
pub fn dynamic_file_text(membership: &str, keep_version: bool) -> String {
    let mut lines: Vec<String> = java_properties_entries(membership)
        .into_iter()
        .filter(|(k, _)| keep_version || !k.starts_with("version"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    // Java's String.compareTo: UTF-16 code units; for the ASCII of these files that is
    // byte order.
    lines.sort();
    lines.join("\n")
}

/// zoo.cfg rewritten to point at `dynamic_path` (already canonical), from its current
/// text `old`; `erase_client`: the member's line in the new membership names a client
/// address, so `clientPort` and `clientPortAddress` go.
pub fn static_file_text(old: &str, dynamic_path: &str, erase_client: bool) -> String {
    let mut out = String::new();
    for (k, v) in java_properties_entries(old) {
        let dropped = k.starts_with("server.")
            || k.starts_with("group")
            || k.starts_with("weight")
            || k.starts_with("dynamicConfigFile")
            || k.starts_with("peerType")
            || (erase_client && k.starts_with("clientPort"));
        if !dropped {
            out.push_str(&format!("{k}={v}\n"));
        }
    }
    out.push_str(&format!("dynamicConfigFile={dynamic_path}\n"));
    out
}

/// The entries of a `.properties` text in the iteration order of the
/// `java.util.Properties` it would be loaded into: each key once, with its last value.
pub fn java_properties_entries(text: &str) -> Vec<(String, String)> {
    let pairs = parse_properties(text);
    let mut table = JavaTable::new();
    for (k, _) in &pairs {
        table.put(k);
    }
    table
        .keys()
        .into_iter()
        .map(|k| {
            let v = pairs
                .iter()
                .rev()
                .find(|(pk, _)| *pk == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            (k, v)
        })
        .collect()
}

/// Java's `String.hashCode` (over UTF-16 code units, wrapping).
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)))
}

/// The key order of a `java.util.concurrent.ConcurrentHashMap` built by single-threaded
/// `put`s, as `new Properties()` makes it (initial table of 16 bins): bins in index order,
/// each a list in insertion order; the table doubles when the count reaches 3/4 of it,
/// splitting each bin as `ConcurrentHashMap.transfer` does (the nodes before the bin's
/// last run of same-side nodes are prepended, so their order reverses); a bin reaching
/// 8 nodes in a table below 64 bins grows the table (`treeifyBin` → `tryPresize`).
/// Treeified bins (8 or more keys in one bin of a table of 64 or more) are kept in
/// insertion order, which ZooKeeper's order may not be; no configuration file comes
/// near that.
#[derive(Debug)]
struct JavaTable {
    bins: Vec<Vec<(u32, String)>>,
    count: usize,
    size_ctl: usize,
}

const TREEIFY_THRESHOLD: usize = 8;
const MIN_TREEIFY_CAPACITY: usize = 64;

impl JavaTable {
    fn new() -> JavaTable {
        JavaTable {
            bins: vec![Vec::new(); 16],
            count: 0,
            size_ctl: 12,
        }
    }

    /// `ConcurrentHashMap.spread`.
    fn spread(key: &str) -> u32 {
        let h = java_string_hash(key) as u32;
        (h ^ (h >> 16)) & 0x7fff_ffff
    }

    fn put(&mut self, key: &str) {
        let h = Self::spread(key);
        let n = self.bins.len();
        let bin = &mut self.bins[h as usize & (n - 1)];
        let (bin_count, added) = match bin.iter().position(|(_, k)| k == key) {
            Some(i) => (i + 1, false),
            None => {
                let c = bin.len();
                bin.push((h, key.to_owned()));
                (c, true)
            }
        };
        if bin_count >= TREEIFY_THRESHOLD && n < MIN_TREEIFY_CAPACITY {
            self.try_presize(n << 1);
        }
        if added {
            self.count += 1;
            while self.count >= self.size_ctl {
                self.transfer();
            }
        }
    }

    /// `tryPresize(size)` on an existing table.
    fn try_presize(&mut self, size: usize) {
        let c = (size + (size >> 1) + 1).next_power_of_two();
        while c > self.size_ctl {
            self.transfer();
        }
    }

    /// Doubles the table as `ConcurrentHashMap.transfer` does with one thread.
    fn transfer(&mut self) {
        let n = self.bins.len();
        let mut next: Vec<Vec<(u32, String)>> = vec![Vec::new(); n << 1];
        for i in (0..n).rev() {
            let list = std::mem::take(&mut self.bins[i]);
            let Some(first) = list.first() else { continue };
            let bit = |h: u32| h as usize & n;
            let mut run_bit = bit(first.0);
            let mut last_run = 0;
            for (j, (h, _)) in list.iter().enumerate().skip(1) {
                if bit(*h) != run_bit {
                    run_bit = bit(*h);
                    last_run = j;
                }
            }
            let (mut ln, mut hn) = if run_bit == 0 {
                (list[last_run..].to_vec(), Vec::new())
            } else {
                (Vec::new(), list[last_run..].to_vec())
            };
            for node in list[..last_run].iter() {
                if bit(node.0) == 0 {
                    ln.insert(0, node.clone());
                } else {
                    hn.insert(0, node.clone());
                }
            }
            next[i] = ln;
            next[i + n] = hn;
        }
        self.bins = next;
        let m = n << 1;
        self.size_ctl = m - (m >> 2);
    }

    fn keys(&self) -> Vec<String> {
        self.bins
            .iter()
            .flat_map(|b| b.iter().map(|(_, k)| k.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_hash_as_java() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("ab"), 97 * 31 + 98);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
    }

    /// The zoo.cfg scripts/start-apache-zk.sh writes for a member with reconfigEnabled and
    /// a dynamic file, and what ZooKeeper 3.8 (OpenJDK 17) made of it after its first
    /// election (reconfig_request_test, kept directory).
    #[test]
    fn static_file_as_zookeeper_rewrote_it() {
        let old = "# generated by scripts/start-apache-zk.sh\n\
            tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/d/s1/data\n\
            clientPort=31001\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\n\
            4lw.commands.whitelist=*\nadmin.enableServer=false\nforceSync=no\n\
            standaloneEnabled=true\nreconfigEnabled=true\ntickTime=500\ninitLimit=10\n\
            syncLimit=5\ndynamicConfigFile=/d/s1/zoo.cfg.dynamic.0\n";
        assert_eq!(
            static_file_text(old, "/d/s1/zoo.cfg.dynamic.100000000", true),
            "dataDir=/d/s1/data\n4lw.commands.whitelist=*\nsyncLimit=5\n\
             reconfigEnabled=true\nstandaloneEnabled=true\nadmin.enableServer=false\n\
             forceSync=no\ninitLimit=10\ntickTime=500\nmaxClientCnxns=0\n\
             dynamicConfigFile=/d/s1/zoo.cfg.dynamic.100000000\n"
        );
    }

    #[test]
    fn dynamic_files_sorted_with_and_without_version() {
        let text = "server.2=127.0.0.1:2:3:participant\n\
                    server.10=127.0.0.1:4:5:observer\nversion=100000003";
        assert_eq!(
            dynamic_file_text(text, false),
            "server.10=127.0.0.1:4:5:observer\nserver.2=127.0.0.1:2:3:participant"
        );
        assert_eq!(
            dynamic_file_text(text, true),
            "server.10=127.0.0.1:4:5:observer\nserver.2=127.0.0.1:2:3:participant\n\
             version=100000003"
        );
    }

    #[test]
    fn table_grows_and_splits_bins() {
        // 30 keys: two resizes (16 -> 32 -> 64); every key once, and the order is a
        // pure function of the insertion sequence.
        let keys: Vec<String> = (0..30).map(|i| format!("key{i}")).collect();
        let mut t = JavaTable::new();
        for k in &keys {
            t.put(k);
        }
        t.put("key3");
        assert_eq!(t.bins.len(), 64);
        let mut got = t.keys();
        assert_eq!(got.len(), 30);
        got.sort();
        let mut want = keys.clone();
        want.sort();
        assert_eq!(got, want);
    }
}
