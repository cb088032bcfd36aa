//! The approval dialog: what will happen, deletes in red.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::style::Palette;
use crate::format;
use crate::tui::app::App;
use crate::types::SyncAction;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, palette: &Palette) {
    let stats = &app.plan.stats;
    let mut lines = vec![
        Line::from(format!(
            "{} change(s), {} to send",
            format::count(stats.changes()),
            format::bytes(stats.bytes_to_send)
        )),
        Line::from(format!(
            "saved by delta: {}",
            format::bytes(stats.bytes_saved)
        )),
    ];
    if let Some(cost) = &app.cost {
        lines.push(Line::from(format!("cost: {}", cost.short())));
    }
    let deletes = stats.totals(SyncAction::Delete).count;
    if deletes > 0 {
        lines.push(Line::styled(
            format!(
                "{} entr{} will be DELETED",
                format::count(deletes),
                if deletes == 1 { "y" } else { "ies" }
            ),
            palette.danger(),
        ));
    }
    if let Err(refusal) = app.plan.check_safety() {
        lines.push(Line::styled(refusal.to_string(), palette.danger()));
    }
    lines.push(Line::from(""));
    lines.push(Line::from("y: run it    n / Esc: back to the plan"));
    let popup = super::centered(area, 64, lines.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" Run this plan? ");
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(ratatui::widgets::Wrap { trim: true })
            .block(block),
        popup,
    );
}
