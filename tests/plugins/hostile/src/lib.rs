//! A test plugin that misbehaves on purpose, so the host's tests can show
//! that it survives. Built on the raw bindings (not the SDK) so that it can
//! also break the protocol. The behaviour is chosen with `mode=`; see README.md.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::RefCell;
use std::hash::BuildHasher;
use std::io::Write;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

wit_bindgen::generate!({
    inline: "
        package test:hostile;
        world hostile {
            include host:plugin/item-rewriter@0.1.0;
            import wasi:random/random@0.2.0;
        }
    ",
    path: ["../../../wit/v0.1", "wit/random"],
    world: "test:hostile/hostile",
    generate_all,
});

use exports::host::plugin::{item_rewrite, plugin};
use host::plugin::types::{ItemOutcome, Kind, Param, PluginInfo};
use serde_json::{Map, Value, json};

/// Every mode; `:N` takes a number, `:ID` an item id.
const MODES: &[&str] = &[
    "ok",
    "loop",
    "alloc",
    "panic",
    "panic-on-id:ID",
    "file",
    "env",
    "socket",
    "wrong-count",
    "bad-json",
    "lie:KIND",
    "stdout",
    "stderr:N",
    "exit:N",
    "sleep:N",
    "sleep-forever",
    "configure-sleep:N",
    "observe",
    "error-bytes:N",
    "reject-bytes:N",
    "keep-bytes:N",
    "configure-error:N",
    "reject-escapes",
    "reject-seen",
    "echo:ID",
    "error-echo:ID",
];

thread_local! {
    static MODE: RefCell<Option<Mode>> = const { RefCell::new(None) };
}

/// How `lie:KIND` spoils the second item of each batch.
const LIES: &[&str] = &[
    "non-object",
    "two-objects",
    "trailing",
    "truncated",
    "empty",
    "nul",
    "surrogate",
];

/// The chosen mode: its name and its argument (after `:`), if any.
#[derive(Clone)]
struct Mode {
    name: String,
    arg: String,
    /// When `configure` ran, by the plugin's own clock.
    configured: Instant,
}

impl Mode {
    fn n(&self) -> u64 {
        self.arg.parse().expect("checked in configure")
    }
}

/// Frees nothing once told to: a plugin that hands the host the same bytes
/// many times (one allocation behind every string) must not free them once
/// per string afterwards.
struct Leaky;

static LEAK: AtomicBool = AtomicBool::new(false);

unsafe impl GlobalAlloc for Leaky {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !LEAK.load(Ordering::Relaxed) {
            unsafe { System.dealloc(ptr, layout) }
        }
    }
}

#[global_allocator]
static ALLOCATOR: Leaky = Leaky;

/// `n` strings that are all `text`: one allocation, handed out `n` times.
fn aliased(text: String, n: usize) -> Vec<String> {
    LEAK.store(true, Ordering::Relaxed);
    let text = ManuallyDrop::new(text);
    (0..n)
        // SAFETY: never freed (LEAK), never written; a test plugin's deliberate aliasing.
        .map(|_| unsafe {
            String::from_raw_parts(text.as_ptr().cast_mut(), text.len(), text.capacity())
        })
        .collect()
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Hostile;

fn parse_mode(value: &str) -> Result<Mode, String> {
    let (name, arg) = value.split_once(':').unwrap_or((value, ""));
    let known = MODES.iter().find(|m| m.split(':').next() == Some(name));
    let ok = match known {
        Some(m) if m.ends_with(":N") => arg.parse::<u64>().is_ok(),
        Some(m) if m.ends_with(":ID") => !arg.is_empty(),
        Some(m) if m.ends_with(":KIND") => LIES.contains(&arg),
        Some(_) => arg.is_empty(),
        None => false,
    };
    if !ok {
        return Err(format!(
            "unknown mode `{value}` (modes: {})",
            MODES.join(", ")
        ));
    }
    Ok(Mode {
        name: name.into(),
        arg: arg.into(),
        configured: Instant::now(),
    })
}

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
                "mode" => mode = Some(parse_mode(&p.value)?),
                other => {
                    return Err(format!(
                        "unknown parameter `{other}` (this plugin accepts: mode)"
                    ));
                }
            }
        }
        let mode = mode.ok_or_else(|| {
            format!(
                "missing required parameter `mode` (modes: {})",
                MODES.join(", ")
            )
        })?;
        match mode.name.as_str() {
            "configure-sleep" => std::thread::sleep(Duration::from_millis(mode.n())),
            "configure-error" => return Err("E".repeat(mode.n() as usize)),
            _ => {}
        }
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

/// What the plugin can see of time and chance.
fn observe(mode: &Mode) -> Value {
    let wall = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(u64::MAX);
    let hash_seed = std::collections::hash_map::RandomState::new().hash_one("x");
    let bytes = wasi::random::random::get_random_bytes(16);
    json!({
        "wall_clock_ns": wall,
        "monotonic_ns_since_configure": mode.configured.elapsed().as_nanos() as u64,
        "random_bytes": bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "random_u64": wasi::random::random::get_random_u64(),
        "hash_of_x": hash_seed,
    })
}

impl item_rewrite::Guest for Hostile {
    fn rewrite_items(items: Vec<String>) -> Result<Vec<ItemOutcome>, String> {
        let mode = MODE
            .with_borrow(|m| m.clone())
            .ok_or("the plugin is not configured")?;
        Ok(match mode.name.as_str() {
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
            // Every item kept as it came, but the second one spoiled: one lie
            // among honest answers, each still almost an object.
            "lie" => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    ItemOutcome::Keep(match (i, mode.arg.as_str()) {
                        (1, "non-object") => format!("[{item}]"),
                        (1, "two-objects") => format!("{item}{item}"),
                        (1, "trailing") => format!("{item} x"),
                        (1, "truncated") => item[..item.len() - 1].to_string(),
                        (1, "empty") => String::new(),
                        // Valid JSON that PostgreSQL's jsonb refuses.
                        (1, "nul") => item.replacen('{', r#"{"x":"\u0000","#, 1),
                        (1, "surrogate") => item.replacen('{', r#"{"x":"\ud800","#, 1),
                        _ => item,
                    })
                })
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
            // N bytes to stderr per call, in 64 KiB writes.
            "stderr" => {
                let chunk = "e".repeat(64 << 10);
                let mut err = std::io::stderr().lock();
                let mut left = mode.n() as usize;
                while left > 0 {
                    let n = left.min(chunk.len());
                    err.write_all(&chunk.as_bytes()[..n])
                        .map_err(|e| e.to_string())?;
                    left -= n;
                }
                keep_all(items, None)
            }
            "exit" => std::process::exit(mode.n() as i32),
            "sleep" => {
                let started = Instant::now();
                std::thread::sleep(Duration::from_millis(mode.n()));
                let slept = json!({
                    "asked_ms": mode.n(),
                    "monotonic_ms": started.elapsed().as_millis() as u64,
                });
                keep_all(items, Some(("slept", slept)))
            }
            "sleep-forever" => {
                std::thread::sleep(Duration::MAX);
                keep_all(items, None)
            }
            "observe" => {
                let seen = observe(&mode);
                keep_all(items, Some(("observed", seen)))
            }
            "error-bytes" => return Err("E".repeat(mode.n() as usize)),
            // Fails the batch repeating its parameter (a secret, say) in the error.
            "error-echo" => return Err(format!("my mode is error-echo:{}", mode.arg)),
            "reject-bytes" => aliased("R".repeat(mode.n() as usize), items.len())
                .into_iter()
                .map(ItemOutcome::Reject)
                .collect(),
            "keep-bytes" => {
                let pad = (mode.n() as usize).saturating_sub(20);
                let item = format!(r#"{{"id":"big","pad":"{}"}}"#, "k".repeat(pad));
                aliased(item, items.len())
                    .into_iter()
                    .map(ItemOutcome::Keep)
                    .collect()
            }
            // Reports exactly which items reached it (their ids, in the reasons).
            "reject-seen" => items
                .iter()
                .map(|item| {
                    let v: Value = serde_json::from_str(item).unwrap_or_default();
                    let id = v.get("id").and_then(Value::as_str).unwrap_or("?");
                    ItemOutcome::Reject(format!("saw {id}"))
                })
                .collect(),
            // Repeats its parameter to whoever reads its messages (a secret, say).
            "echo" => {
                eprintln!("my mode is echo:{}", mode.arg);
                reject_all(&items, &format!("my mode is echo:{}", mode.arg))
            }
            "reject-escapes" => reject_all(
                &items,
                "\u{1b}[2J\u{1b}[31mred\u{1b}[0m\nERROR forged log line\rhidden",
            ),
            "panic-on-id" => {
                for item in &items {
                    let v: Value = serde_json::from_str(item).unwrap_or_default();
                    if v.get("id").and_then(Value::as_str) == Some(mode.arg.as_str()) {
                        panic!("hostile plugin panicked on purpose on item {}", mode.arg);
                    }
                }
                keep_all(items, None)
            }
            // "ok", and the configure-* modes, whose misbehaviour is over by now.
            _ => keep_all(items, None),
        })
    }
}

// Native builds (clippy, `cargo test --workspace`) cannot link exports named
// like `host:plugin/plugin@0.1.0#info`; only the wasm build exports.
#[cfg(target_arch = "wasm32")]
export!(Hostile);
