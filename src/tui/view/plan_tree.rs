//! The plan tree: one row per visible entry with its action, size, bytes to send
//! and delta savings; directories show their subtree's totals.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::style::{Palette, symbol};
use crate::format;
use crate::tui::app::App;
use crate::tui::model::Totals;
use crate::types::SyncAction;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, palette: &Palette) {
    let height = area.height.saturating_sub(2) as usize;
    let width = area.width.saturating_sub(2) as usize;
    let rows = app.tree.rows();
    let mut lines = Vec::with_capacity(height);
    for (index, &id) in rows.iter().enumerate().skip(app.offset).take(height) {
        let node = app.tree.node(id);
        let totals = app.tree.totals_of(id);
        // A file shows its action; a directory shows one only when its whole
        // subtree does the same, else what each action does below it.
        // The directory's own entry counts only when it changes something.
        let own = node.item().map(|i| app.tree.facts(i).action);
        let action = if node.is_dir() {
            uniform(&totals.below(own.filter(|a| *a == SyncAction::Skip)))
        } else {
            own
        };
        let marker = match (node.is_dir(), node.expanded) {
            (true, true) => "▾ ",
            (true, false) => "▸ ",
            (false, _) => "  ",
        };
        let indent = "  ".repeat(node.depth.saturating_sub(1) as usize);
        let mut name = String::from_utf8_lossy(&node.name).into_owned();
        if node.is_dir() && action.is_none() {
            name.push_str("  ");
            name.push_str(&subtree_summary(
                &totals.below(own.filter(|a| *a == SyncAction::Skip)),
            ));
        }
        // A summary takes the action column's room too.
        let columns = format!(
            "{:>9} {:>10} {:>10} {:>10}",
            action.map_or("", SyncAction::name),
            format::bytes(totals.size),
            format::bytes(totals.bytes_to_send),
            if totals.bytes_saved > 0 {
                format::bytes(totals.bytes_saved)
            } else {
                String::new()
            },
        );
        let left = format!("{} {indent}{marker}{name}", action.map_or(" ", symbol));
        let columns = match action {
            Some(_) => columns,
            None => format!(" {}", columns.trim_start()),
        };
        let room = width.saturating_sub(columns.chars().count() + 1);
        let left: String = if left.chars().count() > room {
            left.chars()
                .take(room.saturating_sub(1))
                .chain(std::iter::once('…'))
                .collect()
        } else {
            format!("{left:<room$}")
        };
        let style = action.map_or_else(|| palette.dir_mixed(), |a| palette.action(a));
        let mut line = Line::from(vec![
            Span::styled(left, style),
            Span::raw(" "),
            Span::raw(columns),
        ]);
        if index == app.selected {
            line = line.style(palette.selected());
        }
        lines.push(line);
    }
    let title = format!(
        " {} entries{} ",
        format::count(rows.len() as u64),
        if app.hide_skipped {
            ", skipped hidden"
        } else {
            ""
        }
    );
    let header = format!(
        "{:>9} {:>10} {:>10} {:>10} ",
        "action", "size", "to send", "saved"
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .title(title)
        .title_top(Line::from(header).right_aligned());
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// The action of every entry of a subtree, when they share one.
fn uniform(totals: &Totals) -> Option<SyncAction> {
    let mut present = SyncAction::ALL.into_iter().filter(|a| totals.count(*a) > 0);
    match (present.next(), present.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

/// What a subtree's entries will do, most consequential first, with the
/// bytes each action moves or removes: `1 delete 40 KiB · 199 unchanged`.
pub fn subtree_summary(totals: &Totals) -> String {
    let mut parts: Vec<String> = CONSEQUENCE
        .into_iter()
        .filter(|a| totals.count(*a) > 0)
        .map(|a| {
            format!(
                "{} {} {}",
                format::count(u64::from(totals.count(a))),
                a.name(),
                format::bytes(totals.size_of(a))
            )
        })
        .collect();
    let unchanged = totals.count(SyncAction::Skip);
    if unchanged > 0 {
        parts.push(format!("{} unchanged", format::count(u64::from(unchanged))));
    }
    parts.join(" · ")
}

/// Actions from the most to the least consequential.
pub const CONSEQUENCE: [SyncAction; 6] = [
    SyncAction::Delete,
    SyncAction::Delta,
    SyncAction::Upload,
    SyncAction::Download,
    SyncAction::Copy,
    SyncAction::Metadata,
];
