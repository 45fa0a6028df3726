//! The shell's `reconfig` command, read as zkCli 3.8 reads it: `-s`, `-v VERSION` (hex,
//! as zkCli parses it), and either `-file PATH` / `-members LIST` (non-incremental) or
//! `-add LIST` / `-remove IDS` (incremental). The multi-letter options take their value
//! from the next word; `--name` works as `-name`, as with Apache Commons CLI.

use rzk_client::Client;

use super::format_stat;
use super::options::flags;

/// zkCli's usage line for `reconfig`.
pub const USAGE: &str = "reconfig [-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]";

/// A parsed `reconfig` command line.
#[derive(Debug, Default, PartialEq)]
pub struct ReconfigArgs {
    /// `-add`, lower-cased as zkCli does.
    pub joining: Option<String>,
    /// `-remove`, lower-cased.
    pub leaving: Option<String>,
    /// `-members` (lower-cased) or the server lines of `-file`.
    pub members: Option<String>,
    /// `-v`, parsed as hexadecimal; `None` for any version.
    pub version: Option<i64>,
    /// `-s`: print the stat of the new configuration.
    pub stat: bool,
}

const LONG: &[&str] = &["file", "members", "add", "remove"];

/// Parses the words after `reconfig`. Errors are the messages zkCli prints.
pub fn parse(args: &[String]) -> Result<ReconfigArgs, String> {
    let mut long: Vec<(&'static str, String)> = Vec::new();
    let mut short = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let t = &args[i];
        let name = t.strip_prefix("--").or_else(|| t.strip_prefix('-'));
        match name.and_then(|n| LONG.iter().find(|l| **l == n)) {
            Some(l) => {
                // The value is the next word unless that word is itself an option.
                let v = args.get(i + 1).filter(|v| !is_option(v));
                match v {
                    Some(v) => long.push((l, v.clone())),
                    None => {
                        return Err(format!(
                        "org.apache.commons.cli.MissingArgumentException: Missing argument for option: {l}"
                    ))
                    }
                }
                i += 2;
            }
            None => {
                short.push(t.clone());
                i += 1;
            }
        }
    }
    let f = flags(&short, "sv:")?;
    let get = |n: &str| long.iter().rev().find(|(l, _)| *l == n).map(|(_, v)| v);
    let (file, members, add, remove) = (get("file"), get("members"), get("add"), get("remove"));
    if file.is_none() && members.is_none() && add.is_none() && remove.is_none() {
        return Err(USAGE.to_owned());
    }
    let version = match f.values.get(&'v') {
        Some(v) => Some(
            i64::from_str_radix(v, 16)
                .map_err(|_| "-v must be followed by a long (configuration version)".to_owned())?,
        ),
        None => None,
    };
    if (file.is_some() || members.is_some()) && (add.is_some() || remove.is_some()) {
        return Err("Can't use -file or -members together with -add or -remove (mixing incremental and non-incremental modes is not allowed)".into());
    }
    if file.is_some() && members.is_some() {
        return Err(
            "Can't use -file and -members together (conflicting non-incremental modes)".into(),
        );
    }
    let mut out = ReconfigArgs {
        joining: add.map(|s| s.to_lowercase()),
        leaving: remove.map(|s| s.to_lowercase()),
        members: members.map(|s| s.to_lowercase()),
        version,
        stat: f.set.contains(&'s'),
    };
    if let Some(path) = file {
        out.members = Some(members_from_file(path)?);
    }
    Ok(out)
}

fn is_option(word: &str) -> bool {
    let name = word.strip_prefix("--").or_else(|| word.strip_prefix('-'));
    match name {
        Some(n) => LONG.contains(&n) || n == "s" || n == "v",
        None => false,
    }
}

/// The membership lines of a dynamic configuration file (`server.N=...`, `group.N=...`,
/// `weight.N=...`), newline-separated, for a non-incremental reconfig. The leader
/// checks them again; here a file without any `server.N` line is refused.
fn members_from_file(path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        // zkCli: "Error processing " + path + the exception's message, which for a
        // missing file is "<path> (No such file or directory)".
        let why = e.to_string();
        let why = why.split(" (os error").next().unwrap_or(&why).to_owned();
        format!("Error processing {path}{path} ({why})")
    })?;
    let mut lines = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        let member_key = ["server.", "group.", "weight."].iter().any(|p| {
            k.strip_prefix(p)
                .is_some_and(|id| id.parse::<u64>().is_ok())
        });
        if member_key {
            lines.push(format!("{k}={v}"));
        }
    }
    if !lines.iter().any(|l| l.starts_with("server.")) {
        return Err(format!(
            "Error processing {path}: no server.N=host:quorumPort:electionPort[:role][;[clientHost:]clientPort] line"
        ));
    }
    Ok(lines.join("\n"))
}

/// Runs `reconfig` and prints the committed configuration as zkCli does.
pub async fn run(zk: &Client, args: &[String]) -> Result<(), String> {
    let a = parse(args)?;
    let (data, stat) = zk
        .reconfig(
            a.joining.as_deref(),
            a.leaving.as_deref(),
            a.members.as_deref(),
            a.version,
        )
        .await
        .map_err(|e| super::error_message(&e, ""))?;
    outln!(
        "Committed new configuration:\n{}",
        String::from_utf8_lossy(&data)
    );
    if a.stat {
        outln!("{}", format_stat(&stat));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn incremental_and_version() {
        let r = parse(&a(&[
            "-add",
            "Server.4=H:1:2;3",
            "-remove",
            "2,3",
            "-v",
            "1f",
            "-s",
        ]))
        .unwrap();
        assert_eq!(r.joining.as_deref(), Some("server.4=h:1:2;3"));
        assert_eq!(r.leaving.as_deref(), Some("2,3"));
        assert_eq!(r.members, None);
        assert_eq!(r.version, Some(0x1f));
        assert!(r.stat);
        let r = parse(&a(&["--remove", "3"])).unwrap();
        assert_eq!((r.leaving.as_deref(), r.version), (Some("3"), None));
    }

    #[test]
    fn refusals_as_zkcli() {
        assert_eq!(parse(&a(&["-s"])).unwrap_err(), USAGE);
        assert_eq!(parse(&a(&[])).unwrap_err(), USAGE);
        assert!(parse(&a(&["-members", "server.1=h:1:2", "-add", "x"]))
            .unwrap_err()
            .starts_with("Can't use -file or -members together with -add"));
        assert_eq!(
            parse(&a(&["-remove", "1", "-v", "zz"])).unwrap_err(),
            "-v must be followed by a long (configuration version)"
        );
        assert!(parse(&a(&["-add"]))
            .unwrap_err()
            .ends_with("Missing argument for option: add"));
        assert!(parse(&a(&["-remove", "1", "-x"]))
            .unwrap_err()
            .ends_with("Unrecognized option: -x"));
    }

    #[test]
    fn members_file() {
        let dir = std::env::temp_dir().join(format!("rzk-reconfig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("dyn.cfg");
        std::fs::write(
            &f,
            "# members\nserver.1=127.0.0.1:2888:3888:participant;2181\nserver.2 = 127.0.0.2:2888:3888;2181\nversion=100000000\ntickTime=2000\n",
        )
        .unwrap();
        let r = parse(&a(&["-file", f.to_str().unwrap()])).unwrap();
        assert_eq!(
            r.members.as_deref(),
            Some(
                "server.1=127.0.0.1:2888:3888:participant;2181\nserver.2=127.0.0.2:2888:3888;2181"
            )
        );
        std::fs::write(&f, "tickTime=2000\n").unwrap();
        assert!(parse(&a(&["-file", f.to_str().unwrap()])).is_err());
        let missing = dir.join("nope");
        let e = parse(&a(&["-file", missing.to_str().unwrap()])).unwrap_err();
        assert!(e.starts_with("Error processing "), "{e}");
        assert!(e.ends_with("(No such file or directory)"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
