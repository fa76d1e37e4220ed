//! The `host` binary: parse arguments, run the command, map the outcome to an exit code.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use host::cli::{Cli, Command, PluginCommand, PolicyCommand, UsageError};
use host::commands;
use host::terminal::{LogWriter, colour, error_text, escape_message};

fn main() -> ExitCode {
    keep_freed_memory();
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    init_logging(cli.verbose, cli.quiet);
    let quiet = cli.quiet;

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Plugin(PluginCommand::Inspect(args)) => {
                commands::plugin_inspect::run(args).await
            }
            Command::Plugin(PluginCommand::New(args)) => commands::plugin_new::run(args),
            Command::Plugin(PluginCommand::Push(args)) => commands::plugin_push::run(args).await,
            Command::Plugin(PluginCommand::Run(args)) => {
                let sub = matches
                    .subcommand_matches("plugin")
                    .and_then(|m| m.subcommand_matches("run"))
                    .expect("clap matched plugin run");
                commands::plugin_run::run(args, sub).await
            }
            Command::Search(args) => commands::search::run(args).await,
            Command::Delete(cmd) => commands::delete::run(cmd).await,
            Command::Migrate(args) => commands::migrate::run(args, quiet).await,
            Command::Version(args) => commands::version::run(args).await,
            Command::Pgready(args) => commands::pgready::run(args).await,
            Command::Load(cmd) => {
                let sub = matches
                    .subcommand_matches("load")
                    .expect("clap matched load");
                commands::load::run(cmd, sub).await
            }
            Command::UpdateExtents(args) => commands::update_extents::run(args).await,
            Command::Xmat(args) => {
                let sub = matches
                    .subcommand_matches("xmat")
                    .expect("clap matched xmat");
                commands::xmat::run(args, sub).await
            }
            Command::Stream(cmd) => {
                let sub = matches
                    .subcommand_matches("stream")
                    .expect("clap matched stream");
                commands::stream::run(cmd, sub).await
            }
            Command::Policy(PolicyCommand::Check(args)) => commands::policy::check(args),
        }
    });
    match result {
        Ok(status) => ExitCode::from(status.exit_code()),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        // Errors are one line: anything from data or a plugin inside is escaped.
        Err(e) if e.is::<UsageError>() => {
            eprintln!(
                "error: {}\n\nFor more information, try '--help'.",
                escape_message(&error_text(&e))
            );
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {}", escape_message(&error_text(&e)));
            ExitCode::from(1)
        }
    }
}

/// A closed stdout (`host ... | head`) is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info,object_store=warn,wasmtime=warn,cranelift=warn",
        (false, 1) => {
            "debug,object_store=info,wasmtime=info,cranelift=info,reqwest=info,hyper=info"
        }
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let colour = colour();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogWriter { colour })
        .with_ansi(colour)
        .with_target(false)
        .without_time()
        .init();
}

/// glibc's malloc hands the top of a heap back to the kernel as soon as
/// 128 KiB of it are free, so every batch's buffers (a megabyte of items)
/// were given back and faulted in again, page by page: 22,000 page faults
/// and ~10% of the CPU of `host plugin run` over 20,000 items. Keeping up to
/// 8 MiB free per heap removes them without growing the peak.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 8 << 20);
    }
}
