//! Followed integer keys, tested with the parent's kept keys read once
//! instead of a semi join in the source.
//!
//! With `subset = "follow"`, a child table keeps the rows whose parent row is
//! kept. As SQL ([`super::subset`]) that is an `EXISTS` semi join, which the
//! source answers with a hash join: one random probe into a table of the
//! parent's kept rows per child row, cache and TLB misses on a big parent, and
//! all of it on the child's copy, the longest of the job. For the common key
//! — one integer column — host does it cheaper: before the child's copy it
//! reads the parent's kept keys (one array, in the job's snapshot, so exactly
//! the rows the parent's own copy gets) and keeps them as a bitmap (dense
//! keys: 1M ids in 128 KiB) or a sorted list. Then, in order of preference:
//!
//! - **in the query**: when the set is small as SQL (a bitmap tested with
//!   `get_bit`, or an `= ANY` list, within [`Limits::in_query`]), it goes
//!   into the child's SELECT. The source tests a row with one bit or hash
//!   lookup and sends only the kept rows (an index on the key serves a short
//!   list).
//! - **by host**: else host tests each row of the child's binary COPY stream
//!   as it passes: the source only scans the child, but sends all of it.
//!
//! The key set is bounded ([`Limits::memory`], per key); a parent with more
//! kept keys than that is followed by the semi join instead, as is a child
//! copied as text (plugins, or types that cannot go binary) whose keys do not
//! fit in the query: host does not cut text rows into fields.

use bytes::{Buf, BytesMut};
use serde::Serialize;

use super::sql::{Conn, StatementError};

/// Type OIDs of the keys host can test: `smallint`, `integer`, `bigint`.
pub const INTEGER_TYPES: [u32; 3] = [21, 23, 20];

/// How much of the parent's kept keys host holds, and puts into a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes host may hold for one parent's kept keys; 0: always the semi join.
    pub memory: usize,
    /// Bytes of SQL a key set may take in the child's SELECT; 0: never.
    pub in_query: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory: 64 << 20,
            // A query that size parses in milliseconds, while it still reads
            // as one line in a slow-query log; it holds a bitmap of 4M ids
            // or a list of ~100k.
            in_query: 1 << 20,
        }
    }
}

/// One followed key of a table, tested with its parent's kept keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FollowedKey {
    /// The foreign key's name.
    pub key: String,
    /// The referenced table, and the referencing column.
    pub parent: String,
    pub column: String,
    /// The column's position in the table's COPY rows.
    #[serde(skip)]
    pub field: usize,
    /// The column as the table's SELECT names it (qualified).
    #[serde(skip)]
    pub column_ref: String,
    /// The parent's kept keys, in the job's snapshot.
    pub keys_select: String,
    /// Whether `keys_select` joins.
    #[serde(skip)]
    pub joins: bool,
}

/// A table's rows with some followed keys tested with their kept keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostFollow {
    /// The SELECT without those keys' semi joins.
    pub select: String,
    /// Its WITH list and condition, to which the keys that go into the
    /// query are added once read.
    #[serde(skip)]
    pub with: Option<String>,
    #[serde(skip)]
    pub condition: Option<String>,
    /// Whether they still join (keys that are not followed this way).
    #[serde(skip)]
    pub joins: bool,
    pub keys: Vec<FollowedKey>,
}

/// The parent's kept keys could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading the kept keys of {parent} for {key}: {source}")]
pub struct KeysError {
    pub key: String,
    pub parent: String,
    pub source: StatementError,
}

/// A row of the source's COPY output could not be tested.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("the source's binary COPY output is malformed: {0}")]
    Malformed(&'static str),
    #[error("column {column} is not an integer in the source's COPY output ({len} bytes)")]
    NotInteger { column: String, len: i32 },
}

/// A parent's kept keys.
#[derive(Debug)]
pub enum KeySet {
    /// Bit `k - base` is set for each kept key `k`.
    Bitmap { base: i64, bits: Vec<u64> },
    /// Sparse keys, sorted, without duplicates.
    Sorted(Vec<i64>),
}

impl KeySet {
    /// The set of `keys` (in any order) in at most `budget` bytes, if it fits.
    pub fn new(mut keys: Vec<i64>, budget: usize) -> Option<KeySet> {
        let (Some(&min), Some(&max)) = (keys.iter().min(), keys.iter().max()) else {
            return Some(KeySet::Sorted(Vec::new()));
        };
        let span = (i128::from(max) - i128::from(min)) as u128 + 1;
        let words = span.div_ceil(64);
        // A bitmap when it fits (one load per test), else the list if that fits.
        if words * 8 <= budget as u128 {
            let mut bits = vec![0u64; words as usize];
            for k in keys {
                let i = (k - min) as u64;
                bits[(i / 64) as usize] |= 1 << (i % 64);
            }
            return Some(KeySet::Bitmap { base: min, bits });
        }
        if keys.len().saturating_mul(8) > budget {
            return None;
        }
        keys.sort_unstable();
        keys.dedup();
        Some(KeySet::Sorted(keys))
    }

    pub fn contains(&self, k: i64) -> bool {
        match self {
            KeySet::Bitmap { base, bits } => {
                let Some(i) = k.checked_sub(*base) else {
                    return false;
                };
                let i = i as u64;
                bits.get((i / 64) as usize)
                    .is_some_and(|w| w & (1 << (i % 64)) != 0)
            }
            KeySet::Sorted(keys) => keys.binary_search(&k).is_ok(),
        }
    }

    /// The set as an SQL condition on `column` (NULL, or one of the keys),
    /// with at most `max` bytes of keys: a bitmap in hex or a list, the
    /// shorter.
    pub fn condition(&self, column: &str, max: usize) -> Option<String> {
        match self {
            KeySet::Bitmap { base, bits } => {
                // Bit `k - base` of the bytea is byte (k - base) / 8, bit
                // (k - base) % 8 from the least significant: the words' bytes
                // in little-endian order, up to the last kept key's byte (in
                // the last word, which holds the largest key). Measured before
                // anything is built: a bitmap can be the whole --follow-memory.
                let Some(&last) = bits.last() else {
                    return self.list(column, max);
                };
                let len = (bits.len() - 1) * 8 + 8 - last.leading_zeros() as usize / 8;
                let hex_len = len * 2;
                let list = self.list(column, max.min(hex_len));
                if list.is_some() || hex_len > max {
                    return list;
                }
                let bytes = bits.iter().flat_map(|w| w.to_le_bytes()).take(len);
                let top = len as i64 * 8 - 1;
                let hi = base.saturating_add(top);
                const DIGITS: &[u8; 16] = b"0123456789abcdef";
                let mut hex = String::with_capacity(hex_len);
                for b in bytes {
                    hex.push(DIGITS[usize::from(b >> 4)].into());
                    hex.push(DIGITS[usize::from(b & 15)].into());
                }
                // The CASE keeps get_bit from an out-of-range row whatever
                // order the planner evaluates the AND in; the BETWEEN before
                // it can use an index on the key.
                let range = format!("{column} BETWEEN {base} AND {hi}");
                Some(format!(
                    "({column} IS NULL OR {range} AND CASE WHEN {range} THEN \
                     get_bit(decode('{hex}', 'hex'), ({column} - {base})::integer) = 1 END)"
                ))
            }
            KeySet::Sorted(_) => self.list(column, max),
        }
    }

    /// The set as `column = ANY ('{…}'::bigint[])`, if its keys take at most
    /// `max` bytes.
    fn list(&self, column: &str, max: usize) -> Option<String> {
        use std::fmt::Write;
        let mut sql = format!("({column} IS NULL OR {column} = ANY ('{{");
        let start = sql.len();
        let mut first = true;
        let mut push = |k: i64| {
            if !first {
                sql.push(',');
            }
            first = false;
            let _ = write!(sql, "{k}");
            sql.len() - start <= max
        };
        let fits = match self {
            KeySet::Sorted(keys) => keys.iter().all(|&k| push(k)),
            KeySet::Bitmap { base, bits } => bits.iter().enumerate().all(|(w, &word)| {
                let mut word = word;
                while word != 0 {
                    let i = word.trailing_zeros() as i64;
                    word &= word - 1;
                    if !push(base + w as i64 * 64 + i) {
                        return false;
                    }
                }
                true
            }),
        };
        if !fits {
            return None;
        }
        sql.push_str("}'::bigint[]))");
        Some(sql)
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        match self {
            KeySet::Bitmap { bits, .. } => bits.len() * 8,
            KeySet::Sorted(keys) => keys.len() * 8,
        }
    }
}

/// The source's price for handing a parallel worker's row to the backend,
/// for the next statement of a job that follows keys. A semi join is a hash
/// join over the parent's kept keys: at the default 0.1 the planner runs it
/// in one process; at 0.01 it splits the probing, the bulk of the join,
/// across `max_parallel_workers_per_gather` workers (measured: 2.8 s against
/// 4.9 s for 2M orders following 500k users). A plain scan (keys in the
/// query: one bit per row) gains nothing from workers but the cost of handing
/// each row over (0.3 CPU-s of the source's for 2M orders on two cores), so
/// it gets the server's own price.
pub fn parallel_pricing(joins: bool) -> &'static str {
    match joins {
        true => "SET LOCAL parallel_tuple_cost = 0.01",
        false => "SET LOCAL parallel_tuple_cost TO DEFAULT",
    }
}

/// Reads the parent's kept keys for `key` on `src` (in the job's snapshot):
/// `None` if there are more than `budget` bytes of them as a list and they
/// are too sparse for a bitmap of that size.
pub async fn read_keys(
    src: &Conn,
    key: &FollowedKey,
    budget: usize,
) -> Result<Option<KeySet>, KeysError> {
    // One array, not a row per key (each row is a protocol message, and
    // those cost host more than the keys); at most one more key than fits,
    // so the source stops there and host knows it is over. A NULL parent
    // key (a unique constraint allows it) matches nothing.
    let limit = budget / 8 + 1;
    let sql = format!(
        "SELECT array_agg(k::bigint) FILTER (WHERE k IS NOT NULL), count(*) \
         FROM ({} LIMIT {limit}) AS keys (k)",
        key.keys_select
    );
    let fail = |source: StatementError| KeysError {
        key: key.key.clone(),
        parent: key.parent.clone(),
        source,
    };
    src.exec(parallel_pricing(key.joins)).await.map_err(fail)?;
    let row = src.query_one(&sql, &[]).await.map_err(fail)?;
    let (keys, count): (Option<Vec<i64>>, i64) = (row.get(0), row.get(1));
    if count as u64 >= limit as u64 {
        return Ok(None);
    }
    Ok(KeySet::new(keys.unwrap_or_default(), budget))
}

/// Tests each row of a binary COPY stream against the kept keys of its
/// followed parents, passing the header, the rows whose keys are kept (or
/// NULL: a row that references nothing), and the trailer.
pub struct RowTest {
    rows: Rows,
    sets: Vec<KeySet>,
    /// Rows seen, and rows passed.
    pub seen: u64,
    pub kept: u64,
}

impl RowTest {
    pub fn new(keys: &[FollowedKey], sets: Vec<KeySet>) -> RowTest {
        let fields: Vec<usize> = keys.iter().map(|k| k.field).collect();
        let columns: Vec<&str> = keys.iter().map(|k| k.column.as_str()).collect();
        RowTest {
            rows: Rows::new(&fields, &columns),
            sets,
            seen: 0,
            kept: 0,
        }
    }

    /// Appends what passes of `data` to `out`; a row cut between two
    /// messages is passed with the message that completes it.
    pub fn feed(&mut self, data: &[u8], out: &mut BytesMut) -> Result<(), RowError> {
        let sets = &self.sets;
        let (mut seen, mut kept) = (0u64, 0u64);
        self.rows.feed(data, |piece| match piece {
            Piece::Framing(bytes) => out.extend_from_slice(bytes),
            Piece::Row(values, bytes) => {
                seen += 1;
                let pass = values
                    .iter()
                    .zip(sets)
                    .all(|(v, set)| v.is_none_or(|k| set.contains(k)));
                if pass {
                    kept += 1;
                    out.extend_from_slice(bytes);
                }
            }
        })?;
        self.seen += seen;
        self.kept += kept;
        Ok(())
    }

    /// Checks that the stream ended after its trailer.
    pub fn finish(&self) -> Result<(), RowError> {
        self.rows.finish()
    }
}

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// What [`Rows`] cuts a stream into.
enum Piece<'a> {
    /// The header or the trailer.
    Framing(&'a [u8]),
    /// A row: the fields read, and its bytes.
    Row(&'a [Option<i64>], &'a [u8]),
}

/// Cuts a binary COPY stream (as it arrives, in pieces) into rows and reads
/// integer fields of each.
struct Rows {
    fields: Fields,
    /// Bytes not yet cut into rows.
    carry: BytesMut,
    header: bool,
    trailer: bool,
}

/// The fields read from each row: their positions, their columns (for
/// messages), and the last row's values, in the caller's order.
struct Fields {
    at: Vec<usize>,
    columns: Vec<String>,
    values: Vec<Option<i64>>,
    /// Indexes into the above in the order of the fields in a row (two
    /// keys may read one column).
    by_position: Vec<usize>,
}

impl Rows {
    fn new(fields: &[usize], columns: &[&str]) -> Rows {
        Rows {
            fields: Fields {
                at: fields.to_vec(),
                columns: columns.iter().map(|c| c.to_string()).collect(),
                values: vec![None; fields.len()],
                by_position: {
                    let mut order: Vec<usize> = (0..fields.len()).collect();
                    order.sort_by_key(|&i| fields[i]);
                    order
                },
            },
            carry: BytesMut::new(),
            header: false,
            trailer: false,
        }
    }

    /// Calls `each` with the header, each complete row and the trailer, in
    /// what has arrived so far.
    fn feed(&mut self, data: &[u8], mut each: impl FnMut(Piece<'_>)) -> Result<(), RowError> {
        // The source sends a message per row: rows are cut from the message
        // itself, and only a row cut short waits, copied, for the next one.
        if self.header && self.carry.is_empty() {
            let used = cut_rows(&mut self.fields, &mut self.trailer, data, &mut each)?;
            self.carry.extend_from_slice(&data[used..]);
            return Ok(());
        }
        self.carry.extend_from_slice(data);
        if !self.header {
            if self.carry.len() < SIGNATURE.len() + 8 {
                return Ok(());
            }
            if &self.carry[..SIGNATURE.len()] != SIGNATURE {
                return Err(RowError::Malformed("no COPY signature"));
            }
            let ext = be_i32(&self.carry[SIGNATURE.len() + 4..]);
            let len = SIGNATURE.len()
                + 8
                + usize::try_from(ext)
                    .map_err(|_| RowError::Malformed("a negative header extension length"))?;
            if self.carry.len() < len {
                return Ok(());
            }
            each(Piece::Framing(&self.carry[..len]));
            self.carry.advance(len);
            self.header = true;
        }
        let used = cut_rows(&mut self.fields, &mut self.trailer, &self.carry, &mut each)?;
        self.carry.advance(used);
        Ok(())
    }

    fn finish(&self) -> Result<(), RowError> {
        match (self.trailer, self.carry.is_empty()) {
            (true, true) => Ok(()),
            _ => Err(RowError::Malformed("it ended in the middle of a row")),
        }
    }
}

/// Cuts the complete rows (and the trailer) at the start of `buf`; how
/// many bytes they took.
fn cut_rows(
    fields: &mut Fields,
    trailer: &mut bool,
    buf: &[u8],
    each: &mut impl FnMut(Piece<'_>),
) -> Result<usize, RowError> {
    let mut at = 0;
    while !*trailer {
        let Some(end) = fields.cut(&buf[at..])? else {
            break;
        };
        if end == 2 {
            *trailer = true;
            each(Piece::Framing(&buf[at..at + 2]));
        } else {
            each(Piece::Row(&fields.values, &buf[at..at + end]));
        }
        at += end;
    }
    if *trailer && at < buf.len() {
        return Err(RowError::Malformed("bytes after the trailer"));
    }
    Ok(at)
}

impl Fields {
    /// The length of the row (or trailer: 2) at the start of `buf`, with
    /// its fields read into `values`; `None` if it has not all arrived.
    fn cut(&mut self, buf: &[u8]) -> Result<Option<usize>, RowError> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let n = i16::from_be_bytes([buf[0], buf[1]]);
        if n == -1 {
            return Ok(Some(2));
        }
        let n = usize::try_from(n).map_err(|_| RowError::Malformed("a negative field count"))?;
        let mut at = 2;
        let mut want = 0;
        for f in 0..n {
            if buf.len() < at + 4 {
                return Ok(None);
            }
            let len = be_i32(&buf[at..]);
            at += 4;
            let bytes = match usize::try_from(len) {
                Ok(len) if buf.len() < at + len => return Ok(None),
                Ok(len) => {
                    at += len;
                    Some(&buf[at - len..at])
                }
                Err(_) => None, // -1: NULL
            };
            while let Some(&i) = self.by_position.get(want)
                && self.at[i] == f
            {
                self.values[i] = match bytes {
                    None => None,
                    Some(&[a, b]) => Some(i64::from(i16::from_be_bytes([a, b]))),
                    Some(&[a, b, c, d]) => Some(i64::from(i32::from_be_bytes([a, b, c, d]))),
                    Some(&[a, b, c, d, e, f, g, h]) => {
                        Some(i64::from_be_bytes([a, b, c, d, e, f, g, h]))
                    }
                    Some(_) => {
                        return Err(RowError::NotInteger {
                            column: self.columns[i].clone(),
                            len,
                        });
                    }
                };
                want += 1;
            }
        }
        if want < self.at.len() {
            return Err(RowError::Malformed(
                "a row with fewer fields than the SELECT",
            ));
        }
        Ok(Some(at))
    }
}

fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binary COPY stream of rows of (bigint id, integer ref or NULL, text).
    fn stream(rows: &[(i64, Option<i32>, &str)]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&4i32.to_be_bytes());
        out.extend_from_slice(b"ext!");
        for (id, r, s) in rows {
            out.extend_from_slice(&3i16.to_be_bytes());
            out.extend_from_slice(&8i32.to_be_bytes());
            out.extend_from_slice(&id.to_be_bytes());
            match r {
                Some(r) => {
                    out.extend_from_slice(&4i32.to_be_bytes());
                    out.extend_from_slice(&r.to_be_bytes());
                }
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            }
            out.extend_from_slice(&(s.len() as i32).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    fn key(field: usize) -> FollowedKey {
        FollowedKey {
            key: "k".into(),
            parent: "p".into(),
            column: "ref".into(),
            field,
            column_ref: "\"ref\"".into(),
            keys_select: String::new(),
            joins: false,
        }
    }

    #[test]
    fn rows_pass_whole_whatever_the_pieces() {
        let rows: Vec<(i64, Option<i32>, &str)> = (0..50)
            .map(|i| {
                (
                    i,
                    if i % 7 == 0 {
                        None
                    } else {
                        Some(i as i32 % 10)
                    },
                    "x\ty",
                )
            })
            .collect();
        let input = stream(&rows);
        let kept: Vec<_> = rows
            .iter()
            .filter(|r| r.1.is_none_or(|k| [2, 3, 5].contains(&k)))
            .copied()
            .collect();
        let want = stream(&kept);
        // Every cut of the stream into pieces of 1..=40 bytes gives the same output.
        for piece in 1..=40 {
            let set = KeySet::new(vec![5, 3, 2], 1 << 20).unwrap();
            let mut test = RowTest::new(&[key(1)], vec![set]);
            let mut out = BytesMut::new();
            for chunk in input.chunks(piece) {
                test.feed(chunk, &mut out).unwrap();
            }
            test.finish().unwrap();
            assert_eq!(&out[..], &want[..], "pieces of {piece}");
            assert_eq!((test.seen, test.kept), (50, kept.len() as u64));
        }
    }

    #[test]
    fn keys_on_fields_in_any_order_and_on_one_field_twice_are_each_tested() {
        let rows: Vec<(i64, Option<i32>, &str)> =
            (0..30).map(|i| (i, Some(i as i32), "")).collect();
        let input = stream(&rows);
        // Tested: ref (field 1) in {1..20}, id (field 0) odd, ref again in {5..30}.
        let sets = vec![
            KeySet::new((1..20).collect(), 64).unwrap(),
            KeySet::new((0..30).filter(|i| i % 2 == 1).collect(), 64).unwrap(),
            KeySet::new((5..30).collect(), 64).unwrap(),
        ];
        let mut test = RowTest::new(&[key(1), key(0), key(1)], sets);
        let mut out = BytesMut::new();
        test.feed(&input, &mut out).unwrap();
        test.finish().unwrap();
        let kept: Vec<_> = rows
            .iter()
            .filter(|r| r.0 % 2 == 1 && (5..20).contains(&r.0))
            .copied()
            .collect();
        assert_eq!(&out[..], &stream(&kept)[..]);
    }

    #[test]
    fn a_stream_cut_short_or_not_integer_is_an_error() {
        let input = stream(&[(1, Some(1), "a"), (2, Some(2), "b")]);
        let set = || KeySet::new(vec![1], 64).unwrap();
        let mut test = RowTest::new(&[key(1)], vec![set()]);
        test.feed(&input[..input.len() - 5], &mut BytesMut::new())
            .unwrap();
        assert!(matches!(test.finish(), Err(RowError::Malformed(_))));
        // Field 2 is text: not a key host can test.
        let mut test = RowTest::new(&[key(2)], vec![set()]);
        let e = test.feed(&input, &mut BytesMut::new()).unwrap_err();
        assert!(matches!(e, RowError::NotInteger { len: 1, .. }), "{e}");
        let mut test = RowTest::new(&[key(1)], vec![set()]);
        let e = test
            .feed(b"PGCOPY\n\xff\r\n\x01xxxxxxxx", &mut BytesMut::new())
            .unwrap_err();
        assert!(matches!(e, RowError::Malformed(_)), "{e}");
    }

    #[test]
    fn key_sets_are_bitmaps_when_dense_and_lists_when_sparse_within_the_budget() {
        let dense = KeySet::new((1..=1000).map(|i| i * 2).collect(), 256).unwrap();
        assert!(matches!(dense, KeySet::Bitmap { .. }));
        assert!(dense.contains(2) && dense.contains(2000) && !dense.contains(3));
        assert!(!dense.contains(0) && !dense.contains(2002) && !dense.contains(i64::MIN));
        let sparse = KeySet::new(vec![i64::MAX, i64::MIN, 0, 0, 7], 1024).unwrap();
        assert!(matches!(sparse, KeySet::Sorted(ref k) if k.len() == 4));
        assert!(sparse.contains(i64::MAX) && sparse.contains(i64::MIN) && !sparse.contains(1));
        // Four sparse keys in 16 bytes do not fit.
        assert!(KeySet::new(vec![i64::MAX, i64::MIN, 0, 7], 16).is_none());
        let none = KeySet::new(Vec::new(), 0).unwrap();
        assert!(!none.contains(0));
    }
}
