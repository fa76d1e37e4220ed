//! STAC helpers: RFC 3339 times, intervals and bounding boxes of items.

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

use crate::{Item, JsonObject};

/// An instant: whole seconds since 1970-01-01T00:00:00Z and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Seconds since the Unix epoch (negative before 1970).
    pub secs: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

impl Timestamp {
    /// Parses an RFC 3339 date-time, e.g. `2020-01-31T12:00:00.5+01:00`, by
    /// the rule the host reads item times and search requests with
    /// (`T`, `t` or a space between date and time, `Z` or an offset); the
    /// fraction is rounded to the microsecond as PostgreSQL stores it, so a
    /// plugin compares exactly the instants the database will hold.
    pub fn parse(s: &str) -> Result<Timestamp, String> {
        rfc3339::parse(s)
            .map(Timestamp::from_micros)
            .map_err(|why| format!("`{s}` is not an RFC 3339 date-time ({why})"))
    }

    /// Midnight UTC at the start of `YYYY-MM-DD`.
    pub fn parse_date(s: &str) -> Result<Timestamp, String> {
        rfc3339::parse_date(s)
            .map(|days| Timestamp {
                secs: days * 86_400,
                nanos: 0,
            })
            .map_err(|_| format!("`{s}` is not a date (YYYY-MM-DD)"))
    }

    fn from_micros(micros: i64) -> Timestamp {
        Timestamp {
            secs: micros.div_euclid(1_000_000),
            nanos: (micros.rem_euclid(1_000_000) * 1_000) as u32,
        }
    }
}

/// A closed time interval; `None` ends are open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// The first instant included, or open.
    pub start: Option<Timestamp>,
    /// The last instant included, or open.
    pub end: Option<Timestamp>,
}

impl Interval {
    /// Parses `START/END` (each RFC 3339, or `..` / empty for open) or a single
    /// instant, as in the STAC API's `datetime` parameter. A plain date
    /// (`2020-01-31`) is also accepted: as a start it means the beginning of
    /// that day (UTC), as an end its last instant, alone the whole day.
    pub fn parse(s: &str) -> Result<Interval, String> {
        let bound = |part: &str, end: bool| -> Result<Option<Timestamp>, String> {
            let part = part.trim();
            if part.is_empty() || part == ".." {
                Ok(None)
            } else if part.len() == 10 {
                let day = Timestamp::parse_date(part)?;
                Ok(Some(if end { end_of_day(day) } else { day }))
            } else {
                Timestamp::parse(part).map(Some)
            }
        };
        let iv = match s.split_once('/') {
            Some((a, b)) => Interval {
                start: bound(a, false)?,
                end: bound(b, true)?,
            },
            None if s.trim().is_empty() || s.trim() == ".." => {
                return Err("an interval needs at least one end".into());
            }
            None => Interval {
                start: bound(s, false)?,
                end: bound(s, true)?,
            },
        };
        match (iv.start, iv.end) {
            (Some(a), Some(b)) if a > b => Err(format!("interval `{s}` ends before it starts")),
            _ => Ok(iv),
        }
    }

    /// Whether `[start, end]` shares at least one instant with this interval.
    pub fn overlaps(&self, start: Timestamp, end: Timestamp) -> bool {
        self.start.is_none_or(|s| end >= s) && self.end.is_none_or(|e| start <= e)
    }
}

fn end_of_day(day: Timestamp) -> Timestamp {
    Timestamp {
        secs: day.secs + 86_399,
        nanos: 999_999_999,
    }
}

/// The time span of an item: `start_datetime`/`end_datetime` from its
/// properties when given, else `datetime` as a single instant; `None` when it
/// has neither (e.g. `datetime: null` without a range).
pub fn item_interval(item: &Item) -> Result<Option<(Timestamp, Timestamp)>, String> {
    match item.properties()? {
        Some(props) => properties_interval(&props),
        None => Ok(None),
    }
}

/// As [`item_interval`], from an item's already parsed `properties`.
pub fn properties_interval(props: &JsonObject) -> Result<Option<(Timestamp, Timestamp)>, String> {
    let time = |key: &str| -> Result<Option<Timestamp>, String> {
        match props.get_as::<Option<&str>>(key) {
            Ok(Some(Some(s))) => Timestamp::parse(s)
                .map(Some)
                .map_err(|e| format!("properties.{key}: {e}")),
            Ok(_) => Ok(None),
            // A string with escapes cannot be borrowed; no valid time has one.
            Err(_) => Err(format!("properties.{key} is not a date-time string")),
        }
    };
    let datetime = time("datetime")?;
    let start = time("start_datetime")?.or(datetime);
    let end = time("end_datetime")?.or(datetime);
    Ok(match (start, end) {
        (Some(s), Some(e)) => Some((s, e)),
        (Some(t), None) | (None, Some(t)) => Some((t, t)),
        (None, None) => None,
    })
}

/// A 2D bounding box in longitude / latitude order. `west > east` means the
/// box crosses the antimeridian, as STAC allows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bbox {
    /// Minimum x (longitude).
    pub west: f64,
    /// Minimum y (latitude).
    pub south: f64,
    /// Maximum x (longitude).
    pub east: f64,
    /// Maximum y (latitude).
    pub north: f64,
}

impl Bbox {
    /// From 4 numbers (`minx, miny, maxx, maxy`) or 6 (with z, which is ignored).
    pub fn from_slice(v: &[f64]) -> Result<Bbox, String> {
        let (w, s, e, n) = match *v {
            [w, s, e, n] => (w, s, e, n),
            [w, s, _, e, n, _] => (w, s, e, n),
            _ => return Err(format!("a bbox has 4 or 6 numbers, not {}", v.len())),
        };
        if v.iter().any(|x| !x.is_finite()) || s > n {
            return Err(format!("bbox {v:?} is not a valid box"));
        }
        Ok(Bbox {
            west: w,
            south: s,
            east: e,
            north: n,
        })
    }

    /// Parses `minx,miny,maxx,maxy` (or 6 numbers).
    pub fn parse(s: &str) -> Result<Bbox, String> {
        let v: Result<Vec<f64>, _> = s.split(',').map(|x| x.trim().parse::<f64>()).collect();
        let v = v.map_err(|_| format!("bbox `{s}` is not a list of numbers"))?;
        Bbox::from_slice(&v)
    }

    /// Whether the two boxes share at least one point (edges count).
    pub fn intersects(&self, other: &Bbox) -> bool {
        let lat = self.south <= other.north && other.south <= self.north;
        lat && self.lon_ranges().into_iter().flatten().any(|(w, e)| {
            other
                .lon_ranges()
                .into_iter()
                .flatten()
                .any(|(ow, oe)| w <= oe && ow <= e)
        })
    }

    fn lon_ranges(&self) -> [Option<(f64, f64)>; 2] {
        if self.west <= self.east {
            [Some((self.west, self.east)), None]
        } else {
            [Some((self.west, 180.0)), Some((-180.0, self.east))]
        }
    }
}

impl fmt::Display for Bbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{},{},{},{}",
            self.west, self.south, self.east, self.north
        )
    }
}

/// The bounding box of a GeoJSON geometry's coordinates; `None` for a
/// geometry without positions.
pub fn geometry_bbox(geometry: &Value) -> Option<Bbox> {
    fn walk(v: &Value, b: &mut Option<Bbox>) {
        let Value::Array(a) = v else { return };
        if let [Value::Number(x), Value::Number(y), ..] = a.as_slice() {
            let (Some(x), Some(y)) = (x.as_f64(), y.as_f64()) else {
                return;
            };
            let bb = b.get_or_insert(Bbox {
                west: x,
                south: y,
                east: x,
                north: y,
            });
            bb.west = bb.west.min(x);
            bb.east = bb.east.max(x);
            bb.south = bb.south.min(y);
            bb.north = bb.north.max(y);
        } else {
            a.iter().for_each(|c| walk(c, b));
        }
    }
    let mut b = None;
    if let Some(coords) = geometry.get("coordinates") {
        walk(coords, &mut b);
    }
    for g in geometry
        .get("geometries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(gb) = geometry_bbox(g) {
            let bb = b.get_or_insert(gb);
            bb.west = bb.west.min(gb.west);
            bb.east = bb.east.max(gb.east);
            bb.south = bb.south.min(gb.south);
            bb.north = bb.north.max(gb.north);
        }
    }
    b
}

/// The item's `bbox`, or the box of its `geometry` when it has none; `None`
/// when it has neither (null geometry).
pub fn item_bbox(item: &Item) -> Result<Option<Bbox>, String> {
    if let Some(v) = item.get_as::<Option<Vec<f64>>>("bbox")?.flatten() {
        return Bbox::from_slice(&v).map(Some);
    }
    Ok(item.get("geometry").as_ref().and_then(geometry_bbox))
}

/// Points a link's `href` at collection `new` instead of `old`, if it points
/// at `old`; `None` if it does not (or `rel` is not one this applies to).
///
/// - `collection` and `parent` links: the collection is the last path segment
///   (`.../collections/OLD`, trailing `/` allowed) or, when the last one is a
///   `*.json` file, the one before (`../OLD/collection.json`).
/// - `self` links: the segment after `collections` when followed by `items`
///   (`.../collections/OLD/items/ID`).
///
/// Query and fragment are kept; segments compare percent-decoded and `new`
/// is percent-encoded as a path segment needs.
pub fn relink_collection(href: &str, rel: &str, old: &str, new: &str) -> Option<String> {
    if !matches!(rel, "collection" | "parent" | "self") {
        return None; // before splitting the href: most links are none of these
    }
    let split = href.find(['?', '#']).unwrap_or(href.len());
    let (path, tail) = href.split_at(split);
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let segs: Vec<&str> = trimmed.split('/').collect();
    let n = segs.len();
    let at = match rel {
        "collection" | "parent" if n >= 2 && segs[n - 1].ends_with(".json") => n - 2,
        "collection" | "parent" => n - 1,
        "self" => (1..n.saturating_sub(2))
            .find(|&i| segs[i - 1] == "collections" && segs[i + 1] == "items")?,
        _ => return None,
    };
    if percent_decode(segs[at]) != old {
        return None;
    }
    let mut out = String::with_capacity(href.len() + new.len());
    for (i, s) in segs.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        if i == at {
            percent_encode_segment(new, &mut out);
        } else {
            out.push_str(s);
        }
    }
    out.push_str(&path[trimmed.len()..]);
    out.push_str(tail);
    Some(out)
}

fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn percent_encode_segment(s: &str, out: &mut String) {
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn rfc3339() {
        assert_eq!(ts("1970-01-01T00:00:00Z"), Timestamp { secs: 0, nanos: 0 });
        assert_eq!(ts("2000-03-01T00:00:00Z").secs, 951_868_800);
        assert_eq!(
            ts("1969-12-31T23:59:59.25z"),
            Timestamp {
                secs: -1,
                nanos: 250_000_000
            }
        );
        assert_eq!(ts("2020-06-01T12:00:00+02:00"), ts("2020-06-01T10:00:00Z"));
        assert_eq!(
            ts("2020-06-01 09:30:00-00:30"),
            ts("2020-06-01T10:00:00.000000000Z")
        );
        // Rounded to the microsecond as the database stores it (the host's rule).
        assert_eq!(ts("2024-02-29T00:00:00.123456789123Z").nanos, 123_457_000);
        assert_eq!(ts("2024-02-29T00:00:00.0000005Z").nanos, 0);
        for bad in [
            "2020-02-30T00:00:00Z",
            "2021-02-29T00:00:00Z",
            "2020-01-01T24:00:00Z",
            "2020-01-01T00:00:00",
            "2020-01-01T00:00:00.Z",
            "2020-01-01",
            "2020-1-01T00:00:00Z",
            "2020-01-01T00:00:00+0100",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn intervals() {
        let iv = Interval::parse("2020-01-01T00:00:00Z/..").unwrap();
        assert_eq!(iv.end, None);
        assert!(iv.overlaps(ts("2019-01-01T00:00:00Z"), ts("2020-01-01T00:00:00Z")));
        assert!(!iv.overlaps(ts("2019-01-01T00:00:00Z"), ts("2019-12-31T23:59:59Z")));
        let day = Interval::parse("2020-01-31").unwrap();
        assert!(day.overlaps(ts("2020-01-31T23:59:59.9Z"), ts("2020-01-31T23:59:59.9Z")));
        assert!(!day.overlaps(ts("2020-02-01T00:00:00Z"), ts("2020-02-01T00:00:00Z")));
        let range = Interval::parse("/2020-01-31").unwrap();
        assert_eq!(range.start, None);
        assert_eq!(
            range.end,
            Some(end_of_day(Timestamp::parse_date("2020-01-31").unwrap()))
        );
        assert!(Interval::parse("..").is_err());
        assert!(Interval::parse("2021-01-01/2020-01-01").is_err());
        assert!(Interval::parse("yesterday/..").is_err());
    }

    #[test]
    fn bboxes() {
        let b = Bbox::parse("0,0,10,10").unwrap();
        assert!(b.intersects(&Bbox::parse("10,10,20,20").unwrap()));
        assert!(!b.intersects(&Bbox::parse("10.1,0,20,10").unwrap()));
        let across = Bbox::parse("170,-10,-170,10").unwrap();
        assert!(across.intersects(&Bbox::parse("-175,0,-172,1").unwrap()));
        assert!(across.intersects(&Bbox::parse("175,0,178,1").unwrap()));
        assert!(!across.intersects(&b));
        assert!(Bbox::parse("1,2,3").is_err());
        assert!(Bbox::parse("0,10,1,0").is_err());
        assert_eq!(
            Bbox::parse("0,1,2,3,4,5").unwrap(),
            Bbox::from_slice(&[0., 1., 3., 4.]).unwrap()
        );
    }

    #[test]
    fn item_helpers() {
        let item = Item::parse(
            json!({"id": "a", "geometry": {"type": "GeometryCollection", "geometries": [
                {"type": "Point", "coordinates": [1, 2]},
                {"type": "Polygon", "coordinates": [[[5, -1], [6, 0], [5, 0], [5, -1]]]}]},
              "properties": {"datetime": null, "start_datetime": "2020-01-01T00:00:00Z",
                             "end_datetime": "2020-12-31T00:00:00Z"}})
            .to_string(),
        )
        .unwrap();
        assert_eq!(
            item_bbox(&item).unwrap(),
            Some(Bbox::parse("1,-1,6,2").unwrap())
        );
        assert_eq!(
            item_interval(&item).unwrap(),
            Some((ts("2020-01-01T00:00:00Z"), ts("2020-12-31T00:00:00Z")))
        );
        let bare =
            Item::parse(r#"{"id":"b","geometry":null,"properties":{"datetime":null}}"#).unwrap();
        assert_eq!(item_bbox(&bare).unwrap(), None);
        assert_eq!(item_interval(&bare).unwrap(), None);
        let bad = Item::parse(r#"{"bbox":[1,2],"properties":{"datetime":"soon"}}"#).unwrap();
        assert!(item_bbox(&bad).is_err());
        assert!(
            item_interval(&bad)
                .unwrap_err()
                .starts_with("properties.datetime")
        );
    }

    #[test]
    fn relinks_collection_hrefs() {
        let r = |href, rel| relink_collection(href, rel, "old", "new id");
        assert_eq!(
            r("https://x/api/collections/old", "collection").unwrap(),
            "https://x/api/collections/new%20id"
        );
        assert_eq!(
            r("https://x/collections/old/?f=json#top", "parent").unwrap(),
            "https://x/collections/new%20id/?f=json#top"
        );
        assert_eq!(
            r("../old/collection.json", "collection").unwrap(),
            "../new%20id/collection.json"
        );
        assert_eq!(
            r("https://x/collections/old/items/a", "self").unwrap(),
            "https://x/collections/new%20id/items/a"
        );
        assert_eq!(
            r("https://x/collections/o%6Cd", "collection").unwrap(),
            "https://x/collections/new%20id"
        );
        assert_eq!(r("https://x/collections/other", "collection"), None);
        assert_eq!(r("https://x/collections/old", "root"), None);
        assert_eq!(r("https://x/old/items/a", "self"), None);
        assert_eq!(r("old", "parent").unwrap(), "new%20id");
    }
}
