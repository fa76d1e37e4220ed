//! GeoJSON geometries (RFC 7946) checked and turned into PostGIS EWKB with
//! SRID 4326, along with their bounds (for the bbox check). Building EWKB
//! here saves the server from parsing GeoJSON.
//!
//! The geometry is read from its JSON text as it stands, number by number,
//! into the EWKB: no tree of values is built (one was ten times the size of
//! the text; a 220 MB footprint took gigabytes), so the memory a geometry
//! costs is its EWKB, about the size of its text.
//!
//! Positions must be finite, with longitudes within [-360, 360] (data
//! crossing the antimeridian sometimes runs to 360) and latitudes within
//! [-90, 90]: anything else is not a place on Earth, and would stretch the
//! collection's extent to match.

use serde::Deserialize;
use serde_json::value::RawValue;

/// A checked geometry: its EWKB and the box around its positions.
#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    /// Little-endian EWKB with SRID 4326 (and the Z flag for 3D positions).
    pub ewkb: Vec<u8>,
    /// `[min x, min y, max x, max y]`, or `None` for an empty geometry.
    pub bounds: Option<[f64; 4]>,
    /// Whether positions have a third coordinate.
    pub has_z: bool,
}

const SRID_FLAG: u32 = 0x2000_0000;
const Z_FLAG: u32 = 0x8000_0000;
const SRID: u32 = 4326;

/// Longitudes (x) a position may have.
pub const MAX_LONGITUDE: f64 = 360.0;
/// Latitudes (y) a position may have.
pub const MAX_LATITUDE: f64 = 90.0;

/// Checks a GeoJSON geometry object (its JSON text) and encodes it.
pub fn to_ewkb(text: &str) -> Result<Geometry, String> {
    let mut enc = Encoder {
        out: Vec::with_capacity(256),
        bounds: None,
        dims: None,
        at: Vec::new(),
    };
    // Dimensions must be known for the header: find them first.
    enc.dims = first_position_dims(text);
    enc.geometry(text, true)?;
    Ok(Geometry {
        ewkb: enc.out,
        bounds: enc.bounds,
        has_z: enc.dims == Some(3),
    })
}

/// A geometry object's members, borrowed from its text.
#[derive(Deserialize)]
struct RawGeometry<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    coordinates: Option<&'a RawValue>,
    #[serde(borrow)]
    geometries: Option<&'a RawValue>,
}

fn parse(text: &str) -> Result<RawGeometry<'_>, String> {
    if !text.trim_start().starts_with('{') {
        return Err("geometry must be a GeoJSON object or null".into());
    }
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// The geometries of a GeometryCollection, borrowed.
fn members(raw: &RawValue) -> Result<Vec<&RawValue>, String> {
    serde_json::from_str(raw.get())
        .map_err(|_| "GeometryCollection has no \"geometries\" array".to_string())
}

/// How many numbers the first position has, if there is a position.
fn first_position_dims(text: &str) -> Option<usize> {
    let g = parse(text).ok()?;
    if let Some(gs) = g.geometries {
        return members(gs)
            .ok()?
            .into_iter()
            .find_map(|g| first_position_dims(g.get()));
    }
    let mut c = Cursor::new(g.coordinates?.get());
    loop {
        if !c.open() {
            return None;
        }
        c.ws();
        match c.peek()? {
            b'[' => continue,
            b']' => return None,
            _ => {
                let mut n = 0;
                while c.more(n == 0) {
                    c.number()?;
                    n += 1;
                }
                return Some(n);
            }
        }
    }
}

/// Reads JSON text that serde_json has already found valid.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Cursor<'a> {
        Cursor {
            b: text.as_bytes(),
            i: 0,
        }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Enters an array; false if the next value is not one.
    fn open(&mut self) -> bool {
        self.ws();
        if self.peek() == Some(b'[') {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Whether another element follows in the array we are in (moving past
    /// its `,`), or the array ends (moving past its `]`).
    fn more(&mut self, first: bool) -> bool {
        self.ws();
        match self.peek() {
            Some(b']') | None => {
                self.i += 1;
                false
            }
            Some(b',') if !first => {
                self.i += 1;
                true
            }
            _ => true,
        }
    }

    /// The number at the cursor, or `None` if the value is something else
    /// (which is then left unread).
    fn number(&mut self) -> Option<f64> {
        self.ws();
        let start = self.i;
        while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.b[start..self.i]).ok()?;
        // JSON numbers are valid Rust floats; too large ones read as infinite.
        text.parse().ok()
    }
}

struct Encoder {
    out: Vec<u8>,
    bounds: Option<[f64; 4]>,
    dims: Option<usize>,
    /// Where in `coordinates` we are, for messages: `[0][17]`.
    at: Vec<usize>,
}

impl Encoder {
    fn header(&mut self, code: u32, top: bool) {
        self.out.push(1); // little endian
        let mut t = code;
        if self.dims == Some(3) {
            t |= Z_FLAG;
        }
        if top {
            t |= SRID_FLAG;
        }
        self.out.extend_from_slice(&t.to_le_bytes());
        if top {
            self.out.extend_from_slice(&SRID.to_le_bytes());
        }
    }

    /// Room for a count, filled in by [`Encoder::set_count`] once known.
    fn count_slot(&mut self) -> usize {
        self.out.extend_from_slice(&[0; 4]);
        self.out.len() - 4
    }

    fn set_count(&mut self, slot: usize, n: usize) {
        self.out[slot..slot + 4].copy_from_slice(&(n as u32).to_le_bytes());
    }

    /// `Polygon coordinates[0][3]`, to say where a problem is.
    fn place(&self, kind: &str) -> String {
        let mut s = format!("{kind} coordinates");
        for i in &self.at {
            s += &format!("[{i}]");
        }
        s
    }

    fn geometry(&mut self, text: &str, top: bool) -> Result<(), String> {
        let g = parse(text)?;
        let kind = g
            .kind
            .and_then(|k| super::raw_str(k.get()))
            .ok_or("geometry has no \"type\" string")?;
        if kind == "GeometryCollection" {
            let gs = g
                .geometries
                .ok_or("GeometryCollection has no \"geometries\" array")?;
            let gs = members(gs)?;
            self.header(7, top);
            let slot = self.count_slot();
            for g in &gs {
                self.geometry(g.get(), false)?;
            }
            self.set_count(slot, gs.len());
            return Ok(());
        }
        let coords = g
            .coordinates
            .ok_or_else(|| format!("{kind} has no \"coordinates\""))?;
        let mut c = Cursor::new(coords.get());
        self.at.clear();
        match kind.as_ref() {
            "Point" => {
                self.header(1, top);
                self.position(&mut c, &kind)?;
            }
            "LineString" => {
                self.header(2, top);
                self.line(&mut c, &kind)?;
            }
            "Polygon" => {
                self.header(3, top);
                self.polygon(&mut c, &kind)?;
            }
            "MultiPoint" => {
                self.header(4, top);
                self.many(&mut c, &kind, "the points", |e, c, kind| {
                    e.header(1, false);
                    e.position(c, kind)
                })?;
            }
            "MultiLineString" => {
                self.header(5, top);
                self.many(&mut c, &kind, "the lines", |e, c, kind| {
                    e.header(2, false);
                    e.line(c, kind)
                })?;
            }
            "MultiPolygon" => {
                self.header(6, top);
                self.many(&mut c, &kind, "the polygons", |e, c, kind| {
                    e.header(3, false);
                    e.polygon(c, kind)
                })?;
            }
            other => return Err(format!("unknown geometry type \"{other}\"")),
        }
        Ok(())
    }

    /// An array of parts, each written by `part`, preceded by their count.
    fn many(
        &mut self,
        c: &mut Cursor<'_>,
        kind: &str,
        what: &str,
        mut part: impl FnMut(&mut Encoder, &mut Cursor<'_>, &str) -> Result<(), String>,
    ) -> Result<usize, String> {
        if !c.open() {
            return Err(format!("{}: {what} must be an array", self.place(kind)));
        }
        let slot = self.count_slot();
        let mut n = 0;
        while c.more(n == 0) {
            self.at.push(n);
            part(self, c, kind)?;
            self.at.pop();
            n += 1;
        }
        self.set_count(slot, n);
        Ok(n)
    }

    fn polygon(&mut self, c: &mut Cursor<'_>, kind: &str) -> Result<(), String> {
        self.many(c, kind, "a polygon", |e, c, kind| {
            let first = e.out.len() + 4;
            let n = e.many(c, kind, "a ring", |e, c, kind| e.position(c, kind))?;
            if n < 4 {
                return Err(format!(
                    "{kind} has a ring of {n} positions (a linear ring needs at least 4)"
                ));
            }
            let size = 8 * e.dims.unwrap_or(2);
            let last = e.out.len() - size;
            if e.out[first..first + size] != e.out[last..] {
                return Err(format!(
                    "{kind} has a ring that is not closed (its first and last positions differ)"
                ));
            }
            Ok(())
        })
        .map(|_| ())
    }

    /// A line: its positions preceded by their count; none, or at least two.
    fn line(&mut self, c: &mut Cursor<'_>, kind: &str) -> Result<(), String> {
        let n = self.many(c, kind, "a line", |e, c, kind| e.position(c, kind))?;
        if n == 1 {
            return Err(format!(
                "{kind} has a line of 1 position(s); it needs at least 2"
            ));
        }
        Ok(())
    }

    fn position(&mut self, c: &mut Cursor<'_>, kind: &str) -> Result<(), String> {
        let not_numbers = || format!("{kind} coordinates: a position must be an array of numbers");
        if !c.open() {
            return Err(not_numbers());
        }
        let dims = self.dims.unwrap_or(2);
        let mut xy = [0.0; 2];
        let mut n = 0;
        while c.more(n == 0) {
            let v = c.number().ok_or_else(not_numbers)?;
            if n < 3 {
                let (name, max) = match n {
                    0 => ("longitude", MAX_LONGITUDE),
                    1 => ("latitude", MAX_LATITUDE),
                    _ => ("elevation", f64::MAX),
                };
                if !v.is_finite() {
                    return Err(format!(
                        "{}: {name} {} is not a finite number",
                        self.place(kind),
                        c.last_number()
                    ));
                }
                if v.abs() > max + BBOX_TOLERANCE {
                    return Err(format!(
                        "{}: {name} {} is outside [-{max}, {max}]",
                        self.place(kind),
                        c.last_number()
                    ));
                }
                if n < 2 {
                    xy[n] = v;
                }
                if n < dims {
                    self.out.extend_from_slice(&v.to_le_bytes());
                }
            }
            n += 1;
        }
        if n != dims || !(2..=3).contains(&n) {
            return Err(if (2..=3).contains(&n) {
                format!("{kind} mixes positions of 2 and 3 coordinates")
            } else {
                format!("{kind} has a position of {n} numbers (2 or 3 expected)")
            });
        }
        let b = self.bounds.get_or_insert([
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ]);
        b[0] = b[0].min(xy[0]);
        b[1] = b[1].min(xy[1]);
        b[2] = b[2].max(xy[0]);
        b[3] = b[3].max(xy[1]);
        Ok(())
    }
}

impl Cursor<'_> {
    /// The text of the number just read (for messages).
    fn last_number(&self) -> String {
        let end = self.i;
        let start = self.b[..end]
            .iter()
            .rposition(|b| !matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
            .map_or(0, |p| p + 1);
        String::from_utf8_lossy(&self.b[start..end]).into_owned()
    }
}

/// How far (in coordinate units, degrees) a position may lie outside the
/// bbox: bboxes are often rounded to 6 decimals.
pub const BBOX_TOLERANCE: f64 = 1e-6;

/// Checks that `bbox` (4 or 6 numbers, west may exceed east across the
/// antimeridian) is well formed and agrees with `bounds`: with `contain`,
/// it must hold every position (the STAC definition); without, it must at
/// least overlap them (published examples exist whose bbox cuts their
/// geometry, while a bbox of another place, or with swapped axes, does not
/// overlap at all).
pub fn check_bbox(bbox: &[f64], bounds: Option<[f64; 4]>, contain: bool) -> Result<(), String> {
    check_bbox_range(bbox)?;
    let (w, s, e, n) = match bbox.len() {
        4 => (bbox[0], bbox[1], bbox[2], bbox[3]),
        6 => {
            if bbox[2] > bbox[5] {
                return Err("bbox has its minimum elevation above its maximum".into());
            }
            (bbox[0], bbox[1], bbox[3], bbox[4])
        }
        n => return Err(format!("bbox has {n} numbers; it must have 4 or 6")),
    };
    if s > n {
        return Err(format!(
            "bbox has its south edge ({s}) above its north edge ({n})"
        ));
    }
    let Some([minx, miny, maxx, maxy]) = bounds else {
        return Ok(());
    };
    let t = BBOX_TOLERANCE;
    let (x_ok, y_ok) = if contain {
        let x = if w <= e {
            minx >= w - t && maxx <= e + t
        } else {
            // Across the antimeridian: x in [w, 180] or [-180, e]. With only
            // the bounds, check both ends fall in one of the two parts.
            (minx >= w - t || minx <= e + t) && (maxx >= w - t || maxx <= e + t)
        };
        (x, miny >= s - t && maxy <= n + t)
    } else {
        let x = if w <= e {
            maxx >= w - t && minx <= e + t
        } else {
            maxx >= w - t || minx <= e + t
        };
        (x, maxy >= s - t && miny <= n + t)
    };
    if x_ok && y_ok {
        Ok(())
    } else {
        Err(format!(
            "bbox [{w}, {s}, {e}, {n}] does not {} the geometry (which spans [{minx}, {miny}, {maxx}, {maxy}])",
            if contain { "contain" } else { "overlap" }
        ))
    }
}

/// A bbox's numbers must be places on Earth, like positions: finite,
/// longitudes within [-360, 360], latitudes within [-90, 90].
pub fn check_bbox_range(bbox: &[f64]) -> Result<(), String> {
    let xy = match bbox.len() {
        6 => [0, 1, 3, 4],
        _ => [0, 1, 2, 3],
    };
    for (k, &i) in xy.iter().enumerate() {
        let Some(&v) = bbox.get(i) else { continue };
        let (name, max) = if k % 2 == 0 {
            ("longitude", MAX_LONGITUDE)
        } else {
            ("latitude", MAX_LATITUDE)
        };
        // NaN compares false, so it is not within either.
        let within = v.abs() <= max + BBOX_TOLERANCE;
        if !within {
            return Err(format!(
                "bbox has {name} {}, outside [-{max}, {max}]",
                short(v)
            ));
        }
    }
    if bbox.iter().any(|v| !v.is_finite()) {
        return Err("bbox has a number that is not finite".into());
    }
    Ok(())
}

/// A number as people read it: `1e308`, not 309 digits.
fn short(v: f64) -> String {
    if v.abs() >= 1e9 {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn to_ewkb(v: &Value) -> Result<Geometry, String> {
        super::to_ewkb(&v.to_string())
    }

    #[test]
    fn point_is_ewkb_with_srid() {
        let g = to_ewkb(&json!({"type": "Point", "coordinates": [1.0, 2.0]})).unwrap();
        let hex = hex::encode(&g.ewkb);
        assert_eq!(hex, "0101000020e6100000000000000000f03f0000000000000040");
        assert_eq!(g.bounds, Some([1.0, 2.0, 1.0, 2.0]));
        let g = to_ewkb(&json!({"type": "Point", "coordinates": [1, 2, 3]})).unwrap();
        assert!(g.has_z);
        assert_eq!(&hex::encode(&g.ewkb)[..18], "01010000a0e6100000");
    }

    #[test]
    fn polygons_and_collections() {
        let poly = json!({"type": "Polygon", "coordinates": [[[0,0],[2,0],[2,1],[0,1],[0,0]]]});
        let g = to_ewkb(&poly).unwrap();
        assert_eq!(g.bounds, Some([0.0, 0.0, 2.0, 1.0]));
        let gc = json!({"type": "GeometryCollection", "geometries": [
            {"type": "Point", "coordinates": [5, 5]}, poly]});
        assert_eq!(to_ewkb(&gc).unwrap().bounds, Some([0.0, 0.0, 5.0, 5.0]));
        let empty = to_ewkb(&json!({"type": "MultiPolygon", "coordinates": []})).unwrap();
        assert_eq!(empty.bounds, None);
    }

    #[test]
    fn refuses_broken_geometries() {
        for (g, msg) in [
            (
                json!({"type": "Polygon", "coordinates": [[[0,0],[1,0],[0,0]]]}),
                "at least 4",
            ),
            (
                json!({"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,1]]]}),
                "not closed",
            ),
            (json!({"type": "Point", "coordinates": [1]}), "2 or 3"),
            (json!({"type": "Point", "coordinates": ["a", 1]}), "numbers"),
            (
                json!({"type": "LineString", "coordinates": [[0,0],[1,1,1]]}),
                "mixes",
            ),
            (
                json!({"type": "Circle", "coordinates": [0,0]}),
                "unknown geometry type",
            ),
            (json!({"coordinates": [0,0]}), "no \"type\""),
            (json!({"type": "Point"}), "no \"coordinates\""),
            (json!([1, 2]), "GeoJSON object"),
            (
                json!({"type": "Point", "coordinates": [1e308, 0]}),
                "Point coordinates: longitude 1e+308 is outside [-360, 360]",
            ),
            (
                json!({"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,-91],[0,0]]]}),
                "Polygon coordinates[0][2]: latitude -91 is outside [-90, 90]",
            ),
            (
                json!({"type": "MultiPoint", "coordinates": [[0, 0], [1]]}),
                "2 or 3",
            ),
            (
                json!({"type": "GeometryCollection", "geometries": [
                    {"type": "Point", "coordinates": [0, 0]},
                    {"type": "Point", "coordinates": [0, 0, 1]}]}),
                "mixes",
            ),
        ] {
            let e = to_ewkb(&g).unwrap_err();
            assert!(e.contains(msg), "{g}: {e}");
        }
    }

    #[test]
    fn numbers_are_read_from_the_text() {
        let text = r#"{"coordinates" : [ [ -85.5 , 31.25e0 ] , [-85.25,31.5 ] ] , "type":"LineString","bbox":[1,2,3,4]}"#;
        let g = super::to_ewkb(text).unwrap();
        assert_eq!(g.bounds, Some([-85.5, 31.25, -85.25, 31.5]));
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(g, to_ewkb(&v).unwrap());
        assert_eq!(g.ewkb.len(), 1 + 4 + 4 + 4 + 2 * 16);
        let e = super::to_ewkb(r#"{"type":"Point","coordinates":[1e400,0]}"#).unwrap_err();
        assert_eq!(
            e,
            "Point coordinates: longitude 1e400 is not a finite number"
        );
        assert!(check_bbox_range(&[-180.0, -90.0, 180.0, 90.0]).is_ok());
        assert!(
            check_bbox_range(&[0.0, 0.0, 1e308, 1.0])
                .unwrap_err()
                .contains("longitude")
        );
        assert!(
            check_bbox_range(&[0.0, 0.0, -5.0, 1.0, 91.0, 2.0])
                .unwrap_err()
                .contains("latitude 91")
        );
    }

    #[test]
    fn bbox_must_contain_or_overlap_the_geometry() {
        let b = Some([0.0, 0.0, 2.0, 1.0]);
        for contain in [true, false] {
            check_bbox(&[0.0, 0.0, 2.0, 1.0], b, contain).unwrap();
            check_bbox(&[0.0, 0.0, 0.0, 2.0, 1.0, 10.0], b, contain).unwrap();
            check_bbox(&[0.0, 0.0, 2.0 - 1e-7, 1.0], b, contain).unwrap(); // rounding
            assert!(check_bbox(&[0.0, 2.0, 2.0, 1.0], b, contain).is_err());
            assert!(check_bbox(&[0.0, 0.0, 2.0], b, contain).is_err());
            assert!(check_bbox(&[5.0, 5.0, 6.0, 6.0], b, contain).is_err());
        }
        // Cutting the geometry: only overlapping.
        assert!(check_bbox(&[0.0, 0.0, 1.0, 1.0], b, true).is_err());
        check_bbox(&[0.0, 0.0, 1.0, 1.0], b, false).unwrap();
        // Swapped axes of a real footprint do not even overlap.
        let naip = Some([-85.94, 30.93, -85.87, 31.0]);
        assert!(check_bbox(&[30.93, -85.94, 31.0, -85.87], naip, false).is_err());
        // Across the antimeridian.
        check_bbox(
            &[170.0, 0.0, -170.0, 1.0],
            Some([175.0, 0.0, 179.0, 1.0]),
            true,
        )
        .unwrap();
        assert!(check_bbox(&[170.0, 0.0, -170.0, 1.0], Some([0.0, 0.0, 1.0, 1.0]), true).is_err());
        assert!(
            check_bbox(
                &[170.0, 0.0, -170.0, 1.0],
                Some([0.0, 0.0, 1.0, 1.0]),
                false
            )
            .is_err()
        );
    }
}
