//! Keyset pagination tokens and the FeatureCollection a page is printed as.
//!
//! A token carries the sort keys of the last item of a page (as text) and
//! the names of those keys, so a token used with another `sortby` is refused
//! instead of giving a wrong page. It is `next:` and the hex of a small JSON
//! document; it is opaque to users but not secret.

use serde_json::{Value, json};

use super::cql2::Property;
use super::datetime::Instant;
use super::request::{SearchRequest, SortBy};
use super::{Page, SearchError};

const PREFIX: &str = "next:";

/// One row of a result: the stored item and its sort keys as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub content: String,
    pub keys: Vec<Option<String>>,
}

/// The token for the page after the item with these sort key values.
pub fn encode(keys: &[SortBy], values: &[Option<String>]) -> String {
    let names: Vec<String> = keys.iter().map(SortBy::name).collect();
    let doc = json!({ "k": names, "v": values });
    format!("{PREFIX}{}", hex::encode(doc.to_string()))
}

/// The sort key values a token carries, checked against this request's sort order.
pub fn decode(token: &str, keys: &[SortBy]) -> Result<Vec<Option<String>>, SearchError> {
    let bad = |why: &str| SearchError::new("token", why.to_string());
    let hex_text = token.strip_prefix(PREFIX).unwrap_or(token);
    let bytes = hex::decode(hex_text).map_err(|_| bad("not a token returned by host search"))?;
    let doc: Value =
        serde_json::from_slice(&bytes).map_err(|_| bad("not a token returned by host search"))?;
    let names = doc.get("k").and_then(Value::as_array);
    let values = doc.get("v").and_then(Value::as_array);
    let (Some(names), Some(values)) = (names, values) else {
        return Err(bad("not a token returned by host search"));
    };
    let expected: Vec<String> = keys.iter().map(SortBy::name).collect();
    let given: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
    if given != expected || values.len() != keys.len() {
        return Err(bad(&format!(
            "this token is for another sort order ({}); this request sorts by {}",
            given.join(", "),
            expected.join(", ")
        )));
    }
    keys.iter()
        .zip(values)
        .map(|(key, v)| match v {
            Value::Null => Ok(None),
            Value::String(s) => {
                check_value(&key.property, s).map_err(|why| bad(&why))?;
                Ok(Some(s.clone()))
            }
            _ => Err(bad("not a token returned by host search")),
        })
        .collect()
}

/// A crafted token still only binds values; this makes a wrong one a clear error.
fn check_value(p: &Property, s: &str) -> Result<(), String> {
    match p {
        Property::Datetime | Property::StartDatetime | Property::EndDatetime => {
            Instant::parse(s, "token")
                .map(|_| ())
                .map_err(|e| e.message)
        }
        _ => Ok(()),
    }
}

/// The page as a GeoJSON FeatureCollection, with a `next` link (whose
/// body is the request with the next page's token) when there is a next page.
pub fn feature_collection(req: &SearchRequest, page: &Page) -> String {
    let mut links = Vec::new();
    if let Some(token) = &page.next_token {
        let mut body = req.body.clone();
        body.insert("token".into(), Value::String(token.clone()));
        links.push(json!({
            "rel": "next",
            "type": "application/geo+json",
            "method": "POST",
            "href": "search",
            "token": token,
            "body": body,
            "merge": false,
        }));
    }
    let rows = &page.features;
    let mut out = String::with_capacity(rows.iter().map(|r| r.len() + 1).sum::<usize>() + 256);
    out.push_str("{\"type\":\"FeatureCollection\",\"features\":[");
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r);
    }
    out.push_str("],\"numberReturned\":");
    out.push_str(&rows.len().to_string());
    out.push_str(",\"links\":");
    out.push_str(&Value::Array(links).to_string());
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::request::Direction;
    use crate::search::sql::sort_keys;

    fn keys() -> Vec<SortBy> {
        sort_keys(&[SortBy {
            property: Property::Json("eo:cloud_cover".into()),
            direction: Direction::Desc,
        }])
    }

    #[test]
    fn tokens_round_trip() {
        let k = keys();
        let v = vec![
            Some("12.5".to_string()),
            Some("c".into()),
            Some("i'; drop".into()),
        ];
        let t = encode(&k, &v);
        assert!(t.starts_with("next:"));
        assert_eq!(decode(&t, &k).unwrap(), v);
        let v = vec![None, Some("c".into()), Some("i".into())];
        assert_eq!(decode(&encode(&k, &v), &k).unwrap(), v);
    }

    #[test]
    fn bad_tokens() {
        let k = keys();
        let other = sort_keys(&[]);
        let t = encode(
            &other,
            &[
                Some("2011-08-25T00:00:00.000000Z".into()),
                Some("c".into()),
                Some("i".into()),
            ],
        );
        let e = decode(&t, &k).unwrap_err().to_string();
        assert!(
            e.starts_with("token: this token is for another sort order"),
            "{e}"
        );
        assert!(decode(&t, &other).is_ok());
        for t in [
            "next:zz",
            "abc",
            "next:",
            &format!("next:{}", hex::encode("[1]")),
        ] {
            let e = decode(t, &k).unwrap_err().to_string();
            assert_eq!(e, "token: not a token returned by host search");
        }
        let t = encode(
            &other,
            &[Some("yesterday".into()), Some("c".into()), Some("i".into())],
        );
        assert!(
            decode(&t, &other)
                .unwrap_err()
                .to_string()
                .contains("invalid RFC 3339")
        );
    }

    #[test]
    fn pages() {
        let req = SearchRequest::from_json(&json!({"limit": 2, "ids": ["a", "b", "c"]})).unwrap();
        let q = crate::search::sql::build(&req).unwrap();
        let k = q.keys.clone();
        let row = |id: &str| Row {
            content: format!("{{\"id\": \"{id}\"}}"),
            keys: vec![None, Some("c".into()), Some(id.into())],
        };
        let page = feature_collection(&req, &q.page(vec![row("a"), row("b"), row("c")]));
        let v: Value = serde_json::from_str(&page).unwrap();
        assert_eq!(v["numberReturned"], 2);
        assert_eq!(v["features"][1]["id"], "b");
        let link = &v["links"][0];
        assert_eq!(link["rel"], "next");
        assert_eq!(link["body"]["ids"], json!(["a", "b", "c"]));
        let token = link["body"]["token"].as_str().unwrap();
        assert_eq!(decode(token, &k).unwrap()[2].as_deref(), Some("b"));
        let last = feature_collection(&req, &q.page(vec![row("c")]));
        let v: Value = serde_json::from_str(&last).unwrap();
        assert_eq!(v["links"], json!([]));
        assert_eq!(v["numberReturned"], 1);
    }
}
