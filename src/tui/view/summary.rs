//! The header: where from and to, counts per action, bytes to send and saved.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::style::{Palette, symbol};
use crate::format;
use crate::tui::app::App;
use crate::types::SyncAction;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, palette: &Palette) {
    let plan = &app.plan;
    let stats = &plan.stats;
    let mut counts: Vec<Span> = Vec::new();
    for action in SyncAction::ALL {
        let totals = stats.totals(action);
        if totals.count == 0 {
            continue;
        }
        let style = if action == SyncAction::Delete {
            palette.danger()
        } else {
            palette.action(action)
        };
        counts.push(Span::styled(
            format!(
                "{} {} {}  ",
                symbol(action),
                format::count(totals.count),
                action.name()
            ),
            style,
        ));
    }
    let lines = vec![
        Line::from(format!("{} → {}", plan.source, plan.destination)),
        Line::from(counts),
        Line::from(
            format!(
                "to send {} · saved by delta {} · {} change(s){}",
                format::bytes(stats.bytes_to_send),
                format::bytes(stats.bytes_saved),
                format::count(stats.changes()),
                crate::bandwidth::limit().map_or(String::new(), |l| format!(
                    " · at most {}/s",
                    format::bytes(l.bytes_per_second())
                )),
            ) + &app
                .cost
                .as_ref()
                .and_then(|cost| cost.money)
                .map_or(String::new(), |money| {
                    format!(" · cost ≈ {}", crate::cost::dollars(money.total))
                }),
        ),
    ];
    let block = Block::default()
        .borders(Borders::BOTTOM)
        .title(" HugeSync plan ");
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
