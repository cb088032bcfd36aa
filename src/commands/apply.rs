//! `hugesync apply PLAN`: runs a saved plan, once it is checked current.

use super::pipeline::{ScanVerdict, finish_run, open_and_scan};
use super::{Context, Verbosity};
use crate::cli::ApplyArgs;
use crate::config::Settings;
use crate::error::{Error, ExitStatus};
use crate::sync;
use crate::sync::execute::PlanToRun;
use crate::sync::plan::OpenedPlan;
use crate::sync::plan::parts::TemporaryPlace;
use crate::sync::session::{Keep, Saving};
use std::sync::Arc;

pub(super) async fn apply_command(args: ApplyArgs, ctx: &Context) -> Result<ExitStatus, Error> {
    let location = crate::uri::Location::parse(&args.plan)?;
    let store_settings = ctx.settings.store_settings();
    let saved = OpenedPlan::open(&location, &store_settings).await?.plan;
    let head = saved.head().clone();
    let quiet_scan = args.run.json || ctx.verbosity == Verbosity::Quiet;
    let (scan, session) = open_and_scan(
        &head.source,
        &head.destination,
        &head.options,
        ctx,
        quiet_scan,
    )
    .await?;
    let verdict = ScanVerdict::of(&scan, &session);
    // One pass over the plan's parts against the scans: stale entries, the
    // totals and the cost counted from the items themselves.
    let check = sync::plan::check_current(&saved, &scan).await?;
    let (plan, counted, _replanned_in) = match check.first_stale {
        None => {
            drop(scan);
            (with_stats(saved, check.stats), Some(check.usage), None)
        }
        Some(_) if args.replan => {
            // Planned again into a temporary place, a part at a time as
            // `plan -o` does, and run from there: neither the old plan nor
            // the new one is held whole.
            let temporary = TemporaryPlace::new("replan").await?;
            let (fresh, usage) = session
                .plan_into(
                    (head.source.clone(), head.destination.clone()),
                    scan,
                    head.options.clone(),
                    &temporary.place,
                    Saving {
                        keep: Keep::Nothing,
                        edits: &check.edits,
                        list_unchanged: false,
                        each: None,
                        shards: None,
                    },
                )
                .await?;
            if ctx.verbosity != Verbosity::Quiet {
                eprintln!(
                    "{} planned entries changed since the plan was made; planned again.",
                    check.stale
                );
            }
            let plan = PlanToRun::in_parts(Arc::new(fresh), Arc::new(temporary.open().await?));
            (plan, Some(usage), Some(temporary))
        }
        Some(first) => {
            return Err(sync::PlanError::Stale {
                count: check.stale,
                first: first.display(),
            }
            .into());
        }
    };
    let plan = with_current_guards(plan, &ctx.settings);
    finish_run(plan, counted, (verdict, session), &args.run, ctx).await
}

/// The plan with the totals counted from its items.
fn with_stats(mut plan: PlanToRun, stats: sync::plan::PlanStats) -> PlanToRun {
    // A plan held whole was counted as it was read.
    if matches!(plan, PlanToRun::InParts { .. }) {
        plan.head_mut().stats = stats;
    }
    plan
}

/// The deletion guards set now (config file, environment) apply to a saved
/// plan as well as those it was made with: the stricter wins.
fn with_current_guards(mut plan: PlanToRun, settings: &Settings) -> PlanToRun {
    use crate::config::Origin;
    let head = plan.head_mut();
    let set_now = |origin: &Origin| !matches!(origin, Origin::Default);
    if set_now(&settings.max_delete.origin)
        && let Some(now) = settings.max_delete.value
    {
        head.options.max_delete = Some(head.options.max_delete.map_or(now, |saved| saved.min(now)));
    }
    if set_now(&settings.allow_empty_source.origin) && !settings.allow_empty_source.value {
        head.options.allow_empty_source = false;
    }
    plan
}
