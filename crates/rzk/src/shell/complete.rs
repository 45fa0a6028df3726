//! Tab completion for the interactive shell (what zkCli's `JLineZNodeCompleter` offers,
//! and more): command names for the first word, a command's options for a word starting
//! with `-`, and znode paths, listed from the server, for a word starting with `/`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustyline::completion::Completer;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use rzk_client::Client;

/// The option letters of each command (getopt style, as `options::flags` takes them).
pub const OPTION_SPECS: &[(&str, &str)] = &[
    ("addWatch", "m:"),
    ("config", "cws"),
    ("create", "sect:"),
    ("delete", "v:"),
    ("deleteall", "b:"),
    ("delquota", "nbNB"),
    ("get", "sw"),
    ("getAcl", "s"),
    ("ls", "swR"),
    ("removewatches", "cdal"),
    ("set", "sv:"),
    ("setAcl", "sv:R"),
    ("setquota", "n:b:N:B:"),
    ("stat", "w"),
];

/// Commands whose options are whole words (`reconfig -members ...`), all listed.
pub const WORD_OPTIONS: &[(&str, &[&str])] = &[(
    "reconfig",
    &["-add", "-file", "-members", "-remove", "-s", "-v"],
)];

/// How long completion waits for the server's list of children.
const LIST_WAIT: Duration = Duration::from_secs(2);

/// The session completion asks for children; the shell replaces it on `connect`.
pub type SharedClient = Arc<Mutex<Option<Client>>>;

/// rustyline's helper: completion only (no hints, colours or multi-line input).
pub struct ShellHelper {
    /// The shell's current session.
    pub client: SharedClient,
    /// Command names offered for the first word.
    pub commands: Vec<&'static str>,
}

/// The candidates for `word` (the text before the cursor back to the last blank), given
/// the command word of the line (`None` when `word` is the first word). `children`
/// lists a znode's children.
pub fn candidates(
    command: Option<&str>,
    word: &str,
    commands: &[&str],
    children: &dyn Fn(&str) -> Vec<String>,
) -> Vec<String> {
    let mut out: Vec<String> = match command {
        None => commands
            .iter()
            .filter(|c| c.starts_with(word))
            .map(|c| c.to_string())
            .collect(),
        Some(cmd) if word.starts_with('-') => OPTION_SPECS
            .iter()
            .find(|(c, _)| *c == cmd)
            .map(|(_, spec)| {
                spec.chars()
                    .filter(|c| *c != ':')
                    .map(|c| format!("-{c}"))
                    .filter(|o| o.starts_with(word))
                    .collect()
            })
            .or_else(|| {
                WORD_OPTIONS
                    .iter()
                    .find(|(c, _)| *c == cmd)
                    .map(|(_, opts)| {
                        opts.iter()
                            .filter(|o| o.starts_with(word))
                            .map(|o| o.to_string())
                            .collect()
                    })
            })
            .unwrap_or_default(),
        Some(_) if word.starts_with('/') => {
            let cut = word.rfind('/').unwrap_or(0);
            let (parent, prefix) = (&word[..cut.max(1)], &word[cut + 1..]);
            let base = if parent == "/" { "" } else { parent };
            children(parent)
                .into_iter()
                .filter(|k| k.starts_with(prefix))
                .map(|k| format!("{base}/{k}"))
                .collect()
        }
        Some(_) => Vec::new(),
    };
    out.sort();
    out.dedup();
    out
}

impl ShellHelper {
    /// The children of `path` from the server, or none if there is no session or it
    /// does not answer in time.
    fn children(&self, path: &str) -> Vec<String> {
        let Some(zk) = self.client.lock().ok().and_then(|g| g.clone()) else {
            return Vec::new();
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return Vec::new();
        };
        // The line editor runs inside `block_in_place`, where blocking on the runtime
        // is allowed.
        handle
            .block_on(tokio::time::timeout(LIST_WAIT, zk.get_children(path)))
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    }
}

impl Completer for ShellHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let before = &line[..pos];
        let start = before
            .rfind(|c: char| c.is_whitespace())
            .map(|i| i + before[i..].chars().next().map_or(1, char::len_utf8))
            .unwrap_or(0);
        let command = super::tokenize::split(&before[..start]).into_iter().next();
        let found = candidates(command.as_deref(), &before[start..], &self.commands, &|p| {
            self.children(p)
        });
        Ok((start, found))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {}

impl Validator for ShellHelper {}

impl Helper for ShellHelper {}

#[cfg(test)]
mod tests {
    use super::candidates;

    fn kids(p: &str) -> Vec<String> {
        match p {
            "/" => vec!["zookeeper".into(), "app".into(), "apple".into()],
            "/app" => vec!["a1".into(), "b1".into()],
            _ => Vec::new(),
        }
    }

    #[test]
    fn commands_options_and_paths() {
        let cmds = ["get", "getAcl", "ls", "set"];
        assert_eq!(candidates(None, "ge", &cmds, &kids), ["get", "getAcl"]);
        assert_eq!(
            candidates(Some("ls"), "-", &cmds, &kids),
            ["-R", "-s", "-w"]
        );
        assert_eq!(candidates(Some("set"), "-v", &cmds, &kids), ["-v"]);
        assert!(candidates(Some("sync"), "-", &cmds, &kids).is_empty());
        assert_eq!(
            candidates(Some("ls"), "/ap", &cmds, &kids),
            ["/app", "/apple"]
        );
        assert_eq!(
            candidates(Some("ls"), "/app/", &cmds, &kids),
            ["/app/a1", "/app/b1"]
        );
        assert_eq!(candidates(Some("ls"), "/app/b", &cmds, &kids), ["/app/b1"]);
        assert_eq!(
            candidates(Some("reconfig"), "-", &cmds, &kids),
            ["-add", "-file", "-members", "-remove", "-s", "-v"]
        );
        assert_eq!(
            candidates(Some("reconfig"), "-m", &cmds, &kids),
            ["-members"]
        );
        assert!(candidates(Some("set"), "data", &cmds, &kids).is_empty());
    }
}
