//! A row transformer that misbehaves on purpose, for the stream's tests.
//! Every parameter is optional; rows it has no reason to touch pass unchanged.
//!
//! - `reject-on=VALUE`: rejects a row with a field equal to VALUE.
//! - `trap-on=VALUE`: panics on such a row.
//! - `spin-on=VALUE:N`: burns N million iterations on such a row (to hit `--plugin-time`).
//! - `counter=COLUMN`: appends a per-instance call counter to COLUMN
//!   (nondeterministic: the same value gets another output each time).
//! - `mix=COLUMN:OTHER`: appends OTHER's value to COLUMN (output depends on another column).
//! - `upper=COLUMN`: upper-cases COLUMN (deterministic, depends on COLUMN only).

use host_plugin_sdk::{Outcome, Params, Plugin, Row, RowTransformer, Table};

#[derive(Default)]
pub struct RowHostile {
    reject_on: Option<String>,
    trap_on: Option<String>,
    spin_on: Option<(String, u64)>,
    counter: Option<(String, usize)>,
    mix: Option<(String, String, usize, usize)>,
    upper: Option<(String, usize)>,
    calls: u64,
}

impl Plugin for RowHostile {
    fn new(params: &Params) -> Result<Self, String> {
        params.only(&["reject-on", "trap-on", "spin-on", "counter", "mix", "upper"])?;
        let mut p = RowHostile {
            reject_on: params.get("reject-on")?.map(str::to_string),
            trap_on: params.get("trap-on")?.map(str::to_string),
            ..RowHostile::default()
        };
        if let Some(s) = params.get("spin-on")? {
            let (v, n) = s.rsplit_once(':').ok_or("spin-on=VALUE:MILLIONS")?;
            p.spin_on = Some((
                v.to_string(),
                n.parse().map_err(|_| "spin-on: N is a number")?,
            ));
        }
        p.counter = params.get("counter")?.map(|c| (c.to_string(), 0));
        if let Some(m) = params.get("mix")? {
            let (a, b) = m.split_once(':').ok_or("mix=COLUMN:OTHER")?;
            p.mix = Some((a.to_string(), b.to_string(), 0, 0));
        }
        p.upper = params.get("upper")?.map(|c| (c.to_string(), 0));
        Ok(p)
    }
}

impl RowTransformer for RowHostile {
    fn begin_table(&mut self, table: &Table) -> Result<(), String> {
        if let Some((c, i)) = &mut self.counter {
            *i = table.require_column(c)?;
        }
        if let Some((a, b, i, j)) = &mut self.mix {
            *i = table.require_column(a)?;
            *j = table.require_column(b)?;
        }
        if let Some((c, i)) = &mut self.upper {
            *i = table.require_column(c)?;
        }
        Ok(())
    }

    fn transform(&mut self, row: &mut Row<'_>) -> Outcome {
        self.calls += 1;
        let has = |v: &str| row.iter().any(|f| f == Some(v));
        if let Some(v) = &self.reject_on
            && has(v)
        {
            return Outcome::Reject(format!("the row holds `{v}`"));
        }
        if let Some(v) = &self.trap_on
            && has(v)
        {
            panic!("row_hostile trapped on `{v}`");
        }
        if let Some((v, n)) = &self.spin_on
            && has(v)
        {
            let mut x = 0u64;
            for i in 0..n * 1_000_000 {
                x = std::hint::black_box(x.wrapping_add(i));
            }
        }
        if let Some((_, i)) = self.counter
            && let Some(v) = row.get(i)
        {
            let new = format!("{v}-{}", self.calls);
            row.set(i, Some(new));
        }
        if let Some((_, _, i, j)) = self.mix
            && let Some(v) = row.get(i)
        {
            let new = format!("{v}-{}", row.get(j).unwrap_or("null"));
            row.set(i, Some(new));
        }
        if let Some((_, i)) = self.upper
            && let Some(v) = row.get(i)
        {
            let new = v.to_uppercase();
            row.set(i, Some(new));
        }
        Outcome::Keep
    }
}

host_plugin_sdk::export_row_transformer!(RowHostile);
