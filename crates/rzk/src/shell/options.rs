//! A command's `-x` options, read as zkCli's commands read them (Apache Commons CLI's
//! POSIX parser, used by ZooKeeper's `CliCommand.parse`): options may come before or
//! after the path, switches may be bundled (`-sw`), a value may be attached (`-v3`) or
//! be the next word (even one starting with `-` that is not an option), `--` ends the
//! options and `-` alone is a word. Anything else starting with `-` that the command does
//! not know is refused with zkCli's message.

use std::collections::HashMap;

/// The options and words of one command line (after the command name).
#[derive(Debug, Default)]
pub struct Flags {
    /// Switches given (`-s`, `-w`, ...), in order.
    pub set: Vec<char>,
    /// Options that take a value (`-v 3`), last one wins.
    pub values: HashMap<char, String>,
    /// The other words, in order.
    pub rest: Vec<String>,
}

/// How one option letter is declared in a spec.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Switch,
    Value,
}

/// `spec` lists the command's option letters getopt-style: `"swv:"` declares the
/// switches `-s` and `-w` and the option `-v VALUE`.
fn kind(spec: &str, c: char) -> Option<Kind> {
    let mut it = spec.chars().peekable();
    while let Some(o) = it.next() {
        let takes_value = it.peek() == Some(&':');
        if takes_value {
            it.next();
        }
        if o == c && o != ':' {
            return Some(if takes_value {
                Kind::Value
            } else {
                Kind::Switch
            });
        }
    }
    None
}

/// The option letter a token names, if it names one of `spec` (`-s`, or `--s`).
fn known(spec: &str, token: &str) -> Option<(char, Kind)> {
    let name = token
        .strip_prefix("--")
        .or_else(|| token.strip_prefix('-'))?;
    let mut cs = name.chars();
    let c = cs.next()?;
    if cs.next().is_some() {
        return None;
    }
    kind(spec, c).map(|k| (c, k))
}

/// Splits bundled switches and attached values into separate tokens.
fn flatten(args: &[String], spec: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, t) in args.iter().enumerate() {
        if t == "--" {
            out.extend(args[i..].iter().cloned());
            break;
        }
        let chars: Vec<char> = t.chars().collect();
        if t == "-" || !t.starts_with('-') || t.starts_with("--") || chars.len() <= 2 {
            out.push(t.clone());
            continue;
        }
        for (k, &c) in chars.iter().enumerate().skip(1) {
            match kind(spec, c) {
                Some(kd) => {
                    out.push(format!("-{c}"));
                    if kd == Kind::Value && k + 1 < chars.len() {
                        out.push(chars[k + 1..].iter().collect());
                        break;
                    }
                }
                None => {
                    out.push(t.clone());
                    break;
                }
            }
        }
    }
    out
}

/// Parses `args` (the words after the command name) against `spec` (see [`kind`]).
/// Errors are zkCli's messages for an unknown option or a missing value.
pub fn flags(args: &[String], spec: &str) -> Result<Flags, String> {
    let tokens = flatten(args, spec);
    let mut f = Flags::default();
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        i += 1;
        if t == "--" {
            f.rest.extend(tokens[i..].iter().cloned());
            break;
        }
        if t == "-" || !t.starts_with('-') {
            f.rest.push(t.clone());
            continue;
        }
        match known(spec, t) {
            None => {
                return Err(format!(
                    "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: {t}"
                ))
            }
            Some((c, Kind::Switch)) => f.set.push(c),
            Some((c, Kind::Value)) => match tokens.get(i) {
                Some(v) if !(v.starts_with('-') && known(spec, v).is_some()) => {
                    // commons-cli's getOptionValue answers the first of repeated values.
                    f.values.entry(c).or_insert_with(|| v.clone());
                    i += 1;
                }
                _ => {
                    return Err(format!(
                        "org.apache.commons.cli.MissingArgumentException: Missing argument for option: {c}"
                    ))
                }
            },
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::flags;

    fn a(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_anywhere_and_bundled() {
        let f = flags(&a(&["/q", "-s", "-w"]), "sw").unwrap();
        assert_eq!(f.set, ['s', 'w']);
        assert_eq!(f.rest, ["/q"]);
        let f = flags(&a(&["-sw", "/"]), "swR").unwrap();
        assert_eq!(f.set, ['s', 'w']);
        let f = flags(&a(&["-sv3", "/q", "d"]), "sv:").unwrap();
        assert_eq!((f.set.clone(), f.values[&'v'].as_str()), (vec!['s'], "3"));
        assert_eq!(f.rest, ["/q", "d"]);
    }

    #[test]
    fn unknown_options_are_refused() {
        let e = flags(&a(&["-z", "/q"]), "sw").unwrap_err();
        assert!(e.ends_with("Unrecognized option: -z"), "{e}");
        let e = flags(&a(&["/q", "-1"]), "sv:").unwrap_err();
        assert!(e.ends_with("Unrecognized option: -1"), "{e}");
        let e = flags(&a(&["-sz", "/q"]), "sw").unwrap_err();
        assert!(e.ends_with("Unrecognized option: -sz"), "{e}");
        let e = flags(&a(&["--foo"]), "sw").unwrap_err();
        assert!(e.ends_with("Unrecognized option: --foo"), "{e}");
    }

    #[test]
    fn values_dashes_and_end_of_options() {
        let f = flags(&a(&["-v", "-5", "/q"]), "v:").unwrap();
        assert_eq!(f.values[&'v'], "-5");
        let e = flags(&a(&["/q", "-v"]), "v:").unwrap_err();
        assert!(e.ends_with("Missing argument for option: v"), "{e}");
        let f = flags(&a(&["--", "-z", "-"]), "s").unwrap();
        assert_eq!(f.rest, ["-z", "-"]);
        let f = flags(&a(&["-"]), "s").unwrap();
        assert_eq!(f.rest, ["-"]);
    }
}
