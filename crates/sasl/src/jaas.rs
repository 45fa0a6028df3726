//! JAAS login configuration files (`java.security.auth.login.config`), the syntax
//! ZooKeeper's users write:
//!
//! ```text
//! Server {
//!     org.apache.zookeeper.server.auth.DigestLoginModule required
//!     user_bob="bobpassword";
//! };
//! ```
//!
//! Sections of login modules, each with a control flag and `name=value` options (quoted
//! strings with backslash escapes, or bare words); `//`, `#` and `/* */` comments. Option
//! values are kept as [`Secret`]s and errors name a line, never the text there, so a
//! malformed file cannot leak a password into a log.

use crate::Secret;

/// One login module line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginModule {
    /// The module's class name.
    pub class: String,
    /// `required`, `requisite`, `sufficient` or `optional`.
    pub flag: String,
    /// Options in file order.
    pub options: Vec<(String, Secret)>,
}

impl LoginModule {
    /// The value of option `key` (the last one if repeated), as given.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.expose())
    }

    /// Whether this is Kerberos' `Krb5LoginModule` (Java's
    /// `com.sun.security.auth.module.Krb5LoginModule`, or a vendor's of that name).
    pub fn is_kerberos(&self) -> bool {
        self.class.contains("Krb5LoginModule")
    }
}

/// One named section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The section's name (`Server`, `Client`, ...).
    pub name: String,
    /// Its modules in order.
    pub modules: Vec<LoginModule>,
}

/// A whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JaasFile {
    /// Sections in file order.
    pub sections: Vec<Section>,
}

impl JaasFile {
    /// The section called `name` (the last one if repeated, as Java's parser keeps).
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().rev().find(|s| s.name == name)
    }
}

/// The class of ZooKeeper's digest login module (what both JAAS sections name).
pub const DIGEST_LOGIN_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";

/// A DIGEST-MD5 login of a client section: `username` and `password` of its
/// `DigestLoginModule`, as ZooKeeper's `SaslClientCallbackHandler` hands them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestLogin {
    /// The user name (`username=...`).
    pub username: String,
    /// The password (`password=...`).
    pub password: Secret,
}

/// Why a section gives no digest login. Never names a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// No section of that name.
    #[error("no JAAS section named {0:?}")]
    NoSection(String),
    /// The section has no `DigestLoginModule` (Kerberos' `Krb5LoginModule`, for one, is
    /// not supported by rzk).
    #[error("JAAS section {0:?} has no {DIGEST_LOGIN_MODULE} (only DIGEST-MD5 is supported)")]
    NoDigestModule(String),
    /// The module lacks an option.
    #[error("the {DIGEST_LOGIN_MODULE} of JAAS section {section:?} has no {option} option")]
    MissingOption {
        /// The section.
        section: String,
        /// `username` or `password`.
        option: &'static str,
    },
}

impl JaasFile {
    /// The digest login of the client section `name` (ZooKeeper's default is `Client`,
    /// changed by `zookeeper.sasl.clientconfig`).
    pub fn digest_login(&self, name: &str) -> Result<DigestLogin, LoginError> {
        let section = self
            .section(name)
            .ok_or_else(|| LoginError::NoSection(name.to_owned()))?;
        let module = section
            .modules
            .iter()
            .find(|m| m.class == DIGEST_LOGIN_MODULE || m.class.ends_with(".DigestLoginModule"))
            .ok_or_else(|| LoginError::NoDigestModule(name.to_owned()))?;
        let option = |key: &'static str| {
            module
                .options
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| LoginError::MissingOption {
                    section: name.to_owned(),
                    option: key,
                })
        };
        Ok(DigestLogin {
            username: option("username")?.expose().to_owned(),
            password: option("password")?,
        })
    }
}

/// A syntax error: the line and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {what}")]
pub struct JaasError {
    /// 1-based line.
    pub line: usize,
    /// What was wrong (never the file's text).
    pub what: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Semi,
    Eq,
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
}

impl Lexer<'_> {
    fn err(&self, what: &'static str) -> JaasError {
        JaasError {
            line: self.line,
            what,
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next();
        if c == Some('\n') {
            self.line += 1;
        }
        c
    }

    /// Skips blanks and comments.
    fn skip(&mut self) -> Result<(), JaasError> {
        loop {
            match self.chars.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('#') => self.skip_line(),
                Some('/') => {
                    let mut ahead = self.chars.clone();
                    ahead.next();
                    match ahead.peek() {
                        Some('/') => self.skip_line(),
                        Some('*') => {
                            self.bump();
                            self.bump();
                            let mut star = false;
                            loop {
                                match self.bump() {
                                    None => return Err(self.err("unterminated /* comment")),
                                    Some('/') if star => break,
                                    Some(c) => star = c == '*',
                                }
                            }
                        }
                        _ => return Ok(()),
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.bump() {
            if c == '\n' {
                break;
            }
        }
    }

    fn next(&mut self) -> Result<Option<(Tok, usize)>, JaasError> {
        self.skip()?;
        let line = self.line;
        let Some(c) = self.bump() else {
            return Ok(None);
        };
        let tok = match c {
            '{' => Tok::Open,
            '}' => Tok::Close,
            ';' => Tok::Semi,
            '=' => Tok::Eq,
            '"' => {
                let mut s = String::new();
                loop {
                    match self.bump() {
                        None => return Err(self.err("unterminated quoted string")),
                        Some('"') => break,
                        Some('\\') => match self.bump() {
                            None => return Err(self.err("unterminated quoted string")),
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some('r') => s.push('\r'),
                            Some(o) => s.push(o),
                        },
                        Some(o) => s.push(o),
                    }
                }
                Tok::Quoted(s)
            }
            c => {
                let mut s = String::from(c);
                while let Some(&n) = self.chars.peek() {
                    if n.is_whitespace() || matches!(n, '{' | '}' | ';' | '=' | '"') {
                        break;
                    }
                    s.push(n);
                    self.bump();
                }
                Tok::Word(s)
            }
        };
        Ok(Some((tok, line)))
    }
}

/// Parses a JAAS login configuration.
pub fn parse(text: &str) -> Result<JaasFile, JaasError> {
    let mut lx = Lexer {
        chars: text.chars().peekable(),
        line: 1,
    };
    let mut toks = Vec::new();
    while let Some(t) = lx.next()? {
        toks.push(t);
    }
    let end_line = lx.line;
    let mut it = toks.into_iter().peekable();
    let mut file = JaasFile::default();
    let err = |line, what| JaasError { line, what };
    while let Some((t, line)) = it.next() {
        let name = match t {
            Tok::Word(w) | Tok::Quoted(w) => w,
            _ => return Err(err(line, "expected a section name")),
        };
        match it.next() {
            Some((Tok::Open, _)) => {}
            Some((_, l)) => return Err(err(l, "expected { after the section name")),
            None => return Err(err(end_line, "expected { after the section name")),
        }
        let mut modules = Vec::new();
        loop {
            let (t, line) = it
                .next()
                .ok_or_else(|| err(end_line, "unterminated section (expected })"))?;
            let class = match t {
                Tok::Close => break,
                Tok::Word(w) => w,
                _ => return Err(err(line, "expected a login module class name or }")),
            };
            let flag = match it.next() {
                Some((Tok::Word(w), l)) => {
                    let f = w.to_ascii_lowercase();
                    if !matches!(
                        f.as_str(),
                        "required" | "requisite" | "sufficient" | "optional"
                    ) {
                        return Err(err(
                            l,
                            "expected a control flag (required, requisite, sufficient, optional)",
                        ));
                    }
                    f
                }
                Some((_, l)) => return Err(err(l, "expected a control flag")),
                None => return Err(err(end_line, "expected a control flag")),
            };
            let mut options = Vec::new();
            loop {
                match it.next() {
                    Some((Tok::Semi, _)) => break,
                    Some((Tok::Word(k), l)) => {
                        match it.next() {
                            Some((Tok::Eq, _)) => {}
                            _ => return Err(err(l, "expected = after an option name")),
                        }
                        match it.next() {
                            Some((Tok::Word(v) | Tok::Quoted(v), _)) => {
                                options.push((k, Secret::new(v)))
                            }
                            _ => return Err(err(l, "expected an option value")),
                        }
                    }
                    Some((_, l)) => return Err(err(l, "expected an option or ;")),
                    None => return Err(err(end_line, "unterminated login module (expected ;)")),
                }
            }
            modules.push(LoginModule {
                class,
                flag,
                options,
            });
        }
        // The `;` after a section's `}` is required by Java's parser; accept its absence.
        if matches!(it.peek(), Some((Tok::Semi, _))) {
            it.next();
        }
        file.sections.push(Section { name, modules });
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zookeeper_style_file() {
        let f = parse(
            r#"
// the server
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="adm\"in"
    user_bob=bobpw;   # bare word
};
/* the client
   side */
Client {
  org.apache.zookeeper.server.auth.DigestLoginModule required
  username="bob"
  password="bobpw";
};
"#,
        )
        .unwrap();
        assert_eq!(f.sections.len(), 2);
        let s = f.section("Server").unwrap();
        assert_eq!(s.modules.len(), 1);
        assert_eq!(s.modules[0].flag, "required");
        let opts: Vec<(&str, &str)> = s.modules[0]
            .options
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        assert_eq!(opts, vec![("user_super", "adm\"in"), ("user_bob", "bobpw")]);
        assert!(f.section("Nope").is_none());
        let login = f.digest_login("Client").unwrap();
        assert_eq!(login.username, "bob");
        assert_eq!(login.password.expose(), "bobpw");
        assert_eq!(
            f.digest_login("Other"),
            Err(LoginError::NoSection("Other".into()))
        );
        assert!(matches!(
            f.digest_login("Server"),
            Err(LoginError::MissingOption {
                option: "username",
                ..
            })
        ));
        let k =
            parse("Client { com.sun.security.auth.module.Krb5LoginModule required; };").unwrap();
        assert_eq!(
            k.digest_login("Client"),
            Err(LoginError::NoDigestModule("Client".into()))
        );
        assert!(!format!("{f:?}").contains("bobpw"));
    }

    #[test]
    fn errors_name_lines_not_text() {
        let e = parse("Server {\n M required\n user_x=\"secretpw\"\n").unwrap_err();
        assert!(!e.to_string().contains("secretpw"), "{e}");
        let e = parse("Server {\n M maybe user_x=\"secretpw\";\n};").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(!e.to_string().contains("secretpw"), "{e}");
        let e = parse("Server {\n M required user_x \"secretpw\";\n};").unwrap_err();
        assert!(!e.to_string().contains("secretpw"), "{e}");
        assert!(parse("Server { M required x=\"unterminated ; };").is_err());
        assert!(parse("Server { M required; }").is_ok());
        assert!(parse("").unwrap().sections.is_empty());
    }
}
