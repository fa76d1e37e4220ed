//! The policy file as written: TOML shapes with the span of every value a
//! check may need to point at. Nothing here is checked beyond its type; the
//! checks, and the model commands use, are in [`super::check`].

use std::collections::BTreeMap;

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
    #[serde(default)]
    pub budget: Option<Spanned<Budget>>,
    #[serde(default)]
    pub plugins: BTreeMap<Spanned<String>, Spanned<PluginFile>>,
    #[serde(default)]
    pub tenants: BTreeMap<Spanned<String>, Spanned<TenantFile>>,
}

/// `[budget]`: what the whole process may spend on plugins.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Budget {
    pub memory: Spanned<Amount>,
}

/// `[plugins.NAME]`: one build the operator allows.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PluginFile {
    pub sha256: Spanned<String>,
    /// Where to fetch it (a path, URL or `oci://` reference); optional when
    /// every command that runs it is given a location.
    #[serde(default)]
    pub location: Option<Spanned<String>>,
}

/// `[tenants.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TenantFile {
    /// The plugins the tenant may run; for `load`, its chain in this order.
    #[serde(default)]
    pub plugins: Vec<Spanned<String>>,
    #[serde(default)]
    pub scope: Option<Spanned<ScopeFile>>,
    #[serde(default)]
    pub limits: Option<Spanned<LimitsFile>>,
    /// `[tenants.NAME.params.PLUGIN]`: parameters, literal or secret.
    #[serde(default)]
    pub params: BTreeMap<Spanned<String>, BTreeMap<Spanned<String>, Spanned<ParamFile>>>,
}

/// `[tenants.NAME.scope]`: the data the tenant's plugins may see.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScopeFile {
    /// STAC collections (names, or globs with `*` and `?`) for `load`.
    #[serde(default)]
    pub collections: Vec<Spanned<String>>,
    /// Source tables (`schema.table`, globs allowed) for `xmat` and `stream`.
    #[serde(default)]
    pub tables: Vec<Spanned<String>>,
    /// A row predicate (SQL) every source row must satisfy.
    #[serde(default, rename = "where")]
    pub where_: Option<Spanned<String>>,
}

/// `[tenants.NAME.limits]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LimitsFile {
    pub memory: Option<Spanned<Amount>>,
    pub time: Option<Spanned<Amount>>,
    pub fuel: Option<Spanned<u64>>,
    pub output: Option<Spanned<Amount>>,
    pub instances: Option<Spanned<u32>>,
    pub cpu: Option<Spanned<Amount>>,
}

/// A size or a duration: `"64MiB"`, `"1s"`, or a plain number (bytes, seconds).
#[derive(Debug)]
pub(super) enum Amount {
    Number(u64),
    Text(String),
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Amount, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Amount;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size or duration such as \"64MiB\" or \"1s\", or a whole number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Amount, E> {
                Ok(Amount::Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Amount, E> {
                u64::try_from(v)
                    .map(Amount::Number)
                    .map_err(|_| E::custom(format!("{v} is negative; limits are positive")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Amount, E> {
                Ok(Amount::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A parameter's value: literal text, or a secret read when the plugin starts.
#[derive(Debug)]
pub(super) enum ParamFile {
    Literal(String),
    Secret(super::SecretSource),
}

impl<'de> Deserialize<'de> for ParamFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ParamFile, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ParamFile;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, { env = \"VARIABLE\" } or { file = \"PATH\" }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ParamFile, E> {
                Ok(ParamFile::Literal(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ParamFile, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom(
                        "an empty table; a secret is { env = \"VARIABLE\" } or { file = \"PATH\" }",
                    ));
                };
                let value: String = map.next_value()?;
                let secret = match key.as_str() {
                    "env" => super::SecretSource::Env(value),
                    "file" => super::SecretSource::File(value.into()),
                    other => {
                        return Err(de::Error::custom(format!(
                            "unknown key `{other}`; a secret is {{ env = \"VARIABLE\" }} or {{ file = \"PATH\" }}"
                        )));
                    }
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(de::Error::custom(format!(
                        "`{extra}` beside `{key}`; a secret comes from one place"
                    )));
                }
                Ok(ParamFile::Secret(secret))
            }
        }
        d.deserialize_any(V)
    }
}
