//! The one krb5.conf setting ZooKeeper's server takes from Java's Kerberos
//! configuration: `[libdefaults] default_realm`, which decides whose principals lose
//! their realm under the `DEFAULT` rule (`name.rs`).
//!
//! Read as Java's `sun.security.krb5.Config` reads the file (ZooKeeper's
//! `KerberosName` asks it), since the ids must be Java's:
//! - Comment lines start with `#` or `;`. Before a file's first `[section]` line, the
//!   directives `include FILE` and `includedir DIR` put other files' lines there (each
//!   file again directives first), and any other line is ignored. After it every line
//!   is content: an `include` there is not followed (it is a content error, as below).
//! - `includedir` takes the entries that are not directories (links followed) whose
//!   names are only letters, digits, `-` and `_`, or end in `.conf` without a leading
//!   `.`, in the order the directory lists them (Java does not sort; MIT's library
//!   does).
//! - Content is `[name]` sections (names compared in lower case), `key = value` lines
//!   (quotes around a value dropped), `key = {` ... `}` subsections. The first
//!   `default_realm` directly in `[libdefaults]` wins (sections of the same name merge).
//! - Any error — a file that cannot be read, a path not absolute, a file included twice,
//!   a line that is neither of the above, unbalanced braces — leaves Java with no
//!   Kerberos configuration at all, hence no default realm: every client then keeps its
//!   whole principal as its id, which grants nothing that name was not granted.
//!
//! A main file that does not exist is no configuration either, without an error.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Why a krb5.conf gave Java no configuration: the file and line, and the reason.
#[derive(Debug, thiserror::Error)]
pub enum Krb5ConfError {
    /// A file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The read's error.
        source: std::io::Error,
    },
    /// An included path that is not absolute (Java: "Profile path not absolute").
    #[error("{}: included path not absolute", path.display())]
    NotAbsolute {
        /// The path as written.
        path: PathBuf,
    },
    /// A file included a second time (Java: "Profile path included more than once").
    #[error("{}: included more than once", path.display())]
    IncludedTwice {
        /// The file.
        path: PathBuf,
    },
    /// A line Java's parser refuses (Java: "Illegal config content", "Unmatched close
    /// brace", "Not closed").
    #[error("{}:{line}: {what}: {text:?}", path.display())]
    Content {
        /// The file the line is in.
        path: PathBuf,
        /// Its line number, from 1.
        line: usize,
        /// What is wrong with it.
        what: &'static str,
        /// The line, trimmed.
        text: String,
    },
    /// The last section's braces are not closed.
    #[error("a subsection is not closed at the end of the configuration")]
    NotClosed,
}

/// A content line and where it came from.
struct Line {
    path: std::rc::Rc<PathBuf>,
    line: usize,
    text: String,
}

/// The `default_realm` of the krb5.conf at `path`, as Java finds it. `Ok(None)`: no such
/// file, or no `default_realm` (or an empty one). Errors: [`Krb5ConfError`], naming the
/// file (and line) that left Java without a configuration.
pub fn default_realm_of_file(path: &Path) -> Result<Option<String>, Krb5ConfError> {
    let path = std::path::absolute(path).map_err(|source| Krb5ConfError::Read {
        path: path.to_owned(),
        source,
    })?;
    if !path.exists() {
        return Ok(None);
    }
    let mut lines = Vec::new();
    collect_lines(&path, &mut lines, &mut HashSet::new())?;
    default_realm_of_lines(&lines)
}

/// Java's `readConfigFileLines`: `path`'s content lines, directives resolved.
fn collect_lines(
    path: &Path,
    out: &mut Vec<Line>,
    seen: &mut HashSet<PathBuf>,
) -> Result<(), Krb5ConfError> {
    if !path.is_absolute() {
        return Err(Krb5ConfError::NotAbsolute {
            path: path.to_owned(),
        });
    }
    if !seen.insert(path.to_owned()) {
        return Err(Krb5ConfError::IncludedTwice {
            path: path.to_owned(),
        });
    }
    let read_err = |p: &Path| {
        let p = p.to_owned();
        move |source| Krb5ConfError::Read { path: p, source }
    };
    let text = std::fs::read_to_string(path).map_err(read_err(path))?;
    let file = std::rc::Rc::new(path.to_owned());
    let mut directives = true;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if !directives {
            out.push(Line {
                path: file.clone(),
                line: i + 1,
                text: t.to_owned(),
            });
        } else if t.starts_with('[') {
            directives = false;
            out.push(Line {
                path: file.clone(),
                line: i + 1,
                text: t.to_owned(),
            });
        } else if let Some(dir) = t.strip_prefix("includedir ") {
            let dir = Path::new(dir.trim());
            for entry in std::fs::read_dir(dir).map_err(read_err(dir))? {
                let entry = entry.map_err(read_err(dir))?;
                let p = dir.join(entry.file_name());
                if std::fs::metadata(&p).is_ok_and(|m| m.is_dir()) {
                    continue;
                }
                if entry.file_name().to_str().is_some_and(included_name) {
                    collect_lines(&p, out, seen)?;
                }
            }
        } else if let Some(file) = t.strip_prefix("include ") {
            collect_lines(Path::new(file.trim()), out, seen)?;
        }
        // Any other line before the first section: an unknown directive, ignored.
    }
    Ok(())
}

/// Whether `includedir` reads a file of this name.
fn included_name(name: &str) -> bool {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    plain || (!name.starts_with('.') && name.ends_with(".conf"))
}

/// Java's `loadConfigFile` normalisation, then its `parseStanzaTable`, keeping only the
/// first `default_realm` directly in the top-level `libdefaults` section.
fn default_realm_of_lines(lines: &[Line]) -> Result<Option<String>, Krb5ConfError> {
    let bad = |l: &Line, what: &'static str| Krb5ConfError::Content {
        path: l.path.as_ref().clone(),
        line: l.line,
        what,
        text: l.text.clone(),
    };
    // Normalised: `[name]` becomes `name = {` and is closed by `}` where the next
    // section starts (or at the end); a line starting with `{` joins the one before.
    let mut normalised: Vec<(&Line, String)> = Vec::new();
    let mut previous: Option<(&Line, String)> = None;
    for l in lines {
        let t = l.text.as_str();
        if let Some(title) = t.strip_prefix('[') {
            let Some(title) = title.strip_suffix(']').map(str::trim) else {
                return Err(bad(l, "illegal config content"));
            };
            if title.is_empty() {
                return Err(bad(l, "illegal config content"));
            }
            if let Some(p) = previous.take() {
                normalised.push(p);
                normalised.push((l, "}".to_owned()));
            }
            previous = Some((l, format!("{title} = {{")));
        } else if let Some(rest) = t.strip_prefix('{') {
            let Some((pl, mut text)) = previous.take() else {
                return Err(bad(l, "the configuration starts with a brace"));
            };
            text.push_str(" {");
            if rest.is_empty() {
                previous = Some((pl, text));
            } else {
                normalised.push((pl, text));
                previous = Some((l, rest.trim().to_owned()));
            }
        } else {
            let Some(p) = previous.replace((l, t.to_owned())) else {
                return Err(bad(l, "the configuration does not start with a section"));
            };
            normalised.push(p);
        }
    }
    if let Some((l, text)) = previous {
        normalised.push((l, text));
        normalised.push((l, "}".to_owned()));
    }
    // Parsed: the path of (sub)sections the parser is in.
    let mut at: Vec<String> = Vec::new();
    let mut realm: Option<String> = None;
    for (l, text) in normalised {
        if text == "}" {
            if at.pop().is_none() {
                return Err(bad(l, "unmatched close brace"));
            }
            continue;
        }
        let Some((key, value)) = text.split_once('=') else {
            return Err(bad(l, "illegal config content"));
        };
        let (key, value) = (key.trim(), unquote(value));
        if value == "{" {
            // Top-level names are case-insensitive (and same-named sections merge).
            at.push(if at.is_empty() {
                key.to_ascii_lowercase()
            } else {
                key.to_owned()
            });
        } else if at.len() == 1 && at[0] == "libdefaults" && key == "default_realm" {
            realm.get_or_insert_with(|| value.to_owned());
        }
    }
    if !at.is_empty() {
        return Err(Krb5ConfError::NotClosed);
    }
    Ok(realm.filter(|r| !r.is_empty()))
}

/// Java's `unquote`: trimmed, and one pair of surrounding `"` or `'` dropped.
fn unquote(s: &str) -> &str {
    let s = s.trim();
    let quoted = s.len() >= 2
        && ((s.starts_with('"') && s.ends_with('"')) || (s.starts_with('\'') && s.ends_with('\'')));
    if quoted {
        s[1..s.len() - 1].trim()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `files` (name, text) into a fresh directory; returns it.
    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let p = d.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text.replace("$D", d.path().to_str().unwrap())).unwrap();
        }
        d
    }

    fn realm(d: &tempfile::TempDir, main: &str) -> Result<Option<String>, Krb5ConfError> {
        default_realm_of_file(&d.path().join(main))
    }

    #[test]
    fn the_first_default_realm_directly_in_libdefaults() {
        let d = dir_with(&[
            (
                "a.conf",
                "# c\n[logging]\n default_realm = NO\n[LibDefaults]\n  rdns = false\n  x = {\n    default_realm = NESTED\n  }\n  default_realm = \"EXAMPLE.COM\"\n  default_realm = SECOND\n[realms]\n EXAMPLE.COM =\n {\n  kdc = k\n }\n",
            ),
            ("b.conf", "[libdefaults]\n dns_lookup_kdc = false\n"),
            ("c.conf", "[libdefaults]\n default_realm =\n"),
        ]);
        assert_eq!(realm(&d, "a.conf").unwrap().as_deref(), Some("EXAMPLE.COM"));
        assert_eq!(realm(&d, "b.conf").unwrap(), None);
        assert_eq!(realm(&d, "c.conf").unwrap(), None, "an empty one is none");
        assert_eq!(
            realm(&d, "missing.conf").unwrap(),
            None,
            "no file, no configuration"
        );
    }

    #[test]
    fn directives_before_the_first_section_are_followed() {
        let d = dir_with(&[
            // Not taken by includedir (each would win if it were: WRONG comes first).
            (".d/.a.conf", "[libdefaults]\n default_realm = WRONG\n"),
            (".d/a~", "[libdefaults]\n default_realm = WRONG\n"),
            (".d/a.bak", "[libdefaults]\n default_realm = WRONG\n"),
            (".d/a-dir/x.conf", "[libdefaults]\n default_realm = WRONG\n"),
            (
                ".d/b_libdefaults",
                "[libdefaults]\n default_realm = EXAMPLE.COM\n",
            ),
            ("realms.conf", "[realms]\n EXAMPLE.COM = {\n }\n"),
            (
                "krb5.conf",
                "module x\nincludedir $D/.d\ninclude $D/realms.conf\n[domain_realm]\n",
            ),
        ]);
        std::os::unix::fs::symlink(d.path().join(".d/a-dir"), d.path().join(".d/a-link")).unwrap();
        assert_eq!(
            realm(&d, "krb5.conf").unwrap().as_deref(),
            Some("EXAMPLE.COM")
        );
    }

    #[test]
    fn what_leaves_java_without_a_configuration() {
        let d = dir_with(&[
            // A bare line before an included file's first section is ignored, not
            // taken into the section before it.
            ("bare/lib.conf", "[libdefaults]\n rdns = false\n"),
            ("bare/z.conf", "default_realm = EXAMPLE.COM\n"),
            ("bare.conf", "includedir $D/bare\n"),
            ("late.conf", "[libdefaults]\ninclude $D/lib.conf\n"),
            ("lib.conf", "[libdefaults]\n default_realm = EXAMPLE.COM\n"),
            ("missing.conf", "include $D/nothing.conf\n"),
            ("relative.conf", "include lib.conf\n"),
            ("twice.conf", "include $D/lib.conf\ninclude $D/lib.conf\n"),
            ("self.conf", "include $D/self.conf\n"),
            (
                "star.conf",
                "[libdefaults]*\n default_realm = EXAMPLE.COM\n",
            ),
            (
                "open.conf",
                "[libdefaults]\n default_realm = EXAMPLE.COM\n x = {\n",
            ),
            (
                "extra.conf",
                "[libdefaults]\n default_realm = EXAMPLE.COM\n}\n}\n",
            ),
            (
                "word.conf",
                "[libdefaults]\n default_realm = EXAMPLE.COM\n oops\n",
            ),
        ]);
        assert_eq!(
            realm(&d, "lib.conf").unwrap().as_deref(),
            Some("EXAMPLE.COM")
        );
        assert_eq!(realm(&d, "bare.conf").unwrap(), None);
        for (file, want) in [
            ("late.conf", "illegal config content"),
            ("missing.conf", "nothing.conf"),
            ("relative.conf", "not absolute"),
            ("twice.conf", "more than once"),
            ("self.conf", "more than once"),
            ("star.conf", "star.conf:1: illegal config content"),
            ("open.conf", "not closed"),
            ("extra.conf", "unmatched close brace"),
            ("word.conf", "word.conf:3: illegal config content"),
        ] {
            let e = realm(&d, file).expect_err(file).to_string();
            assert!(e.contains(want), "{file}: {e}");
        }
    }
}
