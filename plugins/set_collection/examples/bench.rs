//! Native timing of `set_collection` over an NDJSON file of items, for
//! comparing SDK changes quickly (the wasm guest runs the same code, slower):
//!
//!     cargo run --release -p set_collection --example bench -- .bench/s2-100000.ndjson [parse|rewrite]
//!
//! The machine may be shared: `perf stat -e instructions:u` on one mode is
//! steadier than the times printed.
use std::time::Instant;

use host_plugin_sdk::run::rewrite_items;
use host_plugin_sdk::{Item, Params, Plugin};
use set_collection::SetCollection;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: bench ITEMS.ndjson [parse|rewrite]");
    let mode = args.next().unwrap_or_default();
    let text = std::fs::read_to_string(path).unwrap();
    let items: Vec<String> = text.lines().map(str::to_owned).collect();
    let n = items.len() as f64;
    for _ in 0..5 {
        if mode != "rewrite" {
            let t = Instant::now();
            for json in &items {
                std::hint::black_box(Item::parse(json.as_str()).unwrap());
            }
            let ns = t.elapsed().as_secs_f64() / n * 1e9;
            println!("parse (with a copy of the text) {ns:.0} ns/item");
        }
        if mode != "parse" {
            let mut p = SetCollection::new(&Params::parse(["collection=moved"])).unwrap();
            let batches: Vec<Vec<String>> = items.chunks(256).map(<[String]>::to_vec).collect();
            let t = Instant::now();
            for batch in batches {
                std::hint::black_box(rewrite_items(&mut p, batch));
            }
            let ns = t.elapsed().as_secs_f64() / n * 1e9;
            println!("set_collection {ns:.0} ns/item");
        }
    }
}
