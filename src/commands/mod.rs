//! The headless commands: each one a straight line through the pipeline
//! (scan → plan → confirm → execute → report), with output rendered here only.

mod engine;
mod report;
pub mod shards;
mod uploads;

pub use crate::error::EngineError;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::ArgMatches;
use tokio_util::sync::CancellationToken;

use crate::cli::{ApplyArgs, Cli, Command, ConfigArgs, PlanArgs, RunFlags, SyncArgs};
use crate::config::{self, Overrides, Settings};
use crate::error::{Error, ExitStatus};
use crate::filter::{FilterRule, RuleKind};
use crate::progress::{self, BarReporter, JsonLinesReporter, LineReporter, Reporter};
use crate::storage::Storage;
use crate::sync::{self, ExecOptions, Scan, ScanProgress, SyncOptions, SyncPlan};
use crate::uri::Location;

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
        Command::Signature(args) => overrides.block_size = args.block_size.map(config::Size),
        Command::Config(_)
        | Command::Delta(_)
        | Command::Patch(_)
        | Command::Uploads(_)
        | Command::Check(_) => {}
        // Neither reads a setting: a broken config must not stop them.
        Command::Completions(args) => return completions(args.shell),
        Command::Providers => return providers(),
        Command::Man(args) => return manual_pages(args),
    }
    config::check_process_env()?;
    let (settings, config_path) =
        Settings::resolve(cli.config.as_deref(), &config::process_env, overrides)?;
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
        Command::Sync(args) => sync_command(args, selectors, &ctx).await,
        Command::Plan(args) => plan_command(args, selectors, &ctx).await,
        Command::Tui(args) => tui_command(args, selectors, &ctx).await,
        Command::Apply(args) => match args.shard {
            Some(spec) => {
                shards::run_shard(
                    &args.plan_file,
                    spec,
                    args.report_dir.as_deref(),
                    &args.run,
                    &ctx,
                )
                .await
            }
            None => apply_command(args, &ctx).await,
        },
        Command::Finalize(args) => {
            shards::finalize(&args.plan_file, args.report_dir.as_deref(), args.json, &ctx).await
        }
        Command::Config(args) => config_command(&args, &ctx),
        Command::Signature(args) => {
            engine::signature(&args, ctx.settings.block_size.value.0, ctx.verbosity)
        }
        Command::Delta(args) => engine::delta(&args, ctx.verbosity),
        Command::Patch(args) => engine::patch(&args, ctx.verbosity),
        Command::Uploads(args) => uploads::run(&args, &ctx).await,
        Command::Check(args) => check_command(args, selectors, &ctx).await,
        Command::Completions(args) => completions(args.shell),
        Command::Providers => providers(),
        Command::Man(args) => manual_pages(&args),
    }
}

async fn sync_command(
    args: SyncArgs,
    selectors: crate::cli::Selectors,
    ctx: &Context,
) -> Result<ExitStatus, Error> {
    let source = Location::parse(&args.source)?;
    let destination = Location::parse(&args.destination)?;
    let options = sync_options(&ctx.settings, selectors, (&source, &destination))?;
    let quiet_scan = args.run.json || ctx.verbosity == Verbosity::Quiet;
    let (scan, sides) = scan_sides(&source, &destination, &options, ctx, quiet_scan).await?;
    let plan = plan_from_scan(source, destination, &scan, options, &sides, &ctx.settings).await;
    let verdict = ScanVerdict::of(scan, &ctx.settings);
    finish_run(plan, verdict, sides, &args.run, ctx).await
}

async fn tui_command(
    args: crate::cli::TuiArgs,
    selectors: crate::cli::Selectors,
    ctx: &Context,
) -> Result<ExitStatus, Error> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "`hugesync tui` needs a terminal; use `hugesync sync` for scripts".into(),
        ));
    }
    let source = Location::parse(&args.source)?;
    let destination = Location::parse(&args.destination)?;
    let options = sync_options(&ctx.settings, selectors, (&source, &destination))?;
    sync::check_locations(&source, &destination)?;
    let sides = Sides::open(
        &source,
        &destination,
        &ctx.settings,
        options.storage_class.as_ref(),
    )
    .await?;
    let progress = ScanProgress::default();
    let mut tui = crate::tui::Tui::start();
    let planning = async {
        let scan = sync::scan(&sides.source, &sides.destination, &options, &progress).await?;
        let plan = plan_from_scan(
            source,
            destination,
            &scan,
            options.clone(),
            &sides,
            &ctx.settings,
        )
        .await;
        Ok::<_, Error>((plan, scan))
    };
    let Some(planned) = tui.scanning(&progress, planning).await else {
        return Ok(ExitStatus::Success);
    };
    let (plan, scan) = planned?;
    let exec = ExecOptions {
        jobs: ctx.settings.jobs.value,
        fsync: ctx.settings.fsync.value,
        pause: None,
        conflicts: conflict_policy(&ctx.settings),
        resume: crate::resume::ResumeStore::default_location(),
        withhold_deletes: withhold_deletes(&scan, &ctx.settings),
        leave_for_finalize: false,
    };
    let status = tui
        .review_and_run(
            plan,
            sides.source,
            sides.destination,
            exec,
            ctx.cancel.clone(),
        )
        .await;
    drop(tui);
    print_scan_notes(&scan, ctx);
    Ok(match status {
        ExitStatus::Success if scan.error_count() > 0 => ExitStatus::Partial,
        other => other,
    })
}

async fn plan_command(
    args: PlanArgs,
    selectors: crate::cli::Selectors,
    ctx: &Context,
) -> Result<ExitStatus, Error> {
    let to_stdout = output_is_stdout(args.output.as_deref(), args.json, "the plan file")?;
    let source = Location::parse(&args.source)?;
    let destination = Location::parse(&args.destination)?;
    let options = sync_options(&ctx.settings, selectors, (&source, &destination))?;
    let quiet_scan = args.json || ctx.verbosity == Verbosity::Quiet;
    let (scan, sides) = scan_sides(&source, &destination, &options, ctx, quiet_scan).await?;
    let plan = plan_from_scan(source, destination, &scan, options, &sides, &ctx.settings).await;
    let partial_scan = scan.error_count() > 0;
    // The plan holds all it needs from the scan; the manifests go before the
    // plan is written and printed.
    drop(scan);
    if let Some(path) = &args.output {
        plan.save(path)?;
        if !to_stdout && !args.json && ctx.verbosity != Verbosity::Quiet {
            eprintln!(
                "Plan saved to {}; run it with `hugesync apply {}`.",
                path.display(),
                path.display()
            );
        }
    }
    if to_stdout {
        // Standard output holds the plan file: the summary goes to stderr.
        if ctx.verbosity != Verbosity::Quiet {
            let mut err = std::io::stderr().lock();
            report::write_plan_text(&mut err, &plan, listing_for(ctx.verbosity))
                .map_err(Error::Output)?;
        }
    } else {
        print_plan(&plan, args.json, ctx)?;
    }
    if let Err(refusal) = plan.check_safety() {
        eprintln!("warning: `sync` would refuse this plan: {refusal}");
    }
    Ok(if partial_scan {
        ExitStatus::Partial
    } else {
        ExitStatus::Success
    })
}

async fn apply_command(args: ApplyArgs, ctx: &Context) -> Result<ExitStatus, Error> {
    let saved = SyncPlan::load(&args.plan_file)?;
    let quiet_scan = args.run.json || ctx.verbosity == Verbosity::Quiet;
    let (scan, sides) = scan_sides(
        &saved.source,
        &saved.destination,
        &saved.options,
        ctx,
        quiet_scan,
    )
    .await?;
    let (stale_count, first_stale) = {
        let stale = saved.stale_items(&scan);
        (stale.len(), stale.first().map(|item| item.path.display()))
    };
    let plan = match first_stale {
        None => saved,
        Some(_) if args.replan => {
            // Only a stale plan is planned again: a fresh one would double
            // the memory a large plan takes.
            let mut fresh = plan_from_scan(
                saved.source.clone(),
                saved.destination.clone(),
                &scan,
                saved.options.clone(),
                &sides,
                &ctx.settings,
            )
            .await;
            fresh.carry_edits_from(&saved);
            if ctx.verbosity != Verbosity::Quiet {
                eprintln!(
                    "{stale_count} planned entries changed since the plan was made; planned again."
                );
            }
            fresh
        }
        Some(first) => {
            return Err(sync::PlanError::Stale {
                count: stale_count,
                first,
            }
            .into());
        }
    };
    let plan = with_current_guards(plan, &ctx.settings);
    let verdict = ScanVerdict::of(scan, &ctx.settings);
    finish_run(plan, verdict, sides, &args.run, ctx).await
}

/// The deletion guards set now (config file, environment) apply to a saved
/// plan as well as those it was made with: the stricter wins.
fn with_current_guards(mut plan: SyncPlan, settings: &Settings) -> SyncPlan {
    use crate::config::Origin;
    let set_now = |origin: &Origin| !matches!(origin, Origin::Default);
    if set_now(&settings.max_delete.origin)
        && let Some(now) = settings.max_delete.value
    {
        plan.options.max_delete = Some(plan.options.max_delete.map_or(now, |saved| saved.min(now)));
    }
    if set_now(&settings.allow_empty_source.origin) && !settings.allow_empty_source.value {
        plan.options.allow_empty_source = false;
    }
    plan
}

fn config_command(args: &ConfigArgs, ctx: &Context) -> Result<ExitStatus, Error> {
    let rows = ctx.settings.rows();
    let file = ctx.config_path.as_ref().map(|p| p.display().to_string());
    // What `provider` makes of the S3 settings (checked when they resolved).
    let s3 = ctx.settings.provider.value.as_ref().map(|name| {
        let s3 = crate::storage::S3Settings::from_config(&ctx.settings);
        (name.clone(), s3)
    });
    if args.json {
        let settings: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(key, _, value, origin, env)| {
                (
                    key.to_string(),
                    serde_json::json!({ "value": value, "origin": origin.to_string(), "env": env }),
                )
            })
            .collect();
        let provider = s3.map(|(name, s3)| {
            serde_json::json!({
                "name": name,
                "endpoint_url": s3.endpoint_url,
                "region": s3.region,
                "path_style": s3.path_style,
            })
        });
        let prices: serde_json::Map<String, serde_json::Value> = ctx
            .settings
            .prices
            .iter()
            .map(|(name, layer)| (name.clone(), price_override_json(layer)))
            .collect();
        print_json(&serde_json::json!({
            "config_file": file,
            "settings": settings,
            "provider": provider,
            "prices": prices,
        }))?;
    } else {
        println!("config file: {}", file.as_deref().unwrap_or("(none)"));
        for (key, shown, _, origin, env) in rows {
            println!("{key:<20} = {shown:<14} ({origin}; env {env})");
        }
        if let Some((name, s3)) = s3 {
            println!(
                "provider {name} gives: endpoint {}, region {}, {} addressing",
                s3.endpoint_url.as_deref().unwrap_or("AWS's own"),
                s3.region.as_deref().unwrap_or("from the AWS chain"),
                if s3.path_style {
                    "path-style"
                } else {
                    "virtual-host"
                }
            );
        }
        for (name, layer) in &ctx.settings.prices {
            let figures: Vec<String> = price_override_json(layer)
                .as_object()
                .into_iter()
                .flatten()
                .map(|(key, value)| format!("{key} = {value}"))
                .collect();
            println!("[prices.\"{name}\"] (config file): {}", figures.join(", "));
        }
    }
    Ok(ExitStatus::Success)
}

/// The figures a `[prices…]` table sets, by key.
fn price_override_json(layer: &crate::cost::PriceOverride) -> serde_json::Value {
    let fields = [
        ("put_per_1000", layer.put_per_1000),
        ("get_per_1000", layer.get_per_1000),
        ("list_per_1000", layer.list_per_1000),
        ("delete_per_1000", layer.delete_per_1000),
        ("retrieval_per_gb", layer.retrieval_per_gb),
        ("egress_per_gb", layer.egress_per_gb),
        ("storage_per_gb_month", layer.storage_per_gb_month),
    ];
    serde_json::Value::Object(
        fields
            .into_iter()
            .filter_map(|(key, value)| Some((key.to_string(), serde_json::json!(value?))))
            .collect(),
    )
}

/// The plan-deciding options from the effective settings and the command line's
/// filter rules (the config file's excludes come after them).
impl Sides {
    async fn open(
        source: &Location,
        destination: &Location,
        settings: &Settings,
        storage_class: Option<&crate::storage::StorageClass>,
    ) -> Result<Sides, Error> {
        let stores = store_settings(settings);
        let sides = Sides {
            source: Storage::open(source, &stores).await?,
            destination: Storage::open(destination, &stores.writing_in(storage_class)).await?,
        };
        // Roots that only their server can compare (an SSH server's aliases,
        // `~`, symbolic links) are compared as it resolves them.
        if let (Storage::Object(src), Storage::Object(dst)) = (&sides.source, &sides.destination)
            && let (Some(src), Some(dst)) = (src.resolved_root().await?, dst.resolved_root().await?)
        {
            sync::check_resolved_roots(&src, &dst)?;
        }
        Ok(sides)
    }
}

/// How object stores are reached, from the effective settings.
fn store_settings(settings: &Settings) -> crate::storage::StoreSettings {
    crate::storage::StoreSettings::from_config(settings)
}

/// As rsync does ("IO error encountered -- skipping file deletion"): when part
/// of the source could not be read, what looks missing there may only be
/// unread, so no deletion runs unless `--ignore-errors` says so.
fn withhold_deletes(scan: &Scan, settings: &Settings) -> Option<String> {
    let unread = scan.source.issues.iter().filter(|i| i.is_error()).count();
    (unread > 0 && !settings.ignore_errors.value).then(|| {
        format!(
            "{unread} source entr{} could not be read (--ignore-errors deletes anyway)",
            if unread == 1 { "y" } else { "ies" }
        )
    })
}

fn conflict_policy(settings: &Settings) -> sync::conflict::ConflictPolicy {
    if settings.fail_on_conflict.value {
        sync::conflict::ConflictPolicy::Fail
    } else {
        sync::conflict::ConflictPolicy::Replan
    }
}

/// The delta block size: the one set (flag, environment, config), else the
/// one suited to the side that keeps the sidecars (the destination, else the
/// source).
fn block_size(settings: &Settings, (source, destination): (&Location, &Location)) -> u64 {
    if settings.block_size.origin != crate::config::Origin::Default {
        return settings.block_size.value.0;
    }
    destination
        .delta_block_size()
        .or_else(|| source.delta_block_size())
        .map_or(settings.block_size.value.0, u64::from)
}

fn sync_options(
    settings: &Settings,
    selectors: crate::cli::Selectors,
    sides: (&Location, &Location),
) -> Result<SyncOptions, Error> {
    let crate::cli::Selectors {
        mut filters,
        files_from,
    } = selectors;
    let storage_class = settings
        .storage_class
        .value
        .as_deref()
        .map(|class| crate::storage::StorageClass::for_destination(class, sides.1))
        .transpose()?;
    let backup = if settings.backup.value || settings.backup_dir.value.is_some() {
        let dir = settings
            .backup_dir
            .value
            .as_deref()
            .map(|dir| crate::sync::BackupDir::place(dir, sides.1))
            .transpose()?;
        let suffix = settings
            .suffix
            .value
            .clone()
            .unwrap_or_else(|| if dir.is_some() { "" } else { "~" }.to_string());
        Some(crate::sync::Backup { dir, suffix })
    } else {
        None
    };
    // Backups are never synced or deleted: their rule comes first.
    if let Some(rule) = backup.as_ref().and_then(crate::sync::Backup::exclusion) {
        filters.insert(0, rule);
    }
    filters.extend(settings.exclude.value.iter().map(|pattern| FilterRule {
        kind: RuleKind::Exclude,
        pattern: pattern.clone(),
    }));
    Ok(SyncOptions {
        delete: settings.delete.value,
        max_delete: settings.max_delete.value,
        archive: settings.archive.value,
        checksum: settings.checksum.value,
        delta_threshold: settings.delta_threshold.value.0,
        block_size: block_size(settings, sides),
        allow_empty_source: settings.allow_empty_source.value,
        filters,
        remote_signature: settings.remote_signature.value,
        unverified_rebuilds: settings.unverified_rebuilds.value,
        selection: crate::sync::Selection {
            update: settings.update.value,
            ignore_existing: settings.ignore_existing.value,
            existing: settings.existing.value,
            size_only: settings.size_only.value,
            ignore_times: settings.ignore_times.value,
            modify_window_s: settings.modify_window.value.0.as_secs(),
            min_size: settings.min_size.value.map(|s| s.0),
            max_size: settings.max_size.value.map(|s| s.0),
            whole_file: settings.whole_file.value,
        },
        files_from,
        backup,
        storage_class,
    })
}

/// `hugesync providers`: the S3-compatible services known by name.
fn providers() -> Result<ExitStatus, Error> {
    use crate::storage::s3::providers::{PROVIDERS, endpoint_text, needs};
    let mut out = String::from("S3-compatible providers (--provider NAME):\n\n");
    for p in PROVIDERS {
        out.push_str(&format!(
            "  {:<13} {}\n  {:<13} endpoint {}{}\n  {:<13} needs {}\n\n",
            p.name,
            p.title,
            "",
            endpoint_text(p),
            if p.path_style { ", path-style" } else { "" },
            "",
            needs(p)
        ));
    }
    out.push_str(
        "An explicit --endpoint-url, --region or --path-style wins over the provider's.\n",
    );
    write_stdout(out.as_bytes())
}

/// `hugesync completions SHELL`: the completion script on stdout.
fn completions(shell: clap_complete::Shell) -> Result<ExitStatus, Error> {
    use clap::CommandFactory;
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "hugesync", &mut out);
    write_stdout(&out)
}

/// `hugesync man [SUBCOMMAND] [--dir DIR]`: manual pages (roff), one per
/// command as git and cargo ship them: hugesync(1) and hugesync-sync(1), ….
fn manual_pages(args: &crate::cli::ManArgs) -> Result<ExitStatus, Error> {
    use clap::CommandFactory;
    let top = Cli::command().name("hugesync");
    let pages: Vec<(String, clap::Command)> =
        std::iter::once(("hugesync".to_string(), top.clone()))
            .chain(
                top.get_subcommands()
                    .filter(|sub| sub.get_name() != "help")
                    .map(|sub| {
                        let name = format!("hugesync-{}", sub.get_name());
                        (name.clone(), sub.clone().name(name))
                    }),
            )
            .collect();
    let render = |command: clap::Command| {
        let mut out = Vec::new();
        clap_mangen::Man::new(command)
            .render(&mut out)
            .map_err(Error::Output)?;
        Ok::<_, Error>(out)
    };
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir).map_err(Error::Output)?;
        for (name, command) in pages {
            let path = dir.join(format!("{name}.1"));
            let page = render(command)?;
            crate::outfile::write_output(&path, Error::Output, |out| {
                out.write_all(&page).map_err(Error::Output)
            })?;
        }
        return Ok(ExitStatus::Success);
    }
    let wanted = match &args.subcommand {
        Some(sub) => format!("hugesync-{sub}"),
        None => "hugesync".to_string(),
    };
    let Some((_, command)) = pages.into_iter().find(|(name, _)| *name == wanted) else {
        return Err(Error::Usage(format!(
            "no manual page for `{}`: name a subcommand (`hugesync --help` lists them)",
            args.subcommand.as_deref().unwrap_or_default()
        )));
    };
    write_stdout(&render(command)?)
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

/// `hugesync check SRC DST`: both sides listed, then each pair compared by
/// the best checksum both hold (see `sync::check`).
async fn check_command(
    args: crate::cli::CheckArgs,
    selectors: crate::cli::Selectors,
    ctx: &Context,
) -> Result<ExitStatus, Error> {
    let source = Location::parse(&args.source)?;
    let destination = Location::parse(&args.destination)?;
    let mut options = sync_options(&ctx.settings, selectors, (&source, &destination))?;
    // Checksums are gathered by the check itself, only where needed.
    options.checksum = false;
    options.archive = false;
    let quiet = args.json || ctx.verbosity == Verbosity::Quiet;
    let (scan, sides) = scan_sides(&source, &destination, &options, ctx, quiet).await?;
    let progress = std::sync::Arc::new(sync::check::CheckProgress::default());
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| check_bar(progress.clone()));
    let check_options = sync::check::CheckOptions {
        download: args.download,
    };
    let checked = tokio::select! {
        report = sync::check::check(&scan, &sides.source, &sides.destination, check_options, progress) => report,
        () = ctx.cancel.cancelled() => return Err(Error::Interrupted),
    };
    if let Some(bar) = bar {
        bar.abort();
    }
    if args.json {
        print_json(&checked)?;
    } else if ctx.verbosity != Verbosity::Quiet {
        report::print_check(&checked);
    }
    Ok(if !checked.alike() || scan.error_count() > 0 {
        ExitStatus::Partial
    } else {
        ExitStatus::Success
    })
}

/// The check's progress on stderr: pairs settled, bytes hashed, requests.
fn check_bar(progress: std::sync::Arc<sync::check::CheckProgress>) -> tokio::task::JoinHandle<()> {
    use std::sync::atomic::Ordering;
    tokio::spawn(async move {
        let bar = indicatif::ProgressBar::new(0).with_style(
            indicatif::ProgressStyle::with_template("checking [{bar:30}] {pos}/{len} files  {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            bar.set_length(progress.pairs.load(Ordering::Relaxed));
            bar.set_position(progress.settled.load(Ordering::Relaxed));
            bar.set_message(format!(
                "{} read, {} requests",
                crate::format::bytes(progress.bytes_read.load(Ordering::Relaxed)),
                crate::format::count(progress.requests.load(Ordering::Relaxed)),
            ));
        }
    })
}

/// Both sides of a sync, opened.
struct Sides {
    source: Storage,
    destination: Storage,
}

/// Opens and scans both sides (with a spinner on a terminal unless `quiet`).
async fn scan_sides(
    source: &Location,
    destination: &Location,
    options: &SyncOptions,
    ctx: &Context,
    quiet: bool,
) -> Result<(Scan, Sides), Error> {
    sync::check_locations(source, destination)?;
    let sides = Sides::open(
        source,
        destination,
        &ctx.settings,
        options.storage_class.as_ref(),
    )
    .await?;
    let progress = ScanProgress::default();
    let spinner =
        (!quiet && std::io::stderr().is_terminal()).then(|| scan_spinner(progress.clone()));
    let scanned = tokio::select! {
        scanned = sync::scan(&sides.source, &sides.destination, options, &progress) => scanned,
        () = ctx.cancel.cancelled() => return Err(Error::Interrupted),
    };
    if let Some(spinner) = spinner {
        spinner.abort();
    }
    let scan = scanned?;
    print_scan_notes(&scan, ctx);
    Ok((scan, sides))
}

/// The plan for a scan: diff, restored times confirmed, deltas estimated.
async fn plan_from_scan(
    source: Location,
    destination: Location,
    scan: &Scan,
    options: SyncOptions,
    sides: &Sides,
    settings: &Settings,
) -> SyncPlan {
    let mut plan = sync::build_plan(source, destination, scan, options);
    sync::refine::confirm_restored_times(&mut plan, &sides.source, &sides.destination).await;
    sync::estimate::estimate_deltas(&mut plan, &sides.source, &sides.destination).await;
    plan.cost_model = Some(cost_model(&plan, scan, sides, settings));
    plan
}

/// What the plan's cost estimate needs: each side's store limits and prices.
fn cost_model(
    plan: &SyncPlan,
    scan: &Scan,
    sides: &Sides,
    settings: &Settings,
) -> crate::cost::CostModel {
    use crate::cost::{SideModel, StoreModel, billing_for, list_page_of};
    let provider = settings
        .provider
        .value
        .as_deref()
        .and_then(|name| crate::storage::s3::providers::find(name).ok())
        .map(|provider| provider.name);
    let endpoint_set = settings.endpoint_url.value.is_some();
    let side = |location: &Location, storage: &Storage, class: Option<&str>| SideModel {
        store: storage
            .object_store()
            .map(|store| StoreModel::of(store.limits(), list_page_of(location))),
        billing: billing_for(location, provider, endpoint_set, class, &settings.prices),
    };
    let class = plan.options.storage_class.as_ref().map(|c| c.name.as_str());
    crate::cost::CostModel {
        source: side(&plan.source, &sides.source, None),
        destination: side(&plan.destination, &sides.destination, class),
        same_service: match (
            sides.source.object_store(),
            sides.destination.object_store(),
        ) {
            (Some(src), Some(dst)) => dst.copies_from(src.as_ref()),
            _ => false,
        },
        listed: (
            scan.source.manifest.len() as u64,
            scan.destination.manifest.len() as u64,
        ),
    }
}

/// What a run still needs from the scans once the plan is made. The manifests
/// themselves are dropped before anything executes: on a large tree they are
/// the biggest thing in memory after the plan.
struct ScanVerdict {
    /// Some entries could not be read: the run is at best a partial success.
    partial: bool,
    withhold_deletes: Option<String>,
}

impl ScanVerdict {
    fn of(scan: Scan, settings: &Settings) -> ScanVerdict {
        ScanVerdict {
            partial: scan.error_count() > 0,
            withhold_deletes: withhold_deletes(&scan, settings),
        }
    }
}

/// What the scans passed over or could not read, on stderr unless -q (the exit
/// code reports unreadable entries either way).
fn print_scan_notes(scan: &Scan, ctx: &Context) {
    if ctx.verbosity == Verbosity::Quiet {
        return;
    }
    let issues: Vec<_> = scan
        .source
        .issues
        .iter()
        .chain(&scan.destination.issues)
        .collect();
    for line in report::scan_notes(&issues, ctx.verbosity == Verbosity::Verbose) {
        eprintln!("{line}");
    }
}

/// A stderr spinner with both sides' live counts while a scan runs.
fn scan_spinner(progress: ScanProgress) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let bar = indicatif::ProgressBar::new_spinner();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            let (src_n, src_b) = progress.source.get();
            let (dst_n, dst_b) = progress.destination.get();
            bar.set_message(format!(
                "scanning: source {} entries ({}), destination {} entries ({})",
                crate::format::count(src_n),
                crate::format::bytes(src_b),
                crate::format::count(dst_n),
                crate::format::bytes(dst_b),
            ));
            bar.tick();
        }
    })
}

/// Prints, confirms and executes a plan; the common tail of `sync` and `apply`.
async fn finish_run(
    plan: SyncPlan,
    scan: ScanVerdict,
    sides: Sides,
    run: &RunFlags,
    ctx: &Context,
) -> Result<ExitStatus, Error> {
    let partial_scan = scan.partial;
    let human = !run.json && ctx.verbosity != Verbosity::Quiet;
    if run.dry_run {
        print_plan(&plan, run.json, ctx)?;
        return Ok(if partial_scan {
            ExitStatus::Partial
        } else {
            ExitStatus::Success
        });
    }
    if human {
        let listing = if ctx.verbosity == Verbosity::Verbose {
            Listing::Changes
        } else {
            Listing::None
        };
        print_plan_text(&plan, listing)?;
    }
    // With nothing to change, the run still removes the temp files dead runs
    // left in the destination (a connection dropped before their removal):
    // they are HugeSync's own, so no confirmation is asked for them.
    if plan.stats.changes() == 0 && plan.leftovers.is_empty() {
        if run.json {
            // A script reading the events gets its summary either way.
            let report = sync::ExecReport {
                skipped: plan.stats.skip.count,
                ..sync::ExecReport::default()
            };
            print_json_line(&serde_json::json!({ "event": "summary", "report": report }))?;
        }
        return Ok(if partial_scan {
            ExitStatus::Partial
        } else {
            ExitStatus::Success
        });
    }
    plan.check_safety()?;
    if !run.yes && plan.stats.changes() > 0 {
        confirm(ctx).await?;
    }

    let plan = Arc::new(plan);
    let mut reporters: Vec<Box<dyn Reporter>> = Vec::new();
    if run.json {
        reporters.push(Box::new(JsonLinesReporter));
    } else {
        reporters.push(Box::new(LineReporter {
            verbose: ctx.verbosity == Verbosity::Verbose,
        }));
        if ctx.settings.progress.value && std::io::stderr().is_terminal() {
            reporters.push(Box::new(BarReporter::new()));
        }
    }
    let options = ExecOptions {
        jobs: ctx.settings.jobs.value,
        fsync: ctx.settings.fsync.value,
        pause: None,
        conflicts: conflict_policy(&ctx.settings),
        resume: crate::resume::ResumeStore::default_location(),
        withhold_deletes: scan.withhold_deletes,
        leave_for_finalize: false,
    };
    let report = execute_reported(plan.clone(), sides, options, reporters, ctx).await;

    if run.json {
        print_json_line(&serde_json::json!({ "event": "summary", "report": report }))?;
    } else if ctx.verbosity != Verbosity::Quiet {
        print!("{}", report::summary_text(&report, &plan));
    }
    Ok(match ExitStatus::of_report(&report) {
        ExitStatus::Success if partial_scan => ExitStatus::Partial,
        status => status,
    })
}

/// Executes `plan`, its events folded and shown by `reporters`; returns once
/// they have shown the last one.
async fn execute_reported(
    plan: Arc<SyncPlan>,
    sides: Sides,
    options: ExecOptions,
    reporters: Vec<Box<dyn Reporter>>,
    ctx: &Context,
) -> sync::ExecReport {
    let (events_tx, events_rx) = tokio::sync::mpsc::channel(1024);
    let consumer = tokio::spawn(progress::consume(events_rx, reporters));
    let report = sync::execute(
        plan,
        sides.source,
        sides.destination,
        options,
        events_tx,
        ctx.cancel.clone(),
    )
    .await;
    let _ = consumer.await;
    report
}

/// Asks on the terminal; refuses when nobody can answer.
async fn confirm(ctx: &Context) -> Result<(), Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "refusing to run without confirmation: stdin is not a terminal; pass --yes to run, or --dry-run to only see the plan".into(),
        ));
    }
    eprint!("Proceed? [y/N] ");
    let _ = std::io::stderr().flush();
    let answer = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    });
    let line = tokio::select! {
        answer = answer => answer.map_err(|e| Error::Output(std::io::Error::other(e)))?.map_err(Error::Output)?,
        () = ctx.cancel.cancelled() => return Err(Error::Interrupted),
    };
    if matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(Error::Usage("not confirmed; nothing was changed".into()))
    }
}

/// The full plan: JSON, or the table listing every change (every item with -v).
fn print_plan(plan: &SyncPlan, json: bool, ctx: &Context) -> Result<(), Error> {
    if json {
        /// The plan, and what it will cost.
        #[derive(serde::Serialize)]
        struct Priced<'a> {
            #[serde(flatten)]
            plan: &'a SyncPlan,
            cost: Option<crate::cost::CostEstimate>,
        }
        return print_json(&Priced {
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
