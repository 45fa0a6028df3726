//! `rzk shell` end to end: an in-process rzk server (`rzk_testkit::server`), the shell (the
//! binary under test) run as a separate process, one-shot (`rzk shell -server H cmd args`)
//! and interactive (lines on a non-tty stdin), outputs checked against zkCli's formats.
//!
//! With `RZK_TEST_ORACLE=1` and Debian's zkCli installed, read-only commands are also run
//! through the real zkCli against the same server and the outputs must be identical.
//!
//! Run: `cargo test -p rzk --test shell`

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use rzk_testkit::server::{fresh_dir, TestServer};

const BOB_DIGEST: &str = "bob:fyVmFCwVbTJYrznoSu1koqYEYF0="; // digest of bob:secret
const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

fn rzk_shell(server: &TestServer, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_rzk"))
        .args(["shell", "-server", &server.hosts()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run rzk shell");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs one command and expects success; returns stdout.
fn ok(server: &TestServer, args: &[&str]) -> String {
    let o = rzk_shell(server, args);
    assert_eq!(
        o.code, 0,
        "{args:?} failed: stdout {:?} stderr {:?}",
        o.stdout, o.stderr
    );
    o.stdout
}

/// Runs one command and expects zkCli's failure: exit status 1 and `msg` on stderr.
fn fails(server: &TestServer, args: &[&str], msg: &str) {
    let o = rzk_shell(server, args);
    assert_eq!(o.code, 1, "{args:?} should fail: {:?}", o.stdout);
    assert_eq!(o.stderr.trim_end(), msg, "{args:?}");
}

/// A zkCli stat block: 11 `name = value` lines in zkCli's order; returns the values.
fn parse_stat(lines: &[&str]) -> Vec<(String, String)> {
    const NAMES: [&str; 11] = [
        "cZxid",
        "ctime",
        "mZxid",
        "mtime",
        "pZxid",
        "cversion",
        "dataVersion",
        "aclVersion",
        "ephemeralOwner",
        "dataLength",
        "numChildren",
    ];
    assert_eq!(lines.len(), 11, "stat block: {lines:?}");
    let mut out = Vec::new();
    for (line, name) in lines.iter().zip(NAMES) {
        let (k, v) = line.split_once(" = ").expect("name = value");
        assert_eq!(k, name, "{lines:?}");
        match name {
            "cZxid" | "mZxid" | "pZxid" | "ephemeralOwner" => {
                let hex = v.strip_prefix("0x").expect("0x prefix");
                assert!(
                    !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()),
                    "{line}"
                );
            }
            "ctime" | "mtime" => assert!(is_java_date(v), "{line}"),
            _ => assert!(v.parse::<i64>().is_ok(), "{line}"),
        }
        out.push((k.to_string(), v.to_string()));
    }
    out
}

/// `Wed Nov 25 00:05:36 UTC 2026` (Java's Date.toString in UTC).
fn is_java_date(v: &str) -> bool {
    let w: Vec<&str> = v.split(' ').collect();
    w.len() == 6
        && ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].contains(&w[0])
        && w[1].len() == 3
        && w[2].len() == 2
        && w[3].len() == 8
        && w[3].split(':').count() == 3
        && w[4] == "UTC"
        && w[5].parse::<u32>().is_ok()
}

fn stat_value<'a>(stat: &'a [(String, String)], name: &str) -> &'a str {
    stat.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

#[test]
fn one_shot_commands_match_zkcli_formats() {
    let s = common::rzk_server();
    assert_eq!(ok(&s, &["create", "/s", "hello"]), "Created /s\n");
    fails(&s, &["create", "/s", "again"], "Node already exists: /s");
    assert_eq!(ok(&s, &["create", "/s/c1"]), "Created /s/c1\n");
    assert_eq!(
        ok(&s, &["create", "-s", "/s/seq-", "x"]),
        "Created /s/seq-0000000001\n"
    );
    assert_eq!(ok(&s, &["ls", "/s"]), "[c1, seq-0000000001]\n");
    let ls_s = ok(&s, &["ls", "-s", "/s"]);
    let l: Vec<&str> = ls_s.lines().collect();
    assert_eq!(l[0], "[c1, seq-0000000001]");
    let st = parse_stat(&l[1..]);
    assert_eq!(stat_value(&st, "numChildren"), "2");
    assert_eq!(ok(&s, &["get", "/s"]), "hello\n");
    assert_eq!(
        ok(&s, &["get", "/s/c1"]),
        "null\n",
        "a node created without data has null data"
    );
    assert_eq!(ok(&s, &["create", "/empty", ""]), "Created /empty\n");
    assert_eq!(
        ok(&s, &["get", "/empty"]),
        "\n",
        "empty data prints an empty line"
    );
    ok(&s, &["set", "/empty", "v"]);
    assert_eq!(ok(&s, &["get", "/empty"]), "v\n");

    let get_s = ok(&s, &["get", "-s", "/s"]);
    let l: Vec<&str> = get_s.lines().collect();
    assert_eq!(l[0], "hello");
    let st = parse_stat(&l[1..]);
    assert_eq!(stat_value(&st, "dataLength"), "5");
    assert_eq!(stat_value(&st, "dataVersion"), "0");
    assert_eq!(stat_value(&st, "cversion"), "2");
    assert_eq!(stat_value(&st, "ephemeralOwner"), "0x0");
    assert_eq!(stat_value(&st, "cZxid"), stat_value(&st, "mZxid"));

    assert_eq!(ok(&s, &["set", "/s", "world"]), "", "set prints nothing");
    let set_s = ok(&s, &["set", "-s", "/s", "w2"]);
    let st2 = parse_stat(&set_s.lines().collect::<Vec<_>>());
    assert_eq!(stat_value(&st2, "dataVersion"), "2");
    assert_eq!(stat_value(&st2, "dataLength"), "2");
    assert_ne!(stat_value(&st2, "mZxid"), stat_value(&st2, "cZxid"));
    fails(
        &s,
        &["set", "-v", "7", "/s", "x"],
        "version No is not valid : /s",
    );

    let stat = ok(&s, &["stat", "/s"]);
    assert_eq!(parse_stat(&stat.lines().collect::<Vec<_>>()), st2);
    fails(&s, &["stat", "/nope"], "Node does not exist: /nope");
    fails(&s, &["get", "/nope"], "Node does not exist: /nope");
    fails(&s, &["ls", "/nope"], "Node does not exist: /nope");
    fails(&s, &["delete", "/s"], "Node not empty: /s");
    fails(
        &s,
        &["delete", "/zookeeper"],
        "Arguments are not valid : /zookeeper",
    );
    assert_eq!(ok(&s, &["getAllChildrenNumber", "/s"]), "2\n");
    assert_eq!(ok(&s, &["getAllChildrenNumber", "/s/c1"]), "0\n");
    assert_eq!(
        ok(&s, &["ls", "-R", "/s"]),
        "/s\n/s/c1\n/s/seq-0000000001\n"
    );

    // ACLs
    assert_eq!(ok(&s, &["getAcl", "/s"]), "'world,'anyone\n: cdrwa\n");
    assert_eq!(ok(&s, &["setAcl", "/s", "world:anyone:cdr"]), "");
    assert_eq!(ok(&s, &["getAcl", "/s"]), "'world,'anyone\n: cdr\n");
    let acl_s = ok(&s, &["getAcl", "-s", "/s"]);
    let l: Vec<&str> = acl_s.lines().collect();
    assert_eq!(&l[..2], ["'world,'anyone", ": cdr"]);
    assert_eq!(stat_value(&parse_stat(&l[2..]), "aclVersion"), "1");
    fails(
        &s,
        &["setAcl", "-v", "5", "/s/c1", "world:anyone:cdrwa"],
        "version No is not valid : /s/c1",
    );
    // /s lost ADMIN for everyone: the ACL check comes before the version check.
    fails(
        &s,
        &["setAcl", "-v", "5", "/s", "world:anyone:cdrwa"],
        "Insufficient permission : /s",
    );
    assert_eq!(
        ok(
            &s,
            &[
                "create",
                "/s/secret",
                "x",
                &format!("digest:{BOB_DIGEST}:cdrwa")
            ]
        ),
        "Created /s/secret\n"
    );
    // Reading data or ACL needs READ (or ADMIN for the ACL), as in ZooKeeper 3.8.
    fails(
        &s,
        &["get", "/s/secret"],
        "Insufficient permission : /s/secret",
    );
    fails(
        &s,
        &["getAcl", "/s/secret"],
        "Insufficient permission : /s/secret",
    );
    // zkCli's deleteall lists children first, which needs READ.
    fails(
        &s,
        &["deleteall", "/s/secret"],
        "Insufficient permission : /s/secret",
    );
    assert_eq!(ok(&s, &["delete", "/s/secret"]), "");

    // delete with a version, deleteall
    fails(
        &s,
        &["delete", "-v", "3", "/s/seq-0000000001"],
        "version No is not valid : /s/seq-0000000001",
    );
    assert_eq!(ok(&s, &["delete", "-v", "0", "/s/seq-0000000001"]), "");
    assert_eq!(ok(&s, &["getEphemerals", "/"]), "[]\n");
    // /s is cdr for everyone now: deleting its children needs only d on /s.
    assert_eq!(ok(&s, &["deleteall", "/s"]), "");
    fails(&s, &["ls", "/s"], "Node does not exist: /s");
    // Usage and "Command not found" on an unknown command, exit status 127 (zkCli's).
    let o = rzk_shell(&s, &["frobnicate"]);
    assert_eq!(o.code, 127);
    assert!(
        o.stderr
            .ends_with("Command not found: Command not found frobnicate\n"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains("ZooKeeper -server host:port"),
        "{o:?}",
        o = o.stderr
    );
}

fn interactive(server: &TestServer, input: &str) -> Out {
    let home = fresh_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rzk"))
        .args(["shell", "-server", &server.hosts()])
        .env("HOME", &home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rzk shell");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write commands");
    let out = child.wait_with_output().expect("shell output");
    let _ = std::fs::remove_dir_all(&home);
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn interactive_session_on_stdin() {
    let s = common::rzk_server();
    ok(&s, &["create", "/i", "v0"]);
    ok(
        &s,
        &[
            "create",
            "/i/locked",
            "x",
            &format!("digest:{BOB_DIGEST}:cdrwa"),
        ],
    );
    let o = interactive(
        &s,
        "create -e /i/e1 a\n\
         create -e /i/e2\n\
         create /i/p\n\
         getEphemerals /i\n\
         getEphemerals /i/e1\n\
         get /i/locked\n\
         addauth digest bob:secret\n\
         get /i/locked\n\
         getAcl /i/locked\n\
         whoami\n\
         get -w /i\n\
         set /i v1\n\
         sync /i\n\
         history\n\
         quit\n",
    );
    assert_eq!(o.code, 0, "{:?}", o.stderr);
    let lines = o.lines();
    // zkCli's connection banner, then the command outputs in order.
    assert!(
        o.stdout
            .contains("WATCHER::\n\nWatchedEvent state:SyncConnected type:None path:null"),
        "{}",
        o.stdout
    );
    let find = |want: &str| {
        lines
            .iter()
            .position(|l| *l == want)
            .unwrap_or_else(|| panic!("no line {want:?} in:\n{}", o.stdout))
    };
    // Interactive `create` reports on stderr, as zkCli does.
    let c1 = o
        .stderr
        .find("Created /i/e1")
        .expect("Created /i/e1 on stderr");
    let c2 = o
        .stderr
        .find("Created /i/e2")
        .expect("Created /i/e2 on stderr");
    assert!(c1 < c2);
    // Ephemerals of this session (order unspecified, as in ZooKeeper).
    let eph_all = lines
        .iter()
        .find(|l| l.starts_with("[/i/"))
        .expect("getEphemerals output");
    let mut eph: Vec<&str> = eph_all
        .trim_matches(|c| c == '[' || c == ']')
        .split(", ")
        .collect();
    eph.sort();
    assert_eq!(eph, ["/i/e1", "/i/e2"]);
    find("[/i/e1]");
    assert!(
        o.stderr.contains("Insufficient permission : /i/locked"),
        "{}",
        o.stderr
    );
    let x = find("x");
    assert_eq!(find(": cdrwa"), find(&format!("'digest,'{BOB_DIGEST}")) + 1);
    find("Auth scheme: User");
    find("digest: bob");
    assert!(find("v0") > x);
    assert!(
        o.stdout
            .contains("WATCHER::\n\nWatchedEvent state:SyncConnected type:NodeDataChanged path:/i"),
        "get -w then set must print the watch event:\n{}",
        o.stdout
    );
    find("Sync is OK");
    // zkCli's history shows the last ten lines and the `history` line itself.
    find("3 - getEphemerals /i");
    find("13 - history");
    assert!(!o.stdout.contains("2 - create /i/p"), "{}", o.stdout);
    find("8 - getAcl /i/locked");
    // quit closed the session: its ephemerals are gone.
    assert_eq!(ok(&s, &["ls", "/i"]), "[locked, p]\n");
}

/// Read-only commands through rzk shell and through the real zkCli, against the same
/// rzk server: identical output (zkCli's connection chatter removed).
#[test]
fn outputs_identical_to_zkcli() {
    if !(common::oracle_enabled() && Path::new(ZKCLI).exists()) {
        eprintln!("skipping: set RZK_TEST_ORACLE=1 (needs Debian's zkCli) to compare with zkCli");
        return;
    }
    let s = common::rzk_server();
    ok(&s, &["create", "/z", "hello"]);
    ok(&s, &["create", "/z/a"]);
    ok(&s, &["create", "/z/b", "data-b"]);
    ok(&s, &["create", "-s", "/z/q-", "x"]);
    ok(
        &s,
        &["create", "/z/sec", "x", &format!("digest:{BOB_DIGEST}:r")],
    );
    ok(&s, &["create", "/z/e", ""]);
    ok(&s, &["setAcl", "/z/a", "world:anyone:cdrw"]);
    let commands: [&[&str]; 14] = [
        &["ls", "/z"],
        &["ls", "-s", "/z"],
        &["ls", "-R", "/z"],
        &["get", "/z"],
        &["get", "-s", "/z/b"],
        // null data prints "null", empty data an empty line
        &["get", "/z/a"],
        &["get", "-s", "/z/a"],
        &["get", "-s", "/z/e"],
        &["stat", "/z/a"],
        &["getAcl", "/z/a"],
        &["getAcl", "-s", "/z/sec"],
        &["getAllChildrenNumber", "/z"],
        &["get", "/z/nope"],
        &["get", "/z/sec"],
    ];
    for cmd in commands {
        let mine = rzk_shell(&s, cmd);
        let theirs = Command::new(ZKCLI)
            .args(["-server", &s.hosts()])
            .args(cmd)
            .env("CLIENT_JVMFLAGS", "-Xmx128m")
            .stdin(Stdio::null())
            .output()
            .expect("run zkCli");
        let chatter = |l: &&str| {
            !(l.starts_with("SLF4J:")
                || l.starts_with("Connecting to ")
                || l.starts_with("Welcome to ZooKeeper!")
                || l.starts_with("JLine support")
                || *l == "WATCHER::"
                || l.starts_with("WatchedEvent state:SyncConnected type:None")
                || l.is_empty())
        };
        let all = String::from_utf8_lossy(&theirs.stdout).into_owned()
            + &String::from_utf8_lossy(&theirs.stderr);
        let zk_lines: Vec<&str> = all.lines().filter(chatter).collect();
        let my_all = mine.stdout.clone() + &mine.stderr;
        let my_lines: Vec<&str> = my_all.lines().filter(chatter).collect();
        assert_eq!(my_lines, zk_lines, "{cmd:?}");
        assert_eq!(
            Some(mine.code),
            theirs.status.code(),
            "{cmd:?}: exit status"
        );
    }
}

/// `rzk shell ... | head`: a reader that goes away mid-output ends the shell quietly with
/// status 0 (it used to panic on the broken pipe), and the lines before it arrive.
#[test]
fn a_closed_stdout_pipe_ends_the_shell_quietly() {
    let server = TestServer::start();
    // ~40 KB of paths, listed one get_children round trip at a time: the shell is still
    // writing long after the reader below has gone.
    let creates: String = (0..400).map(|i| format!("create /p{i:0>100}\n")).collect();
    let o = interactive(&server, &creates);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let mut child = Command::new(env!("CARGO_BIN_EXE_rzk"))
        .args(["shell", "-server", &server.hosts(), "ls", "-R", "/"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rzk shell");
    let mut first = [0u8; 2];
    {
        use std::io::Read;
        let mut out = child.stdout.take().expect("stdout");
        out.read_exact(&mut first).expect("first bytes");
        // `out` dropped here: the pipe's only reader is gone.
    }
    let status = child.wait().expect("wait");
    let mut err = String::new();
    {
        use std::io::Read;
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut err)
            .ok();
    }
    assert_eq!(&first, b"/\n");
    assert_eq!(status.code(), Some(0), "stderr: {err}");
    assert!(!err.contains("panicked"), "stderr: {err}");
}

/// Lines piped into the shell exit with the last command's status, as zkCli's (its
/// `exitCode` follows every command; `quit` and the end of input exit with it): a
/// script whose last command failed fails (rzk exited 0; a break-it review).
#[test]
fn piped_lines_exit_with_the_last_commands_status() {
    let s = common::rzk_server();
    let o = interactive(&s, "create /pz\nget /pz-missing\n");
    assert_eq!(o.code, 1, "{:?}", o.stderr);
    let o = interactive(&s, "get /pz-missing\ncreate /pz2\n");
    assert_eq!(o.code, 0, "{:?}", o.stderr);
    let o = interactive(&s, "get /pz-missing\nquit\n");
    assert_eq!(o.code, 1, "quit keeps the last status: {:?}", o.stderr);
}
