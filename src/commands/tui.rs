//! `hugesync tui SRC DST`: scan, review, approve and watch, on the terminal.

use std::sync::Arc;

use super::Context;
use super::pipeline::{ScanVerdict, scan_notes};
use crate::cli::Selectors;
use crate::error::{Error, ExitStatus};
use crate::sync::ScanProgress;
use crate::sync::execute::PlanToRun;
use crate::sync::plan::parts::TemporaryPlace;
use crate::sync::session::{self, Keep, RunKind, Saving, Session};
use crate::tui::app::App;
use crate::tui::model::TreeBuilder;
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
    // The plan is made into a temporary directory of parts, every entry
    // listed (the details pane shows any); the review keeps its tree.
    let temporary = TemporaryPlace::new("review").await;
    let planning = async {
        let scan = match session.scan(&options, &progress).await {
            Some(scanned) => scanned?,
            None => return Err(Error::Interrupted),
        };
        let seen = (ScanVerdict::of(&scan, &session), scan_notes(&scan, ctx));
        let temporary = match &temporary {
            Ok(temporary) => temporary,
            Err(cannot) => {
                // As a scan that cannot spill: the review holds the plan.
                tracing::warn!("{cannot}; the plan is held in memory");
                let plan = session
                    .plan(source, destination, &scan, options.clone())
                    .await?;
                return Ok((App::new(plan), seen));
            }
        };
        let mut tree = TreeBuilder::default();
        let mut each = |item: &crate::sync::PlanItem| tree.push(item);
        let saving = Saving {
            keep: Keep::Nothing,
            edits: &Default::default(),
            list_unchanged: true,
            each: Some(&mut each),
            shards: None,
        };
        let (head, _) = session
            .plan_into(
                (source, destination),
                scan,
                options.clone(),
                &temporary.place,
                saving,
            )
            .await?;
        let items = PlanToRun::in_parts(
            Arc::new(head.head_only()),
            Arc::new(temporary.open().await?),
        );
        Ok::<_, Error>((App::with_tree(head, items, tree.finish()), seen))
    };
    let Some(planned) = tui.scanning(&progress, planning).await else {
        return Ok(ExitStatus::Success);
    };
    let (app, seen) = planned?;
    let (verdict, notes) = seen;
    let exec = session.exec_options(RunKind::Whole, verdict.withhold_deletes);
    let status = tui.review_and_run(app, &session, exec).await;
    drop(tui);
    drop(temporary);
    for line in notes {
        eprintln!("{line}");
    }
    Ok(match status {
        ExitStatus::Success if verdict.partial => ExitStatus::Partial,
        other => other,
    })
}
