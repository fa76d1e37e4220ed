//! The same transforms as `host plugin run set_collection.wasm` / `anonymize.wasm`,
//! compiled natively and called in-process, with the same reader (the host's
//! splitter), the same batch sizes and the same output: the physical limit of
//! the plugin path, for `bench/plugin_languages.py`.
//!
//!     plugin-bench-native items ITEMS.ndjson collection=X > out.ndjson
//!     plugin-bench-native rows ROWS.copy id:integer,email,... key=K email=email > out.copy

use std::io::{BufRead, BufReader, BufWriter, Write};

use host::load::split::{Body, Splitter};
use host_plugin_sdk::run::{ItemResult, rewrite_items, transform_rows};
use host_plugin_sdk::{Params, Plugin, RowTransformer, Table};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: plugin-bench-native items FILE PARAMS... | rows FILE COLUMNS PARAMS...";
    let (mode, file) = (args.first().expect(usage), args.get(1).expect(usage));
    let input = std::fs::File::open(file).expect("input file");
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    match mode.as_str() {
        "items" => {
            let params = Params::parse(args[2..].iter().map(String::as_str));
            let mut plugin = set_collection::SetCollection::new(&params).expect("parameters");
            let mut splitter = Splitter::new(input);
            let mut batch = Vec::with_capacity(256);
            loop {
                let record = splitter.next_record().expect("input");
                let done = record.is_none();
                if let Some(r) = record {
                    let Body::Json(bytes) = r.body else {
                        panic!("item on line {} is over the size limit", r.line)
                    };
                    batch.push(String::from_utf8(bytes).expect("UTF-8"));
                }
                if batch.len() == 256 || (done && !batch.is_empty()) {
                    for r in rewrite_items(&mut plugin, std::mem::take(&mut batch)) {
                        if let ItemResult::Keep(json) = r {
                            out.write_all(json.as_bytes()).unwrap();
                            out.write_all(b"\n").unwrap();
                        }
                    }
                }
                if done {
                    break;
                }
            }
        }
        "rows" => {
            let columns: Vec<(String, String)> = args[2]
                .split(',')
                .map(|c| match c.split_once(':') {
                    Some((n, t)) => (n.to_string(), t.to_string()),
                    None => (c.to_string(), "text".to_string()),
                })
                .collect();
            let cols: Vec<(&str, &str)> = columns
                .iter()
                .map(|(n, t)| (n.as_str(), t.as_str()))
                .collect();
            let table = Table::new("public", "input", &cols);
            let params = Params::parse(args[3..].iter().map(String::as_str));
            let mut plugin = anonymize::Anonymize::new(&params).expect("parameters");
            plugin.begin_table(&table).expect("table");
            let mut reader = BufReader::with_capacity(1 << 20, input);
            let (mut buf, mut n) = (Vec::new(), 0);
            loop {
                let read = reader.read_until(b'\n', &mut buf).unwrap();
                if read > 0 {
                    n += 1;
                }
                if n == 1024 || (read == 0 && n > 0) {
                    let (_, kept) = transform_rows(&mut plugin, &table, &buf).expect("batch");
                    out.write_all(&kept).unwrap();
                    buf.clear();
                    n = 0;
                }
                if read == 0 {
                    break;
                }
            }
        }
        _ => panic!("{usage}"),
    }
    out.flush().unwrap();
}
