//! `hugesync sync SRC DST`: plan and run in one go, headless.

use super::pipeline::{ScanVerdict, finish_run, open_and_scan};
use super::{Context, Verbosity};
use crate::cli::{Selectors, SyncArgs};
use crate::error::{Error, ExitStatus};
use crate::sync::session;
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
    let plan = session.plan(source, destination, &scan, options).await?;
    let verdict = ScanVerdict::of(&scan, &session);
    drop(scan);
    finish_run(plan.into(), None, (verdict, session), &args.run, ctx).await
}
