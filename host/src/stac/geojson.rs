//! GeoJSON geometries (RFC 7946) checked and turned into PostGIS EWKB with
//! SRID 4326, along with their bounds (for the bbox check). Building EWKB
//! here saves the server from parsing GeoJSON.

use serde_json::Value;

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

/// Checks a GeoJSON geometry object and encodes it.
pub fn to_ewkb(g: &Value) -> Result<Geometry, String> {
    let mut enc = Encoder {
        out: Vec::with_capacity(256),
        bounds: None,
        dims: None,
    };
    // Dimensions must be known for the header: find them first.
    enc.dims = first_position_dims(g);
    enc.geometry(g, true)?;
    Ok(Geometry {
        ewkb: enc.out,
        bounds: enc.bounds,
        has_z: enc.dims == Some(3),
    })
}

struct Encoder {
    out: Vec<u8>,
    bounds: Option<[f64; 4]>,
    dims: Option<usize>,
}

fn array<'a>(v: &'a Value, kind: &str, what: &str) -> Result<&'a [Value], String> {
    v.as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| format!("{kind} coordinates: {what} must be an array"))
}

fn first_position_dims(g: &Value) -> Option<usize> {
    let obj = g.as_object()?;
    if let Some(Value::Array(gs)) = obj.get("geometries") {
        return gs.iter().find_map(first_position_dims);
    }
    let mut c = obj.get("coordinates")?;
    loop {
        let arr = c.as_array()?;
        match arr.first()? {
            Value::Number(_) => return Some(arr.len()),
            inner => c = inner,
        }
    }
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

    fn count(&mut self, n: usize) {
        self.out.extend_from_slice(&(n as u32).to_le_bytes());
    }

    fn geometry(&mut self, g: &Value, top: bool) -> Result<(), String> {
        let obj = g
            .as_object()
            .ok_or("geometry must be a GeoJSON object or null")?;
        let kind = obj
            .get("type")
            .and_then(Value::as_str)
            .ok_or("geometry has no \"type\" string")?;
        if kind == "GeometryCollection" {
            let gs = obj
                .get("geometries")
                .and_then(Value::as_array)
                .ok_or("GeometryCollection has no \"geometries\" array")?;
            self.header(7, top);
            self.count(gs.len());
            for g in gs {
                self.geometry(g, false)?;
            }
            return Ok(());
        }
        let coords = obj
            .get("coordinates")
            .ok_or_else(|| format!("{kind} has no \"coordinates\""))?;
        let arr = |v, what| array(v, kind, what);
        match kind {
            "Point" => {
                self.header(1, top);
                self.position(coords, kind)?;
            }
            "LineString" => {
                self.header(2, top);
                self.line(arr(coords, "a line")?, kind, 2)?;
            }
            "Polygon" => {
                self.header(3, top);
                self.polygon(arr(coords, "a polygon")?, kind)?;
            }
            "MultiPoint" => {
                let points = arr(coords, "the points")?;
                self.header(4, top);
                self.count(points.len());
                for p in points {
                    self.header(1, false);
                    self.position(p, kind)?;
                }
            }
            "MultiLineString" => {
                let lines = arr(coords, "the lines")?;
                self.header(5, top);
                self.count(lines.len());
                for l in lines {
                    self.header(2, false);
                    self.line(arr(l, "a line")?, kind, 2)?;
                }
            }
            "MultiPolygon" => {
                let polygons = arr(coords, "the polygons")?;
                self.header(6, top);
                self.count(polygons.len());
                for p in polygons {
                    self.header(3, false);
                    self.polygon(arr(p, "a polygon")?, kind)?;
                }
            }
            other => return Err(format!("unknown geometry type \"{other}\"")),
        }
        Ok(())
    }

    fn polygon(&mut self, rings: &[Value], kind: &str) -> Result<(), String> {
        self.count(rings.len());
        for ring in rings {
            let ring = ring
                .as_array()
                .ok_or_else(|| format!("{kind} coordinates: a ring must be an array"))?;
            if ring.len() < 4 {
                return Err(format!(
                    "{kind} has a ring of {} positions (a linear ring needs at least 4)",
                    ring.len()
                ));
            }
            if ring.first() != ring.last() {
                return Err(format!(
                    "{kind} has a ring that is not closed (its first and last positions differ)"
                ));
            }
            self.line(ring, kind, 4)?;
        }
        Ok(())
    }

    fn line(&mut self, positions: &[Value], kind: &str, min: usize) -> Result<(), String> {
        if positions.len() < min && !positions.is_empty() {
            return Err(format!(
                "{kind} has a line of {} position(s); it needs at least {min}",
                positions.len()
            ));
        }
        self.count(positions.len());
        for p in positions {
            self.position(p, kind)?;
        }
        Ok(())
    }

    fn position(&mut self, p: &Value, kind: &str) -> Result<(), String> {
        let p = p
            .as_array()
            .ok_or_else(|| format!("{kind} coordinates: a position must be an array of numbers"))?;
        let dims = self.dims.unwrap_or(2);
        if p.len() != dims || !(2..=3).contains(&p.len()) {
            return Err(if (2..=3).contains(&p.len()) {
                format!("{kind} mixes positions of 2 and 3 coordinates")
            } else {
                format!(
                    "{kind} has a position of {} numbers (2 or 3 expected)",
                    p.len()
                )
            });
        }
        let mut xy = [0.0; 2];
        for (i, c) in p.iter().enumerate() {
            let v = c.as_f64().ok_or_else(|| {
                format!("{kind} coordinates: a position must be an array of numbers")
            })?;
            if i < 2 {
                xy[i] = v;
            }
            self.out.extend_from_slice(&v.to_le_bytes());
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        ] {
            let e = to_ewkb(&g).unwrap_err();
            assert!(e.contains(msg), "{g}: {e}");
        }
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
