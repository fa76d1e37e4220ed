//! What a row plugin declares about keeping distinct values distinct.
//!
//! A transform on a column of a unique key (an anonymizer turning emails
//! into pseudonyms) must not map two values to one, or the key fails on the
//! target, at the end of the copy. The plugin interface is frozen at 0.1, so
//! the declaration rides in what every plugin already reports, the last
//! part of its `info` description:
//!
//! ```text
//! Keyed pseudonyms for chosen columns [uniqueness: email=not-guaranteed hash=preserved keep=unchanged; options: key algorithm]
//! ```
//!
//! It describes plugins configured the way anonymizers are, one parameter
//! per column, `COLUMN=TREATMENT` (`column:NAME=TREATMENT` for a column whose
//! name is an option): each treatment is `preserved` (distinct values stay
//! distinct), `not-guaranteed` (hashes, random values: collisions possible),
//! `lossy` (distinct values meet by construction: masks, constants, small
//! dictionaries) or `unchanged`; `options` are the parameters that name no
//! column. A plugin that declares nothing may change any column. The same
//! three classes as pgstream's transformers (`preserved`, `not_guaranteed`,
//! `lossy`).

/// How a transform treats distinct values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Uniqueness {
    /// Distinct inputs always give distinct outputs.
    Preserved,
    /// Distinct inputs may give one output (at a birthday bound).
    NotGuaranteed,
    /// Distinct inputs give one output by construction.
    Lossy,
}

impl std::fmt::Display for Uniqueness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Uniqueness::Preserved => "preserved",
            Uniqueness::NotGuaranteed => "not-guaranteed",
            Uniqueness::Lossy => "lossy",
        })
    }
}

/// What a treatment does to its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Unchanged,
    Changed(Uniqueness),
}

/// A plugin's declaration, parsed from its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    treatments: Vec<(String, Effect)>,
    options: Vec<String>,
}

/// What a plugin does to one column, under its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnEffect {
    pub column: String,
    /// The treatment named in the parameters.
    pub treatment: String,
    /// `None`: the declaration does not list this treatment.
    pub effect: Option<Effect>,
}

const MARK: &str = "[uniqueness:";

impl Declaration {
    /// The declaration at the end of a description: `None` when there is
    /// none, an error naming the problem when it does not parse.
    pub fn parse(description: &str) -> Option<Result<Declaration, String>> {
        let at = description.rfind(MARK)?;
        let body = description[at + MARK.len()..].trim_end();
        let Some(body) = body.strip_suffix(']') else {
            return Some(Err(
                "the [uniqueness: ...] part does not end with `]`".into()
            ));
        };
        let (treatments, options) = match body.split_once(';') {
            Some((t, o)) => (t, Some(o)),
            None => (body, None),
        };
        let parse = || -> Result<Declaration, String> {
            let treatments = treatments
                .split_whitespace()
                .map(|item| {
                    let (name, class) = item
                        .split_once('=')
                        .ok_or_else(|| format!("`{item}` is not TREATMENT=CLASS"))?;
                    let effect = match class {
                        "preserved" => Effect::Changed(Uniqueness::Preserved),
                        "not-guaranteed" => Effect::Changed(Uniqueness::NotGuaranteed),
                        "lossy" => Effect::Changed(Uniqueness::Lossy),
                        "unchanged" => Effect::Unchanged,
                        other => {
                            return Err(format!(
                                "`{other}` is not a class (preserved, not-guaranteed, lossy, unchanged)"
                            ));
                        }
                    };
                    Ok((name.to_string(), effect))
                })
                .collect::<Result<Vec<_>, String>>()?;
            let options = match options.map(str::trim) {
                None => Vec::new(),
                Some(o) => match o.strip_prefix("options:") {
                    Some(list) => list.split_whitespace().map(str::to_string).collect(),
                    None => return Err(format!("`{o}` should be `options: KEY ...`")),
                },
            };
            Ok(Declaration {
                treatments,
                options,
            })
        };
        Some(parse())
    }

    /// The columns these parameters name, with what happens to each.
    pub fn columns(&self, params: &[(String, String)]) -> Vec<ColumnEffect> {
        params
            .iter()
            .filter(|(k, _)| !self.options.contains(k))
            .map(|(k, v)| ColumnEffect {
                column: k.strip_prefix("column:").unwrap_or(k).to_string(),
                treatment: v.clone(),
                effect: self
                    .treatments
                    .iter()
                    .find(|(t, _)| t == v)
                    .map(|(_, e)| *e),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_declaration_and_the_columns_it_names() {
        let d = Declaration::parse(
            "Pseudonyms [sic] [uniqueness: email=not-guaranteed hash=preserved keep=unchanged null=lossy; options: key algorithm]",
        )
        .unwrap()
        .unwrap();
        let params: Vec<(String, String)> = [
            ("key", "s3cret"),
            ("email", "email"),
            ("column:key", "hash"),
            ("id", "keep"),
            ("phone", "scramble"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let effects: Vec<(String, Option<Effect>)> = d
            .columns(&params)
            .into_iter()
            .map(|c| (c.column, c.effect))
            .collect();
        assert_eq!(
            effects,
            [
                (
                    "email".into(),
                    Some(Effect::Changed(Uniqueness::NotGuaranteed))
                ),
                ("key".into(), Some(Effect::Changed(Uniqueness::Preserved))),
                ("id".into(), Some(Effect::Unchanged)),
                ("phone".into(), None),
            ]
        );
    }

    #[test]
    fn no_declaration_or_a_broken_one() {
        assert!(Declaration::parse("Sets the collection of items").is_none());
        for bad in [
            "x [uniqueness: email=fine]",
            "x [uniqueness: email]",
            "x [uniqueness: a=lossy; key]",
            "x [uniqueness: a=lossy",
        ] {
            assert!(Declaration::parse(bad).unwrap().is_err(), "{bad}");
        }
        let plain = Declaration::parse("[uniqueness: a=lossy]")
            .unwrap()
            .unwrap();
        assert_eq!(plain.options, Vec::<String>::new());
    }
}
