//! `where` and `select` into SQL.
//!
//! The statement ends up inside `COPY (...) TO STDOUT`, which takes no bind
//! parameters, so values are written as quoted literals of unknown type
//! ([`sql::literal`]): PostgreSQL types them from the column they meet, just as
//! it would a parameter, so `'42'` works against integer, numeric and text
//! columns and `'2024-01-01'` against dates.

use super::jobs::{Condition, Filter, Others, Scalar, Select, SelectItem, Test};
use super::sql::{ident, literal};

/// A `select` or `where` that does not fit the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ColumnError {
    #[error("{clause}: there is no column `{column}`")]
    NoColumn {
        clause: &'static str,
        column: String,
    },
    #[error("select: column `{0}` is generated; the target computes it again")]
    Generated(String),
}

/// A source column as the SELECT sees it.
#[derive(Debug, Clone, Copy)]
pub struct SourceColumn<'a> {
    pub name: &'a str,
    /// Generated columns are computed again by the target, never copied.
    pub generated: bool,
}

/// One output column of the SELECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projected {
    /// The column's name (in source and target).
    pub name: String,
    /// The expression replacing it, `{column_name}` already substituted.
    pub expr: Option<String>,
}

/// The columns to copy, with `select` applied: in source order, or in the
/// order named when only the named columns are copied (as pg-xmat creates
/// them). `wildcard`: the entry is `*`, so names the table lacks are not errors.
pub fn projection(
    columns: &[SourceColumn<'_>],
    select: &Select,
    wildcard: bool,
) -> Result<Vec<Projected>, ColumnError> {
    for (name, _) in &select.items {
        match columns.iter().find(|c| c.name == name) {
            None if wildcard => {}
            None => {
                return Err(ColumnError::NoColumn {
                    clause: "select",
                    column: name.clone(),
                });
            }
            Some(c) if c.generated => return Err(ColumnError::Generated(name.clone())),
            Some(_) => {}
        }
    }
    let order: Vec<&SourceColumn<'_>> = match select.others {
        Others::Copied => columns.iter().collect(),
        Others::Left => select
            .items
            .iter()
            .filter_map(|(n, _)| columns.iter().find(|c| c.name == n))
            .collect(),
    };
    Ok(order
        .into_iter()
        .filter(|c| !c.generated)
        .filter_map(|c| {
            let item = select
                .items
                .iter()
                .find(|(n, _)| n == c.name)
                .map(|(_, i)| i);
            match item {
                Some(SelectItem::Omit) => None,
                None if select.others == Others::Left => None,
                Some(SelectItem::Expr(e)) => Some(Projected {
                    name: c.name.to_string(),
                    expr: Some(e.replace("{column_name}", &ident(c.name))),
                }),
                Some(SelectItem::Keep) | None => Some(Projected {
                    name: c.name.to_string(),
                    expr: None,
                }),
            }
        })
        .collect())
}

/// The WHERE condition, if any. With `wildcard`, conditions on columns the
/// table lacks are left out; otherwise they are errors.
pub fn where_sql(
    filter: &Filter,
    has_column: impl Fn(&str) -> bool,
    wildcard: bool,
) -> Result<Option<String>, ColumnError> {
    let conditions = match filter {
        Filter::All => return Ok(None),
        Filter::Sql(sql) => return Ok(Some(format!("({sql})"))),
        Filter::Conditions(c) => c,
    };
    let mut parts = Vec::new();
    for (column, condition) in conditions {
        if !has_column(column) {
            if wildcard {
                continue;
            }
            return Err(ColumnError::NoColumn {
                clause: "where",
                column: column.clone(),
            });
        }
        parts.extend(condition_sql(column, condition));
    }
    Ok((!parts.is_empty()).then(|| parts.join(" AND ")))
}

fn condition_sql(column: &str, condition: &Condition) -> Vec<String> {
    let col = ident(column);
    condition
        .0
        .iter()
        .map(|test| match test {
            Test::Compare(cmp, value) => format!("{col} {} {}", cmp.sql(), value_sql(value)),
            Test::Null(true) => format!("{col} IS NULL"),
            Test::Null(false) => format!("{col} IS NOT NULL"),
            Test::In(values) => {
                let with_null = values.contains(&Scalar::Null);
                let listed: Vec<String> = values
                    .iter()
                    .filter(|v| **v != Scalar::Null)
                    .map(value_sql)
                    .collect();
                match (listed.is_empty(), with_null) {
                    // An empty list matches nothing (pg-xmat matched everything).
                    (true, false) => "false".to_string(),
                    (true, true) => format!("{col} IS NULL"),
                    (false, false) => format!("{col} IN ({})", listed.join(", ")),
                    (false, true) => {
                        format!("({col} IN ({}) OR {col} IS NULL)", listed.join(", "))
                    }
                }
            }
        })
        .collect()
}

fn value_sql(value: &Scalar) -> String {
    match value {
        Scalar::Text(s) | Scalar::Number(s) => literal(s),
        Scalar::Bool(b) => b.to_string(),
        Scalar::Null => "NULL".to_string(),
    }
}

/// `[WITH ...] SELECT cols FROM [ONLY] source [WHERE ...]`. `only` keeps
/// rows of child tables (table inheritance) out; partitioned tables need it off.
pub fn select_statement(
    with: Option<&str>,
    projection: &[Projected],
    from: &str,
    only: bool,
    filter: Option<&str>,
) -> String {
    let list: Vec<String> = projection
        .iter()
        .map(|p| match &p.expr {
            Some(e) => format!("{e} AS {}", ident(&p.name)),
            None => ident(&p.name),
        })
        .collect();
    let mut sql = with.map(|w| format!("{w} ")).unwrap_or_default();
    sql += &format!(
        "SELECT {} FROM {}{from}",
        list.join(", "),
        if only { "ONLY " } else { "" }
    );
    if let Some(w) = filter {
        sql += " WHERE ";
        sql += w;
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::super::jobs::Cmp;
    use super::*;

    fn cols() -> Vec<SourceColumn<'static>> {
        ["id", "email", "we\"ird", "total"]
            .iter()
            .map(|n| SourceColumn {
                name: n,
                generated: *n == "total",
            })
            .collect()
    }

    fn cond(tests: Vec<Test>) -> Condition {
        Condition(tests)
    }

    #[test]
    fn every_where_form() {
        let f = Filter::Conditions(vec![
            (
                "email".into(),
                cond(vec![Test::Compare(Cmp::Eq, Scalar::Text("O'Brien".into()))]),
            ),
            (
                "id".into(),
                cond(vec![Test::In(vec![
                    Scalar::Number("1".into()),
                    Scalar::Null,
                ])]),
            ),
            (
                "id".into(),
                cond(vec![
                    Test::Compare(Cmp::Gte, Scalar::Number("1".into())),
                    Test::Compare(Cmp::Lt, Scalar::Number("9".into())),
                ]),
            ),
            (
                "we\"ird".into(),
                cond(vec![Test::Compare(Cmp::Eq, Scalar::Bool(false))]),
            ),
            ("email".into(), cond(vec![Test::Null(false)])),
            ("id".into(), cond(vec![Test::In(vec![])])),
        ]);
        let has = |c: &str| cols().iter().any(|x| x.name == c);
        assert_eq!(
            where_sql(&f, has, false).unwrap().unwrap(),
            "\"email\" = 'O''Brien' AND (\"id\" IN ('1') OR \"id\" IS NULL) AND \"id\" >= '1' \
             AND \"id\" < '9' AND \"we\"\"ird\" = false AND \"email\" IS NOT NULL AND false"
        );
    }

    #[test]
    fn wildcard_where_skips_tables_without_the_column() {
        let f = Filter::Conditions(vec![(
            "tenant_id".into(),
            cond(vec![Test::Compare(Cmp::Eq, Scalar::Number("7".into()))]),
        )]);
        assert_eq!(where_sql(&f, |_| false, true).unwrap(), None);
        assert_eq!(
            where_sql(&f, |_| false, false).unwrap_err().to_string(),
            "where: there is no column `tenant_id`"
        );
        assert_eq!(
            where_sql(&f, |_| true, true).unwrap().as_deref(),
            Some("\"tenant_id\" = '7'")
        );
    }

    #[test]
    fn select_replaces_omits_and_keeps_order() {
        let mut sel = Select {
            items: vec![
                (
                    "email".to_string(),
                    SelectItem::Expr("lower({column_name})".into()),
                ),
                ("we\"ird".to_string(), SelectItem::Omit),
                ("nope".to_string(), SelectItem::Keep),
            ],
            others: Others::Copied,
        };
        assert_eq!(
            projection(&cols(), &sel, false).unwrap_err(),
            ColumnError::NoColumn {
                clause: "select",
                column: "nope".into()
            }
        );
        let p = projection(&cols(), &sel, true).unwrap();
        assert_eq!(
            select_statement(None, &p, "\"s\".\"t\"", true, Some("x")),
            "SELECT \"id\", lower(\"email\") AS \"email\" FROM ONLY \"s\".\"t\" WHERE x"
        );
        // pg-xmat without "*": only the named columns.
        sel.others = Others::Left;
        let p = projection(&cols(), &sel, true).unwrap();
        assert_eq!(
            select_statement(None, &p, "\"s\".\"t\"", true, None),
            "SELECT lower(\"email\") AS \"email\" FROM ONLY \"s\".\"t\""
        );
        let gen_sel = Select {
            items: vec![("total".to_string(), SelectItem::Expr("1".into()))],
            others: Others::Copied,
        };
        assert_eq!(
            projection(&cols(), &gen_sel, false).unwrap_err(),
            ColumnError::Generated("total".into())
        );
    }
}
