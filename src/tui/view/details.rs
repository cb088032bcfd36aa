//! The selected entry: both sides' size, mtime and (for objects) ETag, and why
//! the planner chose its action, with the delta estimate when there is one.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::style::Palette;
use crate::format;
use crate::tui::app::App;
use crate::types::{Entry, SyncAction};

pub fn draw(frame: &mut Frame, area: Rect, app: &App, palette: &Palette) {
    let mut lines = Vec::new();
    if let Some(&id) = app.tree.rows().get(app.selected) {
        let path = app.tree.path_of(id);
        lines.push(Line::from(String::from_utf8_lossy(&path).into_owned()));
        let node = app.tree.node(id);
        if node.is_dir() {
            let own = node.item().map(|i| app.tree.facts(i).action);
            let unchanged_self = own.filter(|a| *a == SyncAction::Skip);
            lines.extend(subtree_lines(&app.tree.totals_of(id).below(unchanged_self)));
        }
        // A directory's own entry says something only when it changes.
        let own = node
            .item()
            .filter(|&i| !node.is_dir() || app.tree.facts(i).action != SyncAction::Skip);
        if let Some(index) = own {
            match app.item(index) {
                Some(item) => lines.extend(item_lines(app, &item, palette)),
                // A plan in parts: its part is being read.
                None => lines.push(Line::styled("reading the plan…", palette.dim())),
            }
        }
    }
    let block = Block::default().borders(Borders::ALL).title(" details ");
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
}

/// What the plan does with one entry, and why.
fn item_lines(app: &App, item: &crate::sync::PlanItem, palette: &Palette) -> Vec<Line<'static>> {
    let mut lines = vec![Line::styled(
        format!("{}: {}", item.action.name(), item.reason.describe()),
        palette.action(item.action),
    )];
    lines.extend(side("source", item.src.as_ref()));
    lines.extend(side("dest.", item.dst.as_ref()));
    if item.action == SyncAction::Delta {
        lines.push(Line::from(format!(
            "delta: sends {}, saves {}",
            format::bytes(item.bytes_to_send),
            format::bytes(item.bytes_saved)
        )));
        if let Some(check) = app.plan.rebuild_check_note() {
            lines.push(Line::styled(format!("check: {check}"), palette.dim()));
        }
    }
    if let Some(note) = &item.note {
        lines.push(Line::from(note.to_string()));
    }
    if item.action != SyncAction::Skip
        && let Some(cost) = crate::cost::item_estimate(&app.plan, &item.facts())
    {
        lines.push(Line::from(format!("cost: {}", cost.short())));
    }
    if let Some(edit) = item.edit {
        lines.push(Line::styled(format!("edited: {edit:?}"), palette.dim()));
    }
    lines
}

/// What a directory's subtree will do, an action per line, then the totals.
fn subtree_lines(totals: &crate::tui::model::Totals) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(format!(
        "directory: {} entries below, {}",
        format::count(u64::from(totals.counts.iter().sum::<u32>())),
        format::bytes(totals.size)
    ))];
    for action in super::plan_tree::CONSEQUENCE {
        let count = totals.count(action);
        if count > 0 {
            lines.push(Line::from(format!(
                "  {} {}: {}",
                format::count(u64::from(count)),
                action.name(),
                format::bytes(totals.size_of(action))
            )));
        }
    }
    let unchanged = totals.count(SyncAction::Skip);
    if unchanged > 0 {
        lines.push(Line::from(format!(
            "  {} unchanged: {}",
            format::count(u64::from(unchanged)),
            format::bytes(totals.size_of(SyncAction::Skip))
        )));
    }
    lines.push(Line::from(format!(
        "to send {}, saved {}",
        format::bytes(totals.bytes_to_send),
        format::bytes(totals.bytes_saved)
    )));
    lines
}

/// One side's entry, a fact per line (the pane is narrow).
fn side(label: &str, entry: Option<&Entry>) -> Vec<Line<'static>> {
    let Some(e) = entry else {
        return vec![Line::from(format!("{label}: —"))];
    };
    let mut lines = vec![
        Line::from(format!("{label}: {}", format::bytes(e.size))),
        Line::from(format!("  {}", format::mtime(e.mtime_ns))),
    ];
    if let Some(etag) = e.etag() {
        lines.push(Line::from(format!("  ETag {}", etag.trim_matches('"'))));
    }
    lines
}
