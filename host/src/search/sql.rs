//! From a checked request to one SQL statement and its bind parameters.
//!
//! Every value from the request — names of properties included — is a bind
//! parameter; the SQL text is made only of fixed fragments and `$n`
//! placeholders. Parameters are bound as `text`, `float8`, `bool`, `bigint` or
//! `text[]` and cast in SQL, so their types never depend on inference.
//!
//! Comparisons are typed by the literal: `eo:cloud_cover < 10` compares
//! numbers, and items whose property is missing or not a number never match
//! (SQL NULL). A property compared with a property compares the jsonb values.

use tokio_postgres::types::ToSql;

use super::SearchError;
use super::cql2::{Arg, Expr, Operand, Property, TemporalOp};
use super::datetime::{Instant, Interval};
use super::geom::Bbox;
use super::paging;
use super::request::{Direction, SearchRequest, SortBy};

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
}

/// Writes the statement for a request.
pub fn build(req: &SearchRequest) -> Result<SqlQuery, SearchError> {
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
    if let Some(token) = &req.token {
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

/// The request's order (newest first by default) made total with `collection, id`.
pub fn sort_keys(sortby: &[SortBy]) -> Vec<SortBy> {
    let mut keys = if sortby.is_empty() {
        vec![SortBy {
            property: Property::Datetime,
            direction: Direction::Desc,
        }]
    } else {
        sortby.to_vec()
    };
    for p in [Property::Collection, Property::Id] {
        if !keys.iter().any(|k| k.property == p) {
            keys.push(SortBy {
                property: p,
                direction: Direction::Asc,
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
    Json,
}

/// The type an operand is compared as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Number,
    Bool,
    Timestamp,
    Date,
    Geometry,
    Interval,
    /// An item property: takes the type of what it is compared with.
    Json,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Text => "a string",
            Kind::Number => "a number",
            Kind::Bool => "a boolean",
            Kind::Timestamp => "a timestamp",
            Kind::Date => "a date",
            Kind::Geometry => "a geometry",
            Kind::Interval => "an interval",
            Kind::Json => "a property",
        }
    }
}

fn kind_of(arg: &Arg) -> Kind {
    match &arg.value {
        Operand::Property(p) => match p {
            Property::Id | Property::Collection => Kind::Text,
            Property::Geometry => Kind::Geometry,
            Property::Datetime | Property::StartDatetime | Property::EndDatetime => Kind::Timestamp,
            Property::Json(_) => Kind::Json,
        },
        Operand::Text(_) => Kind::Text,
        Operand::Number(_) => Kind::Number,
        Operand::Bool(_) => Kind::Bool,
        Operand::Timestamp(_) => Kind::Timestamp,
        Operand::Date(..) => Kind::Date,
        Operand::Interval(_) => Kind::Interval,
        Operand::Geometry(_) | Operand::Bbox(_) => Kind::Geometry,
    }
}

/// The type shared by the operands of a comparison, `in` or `between`.
fn common_kind(args: &[&Arg], op: &str) -> Result<Kind, SearchError> {
    // The kind so far, and whether it came only from string literals (which
    // may still turn out to be times).
    let mut found: Option<(Kind, bool)> = None;
    for arg in args {
        let k = kind_of(arg);
        if matches!(k, Kind::Geometry | Kind::Interval) {
            return Err(SearchError::new(
                &arg.path,
                format!(
                    "'{op}' cannot take {}; use s_intersects or t_intersects",
                    k.describe()
                ),
            ));
        }
        let literal = matches!(arg.value, Operand::Text(_));
        found = match (found, k) {
            (_, Kind::Json) => found,
            (None, k) => Some((k, literal)),
            (Some((f, lit)), k) if f == k => Some((f, lit && literal)),
            (Some((Kind::Timestamp | Kind::Date, _)), Kind::Timestamp | Kind::Date) => {
                Some((Kind::Date, false))
            }
            // A string literal compared with a time is read as a time (checked when written).
            (Some((f @ (Kind::Timestamp | Kind::Date), _)), Kind::Text) if literal => {
                Some((f, false))
            }
            (Some((Kind::Text, true)), k @ (Kind::Timestamp | Kind::Date)) => Some((k, false)),
            (Some((f, _)), k) => {
                return Err(SearchError::new(
                    &arg.path,
                    format!(
                        "'{op}' cannot compare {} with {}",
                        k.describe(),
                        f.describe()
                    ),
                ));
            }
        };
    }
    Ok(found.map_or(Kind::Json, |(k, _)| k))
}

#[derive(Default)]
struct Builder {
    params: Vec<Param>,
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
                let kind = common_kind(&[left, right], op.sql())?;
                let (l, r) = (self.value(left, kind)?, self.value(right, kind)?);
                format!("({l} {} {r})", op.sql())
            }
            Expr::In { arg, list } => {
                let mut all: Vec<&Arg> = vec![arg];
                all.extend(list);
                let kind = common_kind(&all, "in")?;
                let v = self.value(arg, kind)?;
                let items = list
                    .iter()
                    .map(|a| self.value(a, kind))
                    .collect::<Result<Vec<_>, _>>()?;
                format!("({v} IN ({}))", items.join(", "))
            }
            Expr::Between { arg, low, high } => {
                let kind = common_kind(&[arg, low, high], "between")?;
                let v = self.value(arg, kind)?;
                let (lo, hi) = (self.value(low, kind)?, self.value(high, kind)?);
                format!("({v} BETWEEN {lo} AND {hi})")
            }
            Expr::Like { arg, pattern } => {
                for a in [arg, pattern] {
                    if !matches!(kind_of(a), Kind::Text | Kind::Json) {
                        return Err(SearchError::new(
                            &a.path,
                            format!("'like' needs strings, got {}", kind_of(a).describe()),
                        ));
                    }
                }
                let (v, p) = (
                    self.value(arg, Kind::Text)?,
                    self.value(pattern, Kind::Text)?,
                );
                format!("({v} LIKE {p})")
            }
            Expr::IsNull(arg) => match &arg.value {
                Operand::Property(Property::Json(name)) => {
                    let j = self.json_property(name);
                    format!("({j} IS NULL OR jsonb_typeof({j}) = 'null')")
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
                let (l, r) = (self.geometry(left)?, self.geometry(right)?);
                format!("{}({l}, {r})", op.function())
            }
            Expr::Temporal { op, left, right } => {
                let (l0, l1) = self.time_span(left)?;
                let (r0, r1) = self.time_span(right)?;
                match op {
                    TemporalOp::Intersects => format!("({l0} <= {r1} AND {l1} >= {r0})"),
                    TemporalOp::Disjoint => format!("({l1} < {r0} OR {l0} > {r1})"),
                    TemporalOp::Before => format!("({l1} < {r0})"),
                    TemporalOp::After => format!("({l0} > {r1})"),
                    TemporalOp::Equals => format!("({l0} = {r0} AND {l1} = {r1})"),
                }
            }
        })
    }

    /// An operand as SQL of the given kind.
    fn value(&mut self, arg: &Arg, kind: Kind) -> Result<String, SearchError> {
        Ok(match (&arg.value, kind) {
            (Operand::Property(Property::Json(name)), _) => {
                let j = self.json_property(name);
                let string = format!("jsonb_typeof({j}) = 'string'");
                let ts = format!(
                    "CASE WHEN {string} AND ({j} #>> '{{}}') ~ '{TIMESTAMP_RE}' THEN ({j} #>> '{{}}')::timestamptz END"
                );
                match kind {
                    Kind::Json => j,
                    Kind::Text => format!("(CASE WHEN {string} THEN {j} #>> '{{}}' END)"),
                    Kind::Number => {
                        format!("(CASE WHEN jsonb_typeof({j}) = 'number' THEN {j}::numeric END)")
                    }
                    Kind::Bool => {
                        format!("(CASE WHEN jsonb_typeof({j}) = 'boolean' THEN {j}::boolean END)")
                    }
                    Kind::Timestamp => format!("({ts})"),
                    Kind::Date => format!("(({ts}) AT TIME ZONE 'UTC')::date"),
                    Kind::Geometry | Kind::Interval => unreachable!("rejected by common_kind"),
                }
            }
            (Operand::Property(p), Kind::Date) => {
                format!("({} AT TIME ZONE 'UTC')::date", column(p))
            }
            (Operand::Property(p), _) => column(p).to_string(),
            (Operand::Text(s), Kind::Text) => {
                let p = self.bind(s.clone());
                format!("{p}::text")
            }
            (Operand::Text(s), Kind::Timestamp) => self.timestamp(&Instant::parse(s, &arg.path)?),
            (Operand::Text(s), Kind::Date) => {
                let t = if s.len() == 10 {
                    Instant::day(s, &arg.path)?.0
                } else {
                    Instant::parse(s, &arg.path)?
                };
                format!("({} AT TIME ZONE 'UTC')::date", self.timestamp(&t))
            }
            (Operand::Number(n), _) => {
                let p = self.bind(n.to_string());
                format!("{p}::text::numeric")
            }
            (Operand::Bool(v), _) => {
                let p = self.bind(*v);
                format!("{p}::boolean")
            }
            (Operand::Timestamp(t), Kind::Date) | (Operand::Date(t, _), _) => {
                format!("({} AT TIME ZONE 'UTC')::date", self.timestamp(t))
            }
            (Operand::Timestamp(t), _) => self.timestamp(t),
            (other, _) => unreachable!("common_kind admits no {other:?} as {kind:?}"),
        })
    }

    fn geometry(&mut self, arg: &Arg) -> Result<String, SearchError> {
        Ok(match &arg.value {
            Operand::Property(Property::Geometry) => "geometry".to_string(),
            Operand::Geometry(g) => self.geojson(g),
            Operand::Bbox(b) => self.bbox(b),
            Operand::Property(_) => {
                return Err(SearchError::new(
                    &arg.path,
                    "only the \"geometry\" property is spatial".to_string(),
                ));
            }
            _ => {
                return Err(SearchError::new(
                    &arg.path,
                    format!("expected a geometry, got {}", kind_of(arg).describe()),
                ));
            }
        })
    }

    /// An operand as a time span `[lo, hi]`; an item's `datetime` is its start/end interval.
    fn time_span(&mut self, arg: &Arg) -> Result<(String, String), SearchError> {
        Ok(match &arg.value {
            Operand::Property(Property::Datetime) => {
                ("start_datetime".into(), "end_datetime".into())
            }
            Operand::Property(p @ (Property::StartDatetime | Property::EndDatetime)) => {
                (column(p).into(), column(p).into())
            }
            Operand::Property(Property::Json(_)) => {
                let t = self.value(arg, Kind::Timestamp)?;
                (t.clone(), t)
            }
            Operand::Timestamp(t) => {
                let p = self.timestamp(t);
                (p.clone(), p)
            }
            Operand::Text(s) => {
                let p = self.timestamp(&Instant::parse(s, &arg.path)?);
                (p.clone(), p)
            }
            Operand::Date(a, b) => (self.timestamp(a), self.timestamp(b)),
            Operand::Interval(i) => self.interval(i),
            _ => {
                return Err(SearchError::new(
                    &arg.path,
                    format!("expected a time, got {}", kind_of(arg).describe()),
                ));
            }
        })
    }

    fn key(&mut self, key: &SortBy) -> KeyExpr {
        match &key.property {
            Property::Json(name) => {
                let j = self.json_property(name);
                KeyExpr {
                    text: format!("{j}::text"),
                    order: j,
                    kind: KeyKind::Json,
                }
            }
            p @ (Property::Datetime | Property::StartDatetime | Property::EndDatetime) => {
                // `datetime` is NULL for items with a start/end interval; sorting by it
                // sorts by the start, which equals `datetime` for the others.
                let col = match p {
                    Property::Datetime => "start_datetime",
                    p => column(p),
                };
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
                        KeyKind::Json => format!("{p}::text::jsonb"),
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

fn column(p: &Property) -> &'static str {
    match p {
        Property::Id => "id",
        Property::Collection => "collection",
        Property::Geometry => "geometry",
        Property::Datetime => "datetime",
        Property::StartDatetime => "start_datetime",
        Property::EndDatetime => "end_datetime",
        Property::Json(_) => unreachable!("JSON properties are not columns"),
    }
}
