//! The status bar and the `?` overlay listing every key.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::style::Palette;
use crate::tui::action::BINDINGS;
use crate::tui::app::App;

pub fn status_bar(frame: &mut Frame, area: Rect, _app: &App, palette: &Palette) {
    let text = "↑↓ move  Enter open  space skip  f full  d veto delete  u undo  h hide skipped  a approve  ? help  q quit";
    frame.render_widget(Paragraph::new(text).style(palette.dim()), area);
}

pub fn overlay(frame: &mut Frame, area: Rect, _palette: &Palette) {
    let lines: Vec<Line> = BINDINGS
        .iter()
        .map(|(keys, what)| Line::from(format!("{keys:<20} {what}")))
        .collect();
    let popup = super::centered(area, 60, lines.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" keys (Esc closes) ");
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}
