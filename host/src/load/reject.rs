//! The reject file: one JSON line per record that was not loaded because it
//! was invalid or a plugin rejected it, with where it came from and why.
//!
//! `{"source":"items.ndjson","line":12,"id":"a","stage":"validation",
//!   "reason":"...","record":{...the record as read...}}`

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::value::RawValue;

use super::{LoadError, Origin};

/// Writes rejected records.
pub struct RejectWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    at: &'a Origin,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    /// `validation`, or `plugin NAME`.
    stage: &'a str,
    reason: &'a str,
    /// The record as JSON when every JSON reader can take it back (see
    /// [`RejectWriter::write`]), else as a string.
    record: Record<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Record<'a> {
    Json(&'a RawValue),
    Text(&'a str),
    None,
}

impl RejectWriter {
    /// Creates (truncates) the file.
    pub fn create(path: &Path) -> Result<RejectWriter, LoadError> {
        let f = File::create(path).map_err(|e| LoadError::RejectFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(RejectWriter {
            path: path.to_path_buf(),
            out: BufWriter::new(f),
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> LoadError {
        LoadError::RejectFile {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        }
    }

    /// Writes one rejected record.
    pub fn write(
        &mut self,
        at: &Origin,
        id: Option<&str>,
        stage: &str,
        reason: &str,
        record: &str,
    ) -> Result<(), LoadError> {
        // One line per record: a pretty-printed record loses its layout
        // (only whitespace between tokens), nothing else.
        let compact;
        let record = if record.contains(['\n', '\r']) {
            compact = minify(record);
            compact.as_str()
        } else {
            record
        };
        // A record refused for what readers refuse too (nesting 100,000
        // deep, a lone surrogate, a number out of range) goes in as a string:
        // every line of the file stays readable by any JSON reader.
        let raw: Option<&RawValue> = crate::json_check::check_object(record)
            .ok()
            .and_then(|()| serde_json::from_str(record.trim()).ok());
        // A reason is a plugin's text: it may echo a secret parameter.
        let reason = crate::terminal::redact(reason);
        let line = Line {
            at,
            id,
            stage,
            reason: &reason,
            record: match raw {
                Some(r) => Record::Json(r),
                // A record skipped unread (too large) has no text to show.
                None if record.is_empty() => Record::None,
                None => Record::Text(record),
            },
        };
        serde_json::to_writer(&mut self.out, &line).map_err(|e| self.err(e))?;
        self.out.write_all(b"\n").map_err(|e| self.err(e))
    }

    /// Flushes what was written.
    pub fn finish(mut self) -> Result<(), LoadError> {
        self.out.flush().map_err(|e| self.err(e))
    }
}

/// JSON text without the whitespace between tokens (strings untouched).
fn minify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_str, mut esc) = (false, false);
    for c in text.chars() {
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn minify_keeps_strings() {
        assert_eq!(
            super::minify("{\n  \"a b\": \"x \\\" y\",\n \"c\": [1, 2]\n}"),
            "{\"a b\":\"x \\\" y\",\"c\":[1,2]}"
        );
    }
}
