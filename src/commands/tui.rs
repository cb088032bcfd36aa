//! `hugesync tui SRC DST`: scan, review, approve and watch, on the terminal.

use std::sync::Arc;

use super::Context;
use super::pipeline::{ScanVerdict, scan_notes};
use crate::cli::Selectors;
use crate::error::{Error, ExitStatus};
use crate::sync::ScanProgress;
use crate::sync::execute::PlanToRun;
use crate::sync::plan::parts::{PlanParts, PlanPlace};
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
    let kept = tempfile::Builder::new()
        .prefix("hugesync-review-")
        .tempdir()
        .map_err(|source| crate::sync::PlanError::Write {
            path: std::env::temp_dir(),
            source,
        })?;
    let at = Location::Local(kept.path().to_path_buf());
    let place = PlanPlace::open(&at, &ctx.settings.store_settings()).await?;
    let planning = async {
        let scan = match session.scan(&options, &progress).await {
            Some(scanned) => scanned?,
            None => return Err(Error::Interrupted),
        };
        let seen = (ScanVerdict::of(&scan, &session), scan_notes(&scan, ctx));
        let mut tree = TreeBuilder::default();
        let mut each = |item: &crate::sync::PlanItem| tree.push(item);
        let saving = Saving {
            keep: Keep::Nothing,
            edits: &Default::default(),
            list_unchanged: true,
            each: Some(&mut each),
        };
        let head = session
            .plan_into((source, destination), scan, options.clone(), &place, saving)
            .await?;
        Ok::<_, Error>((head, tree.finish(), seen))
    };
    let Some(planned) = tui.scanning(&progress, planning).await else {
        return Ok(ExitStatus::Success);
    };
    let (head, tree, seen) = planned?;
    let parts = PlanParts::open(place)
        .await?
        .ok_or_else(|| crate::sync::PlanError::NotFound {
            plan: at.to_string(),
        })?;
    let items = PlanToRun::InParts {
        head: Arc::new(head.head_only()),
        parts: Arc::new(parts),
    };
    let app = App::with_tree(head, items, tree);
    let (verdict, notes) = seen;
    let exec = session.exec_options(RunKind::Whole, verdict.withhold_deletes);
    let status = tui.review_and_run(app, &session, exec).await;
    drop(tui);
    drop(kept);
    for line in notes {
        eprintln!("{line}");
    }
    Ok(match status {
        ExitStatus::Success if verdict.partial => ExitStatus::Partial,
        other => other,
    })
}
