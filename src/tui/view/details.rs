//! The selected entry: both sides' size and mtime, and why the planner chose
//! its action.

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
                lines.push(Line::from(side("source", item.src.as_ref())));
                lines.push(Line::from(side("dest.", item.dst.as_ref())));
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

fn side(label: &str, entry: Option<&Entry>) -> String {
    match entry {
        Some(e) => format!(
            "{label}: {} {}",
            format::bytes(e.size),
            format::mtime(e.mtime_ns)
        ),
        None => format!("{label}: —"),
    }
}
