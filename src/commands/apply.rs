//! `hugesync apply PLAN`: runs a saved plan, once it is checked current.

use super::pipeline::{ScanVerdict, finish_run, open_and_scan};
use super::{Context, Verbosity};
use crate::cli::ApplyArgs;
use crate::config::Settings;
use crate::error::{Error, ExitStatus};
use crate::sync::{self, SyncPlan};

pub(super) async fn apply_command(args: ApplyArgs, ctx: &Context) -> Result<ExitStatus, Error> {
    let location = crate::uri::Location::parse(&args.plan)?;
    let saved = SyncPlan::load_saved(&location, &ctx.settings.store_settings())
        .await?
        .plan;
    let quiet_scan = args.run.json || ctx.verbosity == Verbosity::Quiet;
    let (scan, session) = open_and_scan(
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
            let mut fresh = session
                .plan(
                    saved.source.clone(),
                    saved.destination.clone(),
                    &scan,
                    saved.options.clone(),
                )
                .await?;
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
    let verdict = ScanVerdict::of(scan, &session);
    finish_run(plan, verdict, session, &args.run, ctx).await
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
