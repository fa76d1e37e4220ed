//! Where each key of a jobs file is, so that an error can name its line.
//!
//! The parser knows the path of what it rejects (`job`, `tables`, `users`,
//! `where`, ...) but not where it was written. Each front end records the
//! keys it saw with their lines: TOML and JSON record every key with its
//! full path; a pg-xmat module can only record the keys of dict literals,
//! with the chain of literal keys around each (a job built from a variable
//! starts a new chain). [`KeyLines::find`] takes the key whose chain shares
//! the longest tail with the path asked for, so both kinds of record work.

/// Keys with their lines.
#[derive(Debug, Clone, Default)]
pub struct KeyLines {
    keys: Vec<(u32, Vec<String>)>,
}

impl KeyLines {
    /// Records a key (its path, last element the key itself) at a 1-based line.
    pub fn add(&mut self, line: u32, path: Vec<String>) {
        self.keys.push((line, path));
    }

    /// The line of the key that best matches `path`: the longest common
    /// tail, then the first in the file. `None` when no key has `path`'s last element.
    pub fn find<S: AsRef<str>>(&self, path: &[S]) -> Option<u32> {
        let tail = |chain: &[String]| {
            chain
                .iter()
                .rev()
                .zip(path.iter().rev())
                .take_while(|(a, b)| a.as_str() == b.as_ref())
                .count()
        };
        self.keys
            .iter()
            .map(|(line, chain)| (tail(chain), std::cmp::Reverse(*line)))
            .filter(|(n, _)| *n > 0)
            .max()
            .map(|(_, std::cmp::Reverse(line))| line)
    }
}

/// The keys of a JSON document with their paths (array elements count as
/// their index). The text is already known to parse; this only tracks nesting.
pub fn json_keys(text: &str) -> KeyLines {
    enum Frame {
        Object { key: Option<String>, want_key: bool },
        Array { index: usize },
    }
    let path = |stack: &[Frame]| -> Vec<String> {
        stack
            .iter()
            .filter_map(|f| match f {
                Frame::Object { key, .. } => key.clone(),
                Frame::Array { index } => Some(index.to_string()),
            })
            .collect()
    };
    let mut lines = KeyLines::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut line = 1u32;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            '{' => stack.push(Frame::Object {
                key: None,
                want_key: true,
            }),
            '[' => stack.push(Frame::Array { index: 0 }),
            '}' | ']' => {
                stack.pop();
            }
            ',' => match stack.last_mut() {
                Some(Frame::Object { want_key, .. }) => *want_key = true,
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            '"' => {
                let mut s = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some('r') => s.push('\r'),
                            Some('b') => s.push('\u{8}'),
                            Some('f') => s.push('\u{c}'),
                            Some('u') => {
                                let hex: String = chars.by_ref().take(4).collect();
                                let unit = u32::from_str_radix(&hex, 16).unwrap_or(0xfffd);
                                s.push(char::from_u32(unit).unwrap_or('\u{fffd}'));
                            }
                            Some(other) => s.push(other),
                            None => break,
                        },
                        c => s.push(c),
                    }
                }
                if matches!(stack.last(), Some(Frame::Object { want_key: true, .. })) {
                    if let Some(Frame::Object { key, want_key }) = stack.last_mut() {
                        *key = None;
                        *want_key = false;
                    }
                    let mut p = path(&stack);
                    p.push(s.clone());
                    lines.add(line, p);
                    if let Some(Frame::Object { key, .. }) = stack.last_mut() {
                        *key = Some(s);
                    }
                }
            }
            _ => {}
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keys_have_their_paths_and_lines() {
        let text = "{\"jobs\": {\n  \"a\": {\"tables\": {\n    \"users\": {\"where\": {\"id\": [1, {\"x\": 2}]}},\n    \"orders\": {}\n  }},\n  \"b\\\"q\": {}\n}}";
        let lines = json_keys(text);
        assert_eq!(
            lines.find(&["a", "tables", "users", "where", "id"]),
            Some(3)
        );
        assert_eq!(lines.find(&["a", "tables", "orders"]), Some(4));
        assert_eq!(lines.find(&["b\"q"]), Some(6));
        assert_eq!(
            lines.find(&["jobs", "a", "tables", "users", "where", "id", "1", "x"]),
            Some(3)
        );
        assert_eq!(lines.find(&["nowhere"]), None);
    }

    #[test]
    fn the_longest_shared_tail_wins() {
        let mut lines = KeyLines::default();
        // Two jobs with the same table: the job's name decides.
        lines.add(3, vec!["a".into(), "tables".into(), "users".into()]);
        lines.add(9, vec!["b".into(), "tables".into(), "users".into()]);
        // A literal dict assigned to a variable: its chain starts at `tables`.
        lines.add(20, vec!["tables".into(), "orders".into()]);
        assert_eq!(lines.find(&["b", "tables", "users"]), Some(9));
        assert_eq!(lines.find(&["a", "tables", "users"]), Some(3));
        assert_eq!(
            lines.find(&["c", "tables", "users"]),
            Some(3),
            "first of equals"
        );
        assert_eq!(lines.find(&["job", "tables", "orders"]), Some(20));
    }
}
