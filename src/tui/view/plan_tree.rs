//! The plan tree: one row per visible entry with its action, size, bytes to send
//! and delta savings; directories show their subtree's totals.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::style::{Palette, symbol};
use crate::format;
use crate::tui::app::App;
use crate::types::SyncAction;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, palette: &Palette) {
    let height = area.height.saturating_sub(2) as usize;
    let width = area.width.saturating_sub(2) as usize;
    let rows = app.tree.rows();
    let mut lines = Vec::with_capacity(height);
    for (index, &id) in rows.iter().enumerate().skip(app.offset).take(height) {
        let node = app.tree.node(id);
        let totals = app.tree.totals_of(id, &app.plan);
        let action = node
            .item()
            .map(|i| app.plan.items[i].action)
            .filter(|_| !node.is_dir())
            .unwrap_or_else(|| dominant(&totals));
        let marker = match (node.is_dir(), node.expanded) {
            (true, true) => "▾ ",
            (true, false) => "▸ ",
            (false, _) => "  ",
        };
        let indent = "  ".repeat(node.depth.saturating_sub(1) as usize);
        let name = String::from_utf8_lossy(&node.name);
        let columns = format!(
            "{:>9} {:>10} {:>10} {:>10}",
            action.name(),
            format::bytes(totals.size),
            format::bytes(totals.bytes_to_send),
            if totals.bytes_saved > 0 {
                format::bytes(totals.bytes_saved)
            } else {
                String::new()
            },
        );
        let left = format!("{} {indent}{marker}{name}", symbol(action));
        let room = width.saturating_sub(columns.chars().count() + 1);
        let left: String = if left.chars().count() > room {
            left.chars()
                .take(room.saturating_sub(1))
                .chain(std::iter::once('…'))
                .collect()
        } else {
            format!("{left:<room$}")
        };
        let mut line = Line::from(vec![
            Span::styled(left, palette.action(action)),
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

/// The action a directory row shows: the most consequential one in its subtree.
fn dominant(totals: &crate::tui::model::Totals) -> SyncAction {
    [
        SyncAction::Delete,
        SyncAction::Delta,
        SyncAction::Upload,
        SyncAction::Download,
        SyncAction::Copy,
        SyncAction::Metadata,
    ]
    .into_iter()
    .find(|a| totals.count(*a) > 0)
    .unwrap_or(SyncAction::Skip)
}
