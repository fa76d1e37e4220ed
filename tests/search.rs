//! `host search` against a real database: every request member and filter
//! kind, compared with a plain Rust evaluation over the same fixture items;
//! pagination; injection attempts; malformed requests.

mod stacdb;
mod util;

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};
use stacdb::eval::{
    as_text, cmp_nullable, datetime, item_intersects, num, outer_ring, point_in, rect, span, start,
    t, text,
};
use stacdb::fixture::{ASC, DESC, Key, features, loaded, sorted};
use util::{TestDb, run, run_stdin, stderr, stdout};

#[test]
fn core_members_match_a_plain_evaluation() {
    let f = loaded("search_core", false);
    let total = f.items.len();
    assert_eq!(f.check(json!({}), |_| true), total);

    // Features are the stored items, verbatim.
    let page = f.search(&json!({"limit": 10_000}));
    let by_key: HashMap<Key, &Value> = f.items.iter().map(|i| (stacdb::key(i), i)).collect();
    for feat in features(&page) {
        assert_eq!(feat, by_key[&stacdb::key(feat)]);
    }

    f.check_some(json!({"collections": ["pgstac-test-collection"]}), |i| {
        i["collection"] == "pgstac-test-collection"
    });
    f.check_some(
        json!({"collections": ["spec-simple", "spec-core", "nope"]}),
        |i| i["collection"] == "spec-simple" || i["collection"] == "spec-core",
    );
    // One id in three collections.
    assert_eq!(
        f.check(json!({"ids": ["20201211_223832_CS2"]}), |i| i["id"]
            == "20201211_223832_CS2"),
        3
    );
    let n = f.check(
        json!({"ids": ["20201211_223832_CS2", "pgstac-test-item-0003"], "collections": ["spec-core", "pgstac-test-collection"]}),
        |i| {
            (i["id"] == "20201211_223832_CS2" && i["collection"] == "spec-core")
                || i["id"] == "pgstac-test-item-0003"
        },
    );
    assert_eq!(n, 2);

    // bbox, 2D and 3D (z is ignored: items are 2D).
    let q = [-87.75, 30.6, -87.55, 30.9];
    let r = rect(q[0], q[1], q[2], q[3]);
    f.check_some(json!({"bbox": q}), |i| item_intersects(i, &r));
    f.check_some(
        json!({"bbox": [q[0], q[1], -50.0, q[2], q[3], 8000.0]}),
        |i| item_intersects(i, &r),
    );
    // A box across the antimeridian, from 172.93°E to 179°W.
    let (east, west) = (
        rect(172.93, 1.0, 180.0, 1.36),
        rect(-180.0, 1.0, -179.0, 1.36),
    );
    let n = f.check(json!({"bbox": [172.93, 1.0, -179.0, 1.36]}), |i| {
        item_intersects(i, &east) || item_intersects(i, &west)
    });
    assert_eq!(n, 3);
    // The whole world: everything but the item without a geometry.
    let world = rect(-180.0, -90.0, 180.0, 90.0);
    let n = f.check(json!({"bbox": [-180, -90, 180, 90]}), |i| {
        item_intersects(i, &world)
    });
    assert_eq!(n, total - 1);

    // intersects: a polygon, and a point.
    let tri = vec![
        [-87.9, 30.5],
        [-87.5, 30.95],
        [-87.45, 30.55],
        [-87.9, 30.5],
    ];
    f.check_some(
        json!({"intersects": {"type": "Polygon", "coordinates": [tri]}}),
        |i| item_intersects(i, &tri),
    );
    let b = f.items[0]["bbox"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect::<Vec<_>>();
    let p = [
        (b[0] + b[2]) / 2.0 + 0.000123,
        (b[1] + b[3]) / 2.0 - 0.000077,
    ];
    let n = f.check(
        json!({"intersects": {"type": "Point", "coordinates": p}}),
        |i| outer_ring(&i["geometry"]).is_some_and(|r| point_in(p, &r)),
    );
    assert!(n >= 1);

    // datetime: instant, closed, open on either side; items are intervals.
    let within = |lo: Option<&str>, hi: Option<&str>| {
        let (lo, hi) = (lo.map(t), hi.map(t));
        move |i: &Value| {
            let (s, e) = span(i);
            hi.as_ref().is_none_or(|h| s <= *h) && lo.as_ref().is_none_or(|l| e >= *l)
        }
    };
    let d = "2011-08-16T00:00:00Z";
    f.check_some(json!({"datetime": d}), within(Some(d), Some(d)));
    let (a, z) = ("2011-08-01T00:00:00Z", "2011-08-15T00:00:00Z");
    f.check_some(
        json!({"datetime": format!("{a}/{z}")}),
        within(Some(a), Some(z)),
    );
    f.check_some(
        json!({"datetime": format!("../{z}")}),
        within(None, Some(z)),
    );
    f.check_some(
        json!({"datetime": format!("{z}/..")}),
        within(Some(z), None),
    );
    f.check_some(json!({"datetime": format!("/{a}")}), within(None, Some(a)));
    // Inside core-item's 0.2 s interval but after simple-item's instant.
    let inside = "2020-12-11T22:38:32.200Z";
    let n = f.check(
        json!({"datetime": inside}),
        within(Some(inside), Some(inside)),
    );
    assert_eq!(n, 1);
    let n = f.check(
        json!({"datetime": "2016-05-03T13:25:00+02:00/2016-05-03T15:23:00+02:00"}),
        within(Some("2016-05-03T11:25:00Z"), Some("2016-05-03T13:23:00Z")),
    );
    assert_eq!(n, 1, "collectionless-item ends 13:27:30Z, starts 13:22:30Z");

    // Everything at once.
    f.check_some(
        json!({"collections": ["pgstac-test-collection"], "bbox": q, "datetime": format!("{d}/..")}),
        |i| item_intersects(i, &r) && within(Some(d), None)(i),
    );
}

#[test]
fn cql2_filters_match_a_plain_evaluation() {
    let f = loaded("search_cql2", false);
    let flt = |filter: Value| json!({"filter-lang": "cql2-json", "filter": filter});
    let prop = |name: &str| json!({"property": name});
    let cc = || prop("eo:cloud_cover");

    // Comparisons with a number: typed, items without a number never match.
    type Cmp = fn(f64, f64) -> bool;
    let ops: [(&str, Cmp); 6] = [
        ("=", |a, b| a == b),
        ("<>", |a, b| a != b),
        ("<", |a, b| a < b),
        ("<=", |a, b| a <= b),
        (">", |a, b| a > b),
        (">=", |a, b| a >= b),
    ];
    for (op, cmp) in ops {
        for v in [10.0, 52.0] {
            f.check_some(flt(json!({"op": op, "args": [cc(), v]})), |i| {
                num(i, "eo:cloud_cover").is_some_and(|x| cmp(x, v))
            });
        }
    }
    // The literal may come first.
    f.check_some(flt(json!({"op": ">", "args": [10, cc()]})), |i| {
        num(i, "eo:cloud_cover").is_some_and(|x| 10.0 > x)
    });
    f.check_some(flt(json!({"op": ">=", "args": [prop("gsd"), 0.6]})), |i| {
        num(i, "gsd").is_some_and(|x| x >= 0.6)
    });

    // Strings, and typing by the literal: "2011" is not 2011.
    f.check_some(
        flt(json!({"op": "=", "args": [prop("naip:state"), "al"]})),
        |i| text(i, "naip:state") == Some("al"),
    );
    f.check_some(
        flt(json!({"op": "<>", "args": [prop("properties.naip:state"), "al"]})),
        |i| text(i, "naip:state").is_some_and(|s| s != "al"),
    );
    f.check_some(
        flt(json!({"op": "=", "args": [prop("naip:year"), "2011"]})),
        |i| as_text(i, "naip:year").as_deref() == Some("2011"),
    );
    // With a number, a property is read as a number (as pgstac reads it): "2011" is 2011.
    f.check_some(
        flt(json!({"op": "=", "args": [prop("naip:year"), 2011]})),
        |i| as_text(i, "naip:year").and_then(|y| y.parse::<f64>().ok()) == Some(2011.0),
    );
    // With a string, as text: a number's text too.
    f.check_some(flt(json!({"op": "=", "args": [cc(), "28"]})), |i| {
        as_text(i, "eo:cloud_cover").as_deref() == Some("28")
    });
    f.check_some(
        flt(json!({"op": "<", "args": [prop("platform"), "cool_sat2"]})),
        |i| text(i, "platform").is_some_and(|s| s < "cool_sat2"),
    );

    // Columns.
    f.check_some(
        flt(json!({"op": "=", "args": [prop("collection"), "spec-core"]})),
        |i| i["collection"] == "spec-core",
    );
    f.check_some(
        flt(json!({"op": ">", "args": [prop("id"), "pgstac-test-item-0050"]})),
        |i| i["id"].as_str().unwrap() > "pgstac-test-item-0050",
    );
    let d = "2011-08-16T00:00:00Z";
    f.check_some(
        flt(json!({"op": ">=", "args": [prop("datetime"), {"timestamp": d}]})),
        |i| start(i) >= t(d),
    );
    f.check_some(
        flt(json!({"op": "=", "args": [prop("datetime"), d]})),
        |i| start(i) == t(d),
    );
    // An item's datetime is pgstac's: the start of its range.
    let ranged = "2020-12-11T22:38:32.125Z";
    assert_eq!(
        f.check(
            flt(json!({"op": "=", "args": [prop("datetime"), ranged]})),
            |i| start(i) == t(ranged),
        ),
        f.items.iter().filter(|i| start(i) == t(ranged)).count()
    );
    assert!(
        f.items
            .iter()
            .any(|i| datetime(i).is_none() && start(i) == t(ranged))
    );
    f.check_some(flt(json!({"op": "<", "args": [prop("start_datetime"), {"timestamp": "2017-01-01T00:00:00Z"}]})), |i| {
        span(i).0 < t("2017-01-01T00:00:00Z")
    });

    // and, or, not (missing values stay unknown under not, as in SQL).
    let lt = |v: f64| json!({"op": "<", "args": [cc(), v]});
    f.check_some(flt(json!({"op": "and", "args": [lt(50.0), {"op": "=", "args": [prop("naip:state"), "al"]}]})), |i| {
        num(i, "eo:cloud_cover").is_some_and(|x| x < 50.0) && text(i, "naip:state") == Some("al")
    });
    f.check_some(
        flt(json!({"op": "or", "args": [lt(5.0), {"op": ">", "args": [cc(), 95]}]})),
        |i| num(i, "eo:cloud_cover").is_some_and(|x| !(5.0..=95.0).contains(&x)),
    );
    f.check_some(flt(json!({"op": "not", "args": [lt(10.0)]})), |i| {
        num(i, "eo:cloud_cover").is_some_and(|x| x >= 10.0)
    });
    assert_eq!(f.check(flt(json!(true)), |_| true), f.items.len());
    assert_eq!(
        f.check(flt(json!({"op": "and", "args": [true, false]})), |_| false),
        0
    );

    // in, between, like.
    let ids = [
        "pgstac-test-item-0003",
        "pgstac-test-item-0050",
        "20201211_223832_CS2",
        "nope",
    ];
    f.check_some(flt(json!({"op": "in", "args": [prop("id"), ids]})), |i| {
        ids.contains(&i["id"].as_str().unwrap())
    });
    f.check_some(
        flt(json!({"op": "in", "args": [cc(), [3, 52, 1.2]]})),
        |i| num(i, "eo:cloud_cover").is_some_and(|x| [3.0, 52.0, 1.2].contains(&x)),
    );
    f.check_some(
        flt(json!({"op": "in", "args": [prop("naip:state"), ["xx", "zz"]]})),
        |i| matches!(text(i, "naip:state"), Some("xx" | "zz")),
    );
    f.check_some(flt(json!({"op": "between", "args": [cc(), 10, 20]})), |i| {
        num(i, "eo:cloud_cover").is_some_and(|x| (10.0..=20.0).contains(&x))
    });
    f.check_some(
        flt(json!({"op": "like", "args": [prop("id"), "pgstac-test-item-00%"]})),
        |i| i["id"].as_str().unwrap().starts_with("pgstac-test-item-00"),
    );
    f.check_some(
        flt(json!({"op": "like", "args": [prop("id"), "%_CS2"]})),
        |i| i["id"].as_str().unwrap().ends_with("_CS2"),
    );
    f.check_some(
        flt(json!({"op": "like", "args": [prop("platform"), "cool_sat_"]})),
        |i| text(i, "platform").is_some_and(|s| s.len() == 9 && s.starts_with("cool_sat")),
    );

    // isNull.
    f.check_some(flt(json!({"op": "isNull", "args": [cc()]})), |i| {
        i["properties"]["eo:cloud_cover"].is_null()
    });
    assert_eq!(
        f.check(
            flt(json!({"op": "isNull", "args": [prop("geometry")]})),
            |i| i["geometry"].is_null()
        ),
        1
    );
    // pgstac's datetime is never null (a range's start stands in).
    assert_eq!(
        f.check(
            flt(json!({"op": "isNull", "args": [prop("datetime")]})),
            |_| false
        ),
        0
    );

    // s_intersects with a geometry or a bbox, either side.
    let tri = vec![
        [-87.9, 30.5],
        [-87.5, 30.95],
        [-87.45, 30.55],
        [-87.9, 30.5],
    ];
    let poly = json!({"type": "Polygon", "coordinates": [tri]});
    f.check_some(
        flt(json!({"op": "s_intersects", "args": [prop("geometry"), poly]})),
        |i| item_intersects(i, &tri),
    );
    f.check_some(
        flt(json!({"op": "s_intersects", "args": [poly, prop("geometry")]})),
        |i| item_intersects(i, &tri),
    );
    let r = rect(-87.9, 30.7, -87.7, 30.8);
    f.check_some(flt(json!({"op": "s_intersects", "args": [prop("geometry"), {"bbox": [-87.9, 30.7, -87.7, 30.8]}]})), |i| {
        item_intersects(i, &r)
    });
    f.check_some(flt(json!({"op": "not", "args": [{"op": "s_intersects", "args": [prop("geometry"), {"bbox": [-87.9, 30.7, -87.7, 30.8]}]}]})), |i| {
        !i["geometry"].is_null() && !item_intersects(i, &r)
    });

    // t_intersects: an item's datetime is pgstac's, the start of its range.
    let overlaps = |lo: &str, hi: &str| {
        let (lo, hi) = (t(lo), t(hi));
        move |i: &Value| {
            let s = start(i);
            s <= hi && s >= lo
        }
    };
    let (a, z) = ("2011-08-15T00:00:00Z", "2011-08-16T00:00:00Z");
    f.check_some(
        flt(json!({"op": "t_intersects", "args": [prop("datetime"), {"interval": [a, z]}]})),
        overlaps(a, z),
    );
    f.check_some(
        flt(json!({"op": "t_intersects", "args": [prop("datetime"), {"timestamp": z}]})),
        overlaps(z, z),
    );
    f.check_some(
        flt(json!({"op": "t_intersects", "args": [prop("datetime"), {"date": "2011-08-16"}]})),
        overlaps(z, "2011-08-16T23:59:59.999999Z"),
    );
    f.check_some(flt(json!({"op": "t_intersects", "args": [prop("datetime"), {"interval": ["..", "2011-08-01T00:00:00Z"]}]})), overlaps("0001-01-01T00:00:00Z", "2011-08-01T00:00:00Z"));
    let inside = "2020-12-11T22:38:32.200Z";
    f.check(
        flt(
            json!({"op": "t_intersects", "args": [{"interval": [inside, ".."]}, prop("datetime")]}),
        ),
        overlaps(inside, "9999-12-31T00:00:00Z"),
    );
    f.check_some(
        flt(json!({"op": "t_intersects", "args": [prop("end_datetime"), {"interval": [inside, ".."]}]})),
        |i| span(i).1 >= t(inside),
    );
    f.check_some(
        flt(json!({"op": "t_before", "args": [prop("datetime"), {"timestamp": z}]})),
        |i| start(i) < t(z),
    );
    f.check_some(
        flt(json!({"op": "t_after", "args": [prop("datetime"), {"timestamp": a}]})),
        |i| start(i) > t(a),
    );
    f.check_some(
        flt(json!({"op": "t_disjoint", "args": [prop("datetime"), {"interval": [a, z]}]})),
        |i| !overlaps(a, z)(i),
    );

    // Together with the other members.
    f.check_some(
        json!({"collections": ["pgstac-test-collection"], "filter": lt(30.0), "datetime": format!("{a}/..")}),
        |i| i["collection"] == "pgstac-test-collection" && num(i, "eo:cloud_cover").is_some_and(|x| x < 30.0) && span(i).1 >= t(a),
    );
}

#[test]
fn pagination_walks_every_item_once_in_order() {
    let f = loaded("search_pages", true);
    let all = |_: &Value| true;
    let small = |i: &Value| i["collection"] != "naip";
    let cases: Vec<(Value, Vec<Key>)> = vec![
        // Default order: datetime descending (an interval's start for items
        // without one), then collection and id in the same direction (as pgstac).
        (
            json!({"limit": 97}),
            sorted(&f.items, all, |a, b| span(b).0.cmp(&span(a).0), DESC),
        ),
        (
            json!({"limit": 7, "collections": ["pgstac-test-collection", "spec-simple", "spec-core", "spec-extended", "spec-collectionless", "spec-null"],
                   "sortby": [{"field": "properties.eo:cloud_cover", "direction": "desc"}]}),
            // Properties sort as text, as in pgstac: "5" after "28".
            sorted(
                &f.items,
                small,
                |a, b| cmp_nullable(&as_text(b, "eo:cloud_cover"), &as_text(a, "eo:cloud_cover")),
                DESC,
            ),
        ),
        (
            json!({"limit": 250, "sortby": [{"field": "gsd", "direction": "asc"}, {"field": "id", "direction": "desc"}]}),
            {
                let mut v: Vec<&Value> = f.items.iter().collect();
                v.sort_by(|a, b| {
                    cmp_nullable(&as_text(a, "gsd"), &as_text(b, "gsd"))
                        .then_with(|| b["id"].as_str().cmp(&a["id"].as_str()))
                        .then_with(|| a["collection"].as_str().cmp(&b["collection"].as_str()))
                });
                v.into_iter().map(stacdb::key).collect()
            },
        ),
        (
            json!({"limit": 100, "collections": ["naip"], "sortby": "+datetime"}),
            sorted(
                &f.items,
                |i| i["collection"] == "naip",
                |a, b| span(a).0.cmp(&span(b).0),
                ASC,
            ),
        ),
        (
            json!({"limit": 333, "sortby": [{"field": "properties.naip:year", "direction": "desc"}],
                   "filter": {"op": "<>", "args": [{"property": "naip:year"}, "2015"]}}),
            sorted(
                &f.items,
                // pgstac-test-item-0100's year is the number 2013: as text, "2013".
                |i| as_text(i, "naip:year").is_some_and(|y| y != "2015"),
                |a, b| cmp_nullable(&as_text(b, "naip:year"), &as_text(a, "naip:year")),
                DESC,
            ),
        ),
        (
            json!({"limit": 50, "collections": ["pgstac-test-collection"], "sortby": [{"field": "id", "direction": "desc"}]}),
            sorted(
                &f.items,
                |i| i["collection"] == "pgstac-test-collection",
                |a, b| b["id"].as_str().cmp(&a["id"].as_str()),
                DESC,
            ),
        ),
    ];
    for (req, want) in cases {
        let (got, pages) = f.walk(req.clone());
        let limit = req["limit"].as_u64().unwrap() as usize;
        assert_eq!(pages, want.len().div_ceil(limit).max(1), "{req}");
        let unique: BTreeSet<&Key> = got.iter().collect();
        assert_eq!(unique.len(), got.len(), "no duplicates for {req}");
        if let Some(i) = (0..got.len().min(want.len())).find(|&i| got[i] != want[i]) {
            panic!(
                "order for {req}: at {i} got {:?}, wanted {:?}",
                &got[i.saturating_sub(2)..(i + 3).min(got.len())],
                &want[i.saturating_sub(2)..(i + 3).min(want.len())]
            );
        }
        assert_eq!(got, want, "order for {req}");
    }

    // A token belongs to its sort order.
    let page = f.search(&json!({"limit": 2}));
    let mut body = page["links"][0]["body"].clone();
    body["sortby"] = json!([{"field": "id"}]);
    let o = run(&["search", &body.to_string(), "--dsn", &f.db.dsn]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("token: this token is for another sort order"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn injection_attempts_come_back_as_data() {
    let f = loaded("search_injection", false);
    let evil = "x'); DROP TABLE host.items; --";
    let mut item = f.items[0].clone();
    item["id"] = json!(evil);
    item["properties"][evil] = json!(evil);
    item["properties"]["$1"] = json!("dollar");
    stacdb::insert_items(&f.db, std::slice::from_ref(&item));
    let only = |page: &Value| {
        features(page)
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };

    assert_eq!(only(&f.search(&json!({"ids": [evil]}))), [evil]);
    assert_eq!(
        only(&f.search(&json!({"collections": [evil]}))),
        Vec::<String>::new()
    );
    assert_eq!(
        only(&f.search(&json!({"collections": ["' OR '1'='1"]}))),
        Vec::<String>::new()
    );
    let eq = |name: &str, v: Value| json!({"filter": {"op": "=", "args": [{"property": name}, v]}});
    assert_eq!(only(&f.search(&eq(evil, json!(evil)))), [evil]);
    assert_eq!(only(&f.search(&eq("$1", json!("dollar")))), [evil]);
    assert_eq!(
        only(&f.search(&eq("id", json!("' OR 1=1 --")))),
        Vec::<String>::new()
    );
    assert_eq!(
        only(&f.search(&eq("eo:cloud_cover') OR TRUE --", json!(1)))),
        Vec::<String>::new()
    );
    let like = json!({"filter": {"op": "like", "args": [{"property": "id"}, "%DROP TABLE%"]}});
    assert_eq!(only(&f.search(&like)), [evil]);
    let sort = json!({"limit": 200, "sortby": [{"field": format!("properties.{evil}"), "direction": "asc"}]});
    let page = f.search(&sort);
    assert_eq!(page["numberReturned"], f.items.len() + 1);
    assert_eq!(
        page["features"][0]["id"], evil,
        "the only item with that property sorts first"
    );
    // A tampered token is refused before any SQL runs.
    let token = format!("next:{}", hex_encode(&json!({"k": ["datetime:desc", "collection:desc", "id:desc"], "v": ["2011-01-01T00:00:00Z'; DROP TABLE host.items; --", "c", "i"]}).to_string()));
    let o = run(&[
        "search",
        &json!({"token": token}).to_string(),
        "--dsn",
        &f.db.dsn,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("token: invalid RFC 3339"),
        "{}",
        stderr(&o)
    );
    // Values in keys the token does not type-check still only bind.
    let token = format!("next:{}", hex_encode(&json!({"k": ["datetime:desc", "collection:desc", "id:desc"], "v": [null, "x'); DROP TABLE host.items; --", "i"]}).to_string()));
    f.search(&json!({"token": token}));

    let n: i64 =
        f.db.client()
            .query_one("SELECT count(*) FROM host.items", &[])
            .unwrap()
            .get(0);
    assert_eq!(
        n as usize,
        f.items.len() + 1,
        "nothing was dropped or deleted"
    );
}

fn hex_encode(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn malformed_requests_name_the_offending_part() {
    let db = TestDb::new("search_malformed");
    stacdb::setup(&db);
    let prop = |n: &str| json!({"property": n});
    let cases: Vec<(String, &str)> = vec![
        ("{\"limit\": ".into(), "invalid search request: request: invalid JSON"),
        ("[1]".into(), "request: expected a JSON object, got an array"),
        (json!({"filter": {"op": "and", "args": [true, {"op": "foo", "args": []}]}}).to_string(), "filter.args[1]: unknown operator 'foo'"),
        (json!({"filter": {"op": "and", "args": [{"op": "not", "args": [{"op": "<", "args": [prop("id"), 3]}]}]}}).to_string(), "filter.args[0].args[0].args[1]: '<' cannot compare a number with a string"),
        (json!({"filter": {"op": "between", "args": [prop("a"), 1]}}).to_string(), "filter: 'between' takes 3 arguments, got 2"),
        (json!({"filter": {"op": "s_intersects", "args": [prop("geometry"), {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}]}}).to_string(), "filter.args[1].coordinates[0]: needs at least 4 positions"),
        (json!({"filter": {"op": "t_intersects", "args": [prop("datetime"), {"interval": ["2012-01-01T00:00:00Z", "2011-01-01T00:00:00Z"]}]}}).to_string(), "filter.args[1].interval: interval start"),
        (json!({"filter": "eo:cloud_cover < 10"}).to_string(), "filter: CQL2 text is not supported"),
        (json!({"filter-lang": "cql2-text", "filter": true}).to_string(), "filter-lang: only \"cql2-json\" is supported"),
        (json!({"bbox": [0, 0, 1]}).to_string(), "bbox: expected 4 (2D) or 6 (3D) numbers, got 3"),
        (json!({"bbox": [0, 5, 1, 4]}).to_string(), "bbox: south edge 5 is north of north edge 4"),
        (json!({"intersects": {"type": "Circle", "coordinates": [0, 0]}}).to_string(), "intersects.type: unknown GeoJSON geometry type \"Circle\""),
        (json!({"datetime": "last week"}).to_string(), "datetime: invalid RFC 3339 date-time \"last week\""),
        (json!({"datetime": "2011-08-01"}).to_string(), "datetime: invalid RFC 3339"),
        (json!({"limit": 0}).to_string(), "limit: expected an integer from 1 to 10000, got 0"),
        (json!({"limit": 10001}).to_string(), "limit: expected an integer from 1 to 10000"),
        (json!({"sortby": [{"field": "id", "direction": "sideways"}]}).to_string(), "sortby[0].direction: expected \"asc\" or \"desc\""),
        (json!({"collection": "naip"}).to_string(), "collection: unknown search parameter"),
        (json!({"ids": [1, 2]}).to_string(), "ids[0]: expected a string, got a number"),
        (json!({"token": "next:nothex"}).to_string(), "token: not a token returned by host search"),
        (json!({"fields": {"include": ["id"]}}).to_string(), "fields: the fields extension is not supported"),
    ];
    for (req, msg) in cases {
        let o = run(&["search", &req, "--dsn", &db.dsn]);
        assert_eq!(o.status.code(), Some(1), "{req}: {}", stderr(&o));
        assert!(stdout(&o).is_empty());
        let err = stderr(&o);
        assert!(err.contains(msg), "{req}\n  got:    {err}\n  wanted: {msg}");
        assert!(err.starts_with("error: invalid search request: "), "{err}");
    }
    let o = run(&["search", "@/nonexistent/request.json", "--dsn", &db.dsn]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot read the request from /nonexistent/request.json"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn request_from_a_file_stdin_or_nothing() {
    let f = loaded("search_sources", false);
    let req = json!({"ids": ["pgstac-test-item-0003"]});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("req.json");
    std::fs::write(&path, req.to_string()).unwrap();
    let o = run(&[
        "search",
        &format!("@{}", path.display()),
        "--dsn",
        &f.db.dsn,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let page: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(page["features"][0]["id"], "pgstac-test-item-0003");

    let o = run_stdin(
        &["search", "-", "--dsn", &f.db.dsn],
        req.to_string().as_bytes(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let page: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(page["numberReturned"], 1);

    // No request: everything, 10 at a time, newest first.
    let o = run(&["search", "--dsn", &f.db.dsn]);
    assert!(o.status.success(), "{}", stderr(&o));
    let page: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(page["numberReturned"], 10);
    assert_eq!(page["links"][0]["rel"], "next");
    assert_eq!(
        page["features"][0]["id"], "20201211_223832_CS2",
        "2020 is the newest datetime"
    );
}

#[test]
fn search_without_the_schema_says_so() {
    let db = TestDb::new("search_noschema");
    let o = run(&["search", "{}", "--dsn", &db.dsn]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("holds no STAC catalog") && err.contains("host migrate"),
        "{err}"
    );
}
