//! `{{name}}`: a host item rewriter. It sets a top-level `tag` on every item.

use host_plugin_sdk::{Item, ItemOutcome, ItemRewriter, Params, Plugin};

/// Tags every item; parameter `tag` (default `{{name}}`).
pub struct {{Type}} {
    tag: String,
}

impl Plugin for {{Type}} {
    fn new(params: &Params) -> Result<Self, String> {
        params.only(&["tag"])?;
        let tag = params.get("tag")?.unwrap_or("{{name}}").to_owned();
        Ok({{Type}} { tag })
    }
}

impl ItemRewriter for {{Type}} {
    fn rewrite(&mut self, mut item: Item) -> ItemOutcome {
        if item.id().is_none() {
            return ItemOutcome::Reject("the item has no `id`".into());
        }
        // Only the top level is parsed; everything else passes through as given.
        item.set("tag", &self.tag);
        ItemOutcome::Keep(item)
    }
}

host_plugin_sdk::export_item_rewriter!({{Type}});

#[cfg(test)]
mod tests {
    use super::*;
    use host_plugin_sdk::run::{ItemResult, rewrite_items};

    #[test]
    fn tags_items_and_rejects_those_without_id() {
        let mut p = {{Type}}::new(&Params::parse(["tag=t1"])).unwrap();
        let out = rewrite_items(&mut p, vec![r#"{"id":"a", "n":1}"#.into(), "{}".into()]);
        assert_eq!(out[0], ItemResult::Keep(r#"{"id":"a","n":1,"tag":"t1"}"#.into()));
        assert_eq!(out[1], ItemResult::Reject("the item has no `id`".into()));
        assert!({{Type}}::new(&Params::parse(["nope=1"])).is_err());
    }
}
