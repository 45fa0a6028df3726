//! The one krb5.conf setting ZooKeeper's server takes from Java's Kerberos
//! configuration: `[libdefaults] default_realm`, which decides whose principals lose
//! their realm under the `DEFAULT` rule (`name.rs`).
//!
//! Read as Java's `sun.security.krb5.Config` and MIT's profile library read the file:
//! comment lines start with `#` or `;`; `include FILE` (an absolute path) and
//! `includedir DIR` put the named files' lines in place of the directive, `includedir`
//! taking, in name order, the regular files whose names are only letters, digits, `-`
//! and `_`, or end in `.conf` without a leading `.`; the first `default_realm` wins.
//! A file that cannot be read (the main one or an included one) gives no default realm
//! at all, as Java then has no Kerberos configuration: every client keeps its whole
//! principal as its id, which grants nothing it was not granted by that name.

use std::path::{Path, PathBuf};

/// How deep `include` may nest; deeper (a file including itself) counts as unreadable.
const MAX_INCLUDE_DEPTH: usize = 16;

/// Why a krb5.conf gave no lines: the file (main or included) and the reason.
#[derive(Debug, thiserror::Error)]
pub enum Krb5ConfError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `include` with a relative path (Java refuses it: "Not absolute path").
    #[error("{}: include of a relative path {include:?}", path.display())]
    RelativeInclude { path: PathBuf, include: String },
    /// Includes nested deeper than [`MAX_INCLUDE_DEPTH`] (a loop).
    #[error("{}: includes nested too deep (a loop?)", path.display())]
    TooDeep { path: PathBuf },
}

/// The `default_realm` of the krb5.conf at `path`, includes followed. `Ok(None)`: the
/// files hold none. Errors: [`Krb5ConfError`] naming the file that could not be used.
pub fn default_realm_of_file(path: &Path) -> Result<Option<String>, Krb5ConfError> {
    let mut lines = Vec::new();
    collect_lines(path, 0, &mut lines)?;
    Ok(default_realm_of_lines(lines.iter().map(String::as_str)))
}

/// The `default_realm` of a krb5.conf text without includes (its `include` and
/// `includedir` lines are skipped).
pub fn default_realm_of_text(text: &str) -> Option<String> {
    default_realm_of_lines(text.lines())
}

fn collect_lines(path: &Path, depth: usize, out: &mut Vec<String>) -> Result<(), Krb5ConfError> {
    if depth > MAX_INCLUDE_DEPTH {
        return Err(Krb5ConfError::TooDeep {
            path: path.to_owned(),
        });
    }
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|source| Krb5ConfError::Read {
            path: p.to_owned(),
            source,
        })
    };
    for line in read(path)?.lines() {
        let t = line.trim();
        if let Some(dir) = t.strip_prefix("includedir ") {
            let dir = Path::new(dir.trim());
            let entries = std::fs::read_dir(dir).map_err(|source| Krb5ConfError::Read {
                path: dir.to_owned(),
                source,
            })?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
                .filter(|e| e.file_name().to_str().is_some_and(included_name))
                .map(|e| e.path())
                .collect();
            files.sort();
            for f in files {
                collect_lines(&f, depth + 1, out)?;
            }
        } else if let Some(file) = t.strip_prefix("include ") {
            let file = file.trim();
            if !Path::new(file).is_absolute() {
                return Err(Krb5ConfError::RelativeInclude {
                    path: path.to_owned(),
                    include: file.to_owned(),
                });
            }
            collect_lines(Path::new(file), depth + 1, out)?;
        } else {
            out.push(t.to_owned());
        }
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

fn default_realm_of_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut in_libdefaults = false;
    for line in lines {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            in_libdefaults = line.trim_end_matches('*') == "[libdefaults]";
            continue;
        }
        if !in_libdefaults {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            if k.trim() == "default_realm" {
                let v = v.trim();
                return (!v.is_empty()).then(|| v.to_owned());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_realm_of_a_plain_text() {
        let conf = "# c\n[logging]\n default_realm = NO\n[libdefaults]\n  dns_lookup_kdc = false\n  default_realm = EXAMPLE.COM\n[realms]\n";
        assert_eq!(default_realm_of_text(conf).as_deref(), Some("EXAMPLE.COM"));
        assert_eq!(
            default_realm_of_text("[realms]\n default_realm = X\n"),
            None
        );
        assert_eq!(
            default_realm_of_text("[libdefaults]\n default_realm = A\n default_realm = B\n")
                .as_deref(),
            Some("A"),
            "the first one wins"
        );
    }

    #[test]
    fn includes_are_followed_in_place() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("conf.d");
        std::fs::create_dir(&dir).unwrap();
        // Not read by includedir: a hidden .conf, a name with other characters, a
        // directory. Each would win if it were read (it sorts first).
        for skipped in [".a.conf", "a~", "a.bak"] {
            std::fs::write(dir.join(skipped), "[libdefaults]\n default_realm = WRONG\n").unwrap();
        }
        std::fs::create_dir(dir.join("a-dir")).unwrap();
        std::fs::write(dir.join("b_libdefaults"), "[libdefaults]\n rdns = false\n").unwrap();
        std::fs::write(dir.join("c.conf"), "default_realm = EXAMPLE.COM\n").unwrap();
        let realms = d.path().join("realms.conf");
        std::fs::write(&realms, "[realms]\n EXAMPLE.COM = {\n }\n").unwrap();
        let main = d.path().join("krb5.conf");
        std::fs::write(
            &main,
            format!(
                "include {}\nincludedir {}\n[domain_realm]\n",
                realms.display(),
                dir.display()
            ),
        )
        .unwrap();
        // c.conf's line continues b_libdefaults' section.
        assert_eq!(
            default_realm_of_file(&main).unwrap().as_deref(),
            Some("EXAMPLE.COM")
        );
        // Without following the includes there is none.
        let text = std::fs::read_to_string(&main).unwrap();
        assert_eq!(default_realm_of_text(&text), None);
    }

    #[test]
    fn an_unusable_include_names_its_file() {
        let d = tempfile::tempdir().unwrap();
        let main = d.path().join("krb5.conf");
        let missing = d.path().join("missing.conf");
        std::fs::write(
            &main,
            format!(
                "[libdefaults]\n default_realm = R\ninclude {}\n",
                missing.display()
            ),
        )
        .unwrap();
        let e = default_realm_of_file(&main).unwrap_err();
        assert!(e.to_string().contains("missing.conf"), "{e}");
        std::fs::write(&main, "include relative.conf\n").unwrap();
        assert!(matches!(
            default_realm_of_file(&main),
            Err(Krb5ConfError::RelativeInclude { .. })
        ));
        std::fs::write(&main, format!("include {}\n", main.display())).unwrap();
        assert!(matches!(
            default_realm_of_file(&main),
            Err(Krb5ConfError::TooDeep { .. })
        ));
    }
}
