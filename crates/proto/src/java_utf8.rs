//! Bytes to text as ZooKeeper's Java side reads them.
//!
//! ZooKeeper's jute reader turns a `ustring`'s bytes into a Java `String` with the
//! platform's UTF-8 decoder, which replaces what is not valid UTF-8 with U+FFFD rather
//! than failing. Which bytes one U+FFFD stands for differs from Rust's
//! [`String::from_utf8_lossy`] (the WHATWG "maximal subpart" rule) in a few cases, chiefly
//! the CESU-8 surrogates a Java client writes for a character above U+FFFF (`ed a0 bd ed
//! b8 80` for U+1F600): Java replaces each three-byte surrogate with one U+FFFD, Rust
//! each of its bytes. [`decode`] follows Java, so an ACL id, a path or auth data reads
//! back with the same characters from rzk as from ZooKeeper.
//!
//! The rules below were written from Java 17's observed behaviour and are checked
//! against it case by case (`tests/java_utf8.rs`, whose fixture a Java program in
//! `tests/fixtures/` writes).

use std::borrow::Cow;

const REPLACEMENT: char = '\u{FFFD}';

fn cont(b: u8) -> bool {
    b & 0xC0 == 0x80
}

/// `b` as Java's `new String(b, UTF_8)` reads it: borrowed when it is valid UTF-8 (the
/// usual case, checked at `str::from_utf8`'s speed), otherwise a copy with each malformed
/// sequence replaced by U+FFFD as Java replaces it.
pub fn decode(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(e) => {
            let mut out = String::with_capacity(b.len() + 8);
            // The valid prefix, then the rest the slow way.
            let ok = e.valid_up_to();
            out.push_str(std::str::from_utf8(&b[..ok]).unwrap_or_default());
            decode_malformed(&b[ok..], &mut out);
            Cow::Owned(out)
        }
    }
}

/// [`decode`] into an owned `String`.
pub fn decode_owned(b: &[u8]) -> String {
    decode(b).into_owned()
}

fn decode_malformed(b: &[u8], out: &mut String) {
    let n = b.len();
    let mut i = 0;
    while i < n {
        let b1 = b[i];
        let left = n - i - 1; // bytes after the lead
        match b1 {
            0x00..=0x7F => {
                out.push(char::from(b1));
                i += 1;
            }
            0xC2..=0xDF if left >= 1 && cont(b[i + 1]) => {
                let c = u32::from(b1 & 0x1F) << 6 | u32::from(b[i + 1] & 0x3F);
                out.push(char::from_u32(c).unwrap_or(REPLACEMENT));
                i += 2;
            }
            0xE0..=0xEF => {
                // An overlong form (e0 80..9f) or a second byte that does not continue:
                // the lead alone is replaced.
                let bad2 = |b2: u8| (b1 == 0xE0 && b2 & 0xE0 == 0x80) || !cont(b2);
                if left >= 2 {
                    let (b2, b3) = (b[i + 1], b[i + 2]);
                    if bad2(b2) {
                        out.push(REPLACEMENT);
                        i += 1;
                    } else if !cont(b3) {
                        out.push(REPLACEMENT);
                        i += 2;
                    } else {
                        let c = u32::from(b1 & 0x0F) << 12
                            | u32::from(b2 & 0x3F) << 6
                            | u32::from(b3 & 0x3F);
                        // A surrogate (ed a0..bf xx): one replacement for the three bytes.
                        out.push(char::from_u32(c).unwrap_or(REPLACEMENT));
                        i += 3;
                    }
                } else if left == 1 && bad2(b[i + 1]) {
                    out.push(REPLACEMENT);
                    i += 1;
                } else {
                    // Cut short by the end: one replacement for what is left.
                    out.push(REPLACEMENT);
                    return;
                }
            }
            0xF0..=0xF7 => {
                let bad2 = |b2: u8| {
                    (b1 == 0xF0 && !(0x90..=0xBF).contains(&b2))
                        || (b1 == 0xF4 && b2 & 0xF0 != 0x80)
                        || !cont(b2)
                };
                if left >= 3 {
                    let (b2, b3, b4) = (b[i + 1], b[i + 2], b[i + 3]);
                    if b1 > 0xF4 || bad2(b2) {
                        out.push(REPLACEMENT);
                        i += 1;
                    } else if !cont(b3) {
                        out.push(REPLACEMENT);
                        i += 2;
                    } else if !cont(b4) {
                        out.push(REPLACEMENT);
                        i += 3;
                    } else {
                        let c = u32::from(b1 & 0x07) << 18
                            | u32::from(b2 & 0x3F) << 12
                            | u32::from(b3 & 0x3F) << 6
                            | u32::from(b4 & 0x3F);
                        out.push(char::from_u32(c).unwrap_or(REPLACEMENT));
                        i += 4;
                    }
                } else if b1 > 0xF4 || (left >= 1 && bad2(b[i + 1])) {
                    out.push(REPLACEMENT);
                    i += 1;
                } else {
                    // Cut short by the end: one replacement for the lead and the second
                    // byte; a third that does not continue is read again.
                    out.push(REPLACEMENT);
                    if left >= 2 && !cont(b[i + 2]) {
                        i += 2;
                    } else {
                        return;
                    }
                }
            }
            _ => {
                out.push(REPLACEMENT);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_text_is_borrowed_and_cesu_surrogates_are_one_replacement_each() {
        assert!(matches!(decode("é/x😀".as_bytes()), Cow::Borrowed("é/x😀")));
        assert_eq!(decode(b"/x\xed\xa0\x80y"), "/x\u{FFFD}y");
        assert_eq!(decode(b"\xed\xa0\xbd\xed\xb8\x80"), "\u{FFFD}\u{FFFD}");
        assert_eq!(decode(b"u\xff:x"), "u\u{FFFD}:x");
    }
}
