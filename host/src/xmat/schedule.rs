//! What a worker does next: copy a table, add a foreign key, wait, or stop.
//!
//! Tables go first, biggest first, so the longest copy starts at once. A
//! foreign key is ready as soon as both its tables are loaded (committed
//! with their keys and indexes), so a worker with no table left validates
//! keys while the last big tables are still copying, instead of idling
//! until every copy is done (as `pg_restore -j` schedules its items). Two
//! keys that share a table never run together: each locks both its tables,
//! and two keys over the same pair in opposite directions would deadlock.
//!
//! This is the bookkeeping only, without I/O, so the rules are tested on
//! their own; [`super::run`] drives it.

use std::collections::{HashMap, HashSet, VecDeque};

use super::plan::ForeignKey;

/// A worker's next piece of work.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Copy table `i` (an index into `Plan::tables`).
    Table(usize),
    /// Add this key; the referencing and referenced tables hold this many rows.
    Key {
        key: ForeignKey,
        referencing: u64,
        referenced: u64,
    },
    /// Keys are left, but none can start yet: wait for a table or a key to finish.
    Wait,
    /// Nothing is left for this worker (or the job failed).
    Done,
}

/// The state of one job's tables and keys.
#[derive(Debug)]
pub struct Schedule {
    /// Tables not started yet, in the order to start them.
    queue: VecDeque<usize>,
    /// Tables started and not loaded yet.
    copying: usize,
    /// Loaded tables and the rows written to each.
    loaded: HashMap<usize, u64>,
    /// Keys not started yet, in plan order (referenced tables first).
    keys: VecDeque<ForeignKey>,
    /// Tables that a running key has locked.
    locked: HashSet<usize>,
    failed: bool,
}

impl Schedule {
    /// `tables`: each table's index and size in bytes.
    pub fn new(tables: impl IntoIterator<Item = (usize, u64)>, keys: &[ForeignKey]) -> Schedule {
        let mut tables: Vec<(usize, u64)> = tables.into_iter().collect();
        // Biggest first; ties keep plan order.
        tables.sort_by_key(|&(_, bytes)| std::cmp::Reverse(bytes));
        Schedule {
            queue: tables.into_iter().map(|(i, _)| i).collect(),
            copying: 0,
            loaded: HashMap::new(),
            keys: keys.iter().cloned().collect(),
            locked: HashSet::new(),
            failed: false,
        }
    }

    /// Takes the next piece of work.
    pub fn next(&mut self) -> Next {
        if self.failed {
            return Next::Done;
        }
        if let Some(i) = self.queue.pop_front() {
            self.copying += 1;
            return Next::Table(i);
        }
        let ready = self.keys.iter().position(|k| {
            [k.from, k.to]
                .iter()
                .all(|t| self.loaded.contains_key(t) && !self.locked.contains(t))
        });
        match ready {
            Some(at) => {
                let key = self.keys.remove(at).expect("in range");
                self.locked.extend([key.from, key.to]);
                Next::Key {
                    referencing: self.loaded[&key.from],
                    referenced: self.loaded[&key.to],
                    key,
                }
            }
            None if self.keys.is_empty() => Next::Done,
            None => Next::Wait,
        }
    }

    /// Table `i` is loaded with `rows` rows.
    pub fn table_loaded(&mut self, i: usize, rows: u64) {
        self.copying -= 1;
        self.loaded.insert(i, rows);
    }

    /// A key taken with [`Schedule::next`] is added.
    pub fn key_added(&mut self, key: &ForeignKey) {
        self.locked.remove(&key.from);
        self.locked.remove(&key.to);
    }

    /// Something failed: every worker stops at its next call.
    pub fn fail(&mut self) {
        self.failed = true;
    }

    /// Every table is loaded (or the job failed): no worker will read the
    /// source again.
    pub fn tables_done(&self) -> bool {
        self.failed || (self.queue.is_empty() && self.copying == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(from: usize, to: usize) -> ForeignKey {
        ForeignKey {
            name: format!("k{from}{to}"),
            sql: format!("k{from}{to}"),
            columns: Vec::new(),
            ref_columns: Vec::new(),
            from,
            to,
        }
    }

    fn table(n: &Next) -> usize {
        match n {
            Next::Table(i) => *i,
            other => panic!("expected a table, got {other:?}"),
        }
    }

    fn key_name(n: &Next) -> &str {
        match n {
            Next::Key { key, .. } => &key.name,
            other => panic!("expected a key, got {other:?}"),
        }
    }

    #[test]
    fn tables_go_biggest_first_then_keys() {
        let mut s = Schedule::new([(0, 10), (1, 30), (2, 20)], &[key(1, 0)]);
        assert_eq!([s.next(), s.next(), s.next()].map(|n| table(&n)), [1, 2, 0]);
        assert_eq!(s.next(), Next::Wait, "the key's tables are still copying");
        s.table_loaded(1, 7);
        s.table_loaded(0, 5);
        assert!(!s.tables_done(), "table 2 is still copying");
        match s.next() {
            Next::Key {
                key,
                referencing,
                referenced,
            } => {
                assert_eq!(key.name, "k10");
                assert_eq!((referencing, referenced), (7, 5));
            }
            other => panic!("expected the key, got {other:?}"),
        }
        assert_eq!(s.next(), Next::Done, "no key is left for another worker");
        s.table_loaded(2, 1);
        assert!(s.tables_done());
    }

    #[test]
    fn a_key_starts_while_other_tables_still_copy() {
        let mut s = Schedule::new([(0, 1), (1, 1), (2, 100)], &[key(0, 1), key(2, 0)]);
        let started: Vec<usize> = (0..3).map(|_| table(&s.next())).collect();
        assert_eq!(started, [2, 0, 1]);
        s.table_loaded(0, 1);
        s.table_loaded(1, 1);
        assert_eq!(key_name(&s.next()), "k01", "table 2 is not needed for it");
        assert_eq!(s.next(), Next::Wait);
    }

    #[test]
    fn keys_sharing_a_table_never_run_together() {
        // Both ways between 0 and 1, a self-reference on 0, and 2 -> 3.
        let keys = [key(0, 1), key(1, 0), key(0, 0), key(2, 3)];
        let mut s = Schedule::new((0..4).map(|i| (i, 1)), &keys);
        for _ in 0..4 {
            let i = table(&s.next());
            s.table_loaded(i, 1);
        }
        let a = s.next();
        let b = s.next();
        assert_eq!([key_name(&a), key_name(&b)], ["k01", "k23"]);
        assert_eq!(s.next(), Next::Wait, "k10 and k00 need table 0 or 1");
        let Next::Key { key: first, .. } = a else {
            unreachable!()
        };
        s.key_added(&first);
        assert_eq!(key_name(&s.next()), "k10");
        assert_eq!(s.next(), Next::Wait, "k00 needs table 0, which k10 holds");
    }

    #[test]
    fn a_failure_stops_everyone() {
        let mut s = Schedule::new([(0, 1), (1, 1)], &[key(0, 1)]);
        table(&s.next());
        s.fail();
        assert_eq!(s.next(), Next::Done, "table 1 is never started");
        assert!(s.tables_done());
    }
}
