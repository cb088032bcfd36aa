//! `hugesync plan SRC DST [-o FILE]`: the plan, shown or saved for `apply`.

use super::pipeline::open_and_scan;
use super::{Context, Verbosity, listing_for, output_is_stdout, print_plan, report};
use crate::cli::{PlanArgs, Selectors};
use crate::error::{Error, ExitStatus};
use crate::sync::session;
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
    let (scan, session) = open_and_scan(&source, &destination, &options, ctx, quiet_scan).await?;
    let plan = session.plan(source, destination, &scan, options).await;
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
