//! `hugesync sync SRC DST`: plan and run in one go, headless.

use std::sync::Arc;

use super::pipeline::{ScanVerdict, finish_run, open_and_scan};
use super::{Context, Verbosity};
use crate::cli::{Selectors, SyncArgs};
use crate::error::{Error, ExitStatus};
use crate::sync::execute::PlanToRun;
use crate::sync::plan::parts::TemporaryPlace;
use crate::sync::session::{self, Keep, Saving};
use crate::uri::Location;

pub(super) async fn sync_command(
    args: SyncArgs,
    selectors: Selectors,
    ctx: &Context,
) -> Result<ExitStatus, Error> {
    let source = Location::parse(&args.source)?;
    let destination = Location::parse(&args.destination)?;
    let options = session::sync_options(&ctx.settings, selectors, (&source, &destination))?;
    let quiet_scan = args.run.json || ctx.verbosity == Verbosity::Quiet;
    let (scan, session) = open_and_scan(&source, &destination, &options, ctx, quiet_scan).await?;
    let verdict = ScanVerdict::of(&scan, &session);
    // The plan is made into a temporary directory of parts and run from
    // there, as `plan -o` and `apply` would: neither the scans nor the plan
    // are held whole. A dry run that prints every item (`-v`, `--json`)
    // keeps them to print, as `plan` does.
    let prints_every_item =
        args.run.dry_run && (args.run.json || ctx.verbosity == Verbosity::Verbose);
    let keep = if prints_every_item {
        Keep::All
    } else {
        Keep::Nothing
    };
    let temporary = match TemporaryPlace::new("sync").await {
        Ok(temporary) => temporary,
        Err(cannot) => {
            // As a scan that cannot spill: the run goes on in memory.
            tracing::warn!("{cannot}; the plan is held in memory");
            let plan = session.plan(source, destination, &scan, options).await?;
            drop(scan);
            return finish_run(plan.into(), None, (verdict, session), &args.run, ctx).await;
        }
    };
    let (plan, usage) = session
        .plan_into(
            (source, destination),
            scan,
            options,
            &temporary.place,
            Saving::keeping(keep),
        )
        .await?;
    let plan = match keep {
        Keep::All => PlanToRun::from(plan),
        _ => PlanToRun::in_parts(Arc::new(plan), Arc::new(temporary.open().await?)),
    };
    let status = finish_run(plan, Some(usage), (verdict, session), &args.run, ctx).await;
    drop(temporary);
    status
}
