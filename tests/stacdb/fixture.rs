//! A loaded search database and the ways the search tests ask it questions.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::util::{TestDb, run, stderr};

pub type Key = (String, String);

pub struct Fixture {
    pub db: TestDb,
    pub items: Vec<Value>,
}

/// pgstac's 100 items, the stac-spec examples (and a null-geometry item), optionally 1,000 NAIP items.
pub fn loaded(label: &str, naip: bool) -> Fixture {
    let db = TestDb::new(label);
    super::setup(&db);
    super::insert_collections(
        &db,
        &super::ndjson("stac/pgstac-testdata/collections.ndjson"),
    );
    let mut items = super::pgstac_items();
    items.extend(super::spec_items());
    if naip {
        items.extend(super::ndjson("stac/planetary-computer/naip-items.ndjson"));
    }
    super::insert_items(&db, &items);
    Fixture { db, items }
}

pub fn features(page: &Value) -> &Vec<Value> {
    page["features"].as_array().expect("features")
}

impl Fixture {
    pub fn search(&self, req: &Value) -> Value {
        let o = run(&["search", &req.to_string(), "--dsn", &self.db.dsn]);
        assert!(
            o.status.success(),
            "host search {req} failed: {}",
            stderr(&o)
        );
        let page: Value = serde_json::from_slice(&o.stdout).expect("JSON output");
        assert_eq!(page["type"], "FeatureCollection");
        assert_eq!(page["numberReturned"], features(&page).len());
        page
    }

    /// What the database says matches (in one page).
    pub fn matches(&self, mut req: Value) -> BTreeSet<Key> {
        req["limit"] = json!(10_000);
        let page = self.search(&req);
        assert_eq!(page["links"], json!([]), "one page holds everything");
        let keys: Vec<Key> = features(&page).iter().map(super::key).collect();
        let set: BTreeSet<Key> = keys.iter().cloned().collect();
        assert_eq!(set.len(), keys.len(), "duplicates for {req}");
        set
    }

    /// The database's answer must equal the Rust predicate's over the fixture items.
    pub fn check(&self, req: Value, pred: impl Fn(&Value) -> bool) -> usize {
        let want: BTreeSet<Key> = self
            .items
            .iter()
            .filter(|i| pred(i))
            .map(super::key)
            .collect();
        let got = self.matches(req.clone());
        assert_eq!(got, want, "request {req}");
        want.len()
    }

    /// Like `check`, and the answer is neither empty nor everything.
    pub fn check_some(&self, req: Value, pred: impl Fn(&Value) -> bool) -> usize {
        let n = self.check(req.clone(), pred);
        assert!(
            n > 0 && n < self.items.len(),
            "{req} matched {n} of {}",
            self.items.len()
        );
        n
    }

    /// Follows `next` links to the end; checks every page.
    pub fn walk(&self, req: Value) -> (Vec<Key>, usize) {
        let limit = req["limit"].as_u64().unwrap() as usize;
        let (mut keys, mut pages, mut req) = (Vec::new(), 0, req);
        loop {
            let page = self.search(&req);
            pages += 1;
            assert!(pages < 1000, "runaway pagination");
            let feats = features(&page);
            assert!(feats.len() <= limit);
            keys.extend(feats.iter().map(super::key));
            match page["links"].as_array().unwrap().as_slice() {
                [] => return (keys, pages),
                [next] => {
                    assert_eq!(next["rel"], "next");
                    assert_eq!(feats.len(), limit, "only the last page is short");
                    assert_eq!(next["body"]["token"], next["token"]);
                    req = next["body"].clone();
                }
                more => panic!("unexpected links {more:?}"),
            }
        }
    }
}

/// Tie-breakers ascending.
pub const ASC: bool = false;
/// Tie-breakers descending.
pub const DESC: bool = true;

/// The Rust order for a sort: the given comparison, then collection and id
/// in the first key's direction (`desc`), as pgstac breaks ties.
pub fn sorted(
    items: &[Value],
    keep: impl Fn(&Value) -> bool,
    cmp: impl Fn(&Value, &Value) -> Ordering,
    desc: bool,
) -> Vec<Key> {
    let mut v: Vec<&Value> = items.iter().filter(|i| keep(i)).collect();
    v.sort_by(|a, b| {
        cmp(a, b).then_with(|| {
            let o = super::key(a).cmp(&super::key(b));
            if desc { o.reverse() } else { o }
        })
    });
    v.into_iter().map(super::key).collect()
}
