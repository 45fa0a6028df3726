//! Splits an interactive command line into words the way zkCli does (ZooKeeper's
//! `ZooKeeperMain.MyCommandOptions.parseCommand`).
//!
//! zkCli has no escapes: a word is a run of non-space characters, or everything between
//! a pair of double quotes, or between a pair of single quotes; the surrounding quotes
//! are dropped. A quote that is never closed is skipped, and a quote in the middle of a
//! word is kept (`a"b` stays `a"b`). Whitespace is Java's `\s`: space, tab, newline,
//! vertical tab, form feed and carriage return; every other character (non-ASCII too)
//! belongs to a word. One quirk is kept on purpose: leading whitespace before an
//! unclosed quote becomes part of the word (`  "x` gives ` "x`), as in zkCli.

/// Java regex `\s` (no UNICODE_CHARACTER_CLASS flag).
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r')
}

/// Java regex line terminators, which `.` does not match.
fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// The end (exclusive index into `s`) of a word starting at `j`, if one starts there:
/// a non-quote character followed by non-space characters, or a quoted run.
fn word_at(s: &[char], j: usize) -> Option<usize> {
    let c = *s.get(j)?;
    if c == '"' || c == '\'' {
        let close = s[j + 1..].iter().position(|&d| d == c)?;
        return Some(j + 1 + close + 1);
    }
    let mut end = j + 1;
    while end < s.len() && !is_space(s[end]) {
        end += 1;
    }
    Some(end)
}

/// Drops the surrounding quotes of a quoted word (`"..."` or `'...'`).
fn unquote(w: &[char]) -> String {
    let quoted = w.len() >= 2
        && (w[0] == '"' || w[0] == '\'')
        && w[w.len() - 1] == w[0]
        && !w[1..w.len() - 1].iter().any(|&c| is_line_terminator(c));
    let inner = if quoted { &w[1..w.len() - 1] } else { w };
    inner.iter().collect()
}

/// The words of `line`, as zkCli reads an interactive command line.
pub fn split(line: &str) -> Vec<String> {
    let s: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut i = 0;
    while i < s.len() {
        // Leading whitespace, given back one character at a time if no word follows it
        // (a whitespace character may itself start a word).
        let mut spaces = 0;
        while i + spaces < s.len() && is_space(s[i + spaces]) {
            spaces += 1;
        }
        let found = (0..=spaces)
            .rev()
            .find_map(|k| word_at(&s, i + k).map(|end| (i + k, end)));
        match found {
            Some((start, mut end)) => {
                words.push(unquote(&s[start..end]));
                while end < s.len() && is_space(s[end]) {
                    end += 1;
                }
                i = end;
            }
            None => i += 1,
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::split;

    fn w(line: &str) -> Vec<String> {
        split(line)
    }

    #[test]
    fn quotes_group_words() {
        assert_eq!(w(r#"create /q "a b c""#), ["create", "/q", "a b c"]);
        assert_eq!(w(r#"create /demo "hello""#), ["create", "/demo", "hello"]);
        assert_eq!(w("set /q 'x y'"), ["set", "/q", "x y"]);
        assert_eq!(w(r#"set /q """#), ["set", "/q", ""]);
        assert_eq!(w("set /q \"tab\tin\""), ["set", "/q", "tab\tin"]);
    }

    #[test]
    fn no_escapes_and_inner_quotes_stay() {
        assert_eq!(w(r#"set /q "a\"b""#), ["set", "/q", "a\\", "b\""]);
        assert_eq!(w(r"set /q a\ b"), ["set", "/q", "a\\", "b"]);
        assert_eq!(w(r#"set /q a"b c""#), ["set", "/q", "a\"b", "c\""]);
        assert_eq!(w(r#"set /q "it's""#), ["set", "/q", "it's"]);
    }

    #[test]
    fn unclosed_quotes() {
        assert_eq!(w(r#"set /q "x"#), ["set", "/q", "x"]);
        assert_eq!(w(r#"  "x"#), [" \"x"]);
        assert_eq!(w(r#"set /q 'x y"#), ["set", "/q", "x", "y"]);
    }

    #[test]
    fn whitespace_and_non_ascii() {
        assert_eq!(w("  ls   / "), ["ls", "/"]);
        assert_eq!(w("set /q héllo wörld"), ["set", "/q", "héllo", "wörld"]);
        // A no-break space is not Java's \s: it is part of the word.
        assert_eq!(w("set /q a\u{a0}b"), ["set", "/q", "a\u{a0}b"]);
        // A line of blanks is one word of one blank, as the regex zkCli uses gives.
        assert_eq!(w("   "), [" "]);
        assert!(w("").is_empty());
    }
}
