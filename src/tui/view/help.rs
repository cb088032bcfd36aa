//! The status bar and the `?` overlay listing every key.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::style::Palette;
use crate::tui::action::BINDINGS;
use crate::tui::app::App;

pub fn status_bar(frame: &mut Frame, area: Rect, app: &App, palette: &Palette) {
    if let Some(query) = &app.filter {
        let cursor = if app.typing {
            "▏ (Enter keeps, Esc clears)"
        } else {
            "  (Esc clears)"
        };
        frame.render_widget(Paragraph::new(format!("/{query}{cursor}")), area);
        return;
    }
    if let Some(message) = &app.message {
        frame.render_widget(Paragraph::new(message.as_str()), area);
        return;
    }
    let text =
        "↑↓ move  Enter open  space skip  e exclude  / filter  a approve  w write  ? help  q quit";
    frame.render_widget(Paragraph::new(text).style(palette.dim()), area);
}

pub fn overlay(frame: &mut Frame, area: Rect, _palette: &Palette) {
    let lines: Vec<Line> = BINDINGS
        .iter()
        .map(|(keys, what)| Line::from(format!("{keys:<20} {what}")))
        .collect();
    let popup = super::centered(area, 72, lines.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" keys (Esc closes) ");
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}
