//! A load as a catalog sees it: which collections exist, how a record
//! becomes a COPY row ([`Rows`]), where COPY sends the rows, and how staged
//! rows are merged and committed ([`LoadSession::finish`]). The streaming
//! itself (sources, plugins, validation) is `crate::load`'s.
//!
//! The session drives its transactions with plain `BEGIN`/`COMMIT`, because
//! pgstac's load commits its staged rows, prepares partitions in short
//! transactions of its own and merges in a third (see [`super::pgstac`]);
//! on any error, [`LoadSession::abort`] rolls back what is open.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use tokio_postgres::{Client, CopyInSink};

use super::{CatalogError, Kind, Merged, builtin, pgstac};
use crate::stac::{Invalid, ItemFields};

/// How records become binary COPY rows for one catalog. Cheap to clone and
/// shared by the threads that write rows.
#[derive(Debug, Clone)]
pub enum Rows {
    /// host's schema; `numbered`: rows start with their place in the load
    /// (staged loads, where "last one wins" needs it).
    Host { numbered: bool },
    /// pgstac: items dehydrated against these collections' base items;
    /// `numbered` as for host's schema (only collections' rows are: item
    /// rows may go straight into a partition of `pgstac.items`, and the
    /// staging table numbers those it takes itself).
    Pgstac {
        collections: Arc<pgstac::Collections>,
        numbered: bool,
    },
}

impl Rows {
    /// Whether rows carry their place in the load.
    pub fn numbered(&self) -> bool {
        match self {
            Rows::Host { numbered } | Rows::Pgstac { numbered, .. } => *numbered,
        }
    }

    /// Whether writing a row is work enough to spread a batch over threads
    /// (pgstac parses every item whole to dehydrate it).
    pub fn parallel(&self) -> bool {
        matches!(self, Rows::Pgstac { .. })
    }

    /// The item text to validate and write: pgstac reads numbers the way
    /// pypgstac does (see [`pgstac::numbers`]); host's schema keeps the text.
    pub fn item_text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self {
            Rows::Host { .. } => Cow::Borrowed(text),
            Rows::Pgstac { .. } => pgstac::numbers::integer_zero(text),
        }
    }

    /// Appends one item row, or says why the catalog cannot store the item.
    pub fn write_item(
        &self,
        out: &mut Vec<u8>,
        seq: Option<u64>,
        fields: &ItemFields<'_>,
        text: &str,
    ) -> Result<(), Invalid> {
        match self {
            Rows::Host { .. } => {
                builtin::rows::write_item(out, seq, fields, text);
                Ok(())
            }
            Rows::Pgstac { collections, .. } => pgstac::rows::write_item(out, fields, collections),
        }
    }

    /// Appends one collection row, or says why the catalog cannot store it.
    pub fn write_collection(
        &self,
        out: &mut Vec<u8>,
        seq: Option<u64>,
        id: &str,
        text: &str,
    ) -> Result<(), Invalid> {
        match self {
            Rows::Host { .. } => {
                builtin::rows::write_collection(out, seq, id, text);
                Ok(())
            }
            Rows::Pgstac { .. } => {
                pgstac::rows::write_collection(out, seq.unwrap_or_default(), id, text)
            }
        }
    }
}

/// Whether a load's item rows came in strictly increasing `(collection, id)`
/// order, compared bytewise. Then the rows hold no id twice and are already
/// in the order the merge writes them in (bytewise, `COLLATE "C"`: any one
/// order every load uses keeps concurrent loads from deadlocking), so the
/// merge needs neither a duplicate check nor a sort. Sorted inputs are the
/// common case (exports, generated ids); anything else is merged as before.
#[derive(Debug, Clone, Default)]
pub struct KeyOrder {
    first: Option<(String, String)>,
    last: Option<(String, String)>,
    broken: bool,
}

impl KeyOrder {
    /// Notes the next row's key.
    pub fn push(&mut self, collection: &str, id: &str) {
        match &mut self.last {
            None => {
                let key = (collection.to_string(), id.to_string());
                self.first = Some(key.clone());
                self.last = Some(key);
            }
            Some(last) => {
                if !self.broken && (collection, id) <= (last.0.as_str(), last.1.as_str()) {
                    self.broken = true;
                }
                // Reuses the strings' buffers: this runs for every row.
                last.0.clear();
                last.0.push_str(collection);
                last.1.clear();
                last.1.push_str(id);
            }
        }
    }

    /// Notes rows that follow these.
    pub fn append(&mut self, next: KeyOrder) {
        let Some(first) = next.first else { return };
        self.broken |= next.broken || self.last.as_ref().is_some_and(|last| *last >= first);
        self.first.get_or_insert(first);
        self.last = next.last;
    }

    /// Whether every row's key is greater than the one before it.
    pub fn strictly_increasing(&self) -> bool {
        !self.broken
    }

    /// Whether these rows followed by `next`'s would still be strictly
    /// increasing (then no row of `next` repeats a key of these).
    pub fn continues_with(&self, next: &KeyOrder) -> bool {
        !self.broken
            && !next.broken
            && match (&self.last, &next.first) {
                (Some(last), Some(first)) => last < first,
                _ => true,
            }
    }
}

/// How a catalog finishes (or abandons) the load it began.
#[derive(Debug)]
pub(super) enum Finish {
    Host(builtin::load::Plan),
    Pgstac(pgstac::load::Plan),
}

/// One load into a catalog, begun by [`super::Catalog::begin_load`]:
/// a transaction is open and the staging COPY writes to is ready.
#[derive(Debug)]
pub struct LoadSession {
    kind: Kind,
    known: HashSet<String>,
    rows: Rows,
    finish: Finish,
}

impl LoadSession {
    pub(super) fn new(
        kind: Kind,
        known: HashSet<String>,
        rows: Rows,
        finish: Finish,
    ) -> LoadSession {
        LoadSession {
            kind,
            known,
            rows,
            finish,
        }
    }

    /// What the load writes.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The collections in the database (for items; empty for collections).
    pub fn known_collections(&self) -> &HashSet<String> {
        &self.known
    }

    /// How records become rows.
    pub fn rows(&self) -> &Rows {
        &self.rows
    }

    /// Whether the COPY last started takes the next rows, of `collections`
    /// with keys as `order` says (and if so, notes that it got them); if
    /// not, the caller ends it and starts another with [`Self::copy_in`].
    pub fn takes(&mut self, collections: &BTreeSet<String>, order: &KeyOrder) -> bool {
        match &mut self.finish {
            Finish::Host(_) => true,
            Finish::Pgstac(p) => p.takes(collections, order),
        }
    }

    /// Starts a COPY for the next rows, of `collections` with keys as
    /// `order` says (the load's first rows, or rows the COPY before did not
    /// take); the caller sends [`crate::copy::binary::HEADER`], the rows,
    /// then the trailer.
    pub async fn copy_in(
        &mut self,
        client: &Client,
        collections: &BTreeSet<String>,
        order: &KeyOrder,
    ) -> Result<CopyInSink<Bytes>, CatalogError> {
        let statement = match &mut self.finish {
            Finish::Host(p) => Cow::Borrowed(p.copy_statement()),
            Finish::Pgstac(p) => p.copy_target(client, collections, order).await?,
        };
        client
            .copy_in(statement.as_ref())
            .await
            .map_err(|e| CatalogError::load(self.kind, e))
    }

    /// Merges the `staged` rows COPY took with the load's method and
    /// commits; `collections` are those the rows belong to, `order` how
    /// their keys came.
    pub async fn finish(
        self,
        client: &Client,
        staged: u64,
        collections: &[String],
        order: &KeyOrder,
    ) -> Result<Merged, CatalogError> {
        let result = match &self.finish {
            Finish::Host(p) => p.finish(client, staged, collections).await,
            Finish::Pgstac(p) => p.finish(client, staged, collections, order).await,
        };
        if result.is_err() {
            self.abort(client).await;
        }
        result
    }

    /// Rolls back what the load left open; errors are ignored (the
    /// connection may be gone, which rolls back too).
    pub async fn abort(self, client: &Client) {
        let _ = client.batch_execute("ROLLBACK").await;
        if let Finish::Pgstac(p) = &self.finish {
            p.drop_staging(client).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::KeyOrder;

    fn order(keys: &[&[(&str, &str)]]) -> bool {
        let mut all = KeyOrder::default();
        for part in keys {
            let mut o = KeyOrder::default();
            for (c, i) in *part {
                o.push(c, i);
            }
            all.append(o);
        }
        all.strictly_increasing()
    }

    #[test]
    fn only_strictly_increasing_keys_are_in_order() {
        assert!(order(&[]));
        assert!(order(&[&[("a", "1"), ("a", "2")], &[], &[("b", "0")]]));
        // Bytewise: "B" < "a".
        assert!(order(&[&[("c", "B"), ("c", "a")]]));
        assert!(!order(&[&[("c", "a"), ("c", "B")]]));
        // A repeated id is not in order (the merge must find duplicates).
        assert!(!order(&[&[("a", "1"), ("a", "1")]]));
        assert!(!order(&[&[("a", "1")], &[("a", "1")]]));
        // Across parts, and a later part broken within itself.
        assert!(!order(&[&[("a", "2")], &[("a", "1"), ("a", "3")]]));
        assert!(!order(&[&[("a", "1")], &[("a", "3"), ("a", "2")]]));
        // The collection comes first.
        assert!(order(&[&[("a", "9"), ("b", "1")]]));
        assert!(!order(&[&[("b", "1"), ("a", "9")]]));
    }

    fn keys(keys: &[(&str, &str)]) -> KeyOrder {
        let mut o = KeyOrder::default();
        for (c, i) in keys {
            o.push(c, i);
        }
        o
    }

    #[test]
    fn rows_continue_the_order_only_with_greater_keys() {
        let sent = keys(&[("a", "1"), ("a", "3")]);
        assert!(sent.continues_with(&keys(&[("a", "4"), ("a", "5")])));
        assert!(sent.continues_with(&KeyOrder::default()));
        assert!(KeyOrder::default().continues_with(&sent));
        // The last key again, one before it, or a later part out of order.
        assert!(!sent.continues_with(&keys(&[("a", "3")])));
        assert!(!sent.continues_with(&keys(&[("a", "2"), ("a", "9")])));
        assert!(!sent.continues_with(&keys(&[("a", "4"), ("a", "4")])));
        assert!(!keys(&[("a", "2"), ("a", "1")]).continues_with(&keys(&[("a", "9")])));
    }
}
