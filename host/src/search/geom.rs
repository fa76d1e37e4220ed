//! GeoJSON geometries and bounding boxes in requests, checked before they
//! reach PostGIS so that errors name the offending part of the request.

use serde_json::Value;

use super::SearchError;

/// A 2D or 3D bounding box; only x and y are used (items are 2D).
#[derive(Debug, Clone, PartialEq)]
pub struct Bbox {
    pub min_x: f64,
    pub min_y: f64,
    pub max_x: f64,
    pub max_y: f64,
}

impl Bbox {
    /// `[minx, miny, maxx, maxy]` or `[minx, miny, minz, maxx, maxy, maxz]`. A box whose
    /// west edge is east of its east edge crosses the antimeridian (RFC 7946 §5.2).
    pub fn parse(v: &Value, path: &str) -> Result<Bbox, SearchError> {
        let arr = v.as_array().ok_or_else(|| {
            SearchError::new(path, "expected an array of 4 or 6 numbers".to_string())
        })?;
        let mut n = Vec::with_capacity(arr.len());
        for (i, x) in arr.iter().enumerate() {
            match x.as_f64() {
                Some(f) if f.is_finite() => n.push(f),
                _ => {
                    return Err(SearchError::new(
                        &format!("{path}[{i}]"),
                        format!("expected a number, got {x}"),
                    ));
                }
            }
        }
        let (min_x, min_y, max_x, max_y) = match n.as_slice() {
            [a, b, c, d] => (*a, *b, *c, *d),
            [a, b, lo, c, d, hi] => {
                if lo > hi {
                    return Err(SearchError::new(
                        path,
                        format!("minimum z {lo} is above maximum z {hi}"),
                    ));
                }
                (*a, *b, *c, *d)
            }
            _ => {
                return Err(SearchError::new(
                    path,
                    format!("expected 4 (2D) or 6 (3D) numbers, got {}", n.len()),
                ));
            }
        };
        if min_y > max_y {
            return Err(SearchError::new(
                path,
                format!("south edge {min_y} is north of north edge {max_y}"),
            ));
        }
        Ok(Bbox {
            min_x,
            min_y,
            max_x,
            max_y,
        })
    }

    /// The box as one or two (antimeridian) `[minx, miny, maxx, maxy]` envelopes.
    pub fn envelopes(&self) -> Vec<[f64; 4]> {
        if self.min_x <= self.max_x {
            vec![[self.min_x, self.min_y, self.max_x, self.max_y]]
        } else {
            vec![
                [self.min_x, self.min_y, 180.0, self.max_y],
                [-180.0, self.min_y, self.max_x, self.max_y],
            ]
        }
    }
}

/// Checks a GeoJSON geometry object and returns its JSON text (for `ST_GeomFromGeoJSON`).
pub fn geometry(v: &Value, path: &str) -> Result<String, SearchError> {
    check_geometry(v, path)?;
    Ok(v.to_string())
}

fn check_geometry(v: &Value, path: &str) -> Result<(), SearchError> {
    let obj = v.as_object().ok_or_else(|| {
        SearchError::new(path, format!("expected a GeoJSON geometry object, got {v}"))
    })?;
    let ty = obj.get("type").and_then(Value::as_str).ok_or_else(|| {
        SearchError::new(
            path,
            "a GeoJSON geometry needs a string \"type\"".to_string(),
        )
    })?;
    if ty == "GeometryCollection" {
        let geoms = obj
            .get("geometries")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                SearchError::new(
                    path,
                    "a GeometryCollection needs a \"geometries\" array".to_string(),
                )
            })?;
        for (i, g) in geoms.iter().enumerate() {
            check_geometry(g, &format!("{path}.geometries[{i}]"))?;
        }
        return Ok(());
    }
    let depth = match ty {
        "Point" => 0,
        "MultiPoint" | "LineString" => 1,
        "MultiLineString" | "Polygon" => 2,
        "MultiPolygon" => 3,
        other => {
            return Err(SearchError::new(
                &format!("{path}.type"),
                format!("unknown GeoJSON geometry type {other:?}"),
            ));
        }
    };
    let coords = obj
        .get("coordinates")
        .ok_or_else(|| SearchError::new(path, format!("a {ty} needs \"coordinates\"")))?;
    let path = format!("{path}.coordinates");
    check_coords(coords, depth, &path)?;
    match ty {
        "LineString" => check_line(coords, 2, &path),
        "Polygon" => check_rings(coords, &path),
        "MultiLineString" => each(coords, |l, i| check_line(l, 2, &format!("{path}[{i}]"))),
        "MultiPolygon" => each(coords, |p, i| check_rings(p, &format!("{path}[{i}]"))),
        _ => Ok(()),
    }
}

fn each(
    v: &Value,
    f: impl Fn(&Value, usize) -> Result<(), SearchError>,
) -> Result<(), SearchError> {
    v.as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .try_for_each(|(i, x)| f(x, i))
}

fn check_line(v: &Value, min: usize, path: &str) -> Result<(), SearchError> {
    let n = v.as_array().map_or(0, Vec::len);
    if n < min {
        return Err(SearchError::new(
            path,
            format!("needs at least {min} positions, got {n}"),
        ));
    }
    Ok(())
}

fn check_rings(rings: &Value, path: &str) -> Result<(), SearchError> {
    each(rings, |ring, i| {
        let p = format!("{path}[{i}]");
        check_line(ring, 4, &p)?;
        let r = ring.as_array().expect("checked");
        if r.first() != r.last() {
            return Err(SearchError::new(
                &p,
                "a polygon ring must end where it starts".to_string(),
            ));
        }
        Ok(())
    })
}

/// Nested arrays `depth` deep around positions of 2 or 3 finite numbers.
fn check_coords(v: &Value, depth: usize, path: &str) -> Result<(), SearchError> {
    let arr = v
        .as_array()
        .ok_or_else(|| SearchError::new(path, format!("expected an array, got {v}")))?;
    if depth == 0 {
        let ok = (2..=3).contains(&arr.len())
            && arr.iter().all(|x| x.as_f64().is_some_and(f64::is_finite));
        if !ok {
            return Err(SearchError::new(
                path,
                format!("expected a position of 2 or 3 numbers, got {v}"),
            ));
        }
        return Ok(());
    }
    for (i, x) in arr.iter().enumerate() {
        check_coords(x, depth - 1, &format!("{path}[{i}]"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bboxes() {
        let b = Bbox::parse(&json!([-86, 30, -85, 31]), "bbox").unwrap();
        assert_eq!(b.envelopes(), vec![[-86.0, 30.0, -85.0, 31.0]]);
        let b = Bbox::parse(&json!([-86, 30, 0, -85, 31, 100]), "bbox").unwrap();
        assert_eq!(b.max_x, -85.0);
        let b = Bbox::parse(&json!([170, -10, -170, 10]), "bbox").unwrap();
        assert_eq!(b.envelopes().len(), 2);
        for (v, msg) in [
            (
                json!([1, 2, 3]),
                "bbox: expected 4 (2D) or 6 (3D) numbers, got 3",
            ),
            (json!([1, "2", 3, 4]), "bbox[1]: expected a number"),
            (json!([0, 10, 1, 5]), "bbox: south edge 10 is north"),
            (json!("0,0,1,1"), "bbox: expected an array"),
        ] {
            let e = Bbox::parse(&v, "bbox").unwrap_err().to_string();
            assert!(e.starts_with(msg), "{e}");
        }
    }

    #[test]
    fn geometries() {
        let poly = json!({"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]});
        assert!(geometry(&poly, "intersects").is_ok());
        let pt = json!({"type":"Point","coordinates":[1,2]});
        assert!(geometry(&pt, "intersects").is_ok());
        let gc = json!({"type":"GeometryCollection","geometries":[pt, poly]});
        assert!(geometry(&gc, "intersects").is_ok());
        for (v, msg) in [
            (
                json!({"type":"Circle","coordinates":[1,2]}),
                "intersects.type: unknown GeoJSON geometry type",
            ),
            (
                json!({"type":"Point","coordinates":[1]}),
                "intersects.coordinates: expected a position",
            ),
            (
                json!({"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}),
                "intersects.coordinates[0]: a polygon ring must end",
            ),
            (
                json!({"type":"LineString","coordinates":[[0,0]]}),
                "intersects.coordinates: needs at least 2 positions",
            ),
            (
                json!({"coordinates":[0,0]}),
                "intersects: a GeoJSON geometry needs a string \"type\"",
            ),
            (
                json!({"type":"Polygon","coordinates":[[[0,0],[1,"x"],[1,1],[0,0]]]}),
                "intersects.coordinates[0][1]: expected a position",
            ),
        ] {
            let e = geometry(&v, "intersects").unwrap_err().to_string();
            assert!(e.starts_with(msg), "{e}");
        }
    }
}
