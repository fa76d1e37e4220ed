//! A tenant's data scope: the collections, tables and rows its plugins may see.

/// A name or a glob (`*` any run of characters, `?` one character), matched
/// against the whole name, case-sensitively (STAC collection ids and quoted
/// PostgreSQL names are case-sensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    pub fn new(text: &str) -> Pattern {
        Pattern(text.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the pattern is a plain name rather than a glob.
    pub fn is_literal(&self) -> bool {
        !self.0.contains(['*', '?'])
    }

    pub fn matches(&self, name: &str) -> bool {
        glob(self.0.as_bytes(), name.as_bytes())
    }
}

/// Iterative wildcard matching with one backtrack point: linear in practice,
/// never exponential however many `*` a pattern has.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// What a tenant's plugins may see. An empty list holds nothing: a tenant
/// sees no data of a kind its scope does not name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// STAC collections, for `load`.
    pub collections: Vec<Pattern>,
    /// Source tables as `schema.table`, for `xmat` and `stream`.
    pub tables: Vec<Pattern>,
    /// A predicate (SQL, evaluated by the source) every row must satisfy.
    pub rows: Option<String>,
}

impl Scope {
    pub fn holds_collection(&self, collection: &str) -> bool {
        self.collections.iter().any(|p| p.matches(collection))
    }

    /// Whether `schema.table` is in scope. Names are compared as PostgreSQL
    /// stores them (unquoted, case as created).
    pub fn holds_table(&self, schema: &str, table: &str) -> bool {
        let name = format!("{schema}.{table}");
        self.tables.iter().any(|p| p.matches(&name))
    }
}

/// The data a command's plugins may see, chosen once per run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DataScope {
    /// No policy: whatever the command reads.
    #[default]
    Everything,
    /// A tenant's.
    Tenant(TenantScope),
}

impl DataScope {
    /// The tenant whose scope this is, if it is one.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            DataScope::Everything => None,
            DataScope::Tenant(t) => Some(&t.tenant),
        }
    }

    /// Why an item of `collection` may not reach the plugins (or be written), if it may not.
    pub fn refuse_collection(&self, collection: Option<&str>) -> Option<String> {
        match self {
            DataScope::Everything => None,
            DataScope::Tenant(t) => t.refuse_collection(collection),
        }
    }
}

/// A tenant's scope as a command applies it: what is refused names the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantScope {
    pub tenant: String,
    pub scope: Scope,
}

impl TenantScope {
    /// Why an item of `collection` may not reach the tenant's plugins, if it may not.
    pub fn refuse_collection(&self, collection: Option<&str>) -> Option<String> {
        match collection {
            Some(c) if self.scope.holds_collection(c) => None,
            Some(c) => Some(format!(
                "collection {c:?} is outside tenant `{}`'s scope",
                self.tenant
            )),
            None => Some(format!(
                "the item names no collection, so it is outside tenant `{}`'s scope",
                self.tenant
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names() {
        let p = Pattern::new("acme-*");
        assert!(p.matches("acme-naip"));
        assert!(p.matches("acme-"));
        assert!(!p.matches("ACME-naip"));
        assert!(!p.matches("x-acme-naip"));
        assert!(Pattern::new("a?c").matches("abc"));
        assert!(!Pattern::new("a?c").matches("ac"));
        assert!(Pattern::new("*-*-end").matches("a-b-c-end"));
        assert!(!Pattern::new("naip").matches("naip2"));
        assert!(Pattern::new("naip").is_literal());
        // Many stars against a long near-miss stays fast (no exponential backtracking).
        let long = "a".repeat(10_000);
        assert!(Pattern::new(&"a*".repeat(50)).matches(&format!("{long}b")));
        assert!(!Pattern::new(&format!("{}b", "*a".repeat(50))).matches(&long));
    }

    #[test]
    fn tables_are_schema_qualified() {
        let s = Scope {
            tables: vec![Pattern::new("public.*"), Pattern::new("crm.Users")],
            ..Scope::default()
        };
        assert!(s.holds_table("public", "orders"));
        assert!(s.holds_table("crm", "Users"));
        assert!(!s.holds_table("crm", "users"));
        assert!(!s.holds_collection("anything"));
    }
}
