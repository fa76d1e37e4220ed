//! From a checked request to one SQL statement over host's schema
//! (`host.items`) and its bind parameters, answering as pgstac answers the
//! same request (see [`super::typing`] for comparisons, and the notes below).
//!
//! Every value from the request — names of properties included — is a bind
//! parameter; the SQL text is made only of fixed fragments and `$n`
//! placeholders. Parameters are bound as `text`, `float8`, `bool`, `bigint` or
//! `text[]` and cast in SQL, so their types never depend on inference.
//!
//! As in pgstac: an item's `datetime` is the start of its range when it has
//! one (`start_datetime`), in comparisons, `isNull`, temporal operators and
//! sorting alike; a property sorts as text; the tie-breakers `collection`
//! and `id` take the direction of the first sort key.

use tokio_postgres::types::ToSql;

use super::cql2::{Arg, Expr, Operand, Property, TemporalOp};
use super::datetime::{Instant, Interval};
use super::geom::Bbox;
use super::paging::{self, Row};
use super::request::{Direction, SearchRequest, SortBy};
use super::typing::{self, Mode};
use super::{Page, SearchError};

/// A bind parameter.
pub type Param = Box<dyn ToSql + Sync + Send>;

/// The table searched.
pub const ITEMS: &str = "host.items";

/// A JSON string that looks like an RFC 3339 date-time (checked before casting, so that
/// other strings are NULL rather than errors).
const TIMESTAMP_RE: &str = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$";

/// A statement ready to run: `SELECT content::text, <sort keys as text>... FROM host.items ...`.
pub struct SqlQuery {
    pub sql: String,
    pub params: Vec<Param>,
    /// The full sort order: the request's, then `collection` and `id` to make it total.
    pub keys: Vec<SortBy>,
    /// Items per page; the statement asks for one more to know if there is a next page.
    pub limit: u32,
}

impl std::fmt::Debug for SqlQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlQuery")
            .field("sql", &self.sql)
            .field("params", &self.params)
            .finish()
    }
}

impl SqlQuery {
    /// The parameters as tokio-postgres takes them.
    pub fn param_refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }

    /// The page the statement's rows make (up to `limit + 1` rows; the extra
    /// one only says that there is a next page).
    pub fn page(&self, mut rows: Vec<Row>) -> Page {
        let limit = self.limit as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_token = match rows.last() {
            Some(last) if more => Some(paging::encode(&self.keys, &last.keys)),
            _ => None,
        };
        Page {
            features: rows.into_iter().map(|r| r.content).collect(),
            next_token,
        }
    }
}

/// Writes the statement for a request (its `token` one of ours).
pub fn build(req: &SearchRequest) -> Result<SqlQuery, SearchError> {
    write(req, true)
}

/// Checks a request as [`build`] would, without its token: what host's
/// schema refuses, every catalog refuses.
pub fn check(req: &SearchRequest) -> Result<(), SearchError> {
    write(req, false).map(|_| ())
}

fn write(req: &SearchRequest, with_token: bool) -> Result<SqlQuery, SearchError> {
    let mut b = Builder::default();
    let mut conds: Vec<String> = Vec::new();
    if !req.collections.is_empty() {
        let p = b.bind(req.collections.clone());
        conds.push(format!("collection = ANY({p}::text[])"));
    }
    if !req.ids.is_empty() {
        let p = b.bind(req.ids.clone());
        conds.push(format!("id = ANY({p}::text[])"));
    }
    if let Some(bbox) = &req.bbox {
        let env = b.bbox(bbox);
        conds.push(format!("ST_Intersects(geometry, {env})"));
    }
    if let Some(geojson) = &req.intersects {
        let g = b.geojson(geojson);
        conds.push(format!("ST_Intersects(geometry, {g})"));
    }
    if let Some(interval) = &req.datetime {
        let (lo, hi) = b.interval(interval);
        conds.push(format!("(start_datetime <= {hi} AND end_datetime >= {lo})"));
    }
    if let Some(filter) = &req.filter {
        conds.push(b.expr(filter)?);
    }

    let keys = sort_keys(&req.sortby);
    let exprs: Vec<KeyExpr> = keys.iter().map(|k| b.key(k)).collect();
    if with_token && let Some(token) = &req.token {
        let after = paging::decode(token, &keys)?;
        conds.push(b.keyset(&keys, &exprs, &after));
    }

    let select: Vec<&str> = exprs.iter().map(|e| e.text.as_str()).collect();
    let order: Vec<String> = keys
        .iter()
        .zip(&exprs)
        .map(|(k, e)| match k.direction {
            Direction::Asc => format!("{} ASC NULLS LAST", e.order),
            Direction::Desc => format!("{} DESC NULLS FIRST", e.order),
        })
        .collect();
    let limit = b.bind(i64::from(req.limit) + 1);
    let sql = format!(
        "SELECT content::text, {} FROM {ITEMS} WHERE {} ORDER BY {} LIMIT {limit}",
        select.join(", "),
        if conds.is_empty() {
            "TRUE".to_string()
        } else {
            conds.join(" AND ")
        },
        order.join(", "),
    );
    Ok(SqlQuery {
        sql,
        params: b.params,
        keys,
        limit: req.limit,
    })
}

/// The request's order (newest first by default) made total with
/// `collection, id`, which take the first key's direction (as in pgstac).
pub fn sort_keys(sortby: &[SortBy]) -> Vec<SortBy> {
    let mut keys = if sortby.is_empty() {
        vec![SortBy {
            property: Property::Datetime,
            direction: Direction::Desc,
        }]
    } else {
        sortby.to_vec()
    };
    let direction = keys[0].direction;
    for p in [Property::Collection, Property::Id] {
        if !keys.iter().any(|k| k.property == p) {
            keys.push(SortBy {
                property: p,
                direction,
            });
        }
    }
    keys
}

/// How a sort key is ordered, shown (as text, for tokens) and compared with a token value.
struct KeyExpr {
    order: String,
    text: String,
    kind: KeyKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Text,
    Timestamp,
}

#[derive(Default)]
struct Builder {
    params: Vec<Param>,
}

/// `to_text` as pgstac defines it: a string's text, a number's or boolean's
/// text, an array's or object's JSON text.
fn to_text(j: &str) -> String {
    format!(
        "(CASE WHEN jsonb_typeof({j}) IN ('array', 'object') THEN {j}::text ELSE {j} ->> 0 END)"
    )
}

impl Builder {
    fn bind<T: ToSql + Sync + Send + 'static>(&mut self, v: T) -> String {
        self.params.push(Box::new(v));
        format!("${}", self.params.len())
    }

    /// `content->'properties'->NAME`, the name bound.
    fn json_property(&mut self, name: &str) -> String {
        let p = self.bind(name.to_string());
        format!("(content->'properties'->({p}::text))")
    }

    fn timestamp(&mut self, t: &Instant) -> String {
        let p = self.bind(t.text.clone());
        format!("{p}::text::timestamptz")
    }

    fn geojson(&mut self, text: &str) -> String {
        let p = self.bind(text.to_string());
        format!("ST_SetSRID(ST_GeomFromGeoJSON({p}::text), 4326)")
    }

    fn bbox(&mut self, bbox: &Bbox) -> String {
        let envs: Vec<String> = bbox
            .envelopes()
            .iter()
            .map(|e| {
                let [a, b, c, d] = e.map(|x| self.bind(x));
                format!("ST_MakeEnvelope({a}::float8, {b}::float8, {c}::float8, {d}::float8, 4326)")
            })
            .collect();
        match envs.as_slice() {
            [one] => one.clone(),
            _ => format!("ST_Collect({})", envs.join(", ")),
        }
    }

    /// An interval's ends, open ends as -infinity/infinity.
    fn interval(&mut self, i: &Interval) -> (String, String) {
        let lo = match &i.start {
            Some(t) => self.timestamp(t),
            None => "'-infinity'::timestamptz".to_string(),
        };
        let hi = match &i.end {
            Some(t) => self.timestamp(t),
            None => "'infinity'::timestamptz".to_string(),
        };
        (lo, hi)
    }

    fn expr(&mut self, e: &Expr) -> Result<String, SearchError> {
        Ok(match e {
            Expr::Literal(true) => "TRUE".to_string(),
            Expr::Literal(false) => "FALSE".to_string(),
            Expr::And(list) | Expr::Or(list) => {
                let sep = if matches!(e, Expr::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let parts = list
                    .iter()
                    .map(|x| self.expr(x))
                    .collect::<Result<Vec<_>, _>>()?;
                format!("({})", parts.join(sep))
            }
            Expr::Not(inner) => format!("(NOT {})", self.expr(inner)?),
            Expr::Compare { op, left, right } => {
                let mode = typing::mode(&[left, right], op.sql())?;
                let (l, r) = (self.value(left, mode), self.value(right, mode));
                format!("({l} {} {r})", op.sql())
            }
            Expr::In { arg, list } => {
                let mut all: Vec<&Arg> = vec![arg];
                all.extend(list);
                let mode = typing::mode(&all, "in")?;
                let v = self.value(arg, mode);
                let items: Vec<String> = list.iter().map(|a| self.value(a, mode)).collect();
                format!("({v} IN ({}))", items.join(", "))
            }
            Expr::Between { arg, low, high } => {
                let mode = typing::mode(&[arg, low, high], "between")?;
                let v = self.value(arg, mode);
                let (lo, hi) = (self.value(low, mode), self.value(high, mode));
                format!("({v} BETWEEN {lo} AND {hi})")
            }
            Expr::Like { arg, pattern } => {
                typing::like(&[arg, pattern])?;
                let (v, p) = (self.value(arg, Mode::Text), self.value(pattern, Mode::Text));
                format!("({v} LIKE {p})")
            }
            Expr::IsNull(arg) => match &arg.value {
                Operand::Property(Property::Json(name)) => {
                    let j = self.json_property(name);
                    format!("({} IS NULL)", to_text(&j))
                }
                Operand::Property(p) => format!("({} IS NULL)", column(p)),
                _ => {
                    return Err(SearchError::new(
                        &arg.path,
                        "'isNull' needs a property".to_string(),
                    ));
                }
            },
            Expr::Spatial { op, left, right } => {
                check_spatial(left, right)?;
                let (l, r) = (self.geometry(left)?, self.geometry(right)?);
                format!("{}({l}, {r})", op.function())
            }
            Expr::Temporal { op, left, right } => {
                let (ll, lh) = self.time_span(left)?;
                let (rl, rh) = self.time_span(right)?;
                format!("({})", temporal(*op, &ll, &lh, &rl, &rh))
            }
        })
    }

    /// An operand as SQL read in `mode` (already checked by [`typing::mode`]).
    fn value(&mut self, arg: &Arg, mode: Mode) -> String {
        match (&arg.value, mode) {
            (Operand::Property(Property::Json(name)), Mode::Number) => {
                // pgstac's to_float: a string that is not a number is an error.
                let j = self.json_property(name);
                format!("(({j} ->> 0)::float8)")
            }
            (Operand::Property(Property::Json(name)), _) => {
                let j = self.json_property(name);
                to_text(&j)
            }
            (Operand::Property(p), _) => column(p).to_string(),
            (Operand::Text(s), Mode::Time) => {
                let t = Instant::parse(s, &arg.path).expect("checked by typing::mode");
                self.timestamp(&t)
            }
            (Operand::Text(s), _) => {
                let p = self.bind(s.clone());
                format!("{p}::text")
            }
            (Operand::Number(n), _) => {
                let p = self.bind(n.to_string());
                format!("{p}::text::float8")
            }
            (Operand::Bool(v), _) => {
                let p = self.bind(v.to_string());
                format!("{p}::text")
            }
            (Operand::Timestamp(t), _) => self.timestamp(t),
            (other, _) => unreachable!("typing::mode admits no {other:?} in {mode:?}"),
        }
    }

    fn geometry(&mut self, arg: &Arg) -> Result<String, SearchError> {
        Ok(match &arg.value {
            Operand::Property(Property::Geometry) => "geometry".to_string(),
            Operand::Geometry(g) => self.geojson(g),
            Operand::Bbox(b) => self.bbox(b),
            _ => unreachable!("checked by check_spatial"),
        })
    }

    /// An operand as a time span `[lo, hi]`: an item's `datetime` is
    /// pgstac's (the start of its range), a date the whole day.
    fn time_span(&mut self, arg: &Arg) -> Result<(String, String), SearchError> {
        Ok(match &arg.value {
            Operand::Property(
                p @ (Property::Datetime | Property::StartDatetime | Property::EndDatetime),
            ) => (column(p).into(), column(p).into()),
            Operand::Property(Property::Json(name)) => {
                let j = self.json_property(name);
                let t = format!(
                    "(CASE WHEN jsonb_typeof({j}) = 'string' AND ({j} #>> '{{}}') ~ '{TIMESTAMP_RE}' \
                     THEN ({j} #>> '{{}}')::timestamptz END)"
                );
                (t.clone(), t)
            }
            Operand::Timestamp(t) => {
                let p = self.timestamp(t);
                (p.clone(), p)
            }
            Operand::Text(s) => match text_time(s, &arg.path)? {
                TextTime::Instant(t) => {
                    let p = self.timestamp(&t);
                    (p.clone(), p)
                }
                TextTime::Span(i) => self.interval(&i),
            },
            Operand::Date(a, b) => (self.timestamp(a), self.timestamp(b)),
            Operand::Interval(i) => self.interval(i),
            Operand::Property(_) => {
                return Err(SearchError::new(
                    &arg.path,
                    "only datetime, start_datetime, end_datetime and item properties are times"
                        .to_string(),
                ));
            }
            _ => {
                return Err(SearchError::new(
                    &arg.path,
                    format!("expected a time, got {}", typing::describe(&arg.value)),
                ));
            }
        })
    }

    fn key(&mut self, key: &SortBy) -> KeyExpr {
        match &key.property {
            Property::Json(name) => {
                let j = self.json_property(name);
                let t = to_text(&j);
                KeyExpr {
                    text: t.clone(),
                    order: t,
                    kind: KeyKind::Text,
                }
            }
            p @ (Property::Datetime | Property::StartDatetime | Property::EndDatetime) => {
                let col = column(p);
                KeyExpr {
                    order: col.to_string(),
                    text: format!(
                        "to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
                    ),
                    kind: KeyKind::Timestamp,
                }
            }
            p => KeyExpr {
                order: column(p).to_string(),
                text: column(p).to_string(),
                kind: KeyKind::Text,
            },
        }
    }

    /// Rows strictly after `after` in the order of `keys` (NULLs sort after every value).
    fn keyset(&mut self, keys: &[SortBy], exprs: &[KeyExpr], after: &[Option<String>]) -> String {
        let values: Vec<Option<String>> = exprs
            .iter()
            .zip(after)
            .map(|(e, v)| {
                v.as_ref().map(|v| {
                    let p = self.bind(v.clone());
                    match e.kind {
                        KeyKind::Text => format!("{p}::text"),
                        KeyKind::Timestamp => format!("{p}::text::timestamptz"),
                    }
                })
            })
            .collect();
        let mut ors = Vec::new();
        for i in 0..keys.len() {
            let k = &exprs[i].order;
            let beyond = match (keys[i].direction, &values[i]) {
                (Direction::Asc, Some(v)) => format!("({k} > {v} OR {k} IS NULL)"),
                (Direction::Asc, None) => continue, // nothing sorts after NULL
                (Direction::Desc, Some(v)) => format!("{k} < {v}"),
                (Direction::Desc, None) => format!("{k} IS NOT NULL"),
            };
            let mut ands: Vec<String> = (0..i)
                .map(|j| match &values[j] {
                    Some(v) => format!("{} = {v}", exprs[j].order),
                    None => format!("{} IS NULL", exprs[j].order),
                })
                .collect();
            ands.push(beyond);
            ors.push(format!("({})", ands.join(" AND ")));
        }
        if ors.is_empty() {
            "FALSE".to_string()
        } else {
            format!("({})", ors.join(" OR "))
        }
    }
}

/// A spatial predicate relates the item's geometry and a geometry or bbox.
fn check_spatial(left: &Arg, right: &Arg) -> Result<(), SearchError> {
    let is_item = |a: &Arg| matches!(a.value, Operand::Property(Property::Geometry));
    let is_literal = |a: &Arg| matches!(a.value, Operand::Geometry(_) | Operand::Bbox(_));
    for a in [left, right] {
        if !is_item(a) && !is_literal(a) {
            return Err(SearchError::new(
                &a.path,
                match &a.value {
                    Operand::Property(_) => "only the \"geometry\" property is spatial".to_string(),
                    _ => format!("expected a geometry, got {}", typing::describe(&a.value)),
                },
            ));
        }
    }
    if is_item(left) == is_item(right) {
        return Err(SearchError::new(
            &right.path,
            "a spatial operator relates the item's geometry ({\"property\": \"geometry\"}) \
             and a geometry or bbox"
                .to_string(),
        ));
    }
    Ok(())
}

/// A text operand of a temporal operator: a date is its day, `a/b` an
/// interval, anything else an instant (as pgstac reads it).
enum TextTime {
    Instant(Instant),
    Span(Interval),
}

fn text_time(s: &str, path: &str) -> Result<TextTime, SearchError> {
    if let Some((a, b)) = s.split_once('/') {
        let day = |t: &str, end: bool| -> Result<String, SearchError> {
            Ok(match t.len() {
                10 => {
                    let (first, last) = Instant::day(t, path)?;
                    if end { last.text } else { first.text }
                }
                _ => t.to_string(),
            })
        };
        return Ok(TextTime::Span(Interval::from_ends(
            &day(a, false)?,
            &day(b, true)?,
            path,
        )?));
    }
    if s.len() == 10 {
        let (first, last) = Instant::day(s, path)?;
        return Ok(TextTime::Span(Interval {
            start: Some(first),
            end: Some(last),
        }));
    }
    Instant::parse(s, path).map(TextTime::Instant)
}

/// pgstac's temporal predicates over `[ll, lh]` and `[rl, rh]`.
fn temporal(op: TemporalOp, ll: &str, lh: &str, rl: &str, rh: &str) -> String {
    match op {
        TemporalOp::Before => format!("{lh} < {rl}"),
        TemporalOp::After => format!("{ll} > {rh}"),
        TemporalOp::Meets => format!("{lh} = {rl}"),
        TemporalOp::MetBy => format!("{ll} = {rh}"),
        TemporalOp::Overlaps => format!("{ll} < {rl} AND {lh} > {rl} AND {lh} < {rh}"),
        TemporalOp::OverlappedBy => format!("{ll} > {rl} AND {ll} < {rh} AND {lh} > {rh}"),
        TemporalOp::Starts => format!("{ll} = {rl} AND {lh} < {rh}"),
        TemporalOp::StartedBy => format!("{ll} = {rl} AND {lh} > {rh}"),
        TemporalOp::During => format!("{ll} > {rl} AND {lh} < {rh}"),
        TemporalOp::Contains => format!("{ll} < {rl} AND {lh} > {rh}"),
        TemporalOp::Finishes => format!("{ll} > {rl} AND {lh} = {rh}"),
        TemporalOp::FinishedBy => format!("{ll} < {rl} AND {lh} = {rh}"),
        TemporalOp::Equals => format!("{ll} = {rl} AND {lh} = {rh}"),
        TemporalOp::Disjoint => format!("NOT ({ll} <= {rh} AND {lh} >= {rl})"),
        TemporalOp::Intersects => format!("{ll} <= {rh} AND {lh} >= {rl}"),
    }
}

/// The column of a property; `datetime` is pgstac's, the start of the range.
fn column(p: &Property) -> &'static str {
    match p {
        Property::Id => "id",
        Property::Collection => "collection",
        Property::Geometry => "geometry",
        Property::Datetime | Property::StartDatetime => "start_datetime",
        Property::EndDatetime => "end_datetime",
        Property::Json(_) => unreachable!("JSON properties are not columns"),
    }
}
