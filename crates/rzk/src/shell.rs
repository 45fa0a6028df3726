//! `rzk shell`: a zkCli-compatible command shell over rzk-client.
//!
//! Owns argument parsing (`-server host:port[,...]`, `-timeout ms`, `-r`, and for TLS
//! `-tls-ca FILE [-tls-cert FILE -tls-key FILE] [-tls-no-hostname-check]`, for SASL
//! DIGEST-MD5 `-sasl-user USER -sasl-password-file FILE` or `-jaas FILE [-sasl-section
//! NAME]`, else zkCli's client properties: `-D` flags in `CLIENT_JVMFLAGS` / `JVMFLAGS` and
//! the file of `-client-configuration FILE`, see `shell/client_config.rs`), the command
//! table, zkCli's output formats (`[a, b]` listings, `cZxid = 0x..` stat lines, `'world,'anyone`
//! ACLs, `WATCHER::` events) and rustyline editing/history. With a command after the
//! options it runs that one command and exits (status 1 on error). Never panics on
//! server replies; every failure becomes a zkCli-style message on stderr.

/// `println!` for the shell's output: when stdout is a closed pipe (`rzk shell ... ls -R /
/// | head`) the shell ends quietly with status 0 instead of panicking (zkCli carries on
/// printing into the void); any other write error ends it with status 1.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            $crate::shell::stdout_failed(e);
        }
    }};
}

/// `print!` for the shell's output (no newline), as `outln!`.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut o = std::io::stdout();
        if let Err(e) = write!(o, $($arg)*).and_then(|()| o.flush()) {
            $crate::shell::stdout_failed(e);
        }
    }};
}

/// Ends the process after a failed write to stdout (see `outln!`).
pub(crate) fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("cannot write to standard output: {e}");
    std::process::exit(1);
}

mod client_config;
mod complete;
mod events;
mod options;
mod quota;
mod reconfig;
mod tokenize;

use options::{flags, Flags};

use std::process::ExitCode;
use std::time::Duration;

use rzk_client::{
    Acl, AddWatchMode, Client, CreateMode, Error, EventType, SessionState, Stat, WatcherType,
};
use rzk_proto::opcode::perms;

/// Jute's CSV escaping of a string field, as zkCli shows ids (`Id.toString()`).
fn csv_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push_str("%00"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            ',' => out.push_str("%2C"),
            '}' => out.push_str("%7D"),
            '%' => out.push_str("%25"),
            c => out.push(c),
        }
    }
    out
}

/// `rzk shell [-server host:port[,host:port...][/chroot]] [-timeout ms] [-r]
/// [-tls-ca FILE [-tls-cert FILE -tls-key FILE] [-tls-no-hostname-check]]
/// [-sasl-user USER -sasl-password-file FILE | -jaas FILE [-sasl-section NAME]] [command args...]`
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// zkCli-style options followed by an optional command, e.g. `-server 127.0.0.1:2181 ls /`.
    /// Bytes that are not UTF-8 become U+FFFD, as the JVM decodes zkCli's arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<std::ffi::OsString>,
}

const DEFAULT_SERVER: &str = "localhost:2181";
const HISTORY_FILE: &str = ".rzk_shell_history";
/// The largest TTL a znode can have, in milliseconds: 40 bits of the ephemeral owner
/// field (ZooKeeper's `EphemeralType.TTL` maximum, 0xFF_FFFF_FFFF).
const MAX_TTL_MS: i64 = 0xFF_FFFF_FFFF;

struct Options {
    server: String,
    timeout_ms: u64,
    read_only: bool,
    tls: TlsArgs,
    sasl: SaslArgs,
    /// zkCli's `-client-configuration FILE` (`shell/client_config.rs`).
    client_config: Option<std::path::PathBuf>,
    /// `-h`/`-help`/`--help`: print the usage, connect to nothing.
    help: bool,
    command: Vec<String>,
}

/// How `rzk shell` logs in with SASL DIGEST-MD5 (ZooKeeper's JAAS `Client` section).
#[derive(Debug, Clone, Default)]
struct SaslArgs {
    user: Option<String>,
    password_file: Option<std::path::PathBuf>,
    jaas: Option<std::path::PathBuf>,
    section: Option<String>,
}

impl SaslArgs {
    /// The login: from the flags, else from zkCli's client properties (`props`: the JVM
    /// flags of `CLIENT_JVMFLAGS`/`JVMFLAGS` and `-client-configuration`); `None` for no
    /// SASL.
    fn options(
        &self,
        props: &client_config::ClientProperties,
    ) -> Result<Option<rzk_client::SaslOptions>, Error> {
        use rzk_client::sasl::{SaslOptions, Secret, DEFAULT_CLIENT_SECTION};
        match (&self.user, &self.password_file, &self.jaas) {
            (Some(_), _, Some(_)) | (None, Some(_), Some(_)) => Err(Error::Sasl(
                "-jaas and -sasl-user/-sasl-password-file exclude each other".into(),
            )),
            (Some(user), Some(file), None) => {
                let text = std::fs::read_to_string(file).map_err(|e| {
                    Error::Sasl(format!("cannot read password file {}: {e}", file.display()))
                })?;
                let password = text.strip_suffix('\n').unwrap_or(&text);
                let password = password.strip_suffix('\r').unwrap_or(password);
                Ok(Some(SaslOptions::digest(
                    user.clone(),
                    Secret::new(password),
                )))
            }
            (Some(_), None, None) | (None, Some(_), None) => Err(Error::Sasl(
                "-sasl-user and -sasl-password-file go together".into(),
            )),
            (None, None, Some(jaas)) => {
                let section = self.section.as_deref().unwrap_or(DEFAULT_CLIENT_SECTION);
                SaslOptions::from_jaas_file(jaas, section).map(Some)
            }
            (None, None, None) if self.section.is_some() => {
                Err(Error::Sasl("-sasl-section needs -jaas".into()))
            }
            (None, None, None) => props.sasl(),
        }
    }
}

/// TLS options shared by `rzk shell` and `rzk bench`: PEM files, as kazoo takes them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// Connect over TLS, trusting the CA certificates in this PEM file.
    #[arg(long = "tls-ca")]
    pub ca: Option<std::path::PathBuf>,
    /// Client certificate chain (PEM) for servers that ask for one (`ssl.clientAuth`).
    #[arg(long = "tls-cert", requires = "key")]
    pub cert: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long = "tls-key", requires = "cert")]
    pub key: Option<std::path::PathBuf>,
    /// Accept a server certificate that does not name the host connected to.
    #[arg(long = "tls-no-hostname-check")]
    pub no_hostname_check: bool,
}

impl TlsArgs {
    /// The client's TLS options, `None` without `--tls-ca`.
    pub fn options(&self) -> Result<Option<rzk_client::TlsOptions>, Error> {
        let Some(ca) = &self.ca else {
            if self.cert.is_some() || self.key.is_some() {
                return Err(Error::Tls("--tls-cert/--tls-key need --tls-ca".into()));
            }
            return Ok(None);
        };
        let pair = match (&self.cert, &self.key) {
            (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
            (None, None) => None,
            _ => return Err(Error::Tls("--tls-cert and --tls-key go together".into())),
        };
        rzk_client::TlsOptions::from_pem_files(ca, pair, !self.no_hostname_check).map(Some)
    }
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        server: DEFAULT_SERVER.into(),
        timeout_ms: 30000,
        read_only: false,
        tls: TlsArgs::default(),
        sasl: SaslArgs::default(),
        client_config: None,
        help: false,
        command: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-server" | "--server" => {
                i += 1;
                o.server = args.get(i).ok_or("-server needs host:port")?.clone();
            }
            "-timeout" | "--timeout" => {
                i += 1;
                o.timeout_ms = args
                    .get(i)
                    .and_then(|t| t.parse().ok())
                    .ok_or("-timeout needs milliseconds")?;
            }
            "-r" => o.read_only = true,
            "-tls-ca" | "--tls-ca" | "-tls-cert" | "--tls-cert" | "-tls-key" | "--tls-key" => {
                let flag = args[i].trim_start_matches('-').to_owned();
                i += 1;
                let v =
                    std::path::PathBuf::from(args.get(i).ok_or(format!("-{flag} needs a file"))?);
                match flag.as_str() {
                    "tls-ca" => o.tls.ca = Some(v),
                    "tls-cert" => o.tls.cert = Some(v),
                    _ => o.tls.key = Some(v),
                }
            }
            "-tls-no-hostname-check" | "--tls-no-hostname-check" => o.tls.no_hostname_check = true,
            "-sasl-user"
            | "--sasl-user"
            | "-sasl-password-file"
            | "--sasl-password-file"
            | "-jaas"
            | "--jaas"
            | "-sasl-section"
            | "--sasl-section" => {
                let flag = args[i].trim_start_matches('-').to_owned();
                i += 1;
                let v = args.get(i).ok_or(format!("-{flag} needs a value"))?.clone();
                match flag.as_str() {
                    "sasl-user" => o.sasl.user = Some(v),
                    "sasl-password-file" => o.sasl.password_file = Some(v.into()),
                    "jaas" => o.sasl.jaas = Some(v.into()),
                    _ => o.sasl.section = Some(v),
                }
            }
            "-waitforconnection" => {}
            "-client-configuration" | "--client-configuration" => {
                i += 1;
                o.client_config = Some(
                    args.get(i)
                        .ok_or("-client-configuration needs a file")?
                        .into(),
                );
            }
            "-help" | "--help" | "-h" => {
                o.help = true;
                return Ok(o);
            }
            _ => {
                o.command = args[i..].to_vec();
                return Ok(o);
            }
        }
        i += 1;
    }
    Ok(o)
}

/// The krb5.conf zkCli's JVM flags name (`-Djava.security.krb5.conf` in
/// `CLIENT_JVMFLAGS`/`JVMFLAGS`), if any: main.rs hands it to the Kerberos library as
/// KRB5_CONFIG (else the library's own choice stands: KRB5_CONFIG or /etc/krb5.conf).
pub fn krb5_conf() -> Option<String> {
    client_config::ClientProperties::krb5_conf_from_env()
}

/// Entry point for `main.rs`: builds a runtime and runs the shell.
pub fn main(args: Args) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run(args))
}

struct Shell {
    client: Option<Client>,
    /// The same session, for tab completion of znode paths.
    shared: complete::SharedClient,
    /// Prints the current session's state changes (interactive mode).
    printer: Option<tokio::task::JoinHandle<()>>,
    tls: Option<rzk_client::TlsOptions>,
    sasl: Option<rzk_client::SaslOptions>,
    server: String,
    timeout: Duration,
    read_only: bool,
    /// zkCli's numbered history: every non-empty line read (`redo` stores the line redone).
    history: Vec<String>,
    interactive: bool,
}

/// zkCli's exit status for an unknown command (`ExitCode.UNKNOWN_COMMAND`).
const EXIT_UNKNOWN_COMMAND: u8 = 127;

/// Why a command failed: its message, and whether the command was unknown.
enum Failure {
    Message(String),
    UnknownCommand(String),
}

impl From<String> for Failure {
    fn from(m: String) -> Self {
        Failure::Message(m)
    }
}

impl From<&str> for Failure {
    fn from(m: &str) -> Self {
        Failure::Message(m.to_owned())
    }
}

/// Runs the shell (one command, or the interactive loop).
pub async fn run(args: Args) -> ExitCode {
    let args: Vec<String> = args
        .args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let opts = match parse_options(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if opts.help {
        // Usage needs no server: print it before connecting.
        outln!("{USAGE}\n{OPTIONS}");
        return ExitCode::SUCCESS;
    }
    let props =
        match client_config::ClientProperties::from_env_and_file(opts.client_config.as_deref()) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        };
    let secure = match props.secure() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let tls = if secure {
        if opts.tls.ca.is_some() || opts.tls.cert.is_some() || opts.tls.key.is_some() {
            eprintln!(
                "-tls-ca/-tls-cert/-tls-key and zookeeper.client.secure=true exclude each \
                 other: give TLS one way"
            );
            return ExitCode::from(2);
        }
        props.tls()
    } else {
        opts.tls.options().map_err(|e| e.to_string())
    };
    let tls = match tls {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let sasl = match opts.sasl.options(&props) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut sh = Shell {
        client: None,
        shared: Default::default(),
        printer: None,
        tls,
        sasl,
        server: opts.server.clone(),
        timeout: Duration::from_millis(opts.timeout_ms),
        read_only: opts.read_only,
        history: Vec::new(),
        interactive: opts.command.is_empty(),
    };
    if !sh.interactive {
        // As zkCli: refuse a bad command line before connecting.
        if let Err(f) = sh.check_command(&opts.command) {
            return sh.report(f);
        }
    }
    if let Err(e) = sh.connect(&opts.server) {
        eprintln!("Unable to connect to {}: {e}", opts.server);
        if !sh.interactive {
            return ExitCode::FAILURE;
        }
    }
    if !opts.command.is_empty() {
        // `quit` as the one command: zkCli closes the session and exits 0, silently.
        let code = if opts.command[0] == "quit" {
            ExitCode::SUCCESS
        } else {
            match sh.dispatch(&opts.command).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(f) => sh.report(f),
            }
        };
        if let Some(c) = sh.client.take() {
            let _ = c.close().await;
        }
        return code;
    }
    sh.interactive_loop().await
}

fn state_word(s: SessionState) -> &'static str {
    match s {
        SessionState::Connected => "CONNECTED",
        SessionState::ConnectedReadOnly => "CONNECTEDREADONLY",
        SessionState::Disconnected => "CONNECTING",
        SessionState::Expired => "CLOSED",
        SessionState::AuthFailed => "AUTH_FAILED",
        SessionState::Closed => "CLOSED",
    }
}

/// One line as Java's `BufferedReader.readLine` ends it (LF, CR or CRLF) into `out`,
/// without the terminator; `Ok(false)` at the end of input with nothing read.
/// `pending_cr`: the previous line ended with a CR, so a LF first is that line's end.
fn read_java_line(
    r: &mut impl std::io::BufRead,
    out: &mut Vec<u8>,
    pending_cr: &mut bool,
) -> std::io::Result<bool> {
    let mut any = false;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(any);
        }
        if std::mem::take(pending_cr) && buf[0] == b'\n' {
            r.consume(1);
            continue;
        }
        any = true;
        match buf.iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(i) => {
                out.extend_from_slice(&buf[..i]);
                *pending_cr = buf[i] == b'\r';
                r.consume(i + 1);
                return Ok(true);
            }
            None => {
                let n = buf.len();
                out.extend_from_slice(buf);
                r.consume(n);
            }
        }
    }
}

/// `ls`, `get` and `stat` options, with zkCli 3.8's old form `cmd path watch`: more than
/// one argument left after the options makes it warn that the form is deprecated, put
/// `-w` in place of the second word of the line (as zkCli rewrites its token array,
/// whatever that word was) and parse again.
fn old_watch_form(args: &[String], spec: &str, new_form: &str) -> Result<Flags, String> {
    let f = flags(args, spec)?;
    if f.rest.len() <= 1 {
        return Ok(f);
    }
    let cmd = new_form.split(' ').next().unwrap_or_default();
    eprintln!("'{cmd} path [watch]' has been deprecated. Please use '{new_form}' instead.");
    let mut again = args.to_vec();
    again[1] = "-w".to_owned();
    flags(&again, spec)
}

/// Keeps a one-shot watch alive until it fires (a dropped watch is removed from the
/// server). Its event is printed by the session's notification printer
/// (`events::print_notifications`, in the server's order), a state change that ends it
/// (expiry, close) by the session's state printer, once however many watches it ended:
/// zkCli's watches are all its one default watcher.
fn spawn_print(w: rzk_client::OneshotWatch) {
    tokio::spawn(async move {
        let ev = w.await;
        // A watch removed by `removewatches` (DataWatchRemoved, ...) is no server
        // notification: only its own future hears of it.
        if ev.notification == 0 && ev.event_type != EventType::None {
            events::print_removal(&ev);
        }
    });
}

/// Java's `Date.toString()` in UTC: `Thu Jan 01 00:00:00 UTC 1970`.
pub fn java_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (Howard Hinnant).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MO: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let wd = WD[days.rem_euclid(7) as usize];
    format!(
        "{wd} {} {d:02} {h:02}:{m:02}:{s:02} UTC {y}",
        MO[(mo - 1) as usize]
    )
}

/// zkCli's stat block.
pub fn format_stat(s: &Stat) -> String {
    format!(
        "cZxid = 0x{:x}\nctime = {}\nmZxid = 0x{:x}\nmtime = {}\npZxid = 0x{:x}\ncversion = {}\ndataVersion = {}\naclVersion = {}\nephemeralOwner = 0x{:x}\ndataLength = {}\nnumChildren = {}",
        s.czxid,
        java_date(s.ctime),
        s.mzxid,
        java_date(s.mtime),
        s.pzxid,
        s.cversion,
        s.version,
        s.aversion,
        s.ephemeral_owner,
        s.data_length,
        s.num_children
    )
}

fn perms_string(p: i32) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (perms::CREATE, 'c'),
        (perms::DELETE, 'd'),
        (perms::READ, 'r'),
        (perms::WRITE, 'w'),
        (perms::ADMIN, 'a'),
    ] {
        if p & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// zkCli's permission letters; as zkCli, an unknown letter is reported on stderr and
/// skipped (the entry keeps the letters it knows, possibly none).
fn parse_perms(s: &str) -> Result<i32, String> {
    let mut p = 0;
    for c in s.chars() {
        p |= match c {
            'c' => perms::CREATE,
            'd' => perms::DELETE,
            'r' => perms::READ,
            'w' => perms::WRITE,
            'a' => perms::ADMIN,
            _ => {
                eprintln!("Unknown perm type: {c}");
                0
            }
        };
    }
    Ok(p)
}

/// Parses zkCli ACL syntax `scheme:id:perms[,scheme:id:perms...]`.
pub fn parse_acl(s: &str) -> Result<Vec<Acl>, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let first = part.find(':');
        let last = part.rfind(':');
        match (first, last) {
            (Some(f), Some(l)) if f < l => {
                out.push(Acl::new(
                    parse_perms(&part[l + 1..])?,
                    &part[..f],
                    &part[f + 1..l],
                ));
            }
            _ => return Err(format!("{part} does not have the form scheme:id:perm")),
        }
    }
    Ok(out)
}

/// The first fault of a path that starts with `/`, has more than that and does not end
/// with `/`, found as zkCli's path check finds it (a scan of UTF-16 code units): its
/// reason and the code unit's index, for zkCli's `Invalid path string "..." caused by
/// <reason> @<index>`. `None` for the whole-path faults (empty, relative, trailing `/`),
/// whose messages have no index.
fn java_path_fault(path: &str) -> Option<(&'static str, usize)> {
    let u: Vec<u16> = path.encode_utf16().collect();
    if u.len() < 2 || u[0] != u16::from(b'/') || u[u.len() - 1] == u16::from(b'/') {
        return None;
    }
    let (slash, dot) = (u16::from(b'/'), u16::from(b'.'));
    let ends_name = |i: usize| i + 1 == u.len() || u[i + 1] == slash;
    for i in 1..u.len() {
        let (c, last) = (u[i], u[i - 1]);
        if c == 0 {
            return Some(("null character not allowed", i));
        }
        if c == slash && last == slash {
            return Some(("empty node name specified", i));
        }
        if c == dot && last == dot {
            if i >= 2 && u[i - 2] == slash && ends_name(i) {
                return Some(("relative paths not allowed", i));
            }
        } else if c == dot {
            if last == slash && ends_name(i) {
                return Some(("relative paths not allowed", i));
            }
        } else if matches!(c, 0x01..=0x1f | 0x7f..=0x9f | 0xd800..=0xf8ff | 0xfff0..=0xffff) {
            return Some(("invalid character", i));
        }
    }
    None
}

/// zkCli's message for an error on `path`.
pub fn error_message(e: &Error, path: &str) -> String {
    match e {
        Error::NoNode => format!("Node does not exist: {path}"),
        Error::NodeExists => format!("Node already exists: {path}"),
        Error::NotEmpty => format!("Node not empty: {path}"),
        Error::BadVersion => format!("version No is not valid : {path}"),
        Error::NoAuth => format!("Insufficient permission : {path}"),
        Error::BadArguments => format!("Arguments are not valid : {path}"),
        Error::NoChildrenForEphemerals => format!("Ephemerals cannot have children: {path}"),
        Error::NotReadOnly => format!("Not a read-only call: {path}"),
        Error::QuotaExceeded => format!("Quota has exceeded : {path}"),
        Error::ReconfigInProgress => {
            "Another reconfiguration is in progress -- concurrent reconfigs not supported (yet)"
                .into()
        }
        // Debian's 3.8.0 build spells it so; upstream's source has "commmitted".
        Error::NewConfigNoQuorum => "No quorum of new config is connected and up-to-date with the leader of last committed config - try invoking reconfiguration after new servers are connected and synced".into(),
        Error::InvalidAcl => {
            format!("KeeperErrorCode = InvalidACL for {path}\nAcl is not valid : {path}")
        }
        Error::InvalidPath(p) => match java_path_fault(&p.path) {
            Some((reason, at)) => {
                format!(
                    "Invalid path string \"{}\" caused by {reason} @{at}",
                    p.path
                )
            }
            None => {
                // ZooKeeper's PathUtils capitalises the messages that begin with "Path".
                let r = p.reason.to_string();
                match r.strip_prefix("path ") {
                    Some(rest) => format!("Path {rest}"),
                    None => r,
                }
            }
        },
        other => keeper_message(other, Some(path)),
    }
}

/// Java's `KeeperException.getMessage()`: `KeeperErrorCode = <code> for <path>` (without
/// ` for ...` when the exception has no path or an empty one), the code as
/// `getCodeMessage` names it (`Unknown error <CODE>` for the two codes it has no case
/// for). Errors of rzk-client's own (closed, timed out, ...) keep its wording.
pub fn keeper_message(e: &Error, path: Option<&str>) -> String {
    let code = match e {
        Error::SystemError => "SystemError",
        Error::RuntimeInconsistency => "RuntimeInconsistency",
        Error::DataInconsistency => "DataInconsistency",
        Error::ConnectionLoss => "ConnectionLoss",
        Error::MarshallingError => "MarshallingError",
        Error::NewConfigNoQuorum => "NewConfigNoQuorum",
        Error::ReconfigInProgress => "ReconfigInProgress",
        Error::Unimplemented => "Unimplemented",
        Error::OperationTimeout | Error::Timeout => "OperationTimeout",
        Error::BadArguments => "BadArguments",
        Error::UnknownSession => "Unknown error UNKNOWNSESSION",
        Error::ApiError => "APIError",
        Error::NoNode => "NoNode",
        Error::NoAuth => "NoAuth",
        Error::BadVersion => "BadVersion",
        Error::NoChildrenForEphemerals => "NoChildrenForEphemerals",
        Error::NodeExists => "NodeExists",
        Error::InvalidAcl => "InvalidACL",
        Error::AuthFailed => "AuthFailed",
        Error::NotEmpty => "Directory not empty",
        Error::SessionExpired => "Session expired",
        Error::InvalidCallback => "Invalid callback",
        Error::SessionMoved => "Session moved",
        Error::NotReadOnly => "Not a read-only call",
        Error::EphemeralOnLocalSession => "Ephemeral node on local session",
        Error::NoWatcher => "No such watcher",
        Error::RequestTimeout => "Unknown error REQUESTTIMEOUT",
        Error::ReconfigDisabled => "Reconfig is disabled",
        Error::SessionClosedRequireSaslAuth => {
            "Session closed because client failed to authenticate"
        }
        Error::QuotaExceeded => "Quota has exceeded",
        Error::ThrottledOp => "Op throttled due to high load",
        other => return format!("KeeperErrorCode = {other}{}", for_path(path)),
    };
    format!("KeeperErrorCode = {code}{}", for_path(path))
}

fn for_path(path: Option<&str>) -> String {
    match path {
        Some(p) if !p.is_empty() => format!(" for {p}"),
        _ => String::new(),
    }
}

/// A znode's data as zkCli prints it: Java's `new String(data, UTF_8)`, which replaces
/// malformed bytes with U+FFFD by Java's rules (one for each CESU-8 surrogate, where
/// `String::from_utf8_lossy` gives one per byte).
pub fn data_text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    rzk_proto::java_utf8::decode(data)
}

/// zkCli's `AclParser.parse`: each malformed entry of a comma-separated ACL is reported
/// (on stderr) and left out; the others are kept.
fn parse_acl_entries(s: &str) -> Vec<Acl> {
    let mut good = Vec::new();
    // Java's `split(",")`: trailing empty entries are dropped (`world:anyone:r,` is one
    // entry, `,,` none), an empty string is one empty entry.
    let trimmed = s.trim_end_matches(',');
    let parts = (s.is_empty() || !trimmed.is_empty()).then(|| trimmed.split(','));
    for part in parts.into_iter().flatten() {
        match parse_acl(part) {
            Ok(mut v) => good.append(&mut v),
            Err(e) => eprintln!("{e}"),
        }
    }
    good
}

const USAGE: &str = "ZooKeeper -server host:port -client-configuration properties-file cmd args
\taddWatch [-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE
\taddauth scheme auth
\tclose 
\tconfig [-c] [-w] [-s]
\tconnect host:port
\tcreate [-s] [-e] [-c] [-t ttl] path [data] [acl]
\tdelete [-v version] path
\tdeleteall path [-b batch size]
\tdelquota [-n|-b|-N|-B] path
\tget [-s] [-w] path
\tgetAcl [-s] path
\tgetAllChildrenNumber path
\tgetEphemerals path
\thistory 
\tlistquota path
\tls [-s] [-w] [-R] path
\tprintwatches on|off
\tquit 
\treconfig [-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]
\tredo cmdno
\tremovewatches path [-c|-d|-a] [-l]
\tset [-s] [-v version] path data
\tsetAcl [-s] [-v version] [-R] path acl
\tsetquota -n|-b|-N|-B val path
\tstat [-w] path
\tsync path
\tversion 
\twhoami ";

/// The options `rzk shell --help` lists after zkCli's usage (zkCli's own, then rzk's).
const OPTIONS: &str = "Options, before the command:
\t-server host:port[,host:port...][/chroot]  the ensemble (default localhost:2181)
\t-timeout ms  session timeout (default 30000)
\t-r  accept a read-only server
\t-waitforconnection  accepted (every command waits for the session anyway)
\t-client-configuration file  ZooKeeper client properties (zookeeper.client.secure, zookeeper.ssl.*, zookeeper.sasl.*)
\t-tls-ca file [-tls-cert file -tls-key file] [-tls-no-hostname-check]  TLS (rzk's own)
\t-sasl-user user -sasl-password-file file | -jaas file [-sasl-section name]  SASL DIGEST-MD5, or Kerberos from a Krb5LoginModule section (rzk's own)";

/// Commands the shell knows (zkCli's command table), for "Command not found".
const COMMANDS: &[&str] = &[
    "addWatch",
    "addauth",
    "close",
    "config",
    "connect",
    "create",
    "delete",
    "deleteall",
    "delquota",
    "get",
    "getAcl",
    "getAllChildrenNumber",
    "getEphemerals",
    "history",
    "listquota",
    "ls",
    "printwatches",
    "quit",
    "reconfig",
    "redo",
    "removewatches",
    "set",
    "setAcl",
    "setquota",
    "stat",
    "sync",
    "version",
    "whoami",
];

/// Commands that take no `-x` options (zkCli refuses any).
const NO_OPTIONS: &[&str] = &[
    "addauth",
    "close",
    "getAllChildrenNumber",
    "getEphemerals",
    "listquota",
    "sync",
    "version",
    "whoami",
];

impl Shell {
    /// Starts a session with `server` without waiting for it: as with zkCli, commands
    /// wait for the connection and fail with ConnectionLoss if it cannot be made.
    fn connect(&mut self, server: &str) -> Result<(), Error> {
        if let Some(c) = self.client.take() {
            // The old session's close is reported by its printer.
            tokio::spawn(async move {
                let _ = c.close().await;
            });
        }
        self.server = server.to_owned();
        let mut b = Client::builder(server)
            .session_timeout(self.timeout)
            .can_be_read_only(self.read_only);
        if let Some(t) = &self.tls {
            b = b.tls(t.clone());
        }
        if let Some(s) = &self.sasl {
            b = b.sasl(s.clone());
        }
        let c = b.start()?;
        // Ends when the client's last handle is gone (the sender is the client's).
        events::print_notifications(c.notifications());
        if self.interactive {
            self.printer = Some(events::track(&c, self.sasl.is_some()));
        }
        if let Ok(mut g) = self.shared.lock() {
            *g = Some(c.clone());
        }
        self.client = Some(c);
        Ok(())
    }

    /// Closes the session and waits until its `Closed` event is printed.
    async fn close(&mut self) {
        if let Ok(mut g) = self.shared.lock() {
            *g = None;
        }
        if let Some(c) = self.client.take() {
            if let Err(e) = c.close().await {
                tracing::debug!(%e, "close");
            }
        }
        if let Some(p) = self.printer.take() {
            let _ = p.await;
        }
    }

    fn prompt(&self) -> String {
        let st = self
            .client
            .as_ref()
            .map(|c| state_word(c.state()))
            .unwrap_or("CLOSED");
        format!("[zk: {}({st}) {}] ", self.server, self.history.len())
    }

    /// Reads and runs lines until `quit` or the end of input; the exit status is the
    /// last command's, as zkCli's (its `exitCode` is set by every command it runs), so a
    /// script piped into the shell fails when its last command failed.
    async fn interactive_loop(&mut self) -> ExitCode {
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() {
            return self.script_loop().await;
        }
        // Tab lists the candidates, as zkCli's JLine completer does.
        let config = rustyline::Config::builder()
            .completion_type(rustyline::CompletionType::List)
            .build();
        let mut rl = match rustyline::Editor::<
            complete::ShellHelper,
            rustyline::history::DefaultHistory,
        >::with_config(config)
        {
            Ok(rl) => rl,
            Err(e) => {
                eprintln!("cannot start line editor: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut commands: Vec<&'static str> = COMMANDS.to_vec();
        commands.sort_unstable();
        rl.set_helper(Some(complete::ShellHelper {
            client: self.shared.clone(),
            commands,
        }));
        let hist = std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(HISTORY_FILE));
        if let Some(h) = &hist {
            let _ = rl.load_history(h);
        }
        let mut code = ExitCode::SUCCESS;
        loop {
            let prompt = self.prompt();
            let line = match tokio::task::block_in_place(|| rl.readline(&prompt)) {
                Ok(l) => l,
                Err(rustyline::error::ReadlineError::Interrupted) => continue,
                Err(_) => break,
            };
            if line.is_empty() {
                continue;
            }
            // A credential typed with addauth stays in the session's `history`, never in
            // the history file.
            if !line.trim_start().starts_with("addauth") {
                let _ = rl.add_history_entry(line.as_str());
            }
            match self.execute_line(line).await {
                Some(c) => code = c,
                None => break,
            }
        }
        if let Some(h) = &hist {
            let _ = rl.save_history(h);
        }
        self.close().await;
        code
    }

    /// Lines from a stdin that is no terminal (a script piped in), read as zkCli reads
    /// them without JLine (`BufferedReader.readLine`): no prompt, no line editing, no
    /// history file (a script's `addauth` must not land in it); a line ends at LF, CR or
    /// CRLF; bytes that are not UTF-8 become U+FFFD instead of ending the script. The
    /// exit status is the last command's.
    async fn script_loop(&mut self) -> ExitCode {
        let mut stdin = std::io::BufReader::new(std::io::stdin());
        let mut code = ExitCode::SUCCESS;
        let mut pending_cr = false;
        loop {
            let mut raw = Vec::new();
            let read = tokio::task::block_in_place(|| {
                read_java_line(&mut stdin, &mut raw, &mut pending_cr)
            });
            match read {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    eprintln!("cannot read standard input: {e}");
                    code = ExitCode::FAILURE;
                    break;
                }
            }
            let line = String::from_utf8_lossy(&raw).into_owned();
            if line.is_empty() {
                continue;
            }
            match self.execute_line(line).await {
                Some(c) => code = c,
                None => break,
            }
        }
        self.close().await;
        code
    }

    /// Runs one interactive line (zkCli's `executeLine`): its exit status, `None` for
    /// `quit`.
    async fn execute_line(&mut self, line: String) -> Option<ExitCode> {
        let words = tokenize::split(&line);
        self.history.push(line);
        if words.is_empty() {
            // zkCli: a line of blanks is a command with no name.
            outln!("{USAGE}");
            eprintln!("No command entered");
            return Some(ExitCode::FAILURE);
        }
        if words[0] == "quit" {
            return None;
        }
        Some(match self.dispatch(&words).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(f) => self.report(f),
        })
    }

    /// Prints a failure as zkCli does; the exit status for a one-shot command.
    fn report(&self, f: Failure) -> ExitCode {
        events::flush();
        // A one-shot command that failed because the login did shows why (the state
        // printer does in the interactive shell).
        if let Some(why) = self.client.as_ref().and_then(|c| c.auth_failure()) {
            events::print_auth_failure(&why);
        }
        match f {
            Failure::Message(m) => {
                eprintln!("{m}");
                ExitCode::FAILURE
            }
            Failure::UnknownCommand(cmd) => {
                eprintln!("{USAGE}");
                eprintln!("Command not found: Command not found {cmd}");
                ExitCode::from(EXIT_UNKNOWN_COMMAND)
            }
        }
    }

    /// Refuses unknown commands and unknown options before anything runs.
    fn check_command(&self, words: &[String]) -> Result<(), Failure> {
        let cmd = words[0].as_str();
        if !COMMANDS.contains(&cmd) {
            return Err(Failure::UnknownCommand(cmd.to_owned()));
        }
        if NO_OPTIONS.contains(&cmd) {
            flags(&words[1..], "")?;
        }
        Ok(())
    }

    fn client(&self) -> Result<&Client, String> {
        match &self.client {
            Some(c) if !c.state().is_terminal() => Ok(c),
            _ => Err("Not connected".into()),
        }
    }

    /// `redo N`: runs history line N again, recorded in place of the `redo` line.
    async fn redo(&mut self, arg: &str) -> Result<(), Failure> {
        let n =
            parse_java_int(arg).ok_or_else(|| format!("Command index is not a number: {arg}"))?;
        // The `redo` line itself is the last entry; a one-shot command records none.
        let Some(current) = self.history.len().checked_sub(1) else {
            return Err("Command index out of range".into());
        };
        if n < 0 || n as usize >= current {
            return Err("Command index out of range".into());
        }
        let line = self.history[n as usize].clone();
        let words = tokenize::split(&line);
        if words.first().map(String::as_str) == Some("redo") {
            return Err("No redoing redos".into());
        }
        self.history[current] = line;
        if words.is_empty() {
            return Ok(());
        }
        Box::pin(self.dispatch(&words)).await
    }

    /// Runs one command. zkCli's own commands (history, redo, printwatches, connect)
    /// are followed by "Not connected" when there is no live session, as in zkCli.
    async fn dispatch(&mut self, words: &[String]) -> Result<(), Failure> {
        self.check_command(words)?;
        events::flush();
        let cmd = words[0].as_str();
        let args = &words[1..];
        let own = match cmd {
            "history" => {
                let n = self.history.len();
                for i in n.saturating_sub(11)..n {
                    outln!("{i} - {}", self.history[i]);
                }
                true
            }
            "redo" => match args.first() {
                Some(a) => return self.redo(a).await,
                None => true,
            },
            "printwatches" => {
                match args.first() {
                    None => outln!(
                        "printwatches is {}",
                        if events::print_watches() { "on" } else { "off" }
                    ),
                    Some(v) => events::set_print_watches(v == "on"),
                }
                true
            }
            "connect" => {
                let server = args.first().cloned().unwrap_or_else(|| self.server.clone());
                self.close().await;
                self.connect(&server)
                    .map_err(|e| format!("Unable to connect to {server}: {e}"))?;
                true
            }
            _ => false,
        };
        if own {
            if self.client().is_err() {
                outln!("Not connected");
            }
            return Ok(());
        }
        if self.client().is_err() {
            // zkCli checks for a live session before any of its CliCommands.
            outln!("Not connected");
            return Ok(());
        }
        self.command(cmd, args).await.map_err(Failure::Message)
    }

    /// The commands that are zkCli `CliCommand`s.
    async fn command(&mut self, cmd: &str, args: &[String]) -> Result<(), String> {
        let path_of = |f: &Flags, usage: &str| -> Result<String, String> {
            f.rest.first().cloned().ok_or_else(|| usage.to_string())
        };
        match cmd {
            "version" => {
                outln!(
                    "rzk shell version: {} (commands and output of ZooKeeper CLI 3.8)",
                    env!("CARGO_PKG_VERSION")
                );
                Ok(())
            }
            "close" => {
                self.close().await;
                Ok(())
            }
            "ls" => {
                let f = old_watch_form(args, "swR", "ls [-w] path")?;
                let path = path_of(&f, "ls [-s] [-w] [-R] path")?;
                let zk = self.client()?;
                if f.set.contains(&'R') {
                    // As zkCli (ZKUtil.visitSubTreeDFS): the path's data read (with
                    // -w: a data watch), the path, then each node's sorted children
                    // (with -w: a child watch on each node) before their own subtrees;
                    // a node gone meanwhile is skipped, any other error ends the
                    // listing as the command's error, naming that node.
                    let watch = f.set.contains(&'w');
                    if watch {
                        let (_, _, w) = zk
                            .get_data_opt_w(&path)
                            .await
                            .map_err(|e| error_message(&e, &path))?;
                        spawn_print(w);
                    } else {
                        zk.get_data_opt(&path)
                            .await
                            .map_err(|e| error_message(&e, &path))?;
                    }
                    outln!("{path}");
                    return list_subtree(zk, &path, watch)
                        .await
                        .map_err(|(e, at)| error_message(&e, &at));
                }
                let (mut kids, stat) = if f.set.contains(&'w') {
                    let (k, s, w) = zk
                        .get_children2_w(&path)
                        .await
                        .map_err(|e| error_message(&e, &path))?;
                    spawn_print(w);
                    (k, s)
                } else {
                    zk.get_children2(&path)
                        .await
                        .map_err(|e| error_message(&e, &path))?
                };
                kids.sort();
                outln!("[{}]", kids.join(", "));
                if f.set.contains(&'s') {
                    outln!("{}", format_stat(&stat));
                }
                Ok(())
            }
            "get" => {
                let f = old_watch_form(args, "sw", "get [-s] [-w] path")?;
                let path = path_of(&f, "get [-s] [-w] path")?;
                let zk = self.client()?;
                let (data, stat) = if f.set.contains(&'w') {
                    let (d, s, w) = zk
                        .get_data_opt_w(&path)
                        .await
                        .map_err(|e| error_message(&e, &path))?;
                    spawn_print(w);
                    (d, s)
                } else {
                    zk.get_data_opt(&path)
                        .await
                        .map_err(|e| error_message(&e, &path))?
                };
                // zkCli prints "null" for null data and an empty line for empty data.
                match data {
                    None => outln!("null"),
                    Some(d) => outln!("{}", data_text(&d)),
                }
                if f.set.contains(&'s') {
                    outln!("{}", format_stat(&stat));
                }
                Ok(())
            }
            "stat" => {
                let f = old_watch_form(args, "w", "stat [-w] path")?;
                let path = path_of(&f, "stat [-w] path")?;
                let zk = self.client()?;
                let stat = if f.set.contains(&'w') {
                    let (s, w) = zk
                        .exists_w(&path)
                        .await
                        .map_err(|e| error_message(&e, &path))?;
                    spawn_print(w);
                    s
                } else {
                    zk.exists(&path)
                        .await
                        .map_err(|e| error_message(&e, &path))?
                };
                match stat {
                    Some(s) => {
                        outln!("{}", format_stat(&s));
                        Ok(())
                    }
                    None => Err(format!("Node does not exist: {path}")),
                }
            }
            "set" => {
                let f = flags(args, "sv:")?;
                if f.rest.len() < 2 {
                    return Err("set [-s] [-v version] path data".into());
                }
                let version = parse_version(&f)?;
                let zk = self.client()?;
                let path = &f.rest[0];
                let stat = zk
                    .set_data(path, f.rest[1].as_bytes(), version)
                    .await
                    .map_err(|e| error_message(&e, path))?;
                if f.set.contains(&'s') {
                    outln!("{}", format_stat(&stat));
                }
                Ok(())
            }
            "create" => {
                let f = flags(args, "sect:")?;
                let path = path_of(&f, "create [-s] [-e] [-c] [-t ttl] path [data] [acl]")?;
                let (s, e, c) = (
                    f.set.contains(&'s'),
                    f.set.contains(&'e'),
                    f.set.contains(&'c'),
                );
                // zkCli's checks, in its order and with its messages.
                if c && (e || s) {
                    return Err("-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.".into());
                }
                let ttl = f
                    .values
                    .get(&'t')
                    .map(|t| {
                        t.parse::<i64>()
                            .map_err(|_| "-t argument must be a long value".to_owned())
                    })
                    .transpose()?;
                if ttl.is_some() && e {
                    return Err("TTLs cannot be used with Ephemeral znodes".into());
                }
                if ttl.is_some() && c {
                    return Err("TTLs cannot be used with Container znodes".into());
                }
                let ttl = match ttl {
                    Some(t) if !(1..=MAX_TTL_MS).contains(&t) => {
                        return Err(format!(
                            "ttl must be positive and cannot be larger than: {MAX_TTL_MS}"
                        ))
                    }
                    t => t.map(i64::unsigned_abs),
                };
                let mode = match (s, e, c, ttl.is_some()) {
                    (true, true, _, _) => CreateMode::EphemeralSequential,
                    (false, true, _, _) => CreateMode::Ephemeral,
                    (true, false, _, true) => CreateMode::PersistentSequentialWithTtl,
                    (true, false, _, false) => CreateMode::PersistentSequential,
                    (false, false, true, _) => CreateMode::Container,
                    (false, false, false, true) => CreateMode::PersistentWithTtl,
                    (false, false, false, false) => CreateMode::Persistent,
                };
                // Without a data argument the node gets null data, as with zkCli.
                let data = f.rest.get(1).map(|d| d.as_bytes());
                let acl = match f.rest.get(2) {
                    // zkCli reports each malformed entry, keeps the others and lets the
                    // create fail when none is left.
                    Some(a) => {
                        let good = parse_acl_entries(a);
                        if good.is_empty() {
                            return Err(
                                "KeeperErrorCode = InvalidACL\nAcl is not valid : null".into()
                            );
                        }
                        good
                    }
                    None => rzk_client::open_acl_unsafe(),
                };
                let zk = self.client()?;
                let created = match ttl {
                    Some(t) => zk
                        .create_ttl_opt(&path, data, &acl, mode, Duration::from_millis(t))
                        .await
                        .map(|(p, _)| p),
                    None => zk.create_opt(&path, data, &acl, mode).await.map(|(p, _)| p),
                }
                .map_err(|e| error_message(&e, &path))?;
                if self.interactive {
                    // zkCli prints it on stderr; one-shot keeps it on stdout for scripts.
                    eprintln!("Created {created}");
                } else {
                    outln!("Created {created}");
                }
                Ok(())
            }
            "delete" | "deleteall" => {
                let f = flags(args, if cmd == "delete" { "v:" } else { "b:" })?;
                let usage = if cmd == "delete" {
                    "delete [-v version] path"
                } else {
                    "deleteall path [-b batch size]"
                };
                let path = path_of(&f, usage)?;
                if cmd == "delete" && f.rest.len() > 1 {
                    // zkCli 3.8: warned, and the old form's version is not used.
                    eprintln!("'delete path [version]' has been deprecated. Please use 'delete [-v version] path' instead.");
                }
                // Checked before anything is deleted, as zkCli (Integer.parseInt).
                let batch = match f.values.get(&'b') {
                    Some(b) if cmd == "deleteall" => b
                        .parse::<i32>()
                        .map_err(|_| "-b argument must be an int value".to_owned())?,
                    _ => 1000,
                };
                let zk = self.client()?;
                if cmd == "delete" {
                    let version = parse_version(&f)?;
                    return zk
                        .delete(&path, version)
                        .await
                        .map_err(|e| error_message(&e, &path));
                }
                match delete_all(zk, &path, batch).await {
                    Ok(true) => Ok(()),
                    // As zkCli: reported, and the command counts as done (exit 0).
                    Ok(false) => {
                        eprintln!("Failed to delete some node(s) in the subtree!");
                        Ok(())
                    }
                    Err((e, at)) => Err(error_message(&e, &at)),
                }
            }
            "getAcl" => {
                let f = flags(args, "s")?;
                let path = path_of(&f, "getAcl [-s] path")?;
                let zk = self.client()?;
                let (acl, stat) = zk
                    .get_acl(&path)
                    .await
                    .map_err(|e| error_message(&e, &path))?;
                for a in acl {
                    // zkCli prints the jute record's CSV form: `,` in an x509 id is %2C.
                    outln!(
                        "'{},'{}\n: {}",
                        csv_escape(&a.id.scheme),
                        csv_escape(&a.id.id),
                        perms_string(a.perms)
                    );
                }
                if f.set.contains(&'s') {
                    outln!("{}", format_stat(&stat));
                }
                Ok(())
            }
            "setAcl" => {
                let f = flags(args, "sv:R")?;
                if f.rest.len() < 2 {
                    return Err("setAcl [-s] [-v version] [-R] path acl".into());
                }
                let version = parse_version(&f)?;
                // zkCli keeps the well-formed entries; the Java client refuses an empty
                // list before sending (InvalidACLException without a path).
                let acl = parse_acl_entries(&f.rest[1]);
                let zk = self.client()?;
                let path = f.rest[0].clone();
                if !f.set.contains(&'R') {
                    if acl.is_empty() {
                        return Err("Acl is not valid : null".into());
                    }
                    let stat = zk
                        .set_acl(&path, &acl, version)
                        .await
                        .map_err(|e| match e {
                            // zkCli prints only its wrapper's line here (create prints
                            // the exception's message too).
                            Error::InvalidAcl => format!("Acl is not valid : {path}"),
                            e => error_message(&e, &path),
                        })?;
                    if f.set.contains(&'s') {
                        outln!("{}", format_stat(&stat));
                    }
                    return Ok(());
                }
                // -R: zkCli's ZKUtil.visitSubTreeDFS. It reads the node first (an
                // error ends the command), sets its ACL, then for each node: lists its
                // children (sorted), sets each child's ACL, and only then walks into
                // each child in turn. A failed setACL prints the exception's message
                // (no newline) and the walk goes on; a node gone meanwhile is skipped;
                // any other error listing children ends the command.
                zk.get_data(&path)
                    .await
                    .map_err(|e| error_message(&e, &path))?;
                let set_one = |p: String| {
                    let zk = zk.clone();
                    let acl = &acl;
                    async move {
                        if acl.is_empty() {
                            out!("KeeperErrorCode = InvalidACL");
                        } else if let Err(e) = zk.set_acl(&p, acl, version).await {
                            out!("{}", keeper_message(&e, Some(&p)));
                        }
                    }
                };
                set_one(path.clone()).await;
                let mut stack = vec![path];
                while let Some(p) = stack.pop() {
                    let mut kids = match zk.get_children(&p).await {
                        Ok(kids) => kids,
                        Err(Error::NoNode) => continue,
                        Err(e) => return Err(error_message(&e, &p)),
                    };
                    kids.sort();
                    let kids: Vec<String> =
                        kids.iter().map(|k| rzk_proto::path::join(&p, k)).collect();
                    for k in &kids {
                        set_one(k.clone()).await;
                    }
                    stack.extend(kids.into_iter().rev());
                }
                Ok(())
            }
            "addauth" => {
                if args.is_empty() {
                    return Err("addauth scheme auth".into());
                }
                // zkCli sends null credentials when none are given, which the digest
                // provider fails (AUTHFAILED, the session ends). rzk-client sends bytes
                // only, and empty ones would be taken as the empty user: refused here.
                if args[0] == "digest" && args.len() < 2 {
                    return Err(
                        "addauth digest needs user:password (nothing was sent; zkCli would send none and the server would fail the session with AuthFailed)".into(),
                    );
                }
                let auth = args.get(1).cloned().unwrap_or_default();
                // zkCli's addauth only queues the packet and prints nothing: a refusal
                // shows as the AuthFailed event (printed by the watcher) and the session
                // ends.
                match self.client()?.add_auth(&args[0], auth.as_bytes()).await {
                    Ok(()) | Err(Error::AuthFailed) => Ok(()),
                    Err(e) => Err(keeper_message(&e, None)),
                }
            }
            "sync" => {
                let path = args.first().ok_or("sync path")?;
                // zkCli prints a server's or the connection's refusal as a result code,
                // on stdout, and the command does not fail.
                match self.client()?.sync(path).await {
                    Ok(_) => outln!("Sync is OK"),
                    Err(e @ Error::InvalidPath(_)) => return Err(error_message(&e, path)),
                    Err(e) => outln!("Sync has failed. rc={}", e.code()),
                }
                Ok(())
            }
            "getEphemerals" => {
                let path = args.first().map(String::as_str).unwrap_or("/");
                let list = self
                    .client()?
                    .get_ephemerals(path)
                    .await
                    .map_err(|e| error_message(&e, path))?;
                outln!("[{}]", list.join(", "));
                Ok(())
            }
            "getAllChildrenNumber" => {
                let path = args.first().ok_or("getAllChildrenNumber path")?;
                let n = self
                    .client()?
                    .get_all_children_number(path)
                    .await
                    .map_err(|e| error_message(&e, path))?;
                outln!("{n}");
                Ok(())
            }
            "addWatch" => {
                let f = flags(args, "m:")?;
                const ADD_WATCH_USAGE: &str = "addWatch [-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE";
                let path = path_of(&f, ADD_WATCH_USAGE)?;
                // As zkCli: the mode in any case; an unknown one gets the usage line.
                let mode = match f.values.get(&'m').map(|m| m.to_uppercase()).as_deref() {
                    None | Some("PERSISTENT_RECURSIVE") => AddWatchMode::PersistentRecursive,
                    Some("PERSISTENT") => AddWatchMode::Persistent,
                    Some(_) => return Err(ADD_WATCH_USAGE.into()),
                };
                let mut s = self
                    .client()?
                    .add_watch(&path, mode)
                    .await
                    .map_err(|e| error_message(&e, &path))?;
                // Kept alive while the session lasts; its events are printed by the
                // session's notification printer, state changes by its state printer
                // (zkCli's persistent watch is its default watcher, which Java tells of
                // each once).
                tokio::spawn(async move {
                    while let Some(ev) = s.next().await {
                        // Its removal (PersistentWatchRemoved) is no server notification.
                        if ev.notification == 0 && ev.event_type != EventType::None {
                            events::print_removal(&ev);
                        }
                    }
                });
                Ok(())
            }
            "removewatches" => {
                let f = flags(args, "cdal")?;
                let path = path_of(&f, "removewatches path [-c|-d|-a] [-l]")?;
                let kind = if f.set.contains(&'c') {
                    WatcherType::Children
                } else if f.set.contains(&'d') {
                    WatcherType::Data
                } else {
                    WatcherType::Any
                };
                events::begin_removals();
                self.client()?
                    .remove_watches(&path, kind)
                    .await
                    .map_err(|e| match e {
                        Error::NoWatcher => format!("KeeperErrorCode = No such watcher for {path}"),
                        e => error_message(&e, &path),
                    })
            }
            "setquota" => quota::setquota(self.client()?, args).await,
            "listquota" => quota::listquota(self.client()?, args).await,
            "delquota" => quota::delquota(self.client()?, args).await,
            "whoami" => {
                let who = self
                    .client()?
                    .whoami()
                    .await
                    .map_err(|e| keeper_message(&e, None))?;
                outln!("Auth scheme: User");
                for c in who {
                    outln!("{}: {}", c.auth_scheme, c.user);
                }
                Ok(())
            }
            "config" => {
                let f = flags(args, "cws")?;
                let zk = self.client()?;
                let (data, stat) = if f.set.contains(&'w') {
                    let (d, s, w) = zk
                        .get_config_w()
                        .await
                        .map_err(|e| error_message(&e, "/zookeeper/config"))?;
                    spawn_print(w);
                    (d, s)
                } else {
                    zk.get_config()
                        .await
                        .map_err(|e| error_message(&e, "/zookeeper/config"))?
                };
                let text = data_text(&data).into_owned();
                if f.set.contains(&'c') {
                    outln!("{}", client_config(&text));
                } else {
                    outln!("{text}");
                }
                if f.set.contains(&'s') {
                    outln!("{}", format_stat(&stat));
                }
                Ok(())
            }
            "reconfig" => reconfig::run(self.client()?, args).await,
            _ => Err(USAGE.to_string()),
        }
    }
}

/// `config -c`: the configuration's version and its client addresses, as zkCli's
/// `ConfigUtils.getClientConfigStr` (`<version> host:port,host:port`).
fn client_config(text: &str) -> String {
    let mut version = "";
    let mut hosts = Vec::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if k.trim() == "version" {
            version = v.trim();
        } else if k.trim().starts_with("server.") {
            if let Some((_, client)) = v.split_once(';') {
                let client = client.trim();
                // A bare port listens on every address (Java: 0.0.0.0).
                if client.contains(':') {
                    hosts.push(client.to_owned());
                } else {
                    hosts.push(format!("0.0.0.0:{client}"));
                }
            }
        }
    }
    format!("{version} {}", hosts.join(","))
}

/// Java's `Integer.decode`: decimal, `0x`/`#` hex or leading-`0` octal, with a sign
/// (the server's `Long.decode`, within `int` range).
fn parse_java_int(s: &str) -> Option<i32> {
    rzk_server::config::java_integer(s)
}

fn parse_version(f: &Flags) -> Result<Option<i32>, String> {
    f.values
        .get(&'v')
        .map(|v| {
            v.parse::<i32>()
                .map_err(|_| format!("version must be a number: {v}"))
        })
        .transpose()
}

/// Deletes a subtree, children first.
/// `ls -R` below `path` (whose children are `kids`): the children, sorted, then each
/// child's subtree. A node deleted meanwhile, or any error below `path`, ends only its
/// own subtree, as in zkCli.
/// The end of a subtree walk: the error and the node it was met at.
type WalkResult = Result<(), (Error, String)>;

/// `ls -R` below `path`: its sorted children (each printed), then their subtrees. A
/// node gone meanwhile is skipped; another error ends the walk with the node it was
/// met at. With `watch`, each listing sets a child watch.
fn list_subtree<'a>(
    zk: &'a Client,
    path: &'a str,
    watch: bool,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = WalkResult> + 'a>> {
    Box::pin(async move {
        let listed = if watch {
            zk.get_children_w(path).await.map(|(kids, w)| {
                spawn_print(w);
                kids
            })
        } else {
            zk.get_children(path).await
        };
        let mut kids = match listed {
            Ok(kids) => kids,
            Err(Error::NoNode) => return Ok(()),
            Err(e) => return Err((e, path.to_owned())),
        };
        kids.sort();
        let kids: Vec<String> = kids
            .iter()
            .map(|k| rzk_proto::path::join(path, k))
            .collect();
        for k in &kids {
            outln!("{k}");
        }
        for k in &kids {
            list_subtree(zk, k, watch).await?;
        }
        Ok(())
    })
}

/// How many `deleteall` batches may be in flight at once (zkCli's rate limit).
/// A batch size of 0 or less makes one batch of the whole subtree, as zkCli 3.8.0 (the
/// Debian build the compatibility tests run; 3.8.6 deletes one node at a time then).
const DELETE_BATCHES_IN_FLIGHT: usize = 10;

/// `deleteall` as ZooKeeper's `ZKUtil.deleteRecursive`: lists the subtree breadth
/// first (an error there is the command's, with the node it was met at), then deletes
/// it from the last listed node back to `path`. With `batch` > 0 the deletes go in
/// multis of `batch` ops, each all or nothing, up to [`DELETE_BATCHES_IN_FLIGHT`] at
/// once; once a finished batch failed no further batch is sent; `Ok(false)` when one
/// failed (zkCli reports that without the error). With `batch` <= 0, one batch.
async fn delete_all(zk: &Client, path: &str, batch: i32) -> Result<bool, (Error, String)> {
    let mut tree = vec![path.to_owned()];
    let mut next = 0;
    while next < tree.len() {
        let node = tree[next].clone();
        next += 1;
        let kids = zk
            .get_children(&node)
            .await
            .map_err(|e| (e, node.clone()))?;
        tree.extend(kids.iter().map(|k| rzk_proto::path::join(&node, k)));
    }
    let batch = if batch <= 0 {
        tree.len()
    } else {
        batch as usize
    };
    let mut failed = false;
    let mut in_flight = tokio::task::JoinSet::new();
    for ops in tree.rchunks(batch) {
        // (Chunks from the end: the last listed nodes first, each chunk's ops in
        // reverse listing order, as zkCli fills its batches; the root's batch last.)
        let ops: Vec<rzk_client::Op> = ops
            .iter()
            .rev()
            .map(|p| rzk_client::Op::delete(p, None))
            .collect();
        while in_flight.len() >= DELETE_BATCHES_IN_FLIGHT {
            if let Some(done) = in_flight.join_next().await {
                failed |= !matches!(done, Ok(Ok(_)));
            }
        }
        while let Some(done) = in_flight.try_join_next() {
            failed |= !matches!(done, Ok(Ok(_)));
        }
        if failed {
            break;
        }
        // The client orders a call when it is first polled: the batch's task polls it
        // once and says so before the next batch is made, so the batches reach the
        // server in the order they were made (the leaves' before the root's; a root
        // batch sent first fails NotEmpty and leaves the tree).
        let zk = zk.clone();
        let (queued_tx, queued) = tokio::sync::oneshot::channel();
        in_flight.spawn(async move {
            let mut call = std::pin::pin!(zk.multi(&ops));
            let first = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(std::future::Future::poll(call.as_mut(), cx))
            })
            .await;
            let _ = queued_tx.send(());
            match first {
                std::task::Poll::Ready(r) => r,
                std::task::Poll::Pending => call.await,
            }
        });
        let _ = queued.await;
    }
    while let Some(done) = in_flight.join_next().await {
        failed |= !matches!(done, Ok(Ok(_)));
    }
    Ok(!failed)
}

#[cfg(test)]
mod tests {
    use super::java_path_fault;

    #[test]
    fn path_faults_are_found_where_zkcli_finds_them() {
        let cases = [
            ("/p//x", Some(("empty node name specified", 3))),
            ("/p/.", Some(("relative paths not allowed", 3))),
            ("/p/..", Some(("relative paths not allowed", 4))),
            ("/a/..b/./c", Some(("relative paths not allowed", 7))),
            ("/a\u{0}", Some(("null character not allowed", 2))),
            ("/a\u{7f}", Some(("invalid character", 2))),
            // U+1F600 is two UTF-16 code units; the first is the fault.
            ("/ab\u{1F600}", Some(("invalid character", 3))),
            ("/a/..b", None),
            ("/p/", None),
            ("p", None),
            ("/", None),
        ];
        for (path, want) in cases {
            assert_eq!(java_path_fault(path), want, "{path:?}");
        }
    }

    use super::*;

    #[test]
    fn redo_numbers_as_java_integer_decode() {
        assert_eq!(parse_java_int("12"), Some(12));
        assert_eq!(parse_java_int("0x1f"), Some(31));
        assert_eq!(parse_java_int("#10"), Some(16));
        assert_eq!(parse_java_int("010"), Some(8));
        assert_eq!(parse_java_int("-3"), Some(-3));
        assert_eq!(parse_java_int("x"), None);
        assert_eq!(parse_java_int("--1"), None);
        assert_eq!(parse_java_int("99999999999"), None);
    }

    #[test]
    fn messages_are_zkclis() {
        // CliWrapperException's own words, then KeeperException's getMessage; an empty
        // path is no path, as in Java.
        let cases = [
            (Error::QuotaExceeded, "/q/c", "Quota has exceeded : /q/c"),
            (Error::NotReadOnly, "/rox", "Not a read-only call: /rox"),
            (
                Error::AuthFailed,
                "/s4",
                "KeeperErrorCode = AuthFailed for /s4",
            ),
            (
                Error::EphemeralOnLocalSession,
                "/e",
                "KeeperErrorCode = Ephemeral node on local session for /e",
            ),
            (
                Error::SessionMoved,
                "/m",
                "KeeperErrorCode = Session moved for /m",
            ),
            (
                Error::ReconfigDisabled,
                "",
                "KeeperErrorCode = Reconfig is disabled",
            ),
        ];
        for (e, path, want) in cases {
            assert_eq!(error_message(&e, path), want);
        }
        assert!(error_message(&Error::NewConfigNoQuorum, "")
            .contains("leader of last committed config - try"));
        assert_eq!(
            keeper_message(&Error::ConnectionLoss, None),
            "KeeperErrorCode = ConnectionLoss"
        );
    }

    #[test]
    fn data_reads_as_java_decodes_it() {
        // U+1F600 as a Java client writes it (CESU-8): one U+FFFD per surrogate, as zkCli
        // prints it, where from_utf8_lossy gives six.
        let cesu = [0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80];
        assert_eq!(data_text(&cesu), "\u{FFFD}\u{FFFD}");
        assert_eq!(data_text("héllo".as_bytes()), "héllo");
    }

    #[test]
    fn java_dates() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_700_000_000_000), "Tue Nov 14 22:13:20 UTC 2023");
    }

    #[test]
    fn acl_syntax() {
        let a = parse_acl("world:anyone:cdrwa,digest:bob:abc=:r").unwrap();
        assert_eq!(a[0], Acl::new(31, "world", "anyone"));
        assert_eq!(a[1], Acl::new(1, "digest", "bob:abc="));
        assert_eq!(perms_string(31), "cdrwa");
        assert!(parse_acl("nonsense").is_err());
    }

    #[test]
    fn options_then_command() {
        let a: Vec<String> = ["-server", "h:1", "ls", "-s", "/"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let o = parse_options(&a).unwrap();
        assert_eq!(o.server, "h:1");
        assert_eq!(o.command, vec!["ls", "-s", "/"]);
    }

    /// zkCli's `-client-configuration FILE` is taken (read in `run`, with the JVM flags:
    /// `shell/client_config.rs`); without a file it is refused.
    #[test]
    fn client_configuration_option() {
        let args = |v: &[&str]| -> Vec<String> { v.iter().map(|s| s.to_string()).collect() };
        let o = parse_options(&args(&[
            "-server",
            "h:1",
            "-client-configuration",
            "cc.properties",
            "ls",
        ]))
        .expect("taken");
        assert_eq!(
            o.client_config.as_deref(),
            Some(std::path::Path::new("cc.properties"))
        );
        assert_eq!(o.command, vec!["ls"]);
        let e = parse_options(&args(&["-client-configuration"]))
            .err()
            .expect("no file");
        assert!(e.contains("-client-configuration needs a file"), "{e}");
    }

    #[test]
    fn sasl_flags() {
        let dir = std::env::temp_dir().join(format!("rzk-shell-sasl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pw = dir.join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let args = |v: &[&str]| -> Vec<String> { v.iter().map(|s| s.to_string()).collect() };
        let o = parse_options(&args(&[
            "-sasl-user",
            "bob",
            "--sasl-password-file",
            pw.to_str().unwrap(),
            "whoami",
        ]))
        .unwrap();
        let s = o.sasl.options(&Default::default()).unwrap().unwrap();
        assert_eq!(
            s,
            rzk_client::SaslOptions::digest("bob", rzk_client::sasl::Secret::new("s3cret"))
        );
        assert_eq!(o.command, vec!["whoami"]);
        let only_user = parse_options(&args(&["-sasl-user", "bob"])).unwrap();
        assert!(only_user.sasl.options(&Default::default()).is_err());
        let both = parse_options(&args(&["-sasl-user", "bob", "-jaas", "/x"])).unwrap();
        assert!(both.sasl.options(&Default::default()).is_err());
        let jaas = dir.join("jaas.conf");
        std::fs::write(
            &jaas,
            "Other { org.apache.zookeeper.server.auth.DigestLoginModule required username=\"al\" password=\"p\"; };",
        )
        .unwrap();
        let o = parse_options(&args(&[
            "-jaas",
            jaas.to_str().unwrap(),
            "-sasl-section",
            "Other",
        ]))
        .unwrap();
        assert_eq!(
            o.sasl.options(&Default::default()).unwrap().unwrap().user(),
            "al"
        );
        let o = parse_options(&args(&["-jaas", jaas.to_str().unwrap()])).unwrap();
        assert!(
            o.sasl.options(&Default::default()).is_err(),
            "no Client section"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
