//! `set_collection`: moves STAC items to another collection. See README.md.

use host_plugin_sdk::serde_json::value::RawValue;
use host_plugin_sdk::stac::relink_collection;
use host_plugin_sdk::{Item, ItemOutcome, ItemRewriter, JsonObject, Params, Plugin};

/// Sets `collection` on every item and relinks it.
pub struct SetCollection {
    collection: String,
}

impl Plugin for SetCollection {
    fn new(params: &Params) -> Result<Self, String> {
        params.only(&["collection"])?;
        let collection = params.require("collection")?;
        if collection.is_empty() {
            return Err("parameter `collection` must not be empty".into());
        }
        Ok(SetCollection {
            collection: collection.into(),
        })
    }
}

impl ItemRewriter for SetCollection {
    fn rewrite(&mut self, mut item: Item) -> ItemOutcome {
        if item.id().is_none() {
            return ItemOutcome::Reject("the item has no `id` string".into());
        }
        let old = item.collection().map(|c| c.into_owned());
        if old.as_deref() == Some(self.collection.as_str()) {
            return ItemOutcome::Keep(item); // nothing to do: the item goes out as it came
        }
        item.set("collection", &self.collection);
        if let Some(old) = old {
            match relink(&item, &old, &self.collection) {
                Ok(Some(links)) => {
                    if let Err(e) = item.set_json("links", links) {
                        return ItemOutcome::Reject(e);
                    }
                }
                Ok(None) => {}
                Err(e) => return ItemOutcome::Reject(e),
            }
        }
        ItemOutcome::Keep(item)
    }
}

/// The item's `links` array as JSON text, with the links pointing at
/// collection `old` pointed at `new`; `None` if no link changes.
///
/// Links that do not change keep their text as given; a changed link is
/// printed compactly (as [`JsonObject::to_json`] prints it), and the array
/// too: `[link,link,...]`.
fn relink(item: &Item, old: &str, new: &str) -> Result<Option<String>, String> {
    // Borrowed: no copy of links that stay as they are.
    let Some(links) = item.get_as::<Vec<&RawValue>>("links")? else {
        return Ok(None);
    };
    let mut out = String::new();
    let mut changed = false;
    for (i, raw) in links.iter().enumerate() {
        let mut link = JsonObject::parse(raw.get()).map_err(|e| format!("`links`: {e}"))?;
        let new_href = match (link.get_str("rel"), link.get_str("href")) {
            (Some(rel), Some(href)) => relink_collection(&href, &rel, old, new),
            _ => None,
        };
        if let Some(href) = new_href {
            if !changed {
                // Everything before this link, as given.
                out.reserve(item.get_raw("links").map_or(0, str::len) + 64);
                out.push('[');
                for (j, before) in links[..i].iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    out.push_str(before.get());
                }
                changed = true;
            }
            if i > 0 {
                out.push(',');
            }
            link.set("href", href);
            out.push_str(&link.to_json());
        } else if changed {
            out.push(',');
            out.push_str(raw.get());
        }
    }
    if !changed {
        return Ok(None);
    }
    out.push(']');
    Ok(Some(out))
}

host_plugin_sdk::export_item_rewriter!(SetCollection);

#[cfg(test)]
mod tests {
    use super::*;
    use host_plugin_sdk::run::{ItemResult, rewrite_items};

    fn run(args: &[&str], item: &str) -> ItemResult {
        let mut p = SetCollection::new(&Params::parse(args.iter().copied())).unwrap();
        rewrite_items(&mut p, vec![item.to_owned()]).remove(0)
    }

    #[test]
    fn sets_collection_and_relinks() {
        let item = r#"{"id":"a","collection":"old","links":[
            {"rel":"collection","href":"https://x/collections/old","type":"application/json"},
            {"rel":"parent","href":"../old/collection.json"},
            {"rel":"self","href":"https://x/collections/old/items/a"},
            {"rel":"root","href":"https://x/"},
            {"rel":"parent","href":"https://x/collections/other"}],"assets":{"b":{"href":"\u00e9"}}}"#;
        let ItemResult::Keep(out) = run(&["collection=new"], item) else {
            panic!()
        };
        assert_eq!(
            out,
            r#"{"id":"a","collection":"new","links":[{"rel":"collection","href":"https://x/collections/new","type":"application/json"},{"rel":"parent","href":"../new/collection.json"},{"rel":"self","href":"https://x/collections/new/items/a"},{"rel":"root","href":"https://x/"},{"rel":"parent","href":"https://x/collections/other"}],"assets":{"b":{"href":"\u00e9"}}}"#
        );
    }

    #[test]
    fn adds_collection_without_inventing_links() {
        let out = run(
            &["collection=new"],
            r#"{"id":"a","links":[{"rel":"self","href":"x"}]}"#,
        );
        assert_eq!(
            out,
            ItemResult::Keep(
                r#"{"id":"a","links":[{"rel":"self","href":"x"}],"collection":"new"}"#.into()
            )
        );
        // Already there: the item comes out byte for byte.
        let same = r#"{ "id" : "a", "collection" : "new" }"#;
        assert_eq!(
            run(&["collection=new"], same),
            ItemResult::Keep(same.into())
        );
    }

    #[test]
    fn rejects_items_without_id_and_bad_params() {
        assert_eq!(
            run(&["collection=n"], r#"{"collection":"o"}"#),
            ItemResult::Reject("the item has no `id` string".into())
        );
        assert!(
            matches!(run(&["collection=n"], r#"{"id":"a","collection":"o","links":{}}"#), ItemResult::Reject(e) if e.starts_with("`links`"))
        );
        assert!(
            matches!(run(&["collection=n"], "[]"), ItemResult::Reject(e) if e.starts_with("invalid JSON object"))
        );
        let err = |args: &[&str]| {
            SetCollection::new(&Params::parse(args.iter().copied()))
                .err()
                .unwrap()
        };
        assert_eq!(err(&[]), "missing required parameter `collection`");
        assert_eq!(
            err(&["collection="]),
            "parameter `collection` must not be empty"
        );
        assert_eq!(
            err(&["collection=a", "colection=b"]),
            "unknown parameter `colection` (this plugin accepts: collection)"
        );
    }
}
