//! What reaches a person's terminal.
//!
//! Text that comes from data or from a plugin (item ids, reject reasons,
//! plugin names and messages, table names from a source database) may hold
//! escape sequences that clear the screen or recolour the log, a carriage
//! return that hides what came before it, or a newline that forges a log
//! line. Every such value is shown through [`Shown`], which writes control
//! characters (and the invisible Unicode controls that reorder text) as
//! escapes. The log's writer, [`LogWriter`], does the same to anything that
//! slips through, so one log event is always one line; colour is used only
//! when stderr is a terminal (and `NO_COLOR` is not set).

use std::borrow::Cow;
use std::io::{IsTerminal, Write};

/// Whether a character must not reach a terminal as it is.
fn is_unsafe(c: char) -> bool {
    c.is_control() // C0, DEL and C1
        || matches!(c,
            '\u{200e}' | '\u{200f}'        // left-to-right / right-to-left marks
            | '\u{2028}' | '\u{2029}'      // line and paragraph separators
            | '\u{202a}'..='\u{202e}'      // bidi embeddings and overrides
            | '\u{2066}'..='\u{2069}'      // bidi isolates
        )
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
    }
}

/// `text` with every control character written as an escape (`\n`,
/// `\u{1b}`, ...); borrowed when there is nothing to escape.
pub fn escape(text: &str) -> Cow<'_, str> {
    escaped(text, Keep::Nothing)
}

/// An error message for stderr: control characters escaped, except a newline
/// followed by an indent (an error may continue on indented lines, e.g. with
/// the statement that failed; nothing can pass for a line of its own).
pub fn escape_message(text: &str) -> Cow<'_, str> {
    escaped(text, Keep::IndentedLines)
}

/// What [`escaped`] leaves alone.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    Nothing,
    /// Newlines followed by two spaces.
    IndentedLines,
    /// Those, and ESC (the log's own colours).
    IndentedLinesAndColour,
}

fn escaped(text: &str, keep: Keep) -> Cow<'_, str> {
    match redact(text) {
        Cow::Borrowed(t) => escape_only(t, keep),
        Cow::Owned(t) => Cow::Owned(escape_only(&t, keep).into_owned()),
    }
}

fn escape_only(text: &str, keep: Keep) -> Cow<'_, str> {
    let kept = |i: usize, c: char| match (keep, c) {
        (Keep::Nothing, _) => false,
        (_, '\n') => text[i + 1..].starts_with("  "),
        (Keep::IndentedLinesAndColour, '\u{1b}') => true,
        _ => false,
    };
    if !text
        .char_indices()
        .any(|(i, c)| is_unsafe(c) && !kept(i, c))
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for (i, c) in text.char_indices() {
        if is_unsafe(c) && !kept(i, c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Secret values (a policy's parameters) that must reach no output.
static SECRETS: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

/// From now on, `value` is shown as `***` wherever untrusted text is shown,
/// logged or written to a reject file: a plugin may echo its parameters in a
/// message, and a database may quote them in an error.
pub fn hide_secret(value: &str) {
    if value.is_empty() {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    if !secrets.iter().any(|s| s == value) {
        secrets.push(value.to_string());
        // Longest first: a secret that contains another is hidden whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// `text` with every hidden secret replaced by `***`; borrowed when none is in it.
pub fn redact(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    if secrets.is_empty() || !secrets.iter().any(|s| text.contains(s.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for s in secrets.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    Cow::Owned(out)
}

/// An error as one line: what failed, then each cause after `: `.
///
/// Errors here often say their cause in their own words (a database error
/// as its message, SQLSTATE, detail and hint, see [`crate::db::describe`])
/// and still keep it as `source()` for callers that look at it; a cause the
/// line already ends with (after `: `) is not said again. A database error
/// in the chain is said as `describe` says it, the way its holders say it.
/// This compares text only to decide what to print, never what to do.
pub fn error_text(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let db = cause.downcast_ref::<tokio_postgres::Error>();
        let said = db.map_or_else(|| cause.to_string(), crate::db::describe);
        let repeated = line == said
            || line
                .strip_suffix(said.as_str())
                .is_some_and(|head| head.ends_with(": "));
        if !said.is_empty() && !repeated {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&said);
        }
        // describe() says what a database error's own causes say.
        if db.is_some() {
            break;
        }
    }
    line
}

/// Displays untrusted text with its control characters escaped.
#[derive(Debug, Clone, Copy)]
pub struct Shown<T>(pub T);

impl<T: AsRef<str>> std::fmt::Display for Shown<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&escape(self.0.as_ref()))
    }
}

/// Whether to colour what goes to stderr: only on a terminal, never with `NO_COLOR`.
pub fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The log's writer: each event goes to stderr as one line, any control
/// character inside it escaped (the escape sequences of the log's own
/// colours pass when `colour` is on; the logger escapes those in values).
#[derive(Debug, Clone, Copy)]
pub struct LogWriter {
    /// Let ESC through, for the log's own colours.
    pub colour: bool,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> LogWriter {
        *self
    }
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let body = text.strip_suffix('\n').unwrap_or(&text);
        let keep = if self.colour {
            Keep::IndentedLinesAndColour
        } else {
            Keep::IndentedLines
        };
        let mut line = escaped(body, keep).into_owned();
        if body.len() < text.len() {
            line.push('\n');
        }
        // One write per event: lines from two threads never interleave.
        std::io::stderr().lock().write_all(line.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_says_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("{0}")]
        struct Wrapper(#[source] std::io::Error);
        #[derive(Debug, thiserror::Error)]
        #[error("reading x.json: {0}")]
        struct Says(#[source] std::io::Error);
        let io = || std::io::Error::other("disk on fire");
        // A wrapper that is its cause's words, and one that adds its own.
        let e = anyhow::Error::from(Wrapper(io())).context("loading");
        assert_eq!(error_text(&e), "loading: disk on fire");
        let e = anyhow::Error::from(Says(io())).context("loading");
        assert_eq!(error_text(&e), "loading: reading x.json: disk on fire");
        let e = anyhow::Error::from(io()).context("reading x.json");
        assert_eq!(error_text(&e), "reading x.json: disk on fire");
        // The same words inside a message are not taken for the cause.
        let e = anyhow::Error::from(std::io::Error::other("x")).context("x marks the spot");
        assert_eq!(error_text(&e), "x marks the spot: x");
        let e = anyhow::Error::from(std::io::Error::other("x")).context("no such file x");
        assert_eq!(error_text(&e), "no such file x: x");
    }

    #[test]
    fn hidden_secrets_never_show() {
        hide_secret("s3cr3t-9f2c7a");
        hide_secret("s3cr3t-9f2c7a-longer");
        let msg = "bad key s3cr3t-9f2c7a-longer and s3cr3t-9f2c7a\u{1b}[2J";
        assert_eq!(escape_message(msg), "bad key *** and ***\\u{1b}[2J");
        assert_eq!(Shown("xs3cr3t-9f2c7ay").to_string(), "x***y");
        assert_eq!(redact("nothing here"), Cow::Borrowed("nothing here"));
    }

    #[test]
    fn control_characters_are_escaped_and_plain_text_borrowed() {
        assert!(matches!(escape("plain é 😀"), Cow::Borrowed(_)));
        assert_eq!(
            escape("a\u{1b}[2Jb\nINFO forged\r\t\u{7f}\u{9b}\u{202e}"),
            "a\\u{1b}[2Jb\\nINFO forged\\r\\t\\u{7f}\\u{9b}\\u{202e}"
        );
        assert_eq!(Shown("x\ny").to_string(), "x\\ny");
        assert_eq!(
            escape_message("bad\n  in: SELECT\nerror: forged\u{1b}"),
            "bad\n  in: SELECT\\nerror: forged\\u{1b}"
        );
    }
}
