//! `hugesync tui SRC DST`: scan, review, approve and watch, on the terminal.

use super::Context;
use super::pipeline::print_scan_notes;
use crate::cli::Selectors;
use crate::error::{Error, ExitStatus};
use crate::sync::ScanProgress;
use crate::sync::session::{self, RunKind, Session};
use crate::uri::Location;

pub(super) async fn tui_command(
    args: crate::cli::TuiArgs,
    selectors: Selectors,
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
    let options = session::sync_options(&ctx.settings, selectors, (&source, &destination))?;
    let session = Session::open(
        &source,
        &destination,
        &options,
        &ctx.settings,
        ctx.cancel.clone(),
    )
    .await?;
    let progress = ScanProgress::default();
    let mut tui = crate::tui::Tui::start();
    let planning = async {
        let scan = match session.scan(&options, &progress).await {
            Some(scanned) => scanned?,
            None => return Err(Error::Interrupted),
        };
        let plan = session
            .plan(source, destination, &scan, options.clone())
            .await?;
        Ok::<_, Error>((plan, scan))
    };
    let Some(planned) = tui.scanning(&progress, planning).await else {
        return Ok(ExitStatus::Success);
    };
    let (plan, scan) = planned?;
    let exec = session.exec_options(RunKind::Whole, session.withheld_deletes(&scan));
    let status = tui.review_and_run(plan, &session, exec).await;
    drop(tui);
    print_scan_notes(&scan, ctx);
    Ok(match status {
        ExitStatus::Success if scan.error_count() > 0 => ExitStatus::Partial,
        other => other,
    })
}
