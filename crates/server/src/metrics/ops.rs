//! Requests received by opcode: rzk's own `rzk_requests` counter set (ZooKeeper 3.8 counts
//! requests only as reads and updates, in `readlatency` and `updatelatency`). One atomic
//! add per request into a fixed array; printed as `zk_<op>_rzk_requests` in `mntr` and as
//! `rzk_requests{key="<op>"}` on `/metrics`, for the opcodes seen.

use rzk_proto::OpCode;
use std::sync::atomic::{AtomicU64, Ordering};

/// Slots: opcodes 0..=22, 100..=107, createSession, closeSession, anything else.
const SLOTS: usize = 23 + 8 + 3;
const OTHER: usize = SLOTS - 1;

static COUNTS: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

fn slot(op: i32) -> usize {
    match op {
        0..=22 => op as usize,
        100..=107 => 23 + (op - 100) as usize,
        -10 => 31,
        -11 => 32,
        _ => OTHER,
    }
}

/// Counts one request of opcode `op`.
#[inline]
pub fn count(op: i32) {
    COUNTS[slot(op)].fetch_add(1, Ordering::Relaxed);
}

/// (opcode name as ZooKeeper spells it, count) of every opcode seen, in opcode order.
pub fn seen() -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let ops = (0..=22).chain(100..=107).chain([-10, -11]);
    for op in ops {
        let n = COUNTS[slot(op)].load(Ordering::Relaxed);
        if n == 0 {
            continue;
        }
        let Some(code) = OpCode::from_i32(op) else {
            continue;
        };
        out.push((java_name(code.name()), n));
    }
    let other = COUNTS[OTHER].load(Ordering::Relaxed);
    if other > 0 {
        out.push(("unknown".to_owned(), other));
    }
    out
}

/// `GetData` -> `getData`, `CreateTtl` -> `createTTL` (ZooKeeper's `OpCode` names).
fn java_name(name: &str) -> String {
    if name == "CreateTtl" {
        return "createTTL".to_owned();
    }
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Zeroes the counts (`srst`).
pub fn reset() {
    for c in &COUNTS {
        c.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_distinct_and_named() {
        let ops: Vec<i32> = (0..=22).chain(100..=107).chain([-10, -11]).collect();
        let mut slots: Vec<usize> = ops.iter().map(|o| slot(*o)).collect();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len(), ops.len());
        assert!(!slots.contains(&OTHER));
        assert_eq!(slot(999), OTHER);
        assert_eq!(java_name("GetData"), "getData");
        assert_eq!(java_name("CreateTtl"), "createTTL");
    }
}
