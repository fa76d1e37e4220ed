//! The user's parameters, as given to `configure`.

/// The user's parameters (`--plugin-arg KEY=VALUE`), in the order given.
///
/// Keys may repeat; [`Params::get`] and [`Params::require`] refuse a key given
/// twice, so that `collection=a collection=b` is an error rather than a guess.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parameters from `(key, value)` pairs.
    pub fn new<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Params {
            pairs: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Parses `KEY=VALUE` strings (as on the command line); handy in tests.
    ///
    /// # Panics
    /// If a string has no `=`.
    pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Self {
        Params::new(args.into_iter().map(|a| {
            a.split_once('=')
                .unwrap_or_else(|| panic!("parameter `{a}` is not KEY=VALUE"))
        }))
    }

    /// The value of `key`, if given once; an error if given more than once.
    pub fn get(&self, key: &str) -> Result<Option<&str>, String> {
        let mut found = None;
        for (k, v) in &self.pairs {
            if k == key {
                if found.is_some() {
                    return Err(format!("parameter `{key}` is given more than once"));
                }
                found = Some(v.as_str());
            }
        }
        Ok(found)
    }

    /// The value of `key`, which must be given exactly once.
    pub fn require(&self, key: &str) -> Result<&str, String> {
        self.get(key)?
            .ok_or_else(|| format!("missing required parameter `{key}`"))
    }

    /// Refuses any key not in `known`, naming the keys that are accepted.
    pub fn only(&self, known: &[&str]) -> Result<(), String> {
        match self
            .pairs
            .iter()
            .find(|(k, _)| !known.contains(&k.as_str()))
        {
            None => Ok(()),
            Some((k, _)) => Err(format!(
                "unknown parameter `{k}` (this plugin accepts: {})",
                known.join(", ")
            )),
        }
    }

    /// All `(key, value)` pairs, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many pairs were given.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether no parameter was given.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_require_only() {
        let p = Params::parse(["a=1", "b=x=y", "c="]);
        assert_eq!(p.get("a").unwrap(), Some("1"));
        assert_eq!(p.get("b").unwrap(), Some("x=y"));
        assert_eq!(p.require("c").unwrap(), "");
        assert_eq!(p.get("z").unwrap(), None);
        assert_eq!(
            p.require("z").unwrap_err(),
            "missing required parameter `z`"
        );
        assert!(p.only(&["a", "b", "c"]).is_ok());
        assert_eq!(
            p.only(&["a", "b"]).unwrap_err(),
            "unknown parameter `c` (this plugin accepts: a, b)"
        );
        let twice = Params::parse(["a=1", "a=2"]);
        assert!(twice.get("a").unwrap_err().contains("more than once"));
        assert_eq!(twice.iter().count(), 2);
    }
}
