//! `hugesync plan SRC DST [-o FILE]`: the plan, shown or saved for `apply`.

use super::pipeline::open_and_scan;
use super::printed::{PlanOutput, print_plan_to_run};
use super::report::Listing;
use super::{Context, Verbosity, listing_for, output_is_stdout, print_plan, report};
use crate::cli::{PlanArgs, Selectors};
use crate::error::{Error, ExitStatus};
use crate::sync::SyncPlan;
use crate::sync::execute::PlanToRun;
use crate::sync::plan::parts::{PlanParts, PlanPlace};
use crate::sync::session::{self, Keep, Saving};
use crate::uri::Location;

pub(super) async fn plan_command(
    args: PlanArgs,
    selectors: Selectors,
    ctx: &Context,
) -> Result<ExitStatus, Error> {
    let to_stdout = output_is_stdout(args.output.as_deref(), args.json, "the plan file")?;
    let source = Location::parse(&args.source)?;
    let destination = Location::parse(&args.destination)?;
    let options = session::sync_options(&ctx.settings, selectors, (&source, &destination))?;
    let quiet_scan = args.json || ctx.verbosity == Verbosity::Quiet;
    let place = match &args.output {
        Some(path) if !to_stdout && !crate::outfile::is_special(path) => {
            Some(plan_place(path, [&source, &destination])?)
        }
        _ => None,
    };
    if args.shards.is_some() && place.is_none() {
        return Err(Error::Usage(
            "--shards needs -o naming a directory or an object-store prefix: shards read a plan in parts"
                .into(),
        ));
    }
    let (scan, session) = open_and_scan(&source, &destination, &options, ctx, quiet_scan).await?;
    let partial_scan = scan.error_count() > 0;
    let show_shares = args.shards.is_some() && ctx.verbosity != Verbosity::Quiet;
    let mut shares_after = None;
    let plan = match &place {
        // Saved as it is made: the scan and the plan are never held whole.
        Some(at) => {
            let saving = PlanPlace::open(at, &ctx.settings.store_settings()).await?;
            // What the text lists is read back from the parts; `-v`
            // (unchanged entries too) and `--json` print the plan held.
            let keep = if args.json || ctx.verbosity == Verbosity::Verbose {
                Keep::All
            } else {
                Keep::Nothing
            };
            let (plan, _) = session
                .plan_into(
                    (source, destination),
                    scan,
                    options,
                    &saving,
                    Saving {
                        shards: args.shards,
                        ..Saving::keeping(keep)
                    },
                )
                .await?;
            if keep == Keep::Nothing && ctx.verbosity != Verbosity::Quiet {
                print_from_parts(&plan, &saving, at).await?;
                if show_shares {
                    super::shards::print_saved_shares(&saving, at, false).await?;
                }
            } else if show_shares {
                shares_after = Some((saving, at));
            }
            if !args.json && ctx.verbosity != Verbosity::Quiet {
                eprintln!("Plan saved to {at}; run it with `hugesync apply {at}`.");
            }
            if keep == Keep::Nothing {
                return finish(&plan, partial_scan);
            }
            plan
        }
        None => {
            let plan = session.plan(source, destination, &scan, options).await?;
            // The plan holds all it needs from the scan; the manifests go
            // before the plan is written and printed.
            drop(scan);
            // Standard output, a FIFO or a device: one JSON document.
            if let Some(path) = &args.output {
                plan.save(path)?;
            }
            plan
        }
    };
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
    // Each shard's share follows the plan (on stderr beside its JSON).
    if let Some((saving, at)) = shares_after {
        super::shards::print_saved_shares(&saving, at, args.json).await?;
    }
    finish(&plan, partial_scan)
}

/// The plan's warning, if `sync` would refuse it, and the exit status.
fn finish(plan: &SyncPlan, partial_scan: bool) -> Result<ExitStatus, Error> {
    if let Err(refusal) = plan.check_safety() {
        eprintln!("warning: `sync` would refuse this plan: {refusal}");
    }
    Ok(if partial_scan {
        ExitStatus::Partial
    } else {
        ExitStatus::Success
    })
}

/// The plan's text, its items and cost read back from the parts just saved,
/// a part at a time.
async fn print_from_parts(plan: &SyncPlan, place: &PlanPlace, at: &Location) -> Result<(), Error> {
    let parts =
        PlanParts::open(place.clone())
            .await?
            .ok_or_else(|| crate::sync::PlanError::NotFound {
                plan: at.to_string(),
            })?;
    let plan = PlanToRun::in_parts(
        std::sync::Arc::new(plan.clone()),
        std::sync::Arc::new(parts),
    );
    print_plan_to_run(&plan, PlanOutput::Text(Listing::Changes), None).await
}

/// Where `-o` saves a plan in parts. A regular file there (a plan file of
/// an earlier version, or anything else) is not replaced by a directory,
/// and a place inside either side is refused: the plan would be synced with
/// it, or deleted by `--delete`.
fn plan_place(path: &std::path::Path, sides: [&Location; 2]) -> Result<Location, Error> {
    let at = match path.to_str() {
        Some(text) => Location::parse(text)?,
        None => Location::Local(path.to_path_buf()),
    };
    if let Some((side, root)) = crate::sync::plan::parts::side_holding(&at, sides) {
        return Err(Error::Usage(format!(
            "the plan's place {at} overlaps the {side} {root}: the plan would be synced (or deleted) with it; save it outside both sides"
        )));
    }
    if let Location::Local(local) = &at
        && local.is_file()
    {
        return Err(Error::Usage(format!(
            "{} is a file; a plan is saved as a directory of parts: name a new directory, or remove the file first",
            local.display()
        )));
    }
    Ok(at)
}
