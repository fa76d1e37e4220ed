//! A test plugin that misbehaves on purpose, so the host's tests can show
//! that it survives. Built on the raw bindings (not the SDK) so that it can
//! also break the protocol. The behaviour is chosen with `mode=`; see README.md.

use std::cell::RefCell;
use std::io::Write;

wit_bindgen::generate!({
    world: "item-rewriter",
    path: "../../../wit/v0.1",
});

use exports::host::plugin::{item_rewrite, plugin};
use host::plugin::types::{ItemOutcome, Kind, Param, PluginInfo};
use serde_json::{Map, Value, json};

const MODES: &str =
    "loop, alloc, panic, panic-on-id:ID, file, env, socket, wrong-count, bad-json, stdout, ok";

thread_local! {
    static MODE: RefCell<Option<String>> = const { RefCell::new(None) };
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Hostile;

impl plugin::Guest for Hostile {
    fn info() -> PluginInfo {
        PluginInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: Kind::ItemRewriter,
            description: env!("CARGO_PKG_DESCRIPTION").into(),
        }
    }

    fn configure(params: Vec<Param>) -> Result<(), String> {
        let mut mode = None;
        for p in params {
            match p.key.as_str() {
                "mode"
                    if MODES.split(", ").any(|m| {
                        m == p.value
                            || (m == "panic-on-id:ID" && p.value.starts_with("panic-on-id:"))
                    }) =>
                {
                    mode = Some(p.value)
                }
                "mode" => return Err(format!("unknown mode `{}` (modes: {MODES})", p.value)),
                other => {
                    return Err(format!(
                        "unknown parameter `{other}` (this plugin accepts: mode)"
                    ));
                }
            }
        }
        let mode =
            mode.ok_or_else(|| format!("missing required parameter `mode` (modes: {MODES})"))?;
        MODE.with_borrow_mut(|m| *m = Some(mode));
        Ok(())
    }
}

/// Keeps every item, with `leak` added to it when there is one to show.
fn keep_all(items: Vec<String>, leak: Option<(&str, Value)>) -> Vec<ItemOutcome> {
    items
        .into_iter()
        .map(|json| match &leak {
            None => ItemOutcome::Keep(json),
            Some((key, value)) => {
                let mut item: Map<String, Value> = serde_json::from_str(&json).unwrap_or_default();
                item.insert((*key).into(), value.clone());
                ItemOutcome::Keep(Value::Object(item).to_string())
            }
        })
        .collect()
}

fn reject_all(items: &[String], reason: &str) -> Vec<ItemOutcome> {
    items
        .iter()
        .map(|_| ItemOutcome::Reject(reason.into()))
        .collect()
}

impl item_rewrite::Guest for Hostile {
    fn rewrite_items(items: Vec<String>) -> Result<Vec<ItemOutcome>, String> {
        let mode = MODE
            .with_borrow(|m| m.clone())
            .ok_or("the plugin is not configured")?;
        Ok(match mode.as_str() {
            "loop" => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                // vec! with a non-zero byte writes every page of the GiB.
                let big = std::hint::black_box(vec![0xa5u8; 1 << 30]);
                keep_all(items, Some(("allocated_bytes", json!(big.len()))))
            }
            "panic" => panic!("hostile plugin panicked on purpose"),
            "file" => match std::fs::read_to_string("/etc/passwd") {
                Ok(content) => keep_all(items, Some(("leaked_file", json!(content)))),
                Err(e) => reject_all(&items, &format!("reading /etc/passwd failed: {e}")),
            },
            "env" => {
                let secret = std::env::var("HOST_SECRET");
                let vars: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
                let args: Vec<String> = std::env::args().collect();
                match secret {
                    Err(e) if vars.is_empty() && args.is_empty() => reject_all(
                        &items,
                        &format!(
                            "HOST_SECRET: {e}; no environment variable and no argument visible"
                        ),
                    ),
                    secret => {
                        let leak = json!({"HOST_SECRET": secret.ok(), "vars": vars, "args": args});
                        keep_all(items, Some(("leaked_env", leak)))
                    }
                }
            }
            "socket" => {
                let mut errors = Vec::new();
                for addr in ["127.0.0.1:1", "127.0.0.1:55432"] {
                    match std::net::TcpStream::connect(addr) {
                        Ok(_) => {
                            return Ok(keep_all(
                                items,
                                Some(("leaked_socket", json!(format!("connected to {addr}")))),
                            ));
                        }
                        Err(e) => errors.push(format!("connecting to {addr} failed: {e}")),
                    }
                }
                reject_all(&items, &errors.join("; "))
            }
            "wrong-count" => {
                let n = items.len().saturating_sub(1);
                keep_all(items.into_iter().take(n).collect(), None)
            }
            "bad-json" => items
                .iter()
                .map(|_| ItemOutcome::Keep("{not json".into()))
                .collect(),
            "stdout" => {
                let line = format!("{}\n", "x".repeat(1023));
                let mut out = std::io::stdout().lock();
                for _ in 0..100 {
                    out.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
                }
                out.flush().map_err(|e| e.to_string())?;
                eprintln!("hostile plugin wrote 100 KB to stdout");
                keep_all(items, None)
            }
            "ok" => keep_all(items, None),
            panic_on => {
                let id = panic_on
                    .strip_prefix("panic-on-id:")
                    .expect("modes are checked in configure");
                for item in &items {
                    let v: Value = serde_json::from_str(item).unwrap_or_default();
                    if v.get("id").and_then(Value::as_str) == Some(id) {
                        panic!("hostile plugin panicked on purpose on item {id}");
                    }
                }
                keep_all(items, None)
            }
        })
    }
}

// Native builds (clippy, `cargo test --workspace`) cannot link exports named
// like `host:plugin/plugin@0.1.0#info`; only the wasm build exports.
#[cfg(target_arch = "wasm32")]
export!(Hostile);
