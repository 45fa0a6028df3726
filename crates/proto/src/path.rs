//! Znode path rules, as ZooKeeper checks them on create, setData, setACL and check.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path {path:?}: {reason}")]
pub struct PathError {
    pub path: String,
    pub reason: &'static str,
}

fn bad(path: &str, reason: &'static str) -> PathError {
    PathError {
        path: path.to_owned(),
        reason,
    }
}

/// Characters ZooKeeper refuses in a node name. Java checks UTF-16 code units, so a
/// character outside the Basic Multilingual Plane (U+10000 and above, e.g. an emoji)
/// reaches it as a surrogate pair (U+D800..U+DFFF), which is refused like any other
/// surrogate.
fn forbidden_char(c: char) -> bool {
    let u = c as u32;
    u >= 0x1_0000
        || u == 0
        || (0x1..=0x1f).contains(&u)
        || (0x7f..=0x9f).contains(&u)
        || (0xd800..=0xf8ff).contains(&u)
        || (0xfff0..=0xffff).contains(&u)
}

/// Validates a znode path. For sequential creates the path is checked as if the
/// sequence suffix were already there, so `/queue/` is allowed.
pub fn validate(path: &str, sequential: bool) -> Result<(), PathError> {
    if sequential {
        return validate_plain(&format!("{path}1")).map_err(|e| bad(path, e.reason));
    }
    validate_plain(path)
}

fn validate_plain(path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(bad(path, "path length must be > 0"));
    }
    if !path.starts_with('/') {
        return Err(bad(path, "path must start with / character"));
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err(bad(path, "path must not end with / character"));
    }
    // Printable ASCII (nearly every path; checked in one vectorised pass) can only
    // break the component rules: find its separators and check each component.
    let bytes = path.as_bytes();
    if bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
        let mut start = 1;
        for i in 1..=bytes.len() {
            if i < bytes.len() && bytes[i] != b'/' {
                continue;
            }
            check_component(path, &path[start..i], true)?;
            start = i + 1;
        }
        return Ok(());
    }
    // One pass over the bytes; each component is checked when its end is found, in the
    // order the per-component rules had. ASCII (nearly all names) is checked a byte at
    // a time: of ASCII, only NUL, the controls and DEL are forbidden; a component with
    // other characters is checked per character at its end.
    let mut start = 1;
    let mut ascii = true;
    for i in 1..=bytes.len() {
        match bytes.get(i) {
            Some(&b) if b != b'/' => {
                if b < 0x20 || b == 0x7f {
                    return Err(bad(path, "invalid character"));
                }
                ascii &= b < 0x80;
                continue;
            }
            _ => {}
        }
        check_component(path, &path[start..i], ascii)?;
        start = i + 1;
        ascii = true;
    }
    Ok(())
}

/// The rules for one component `comp` of `path`, in their order: not empty, not `.` or
/// `..`, and (unless it is known to be ASCII, whose bytes the caller checked) no
/// forbidden character.
#[inline]
fn check_component(path: &str, comp: &str, ascii: bool) -> Result<(), PathError> {
    if comp.is_empty() {
        return Err(bad(path, "empty node name specified"));
    }
    if comp == "." || comp == ".." {
        return Err(bad(path, "relative paths not allowed"));
    }
    if !ascii && comp.chars().any(forbidden_char) {
        return Err(bad(path, "invalid character"));
    }
    Ok(())
}

/// The parent of a valid path; `/` for top-level nodes and for `/` itself.
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last component of a valid path ("" for `/`).
pub fn basename(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Joins a parent path and a child name.
pub fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-component rules, as written before the one-pass check: the reference
    /// the tests compare [`validate_plain`] with.
    fn by_components(path: &str) -> Result<(), &'static str> {
        if path.is_empty() {
            return Err("path length must be > 0");
        }
        if !path.starts_with('/') {
            return Err("path must start with / character");
        }
        if path.len() == 1 {
            return Ok(());
        }
        if path.ends_with('/') {
            return Err("path must not end with / character");
        }
        for comp in path[1..].split('/') {
            if comp.is_empty() {
                return Err("empty node name specified");
            }
            if comp == "." || comp == ".." {
                return Err("relative paths not allowed");
            }
            if comp.chars().any(forbidden_char) {
                return Err("invalid character");
            }
        }
        Ok(())
    }

    #[test]
    fn valid_and_invalid() {
        for ok in ["/", "/a", "/a/b", "/a.b", "/zookeeper", "/a/..b"] {
            assert!(validate(ok, false).is_ok(), "{ok}");
        }
        for no in [
            "", "a", "/a/", "//", "/a//b", "/a/./b", "/..", "/a\u{0}b", "/a\u{1}",
        ] {
            assert!(validate(no, false).is_err(), "{no:?}");
        }
        assert!(validate("/a/", true).is_ok());
        // Outside the Basic Multilingual Plane: Java sees surrogates and refuses them.
        for no in ["/a/smile-\u{1F600}", "/\u{10000}", "/a/\u{10FFFF}b"] {
            assert!(validate(no, false).is_err(), "{no:?}");
            assert!(validate(no, true).is_err(), "{no:?} sequential");
        }
        // The last characters of the BMP that Java accepts.
        assert!(validate("/a/\u{FFEF}\u{F900}", false).is_ok());
        assert!(validate("/a//", true).is_err());
    }

    /// The byte-at-a-time check of ASCII names refuses exactly what the per-character
    /// rule refuses, for every ASCII character, alone or next to a non-ASCII one.
    #[test]
    fn ascii_names_follow_the_character_rule() {
        for b in 0u8..0x80 {
            let c = b as char;
            if c == '/' {
                continue;
            }
            for name in [format!("a{c}"), format!("\u{e9}{c}")] {
                let path = format!("/x/{name}");
                assert_eq!(
                    validate(&path, false).is_err(),
                    forbidden_char(c) || name == "." || name == "..",
                    "{path:?}"
                );
            }
        }
    }

    /// The one-pass check gives the per-component rules' answer, reason included, for
    /// every path of up to five pieces from an alphabet of separators, dots, controls
    /// and ASCII, BMP and non-BMP characters.
    #[test]
    fn one_pass_check_matches_the_component_rules() {
        let alphabet = [
            "a",
            "/",
            ".",
            "\u{1}",
            "\u{7f}",
            "\u{e9}",
            "\u{fff0}",
            "\u{10000}",
        ];
        let mut paths = vec!["/".to_owned()];
        let mut frontier = paths.clone();
        for _ in 0..5 {
            let next: Vec<String> = frontier
                .iter()
                .flat_map(|p| alphabet.iter().map(move |c| format!("{p}{c}")))
                .collect();
            paths.extend(next.iter().cloned());
            frontier = next;
        }
        for path in &paths {
            assert_eq!(
                validate_plain(path).map_err(|e| e.reason),
                by_components(path),
                "{path:?}"
            );
        }
    }

    #[test]
    fn parents() {
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/a/b/c"), "/a/b");
        assert_eq!(parent("/"), "/");
        assert_eq!(basename("/a/b"), "b");
        assert_eq!(join("/", "x"), "/x");
        assert_eq!(join("/a", "x"), "/a/x");
    }

    /// Random longer paths over a wider alphabet, validate() in both modes, reason
    /// included, against the per-component rules.
    #[test]
    fn random_paths_match_the_component_rules() {
        let alphabet = [
            "a",
            "/",
            "/",
            ".",
            "..",
            "\0",
            "\u{1f}",
            " ",
            "~",
            "\u{7f}",
            "\u{80}",
            "\u{85}",
            "\u{9f}",
            "\u{a0}",
            "\u{e9}",
            "\u{d7ff}",
            "\u{f8ff}",
            "\u{f900}",
            "\u{fffd}",
            "\u{ffef}",
            "\u{fff0}",
            "\u{ffff}",
            "\u{10000}",
            "\u{10ffff}",
            "zz",
        ];
        let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..300_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let len = (rng % 12) as usize;
            let mut r = rng >> 4;
            let mut path = String::new();
            if !r.is_multiple_of(8) {
                path.push('/');
            }
            for _ in 0..len {
                r = r.rotate_left(5) ^ 0x9e37_79b9_7f4a_7c15;
                path.push_str(alphabet[(r % alphabet.len() as u64) as usize]);
            }
            assert_eq!(
                validate(&path, false).map_err(|e| e.reason),
                by_components(&path),
                "{path:?}"
            );
            assert_eq!(
                validate(&path, true).map_err(|e| e.reason),
                by_components(&format!("{path}1")),
                "seq {path:?}"
            );
        }
    }
}
