//! The `hugesync` binary: parse, set up logging and signals, dispatch, and turn the
//! outcome into a documented exit code.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use hugesync::cli::Cli;
use hugesync::error::ExitStatus;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let tui = matches!(cli.command, hugesync::cli::Command::Tui(_));
    init_logging(cli.quiet, cli.verbose, tui);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(ExitStatus::Fatal.code());
        }
    };
    let status = runtime.block_on(async {
        let cancel = CancellationToken::new();
        tokio::spawn(watch_signals(cancel.clone()));
        match hugesync::commands::run(cli, &matches, cancel).await {
            Ok(status) => status,
            Err(error) => {
                report_error(&error);
                error.exit_status()
            }
        }
    });
    // Blocking copy threads notice cancellation between chunks; don't wait on
    // anything else still parked in the pool.
    runtime.shutdown_background();
    ExitCode::from(status.code())
}

/// Renders an error and its chain once, at the edge.
fn report_error(error: &hugesync::error::Error) {
    if matches!(error, hugesync::error::Error::Interrupted) {
        eprintln!("interrupted; nothing more was changed");
        return;
    }
    let mut message = format!("error: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(&format!(": {text}"));
        }
        source = cause.source();
    }
    eprintln!("{message}");
}

/// First Ctrl+C or SIGTERM: stop scheduling, let running items finish or discard
/// their temp files. Second: leave at once (temp files are never mistaken for data).
async fn watch_signals(cancel: CancellationToken) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let next = async |term: &mut Option<tokio::signal::unix::Signal>| match term {
        Some(term) => tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        },
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    next(&mut term).await;
    eprintln!("\ninterrupt: stopping after the running items (press Ctrl+C again to stop at once)");
    cancel.cancel();
    next(&mut term).await;
    std::process::exit(i32::from(ExitStatus::Interrupted.code()));
}

fn init_logging(quiet: bool, verbose: u8, tui: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        // -v: also retries, resumed uploads, cleaned-up leftovers.
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    // The TUI's log pane shows retries and resumed uploads as they happen
    // (info): it has room for them, where a terminal's stderr would not.
    let level = if tui && !quiet && verbose == 0 {
        "info"
    } else {
        level
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HUGESYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("hugesync={level}")));
    if tui {
        // While the UI owns the screen, logs go to its log pane and to a file in
        // the XDG state directory, never to the terminal.
        use tracing_subscriber::prelude::*;
        let _ = tui_logger::init_logger(tui_logger::LevelFilter::Trace);
        tui_logger::set_default_level(tui_logger::LevelFilter::Info);
        if let Some(path) = log_file() {
            tui_logger::set_log_file(tui_logger::TuiLoggerFile::new(&path));
        }
        tracing_subscriber::registry()
            .with(filter)
            .with(tui_logger::TuiTracingSubscriberLayer)
            .init();
        return;
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
}

/// `$XDG_STATE_HOME/hugesync/tui.log`, when the directory can be made.
fn log_file() -> Option<String> {
    use etcetera::BaseStrategy;
    let dir = etcetera::choose_base_strategy()
        .ok()?
        .state_dir()?
        .join("hugesync");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("tui.log").to_string_lossy().into_owned())
}
