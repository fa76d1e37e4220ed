//! `host plugin run`: plugins over items or rows, no database needed.
//! The way to develop and test a plugin.
//!
//! Items are read exactly as `load items` reads them (the same opener and
//! splitter: files, stdin, URLs, gzip, NDJSON, JSON arrays, FeatureCollections),
//! so a plugin can be tried on the very file it will be used on.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::ArgMatches;
use serde::Serialize;
use serde_json::json;

use super::{Status, load_plugins};
use crate::cli::{RowFormat, RunArgs, UsageError, plugin_specs};
use crate::copy::{csv, text};
use crate::load::Origin;
use crate::load::source;
use crate::load::split::{Body, MAX_RECORD_BYTES, Splitter};
use crate::plugin::chain::{BatchOutput, ItemChain, Reason, Rejection, RowChain};
use crate::plugin::{Column, Plugin, Table};
use crate::terminal::Shown;

/// Runs the command; `matches` are the `plugin run` matches (for flag order).
pub async fn run(args: RunArgs, matches: &ArgMatches) -> anyhow::Result<Status> {
    let specs = plugin_specs(matches, Some(("first_plugin", &args.first_plugin)))?;
    // Usage errors first, before any plugin is fetched.
    parse_columns(&args.columns)?;
    parse_table(&args.table)?;
    let (runtime, plugins) = load_plugins(&args.opts, &specs).await?;
    let handle = tokio::runtime::Handle::current();
    // Plugin calls are CPU-bound and synchronous: keep them off the async workers.
    tokio::task::spawn_blocking(move || {
        let _runtime = runtime;
        Run::new(args, plugins, handle)?.execute()
    })
    .await?
}

/// The longest row (one line) read, as for a load's records.
const MAX_LINE: usize = MAX_RECORD_BYTES;

/// One named input, opened by `load`'s opener (decompressed, streamed).
struct Input {
    name: String,
    reader: Box<dyn Read + Send>,
}

/// Opens each input in turn (stdin when none is given), lazily: a URL is
/// only fetched when the inputs before it are done.
fn open_inputs<'a>(
    texts: &'a [String],
    handle: &'a tokio::runtime::Handle,
) -> impl Iterator<Item = anyhow::Result<Input>> + 'a {
    let stdin = ["-".to_string()];
    let texts: Vec<String> = if texts.is_empty() {
        stdin.to_vec()
    } else {
        texts.to_vec()
    };
    let counter = Arc::new(AtomicU64::new(0));
    texts.into_iter().map(move |t| {
        let src = source::open(&t, handle, counter.clone()).map_err(anyhow::Error::msg)?;
        Ok(Input {
            name: src.name,
            reader: src.reader,
        })
    })
}

/// Counts for the summary.
#[derive(Debug, Default, Serialize)]
struct Summary {
    read: u64,
    kept: u64,
    dropped: u64,
    rejected: u64,
    /// Records rejected because a plugin failed on their batch (part of `rejected`).
    failed: u64,
    plugin_failures: u64,
    seconds: f64,
}

struct Run {
    args: RunArgs,
    plugins: Vec<Plugin>,
    handle: tokio::runtime::Handle,
    out: BufWriter<std::io::Stdout>,
    rejects: Option<BufWriter<File>>,
    summary: Summary,
}

impl Run {
    fn new(
        args: RunArgs,
        plugins: Vec<Plugin>,
        handle: tokio::runtime::Handle,
    ) -> anyhow::Result<Run> {
        let rejects = match &args.reject_file {
            Some(p) => Some(BufWriter::new(File::create(p).with_context(|| {
                format!("cannot create reject file {}", p.display())
            })?)),
            None => None,
        };
        Ok(Run {
            args,
            plugins,
            handle,
            out: BufWriter::with_capacity(1 << 20, std::io::stdout()),
            rejects,
            summary: Summary::default(),
        })
    }

    fn execute(mut self) -> anyhow::Result<Status> {
        let started = Instant::now();
        if self.args.rows {
            self.run_rows()?;
        } else {
            self.run_items()?;
        }
        self.out.flush()?;
        if let Some(r) = &mut self.rejects {
            r.flush()?;
        }
        self.summary.seconds = started.elapsed().as_secs_f64();
        self.report();
        Ok(if self.summary.plugin_failures > 0 {
            Status::PluginFailed
        } else if self.summary.rejected > 0 {
            Status::Rejected
        } else {
            Status::Success
        })
    }

    fn report(&self) {
        let s = &self.summary;
        if self.args.json {
            eprintln!("{}", json!({ "summary": s }));
            return;
        }
        let what = if self.args.rows { "rows" } else { "items" };
        let rate = if s.seconds > 0.0 {
            s.read as f64 / s.seconds
        } else {
            0.0
        };
        let mut line = format!(
            "{} {what} read, {} kept, {} dropped, {} rejected",
            s.read, s.kept, s.dropped, s.rejected
        );
        if s.plugin_failures > 0 {
            line += &format!(
                " ({} in {} failed plugin batches)",
                s.failed, s.plugin_failures
            );
        }
        line += &format!(" in {:.2}s ({:.0} {what}/s)", s.seconds, rate);
        eprintln!("{line}");
    }

    /// Accounts for a batch's fates; `describe` says where record `i` came from.
    fn account<T>(
        &mut self,
        batch: &BatchOutput<T>,
        describe: impl Fn(usize) -> (String, String),
    ) -> anyhow::Result<()> {
        self.summary.kept += batch.kept_count as u64;
        self.summary.dropped += batch.dropped.len() as u64;
        self.summary.rejected += batch.rejected.len() as u64;
        if let Some(e) = &batch.failure {
            self.summary.plugin_failures += 1;
            self.summary.failed += batch
                .rejected
                .iter()
                .filter(|r| matches!(r.reason, Reason::Failed(_)))
                .count() as u64;
            tracing::error!("{e}; carrying on with the next batch");
        }
        for Rejection {
            index,
            plugin,
            reason,
        } in &batch.rejected
        {
            let (place, record) = describe(*index);
            match (&mut self.rejects, reason) {
                (Some(w), _) => {
                    let rec: serde_json::Value = serde_json::from_str(&record)
                        .unwrap_or(serde_json::Value::String(record.clone()));
                    serde_json::to_writer(
                        &mut *w,
                        &json!({ "at": place, "plugin": plugin, "reason": reason.as_str(), "record": rec }),
                    )?;
                    w.write_all(b"\n")?;
                }
                // One line for the whole failed batch is enough (logged above).
                (None, Reason::Failed(_)) => {}
                (None, Reason::Rejected(r)) => {
                    eprintln!(
                        "rejected {}: {}: {}",
                        Shown(&place),
                        Shown(plugin),
                        Shown(r)
                    )
                }
            }
        }
        Ok(())
    }

    fn run_items(&mut self) -> anyhow::Result<()> {
        let mut chain = ItemChain::new(&self.plugins)?;
        let batch_size = self.args.batch_size.unwrap_or(256).max(1);
        let mut batch: Vec<String> = Vec::with_capacity(batch_size);
        let mut origins: Vec<Origin> = Vec::with_capacity(batch_size);
        let (texts, handle) = (self.args.inputs.clone(), self.handle.clone());
        for input in open_inputs(&texts, &handle) {
            let input = input?;
            let name = input.name;
            let mut splitter = Splitter::new(input.reader);
            while let Some(record) = splitter
                .next_record()
                .map_err(|e| anyhow::anyhow!("{name}: {e}"))?
            {
                let bytes = match record.body {
                    Body::Json(b) => b,
                    // Not held: only its size was kept.
                    Body::TooLarge(size) => bail!(
                        "{}: line {}: the record is {size} bytes, more than the {} MiB a record may have",
                        Shown(&name),
                        record.line,
                        MAX_RECORD_BYTES >> 20
                    ),
                };
                let text = String::from_utf8(bytes).map_err(|e| {
                    anyhow::anyhow!(
                        "{name}: line {}: the record is not UTF-8 (at byte {})",
                        record.line,
                        e.utf8_error().valid_up_to()
                    )
                })?;
                batch.push(text);
                origins.push(Origin {
                    source: name.clone(),
                    line: record.line,
                    index: record.index,
                });
                if batch.len() == batch_size {
                    self.item_batch(&mut chain, &mut batch, &mut origins)?;
                }
            }
        }
        if !batch.is_empty() {
            self.item_batch(&mut chain, &mut batch, &mut origins)?;
        }
        Ok(())
    }

    fn item_batch(
        &mut self,
        chain: &mut ItemChain,
        batch: &mut Vec<String>,
        origins: &mut Vec<Origin>,
    ) -> anyhow::Result<()> {
        self.summary.read += batch.len() as u64;
        let out = chain.run(batch);
        let originals = std::mem::take(batch);
        for (_, item) in &out.kept {
            self.out.write_all(item.as_str().as_bytes())?;
            self.out.write_all(b"\n")?;
        }
        self.account(&out, |i| {
            let id = item_id(&originals[i])
                .map(|id| format!(" (item {id})"))
                .unwrap_or_default();
            (format!("{}{id}", origins[i]), originals[i].clone())
        })?;
        origins.clear();
        Ok(())
    }

    fn run_rows(&mut self) -> anyhow::Result<()> {
        let mut chain = RowChain::new(&self.plugins)?;
        let batch_size = self.args.batch_size.unwrap_or(1024).max(1);
        let (schema, name) = parse_table(&self.args.table)?;
        let declared = parse_columns(&self.args.columns)?;

        let (texts, handle) = (self.args.inputs.clone(), self.handle.clone());
        for input in open_inputs(&texts, &handle) {
            let input = input?;
            let mut input = RowInput {
                reader: Box::new(BufReader::with_capacity(1 << 20, input.reader)),
                name: input.name,
            };
            let csv_name = input.name.ends_with(".csv") || input.name.ends_with(".csv.gz");
            let format = self.args.format.unwrap_or(if csv_name {
                RowFormat::Csv
            } else {
                RowFormat::Copy
            });
            let mut csv_reader = None;
            let columns: Vec<Column> = match format {
                RowFormat::Csv => {
                    let mut r = csv::Reader::new(input.reader);
                    let header = r
                        .next_record()
                        .map_err(|e| anyhow::anyhow!("{}: {e}", input.name))?
                        .with_context(|| {
                            format!("{}: empty CSV (a header row is required)", input.name)
                        })?;
                    let cols = header
                        .into_iter()
                        .map(|h| {
                            let name = h.unwrap_or_default();
                            let type_name = declared
                                .iter()
                                .find(|c| c.name == name)
                                .map_or("text".into(), |c| c.type_name.clone());
                            Column { name, type_name }
                        })
                        .collect();
                    csv_reader = Some(r);
                    input.reader = Box::new(std::io::empty());
                    cols
                }
                RowFormat::Copy => declared.clone(),
            };
            let mut table = Table {
                schema: schema.clone(),
                name: name.clone(),
                columns,
            };
            let mut started = false;
            let mut buf: Vec<u8> = Vec::new();
            let mut lines: Vec<usize> = Vec::new();
            let mut line_no = 0;
            if format == RowFormat::Csv {
                let mut out = Vec::new();
                csv::write_record(
                    &mut out,
                    table.columns.iter().map(|c| Some(c.name.as_str())),
                );
                self.out.write_all(&out)?;
            }
            loop {
                // Next row, as COPY text in `buf`.
                let fields = match format {
                    RowFormat::Csv => {
                        let r = csv_reader.as_mut().expect("csv reader");
                        let Some(rec) = r
                            .next_record()
                            .map_err(|e| anyhow::anyhow!("{}: {e}", input.name))?
                        else {
                            break;
                        };
                        line_no = r.line();
                        let n = rec.len();
                        text::encode_row(
                            &mut buf,
                            rec.iter().map(|f| f.as_deref().map(str::as_bytes)),
                        );
                        n
                    }
                    RowFormat::Copy => {
                        let start = buf.len();
                        let n = (&mut input.reader)
                            .take(MAX_LINE as u64 + 1)
                            .read_until(b'\n', &mut buf)?;
                        if n == 0 {
                            break;
                        }
                        if n > MAX_LINE {
                            bail!(
                                "{}: line {}: longer than {} MiB; a row may not be larger",
                                input.name,
                                line_no + 1,
                                MAX_LINE >> 20
                            );
                        }
                        line_no += 1;
                        if buf.last() != Some(&b'\n') {
                            buf.push(b'\n');
                        }
                        if &buf[start..] == b"\\.\n" {
                            buf.truncate(start);
                            break;
                        }
                        text::field_count(&buf[start..buf.len() - 1])
                    }
                };
                if !started {
                    if table.columns.is_empty() {
                        table.columns = (1..=fields)
                            .map(|i| Column {
                                name: format!("c{i}"),
                                type_name: "text".into(),
                            })
                            .collect();
                    }
                    chain.begin_table(&table).map_err(anyhow::Error::from)?;
                    started = true;
                }
                if fields != table.columns.len() {
                    bail!(
                        "{}: line {line_no}: row has {fields} fields but table {table} has {} columns ({})",
                        input.name,
                        table.columns.len(),
                        table
                            .columns
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                lines.push(line_no);
                if lines.len() == batch_size {
                    self.row_batch(&mut chain, &mut buf, &mut lines, &input.name, format)?;
                }
            }
            if !lines.is_empty() {
                self.row_batch(&mut chain, &mut buf, &mut lines, &input.name, format)?;
            }
        }
        Ok(())
    }

    fn row_batch(
        &mut self,
        chain: &mut RowChain,
        buf: &mut Vec<u8>,
        lines: &mut Vec<usize>,
        input: &str,
        format: RowFormat,
    ) -> anyhow::Result<()> {
        self.summary.read += lines.len() as u64;
        let out = chain.run(buf, lines.len());
        match format {
            RowFormat::Copy => self.out.write_all(&out.kept)?,
            RowFormat::Csv => {
                let mut csv_out = Vec::with_capacity(out.kept.len());
                for row in text::rows(&out.kept) {
                    let fields: Vec<Option<String>> = text::raw_fields(row)
                        .map(|f| text::decode(f).map(|v| String::from_utf8_lossy(&v).into_owned()))
                        .collect();
                    csv::write_record(&mut csv_out, fields.iter().map(|f| f.as_deref()));
                }
                self.out.write_all(&csv_out)?;
            }
        }
        // The input rows, for reports: only when some were turned away (this is per row).
        let originals: Vec<&[u8]> = if out.rejected.is_empty() {
            Vec::new()
        } else {
            text::rows(buf).collect()
        };
        self.account(&out, |i| {
            (
                format!("{input}:{}", lines[i]),
                String::from_utf8_lossy(originals[i]).into_owned(),
            )
        })?;
        buf.clear();
        lines.clear();
        Ok(())
    }
}

/// `--table SCHEMA.NAME` (or `NAME`, in `public`).
fn parse_table(text: &str) -> Result<(String, String), UsageError> {
    let (schema, name) = text.split_once('.').unwrap_or(("public", text));
    if schema.is_empty() || name.is_empty() {
        return Err(UsageError(format!(
            "--table '{text}' must be SCHEMA.NAME or NAME, e.g. public.users"
        )));
    }
    Ok((schema.to_string(), name.to_string()))
}

/// A row input, buffered for line and CSV reading.
struct RowInput {
    name: String,
    reader: Box<dyn BufRead + Send>,
}

/// `name[:type]` list into columns (types default to text).
fn parse_columns(specs: &[String]) -> Result<Vec<Column>, UsageError> {
    specs
        .iter()
        .map(|s| {
            let (name, ty) = s.split_once(':').unwrap_or((s, "text"));
            if name.trim().is_empty() {
                return Err(UsageError(format!("empty column name in --columns '{s}'")));
            }
            Ok(Column {
                name: name.trim().to_string(),
                type_name: ty.trim().to_string(),
            })
        })
        .collect()
}

/// The item's `id`, if the text is JSON with a string id (for messages only).
fn item_id(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: Option<String>,
    }
    serde_json::from_str::<Id>(text).ok()?.id
}
