//! `anonymize`: keyed, deterministic pseudonyms for chosen columns. See README.md.

mod names;

use hmac::{Hmac, Mac};
use host_plugin_sdk::pg::{TypeClass, text_length_limit, type_class};
use host_plugin_sdk::{Outcome, Params, Plugin, Row, RowTransformer, Table};
use sha2::Sha256;

/// What happens to a column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Treatment {
    Email,
    Phone,
    Name,
    Hash,
    Null,
    Keep,
}

impl Treatment {
    fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "email" => Self::Email,
            "phone" => Self::Phone,
            "name" => Self::Name,
            "hash" => Self::Hash,
            "null" => Self::Null,
            "keep" => Self::Keep,
            _ => {
                return Err(format!(
                    "unknown treatment `{s}` (use email, phone, name, hash, null or keep)"
                ));
            }
        })
    }
    fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Name => "name",
            Self::Hash => "hash",
            Self::Null => "null",
            Self::Keep => "keep",
        }
    }
    /// Whether it writes text, and the longest text it writes (`None`: as long as the input).
    fn writes_text(self) -> Option<Option<usize>> {
        match self {
            Self::Email => Some(Some("user-@example.com".len() + 12)),
            Self::Hash => Some(Some(64)),
            Self::Name => Some(Some(names::longest())),
            Self::Phone => Some(None),
            Self::Null | Self::Keep => None,
        }
    }
}

/// The keyed hash that pseudonyms are made from.
enum Prf {
    /// Keyed BLAKE3, the key derived from the user's with BLAKE3's KDF mode.
    Blake3([u8; 32]),
    /// Keyed once; cloning it per value reuses the precomputed pad states.
    HmacSha256(Hmac<Sha256>),
}

/// Pseudonymizes columns with a keyed hash of each value.
pub struct Anonymize {
    prf: Prf,
    rules: Vec<(String, Treatment)>,
    /// The current table's column positions and treatments.
    active: Vec<(usize, Treatment)>,
}

impl Plugin for Anonymize {
    /// The bracket is read by `host xmat` before it copies a column of a
    /// unique key: `email` (48 bits) and `phone` (its digits) can collide,
    /// `name` (64 × 64 names) and `null` map many values to one, `hash` (256
    /// bits) cannot in practice (a collision needs ~2^128 values).
    const DESCRIPTION: Option<&'static str> = Some(
        "Keyed, deterministic pseudonymization of columns (COLUMN=TREATMENT: email, phone, name, hash, null, keep) \
         [uniqueness: email=not-guaranteed phone=not-guaranteed name=lossy hash=preserved null=lossy keep=unchanged; options: key algorithm]",
    );

    fn new(params: &Params) -> Result<Self, String> {
        let key = params.require("key")?;
        if key.is_empty() {
            return Err("parameter `key` must not be empty".into());
        }
        let mut rules: Vec<(String, Treatment)> = Vec::new();
        let prf = match params.get("algorithm")?.unwrap_or("blake3") {
            "blake3" => Prf::Blake3(blake3::derive_key(
                "host anonymize plugin v1",
                key.as_bytes(),
            )),
            "hmac-sha256" => {
                Prf::HmacSha256(Hmac::new_from_slice(key.as_bytes()).expect("HMAC takes any key"))
            }
            other => {
                return Err(format!(
                    "unknown algorithm `{other}` (use blake3 or hmac-sha256)"
                ));
            }
        };
        for (k, v) in params
            .iter()
            .filter(|(k, _)| !matches!(*k, "key" | "algorithm"))
        {
            let column = k.strip_prefix("column:").unwrap_or(k);
            if rules.iter().any(|(c, _)| c == column) {
                return Err(format!("column `{column}` is given more than once"));
            }
            rules.push((column.to_owned(), Treatment::parse(v)?));
        }
        if rules.is_empty() {
            return Err("no column given: add COLUMN=TREATMENT (e.g. email=email)".into());
        }
        Ok(Anonymize {
            prf,
            rules,
            active: Vec::new(),
        })
    }
}

impl RowTransformer for Anonymize {
    fn begin_table(&mut self, table: &Table) -> Result<(), String> {
        self.active.clear();
        for (column, t) in &self.rules {
            let i = table.require_column(column)?;
            let ty = &table.columns[i].type_name;
            if let Some(len) = t.writes_text() {
                if type_class(ty) != TypeClass::Text {
                    return Err(format!(
                        "column `{column}` is {ty}: treatment `{}` needs a text column",
                        t.name()
                    ));
                }
                if let (Some(limit), Some(len)) = (text_length_limit(ty), len)
                    && limit < len
                {
                    return Err(format!(
                        "column `{column}` is {ty}: treatment `{}` writes up to {len} characters",
                        t.name()
                    ));
                }
            }
            if *t != Treatment::Keep {
                self.active.push((i, *t));
            }
        }
        Ok(())
    }

    fn transform(&mut self, row: &mut Row<'_>) -> Outcome {
        for &(i, t) in &self.active {
            let Some(value) = row.get(i) else { continue }; // NULL stays NULL
            let new = if t == Treatment::Null {
                None
            } else {
                Some(self.pseudonym(t, value))
            };
            row.set(i, new);
        }
        Outcome::Keep
    }
}

impl Anonymize {
    fn pseudonym(&self, t: Treatment, value: &str) -> String {
        let d: [u8; 32] = match &self.prf {
            Prf::Blake3(key) => *blake3::keyed_hash(key, value.as_bytes()).as_bytes(),
            Prf::HmacSha256(mac) => mac
                .clone()
                .chain_update(value.as_bytes())
                .finalize()
                .into_bytes()
                .into(),
        };
        match t {
            Treatment::Email => hex("user-", &d[..6], "@example.com"),
            Treatment::Hash => hex("", &d, ""),
            Treatment::Name => {
                let pick = |b: &[u8], n: usize| usize::from(u16::from_le_bytes([b[0], b[1]])) % n;
                format!(
                    "{} {}",
                    names::FIRST[pick(&d[0..], 64)],
                    names::LAST[pick(&d[2..], 64)]
                )
            }
            Treatment::Phone => {
                let mut k = 0;
                value
                    .chars()
                    .map(|c| {
                        if c.is_ascii_digit() {
                            let digit = (usize::from(d[k % 32]) + k / 32) % 10;
                            k += 1;
                            char::from(b'0' + digit as u8)
                        } else {
                            c
                        }
                    })
                    .collect()
            }
            Treatment::Null | Treatment::Keep => unreachable!("not a pseudonym"),
        }
    }
}

/// `prefix`, `bytes` in lowercase hex, `suffix`: one allocation.
fn hex(prefix: &str, bytes: &[u8], suffix: &str) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(prefix.len() + bytes.len() * 2 + suffix.len());
    s.push_str(prefix);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s.push_str(suffix);
    s
}

host_plugin_sdk::export_row_transformer!(Anonymize);

#[cfg(test)]
mod tests;
