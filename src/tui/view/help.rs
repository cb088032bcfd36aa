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
    let text = fit_hints(
        &[
            "↑↓ move",
            "n next change",
            "Enter open",
            "space skip",
            "a approve",
            "/ filter",
            "e exclude",
            "w write",
            "q quit",
        ],
        "? help",
        area.width as usize,
    );
    frame.render_widget(Paragraph::new(text).style(palette.dim()), area);
}

/// Key hints that fit `width`, whole ones only, most useful first; `last`
/// (where to find the rest) always ends the line.
pub fn fit_hints(hints: &[&str], last: &str, width: usize) -> String {
    const GAP: &str = "  ";
    let len = |s: &str| s.chars().count();
    let mut used = len(last);
    let mut kept = Vec::new();
    for hint in hints {
        if used + len(GAP) + len(hint) > width {
            break;
        }
        used += len(GAP) + len(hint);
        kept.push(*hint);
    }
    kept.push(last);
    kept.join(GAP)
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

#[cfg(test)]
mod tests {
    use super::fit_hints;

    #[test]
    fn hints_are_cut_whole_and_the_last_always_stays() {
        let hints = ["↑↓ move", "Enter open", "q quit"];
        assert_eq!(
            fit_hints(&hints, "? help", 80),
            "↑↓ move  Enter open  q quit  ? help"
        );
        assert_eq!(
            fit_hints(&hints, "? help", 27),
            "↑↓ move  Enter open  ? help"
        );
        assert_eq!(fit_hints(&hints, "? help", 10), "? help");
        for width in 0..60 {
            let line = fit_hints(&hints, "? help", width);
            assert!(line.chars().count() <= width.max(6), "{width}: {line}");
        }
    }
}
