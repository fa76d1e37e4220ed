//! Which changes of a group share a statement, and in what order the
//! statements go: changes are gathered into open runs (see [`super::batch`])
//! and a run is sent when it must be.
//!
//! A group's changes need not reach the target in source order, only in an
//! order with the same result. Apply runs as `session_replication_role =
//! replica`, so no foreign key check and no ordinary trigger or rule sees
//! one table's changes relative to another's; and within one table,
//! changes to different keys commute unless a constraint compares rows
//! with different keys. So changes are gathered into *lanes*, each with
//! its own open runs:
//!
//! - [`Order::PerTable`]: one lane per table, and within a table a run per
//!   statement shape (INSERTs, UPDATEs, DELETEs of a table gathered apart),
//!   when nothing on the target can observe the order: the session really
//!   is `replica`, and no streamed table has a trigger or rule that fires
//!   in it (`ENABLE ALWAYS` / `ENABLE REPLICA`) or row security (whose
//!   policies may read other rows). A table keeps one open run at a time
//!   (its changes in source order) when it has a unique index or
//!   exclusion constraint, checked at once, that does not include its
//!   whole key ([`Interleave`]): two changes to different keys could then
//!   meet in it in another order than the source's (a DELETE freeing an
//!   e-mail address before an INSERT takes it). Deferrable constraints are
//!   not checked at all under `replica` (their trigger does not fire), so
//!   order cannot change their outcome.
//! - [`Order::Source`] otherwise: one lane for everything and one open
//!   run, so statements follow source order exactly.
//!
//! In every lane, a change whose key is already in one of the lane's open
//! runs sends those runs first (so a key's INSERT, UPDATE and DELETE stay
//! in order; keys are told apart by a 64-bit hash of their bytes, so two
//! different keys with one hash only send runs sooner than needed), and a change that cannot be in a run (an UPDATE moving its
//! key, a change on a target that cannot count it) sends its lane's runs,
//! then goes alone. A TRUNCATE and the group's COMMIT send everything.
//! Failing runs are retried one change per statement in source order (see
//! [`super::target`]), so a reordered group never hides which change failed.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use super::Op;
use super::statements::Shape;

/// Changes in one run at most.
pub const RUN_CHANGES: usize = 4096;
/// Changes held in open runs at most (all are sent past it).
const HELD_CHANGES: usize = 16_384;

/// Whether one table's changes may be gathered apart from another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Lanes per table (nothing on the target observes cross-table order).
    PerTable,
    /// One lane: statements in source order.
    Source,
}

/// Whether a table's INSERTs, UPDATEs and DELETEs of different keys may
/// be gathered apart (in [`Order::PerTable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interleave {
    /// No constraint checked at once compares rows with different keys.
    Kinds,
    /// One open run at a time: its changes go in source order.
    InOrder,
}

/// A key's hash, as [`Gather::add`] takes it (from
/// [`super::batch::key_bytes`]).
pub fn key_hash(key: &[u8]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    h.write(key);
    h.finish()
}

/// The sets of open runs hold hashes already: no need to hash them again.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64`s are hashed here; fold anything else in all the same.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type KeySet = HashSet<u64, BuildHasherDefault<Prehashed>>;

/// An open run.
struct Open {
    lane: usize,
    shape: Shape,
    expect: super::Expect,
    table: usize,
    ops: Vec<Op>,
    keys: KeySet,
}

/// The open runs of a group.
pub struct Gather {
    order: Order,
    /// Per table.
    interleave: Vec<Interleave>,
    /// In the order they were opened.
    open: Vec<Open>,
    held: usize,
}

impl Gather {
    pub fn new(order: Order, interleave: Vec<Interleave>) -> Gather {
        Gather {
            order,
            interleave,
            open: Vec::new(),
            held: 0,
        }
    }

    fn lane(&self, table: usize) -> usize {
        match self.order {
            Order::PerTable => table,
            Order::Source => 0,
        }
    }

    /// Takes a change (`key`: its key's [`key_hash`], for a change that may
    /// be in a run; `None`: it goes alone) and appends what must be sent
    /// now, in order, to `out` (each entry one statement: a run, or one change).
    pub fn add(&mut self, op: Op, key: Option<u64>, out: &mut Vec<Vec<Op>>) {
        let lane = self.lane(op.table);
        let Some(key) = key else {
            self.send_lane(lane, out);
            out.push(vec![op]);
            return;
        };
        let kinds = self.order == Order::PerTable && self.interleave[op.table] == Interleave::Kinds;
        let mut in_lane = self.open.iter().filter(|r| r.lane == lane);
        let collides = in_lane.clone().any(|r| r.keys.contains(&key));
        let joins = |r: &Open| r.table == op.table && r.shape == op.shape && r.expect == op.expect;
        let fits = !collides && (kinds || in_lane.all(&joins));
        if !fits {
            self.send_lane(lane, out);
        }
        let at = match self.open.iter().position(|r| r.lane == lane && joins(r)) {
            Some(at) => at,
            None => {
                self.open.push(Open {
                    lane,
                    shape: op.shape.clone(),
                    expect: op.expect,
                    table: op.table,
                    ops: Vec::new(),
                    keys: KeySet::default(),
                });
                self.open.len() - 1
            }
        };
        let run = &mut self.open[at];
        run.keys.insert(key);
        run.ops.push(op);
        self.held += 1;
        if run.ops.len() >= RUN_CHANGES {
            let run = self.open.remove(at);
            self.held -= run.ops.len();
            out.push(run.ops);
        }
        if self.held > HELD_CHANGES {
            self.send_all(out);
        }
    }

    /// Every open run of a lane, in the order opened.
    fn send_lane(&mut self, lane: usize, out: &mut Vec<Vec<Op>>) {
        let mut i = 0;
        while i < self.open.len() {
            if self.open[i].lane == lane {
                let run = self.open.remove(i);
                self.held -= run.ops.len();
                out.push(run.ops);
            } else {
                i += 1;
            }
        }
    }

    /// Every open run, in the order opened.
    pub fn send_all(&mut self, out: &mut Vec<Vec<Op>>) {
        self.held = 0;
        out.extend(self.open.drain(..).map(|r| r.ops));
    }

    /// Drops every open run (the group is rolled back).
    pub fn clear(&mut self) {
        self.held = 0;
        self.open.clear();
    }
}
