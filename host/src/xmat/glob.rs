//! Job-name patterns, matched exactly as pg-xmat's `fnmatch.fnmatch` does on
//! POSIX: `*` any text, `?` one character, `[abc]`, `[a-z]`, `[!abc]` one of
//! (or none of) a set. Case-sensitive; no escape character; a `[` without a
//! closing `]` is literal, and so is `^` at the start of a set (Python
//! negates only with `!`).

/// Whether `name` matches `pattern`.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matcher with one backtrack point for the last `*`.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            let step = match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' => Some(1),
                '[' => match set(&p[pi..], n[ni]) {
                    Some((true, len)) => Some(len),
                    Some((false, _)) => None,
                    None => (n[ni] == '[').then_some(1),
                },
                c => (c == n[ni]).then_some(1),
            };
            if let Some(len) = step {
                pi += len;
                ni += 1;
                continue;
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches `c` against the `[...]` set at the start of `p`: (matched, the
/// set's length), or `None` when it has no closing bracket (`[` is then a
/// literal). A `]` right after `[` or `[!` belongs to the set; `-` between
/// two characters is a range (an empty one when reversed), elsewhere a literal.
fn set(p: &[char], c: char) -> Option<(bool, usize)> {
    let negate = p.get(1) == Some(&'!');
    let start = if negate { 2 } else { 1 };
    let mut i = start;
    let mut matched = false;
    while i < p.len() && (p[i] != ']' || i == start) {
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            matched |= p[i] <= c && c <= p[i + 2];
            i += 3;
        } else {
            matched |= p[i] == c;
            i += 1;
        }
    }
    (i < p.len()).then_some((matched != negate, i + 1))
}

#[cfg(test)]
mod tests {
    /// Every expectation here is what Python 3.11's `fnmatch.fnmatch(name, pattern)` returns.
    #[test]
    fn matches_like_python_fnmatch() {
        for (p, n, want) in [
            ("export:*", "export:users", true),
            ("export:*", "import:users", false),
            ("*", "", true),
            ("a?c", "abc", true),
            ("a[bx]c", "axc", true),
            ("a[!b]c", "abc", false),
            ("a[^b]c", "abc", true),
            ("a[^b]c", "a^c", true),
            ("t[0-9]", "t7", true),
            ("*:*s", "export:users", true),
            ("a[b", "a[b", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("[]]", "]", true),
            ("[!]]", "a", true),
            ("[!]]", "]", false),
            ("[a-]", "-", true),
            ("[z-a]", "m", false),
            ("Export:*", "export:x", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("[!]", "!", false),
            ("[!]", "[!]", true),
            ("?", "é", true),
            ("*.?", "x.y", true),
            ("a\\b", "a\\b", true),
            ("[--0]", "/", true),
            ("[a-c-e]", "-", true),
            ("[a-c-e]", "d", false),
        ] {
            assert_eq!(super::matches(p, n), want, "{p} vs {n}");
        }
    }
}
