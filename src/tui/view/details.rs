//! The selected entry: both sides' size, mtime and (for objects) ETag, and why
//! the planner chose its action, with the delta estimate when there is one.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::style::Palette;
use crate::format;
use crate::tui::app::App;
use crate::types::Entry;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, palette: &Palette) {
    let mut lines = Vec::new();
    if let Some(&id) = app.tree.rows().get(app.selected) {
        let path = app.tree.path_of(id, &app.plan);
        lines.push(Line::from(String::from_utf8_lossy(&path).into_owned()));
        match app.tree.node(id).item().map(|i| &app.plan.items[i]) {
            Some(item) => {
                lines.push(Line::styled(
                    format!("{}: {}", item.action.name(), item.reason.describe()),
                    palette.action(item.action),
                ));
                lines.extend(side("source", item.src.as_ref()));
                lines.extend(side("dest.", item.dst.as_ref()));
                if item.action == crate::types::SyncAction::Delta {
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
                if let Some(edit) = item.edit {
                    lines.push(Line::styled(format!("edited: {edit:?}"), palette.dim()));
                }
            }
            None => lines.push(Line::from("directory implied by its entries")),
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
