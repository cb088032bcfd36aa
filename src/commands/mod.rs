//! The headless commands: each one a straight line through the pipeline
//! (scan → plan → confirm → execute → report), with output rendered here only.

mod apply;
mod check;
mod completions;
mod config;
mod delta;
mod engine;
mod man;
mod patch;
mod pipeline;
mod plan;
mod printed;
mod providers;
mod report;
pub mod shards;
mod signature;
mod sync;
mod tui;
mod uploads;

pub use crate::error::EngineError;

use std::io::Write;
use std::path::PathBuf;

use clap::ArgMatches;
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command};
use crate::config::{Overrides, Settings};
use crate::error::{Error, ExitStatus};
use crate::sync::SyncPlan;

pub use report::Listing;

/// How chatty the headless output is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

struct Context {
    settings: Settings,
    config_path: Option<PathBuf>,
    verbosity: Verbosity,
    cancel: CancellationToken,
}

/// Runs the parsed command line; the returned status becomes the exit code.
pub async fn run(
    cli: Cli,
    matches: &ArgMatches,
    cancel: CancellationToken,
) -> Result<ExitStatus, Error> {
    let verbosity = match (cli.quiet, cli.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        _ => Verbosity::Verbose,
    };
    let mut overrides = Overrides::default();
    cli.s3.apply_to(&mut overrides);
    if let Some(scan) = cli.command.scan_flags() {
        scan.apply_to(&mut overrides);
    }
    match &cli.command {
        Command::Sync(args) => {
            args.plan.apply_to(&mut overrides);
            args.exec.apply_to(&mut overrides);
        }
        Command::Plan(args) => args.plan.apply_to(&mut overrides),
        Command::Tui(args) => {
            args.plan.apply_to(&mut overrides);
            args.exec.apply_to(&mut overrides);
        }
        Command::Apply(args) => args.exec.apply_to(&mut overrides),
        Command::Finalize(args) => args.exec.apply_to(&mut overrides),
        Command::Signature(args) => overrides.block_size = args.block_size.map(crate::config::Size),
        Command::Config(_)
        | Command::Delta(_)
        | Command::Patch(_)
        | Command::Uploads(_)
        | Command::Check(_) => {}
        // Neither reads a setting: a broken config must not stop them.
        Command::Completions(args) => return completions::completions(args.shell),
        Command::Providers => return providers::providers(),
        Command::Man(args) => return man::manual_pages(args),
    }
    crate::config::check_process_env()?;
    let (settings, config_path) = Settings::resolve(
        cli.config.as_deref(),
        &crate::config::process_env,
        overrides,
    )?;
    let ctx = Context {
        settings,
        config_path,
        verbosity,
        cancel,
    };
    if let Some(rate) = ctx.settings.bwlimit.value {
        crate::bandwidth::install(rate.0);
    }
    let selectors = crate::cli::selectors(matches)?;
    match cli.command {
        Command::Sync(args) => sync::sync_command(args, selectors, &ctx).await,
        Command::Plan(args) => plan::plan_command(args, selectors, &ctx).await,
        Command::Tui(args) => tui::tui_command(args, selectors, &ctx).await,
        Command::Apply(args) => match args.shard {
            Some(spec) => {
                shards::run_shard(
                    &args.plan,
                    spec,
                    args.report_dir.as_deref(),
                    &args.run,
                    &ctx,
                )
                .await
            }
            None => apply::apply_command(args, &ctx).await,
        },
        Command::Finalize(args) => {
            shards::finalize(
                &args.plan,
                args.report_dir.as_deref(),
                args.json,
                args.yes,
                &ctx,
            )
            .await
        }
        Command::Config(args) => config::config_command(&args, &ctx),
        Command::Signature(args) => {
            signature::signature(&args, ctx.settings.block_size.value.0, ctx.verbosity)
        }
        Command::Delta(args) => delta::delta(&args, ctx.verbosity),
        Command::Patch(args) => patch::patch(&args, ctx.verbosity),
        Command::Uploads(args) => uploads::run(&args, &ctx).await,
        Command::Check(args) => check::check_command(args, selectors, &ctx).await,
        Command::Completions(args) => completions::completions(args.shell),
        Command::Providers => providers::providers(),
        Command::Man(args) => man::manual_pages(&args),
    }
}

fn write_stdout(bytes: &[u8]) -> Result<ExitStatus, Error> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(ExitStatus::Success),
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitStatus::Success),
        Err(e) => Err(Error::Output(e)),
    }
}

/// The full plan: JSON, or the table listing every change (every item with -v).
fn print_plan(plan: &SyncPlan, json: bool, ctx: &Context) -> Result<(), Error> {
    if json {
        return print_json(&printed::Priced {
            plan,
            cost: crate::cost::estimate(plan),
        });
    }
    if ctx.verbosity != Verbosity::Quiet {
        print_plan_text(plan, listing_for(ctx.verbosity))?;
    }
    Ok(())
}

/// Whether `-o` names standard output (`-`), where `what` then goes; with
/// `--json`, which prints there too, that is refused (exit 2).
fn output_is_stdout(
    output: Option<&std::path::Path>,
    json: bool,
    what: &str,
) -> Result<bool, Error> {
    let to_stdout = output.is_some_and(crate::outfile::is_stdout);
    if to_stdout && json {
        return Err(Error::Usage(format!(
            "`-o -` writes {what} to standard output, where `--json` prints too: use one of them"
        )));
    }
    Ok(to_stdout)
}

/// Which entries a printed plan lists: every one with `-v`.
fn listing_for(verbosity: Verbosity) -> Listing {
    if verbosity == Verbosity::Verbose {
        Listing::All
    } else {
        Listing::Changes
    }
}

fn print_plan_text(plan: &SyncPlan, listing: Listing) -> Result<(), Error> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    report::write_plan_text(&mut out, plan, listing).map_err(Error::Output)?;
    out.flush().map_err(Error::Output)
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), Error> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    serde_json::to_writer_pretty(&mut out, value).map_err(|e| Error::Output(e.into()))?;
    writeln!(out).map_err(Error::Output)?;
    out.flush().map_err(Error::Output)
}

fn print_json_line<T: serde::Serialize>(value: &T) -> Result<(), Error> {
    let line = serde_json::to_string(value).map_err(|e| Error::Output(e.into()))?;
    println!("{line}");
    Ok(())
}
