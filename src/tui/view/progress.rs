//! Execution: overall gauge, rate and ETA, one line per active item, failures;
//! then the closing summary.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Gauge, Paragraph};

use super::style::Palette;
use crate::format;
use crate::tui::app::{App, Screen};

pub fn draw(frame: &mut Frame, area: Rect, app: &App, palette: &Palette) {
    let p = &app.progress;
    let [
        gauge_area,
        stats_area,
        active_area,
        failures_area,
        log_area,
        status,
    ] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(2),
        Constraint::Min(3),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(1),
    ])
    .areas(area);
    let ratio = if p.total_bytes == 0 {
        if p.total_items == 0 {
            1.0
        } else {
            p.done_items as f64 / p.total_items as f64
        }
    } else {
        (p.bytes_sent as f64 / p.total_bytes as f64).min(1.0)
    };
    let title = match (app.screen, app.cancelling, app.paused) {
        (Screen::Done, _, _) => " done ",
        (_, true, _) => " stopping after the running items… ",
        (_, _, true) => " paused: running items finish, no new ones start (p resumes) ",
        _ => " running ",
    };
    frame.render_widget(
        Gauge::default()
            .block(Block::default().borders(Borders::ALL).title(title))
            .ratio(ratio)
            .label(format!(
                "{} / {}  ·  {} / {} items",
                format::bytes(p.bytes_sent),
                format::bytes(p.total_bytes),
                format::count(p.done_items),
                format::count(p.total_items)
            )),
        gauge_area,
    );
    let elapsed = p.elapsed();
    let eta = p.eta().map_or_else(|| "-".into(), format::duration);
    frame.render_widget(
        // Two lines, so that 80 columns hold them whole.
        Paragraph::new(vec![
            Line::from(format!(
                "rate {}  ·  eta {eta}  ·  elapsed {}",
                format::rate(p.bytes_sent, elapsed),
                format::duration(elapsed),
            )),
            Line::from(format!(
                "saved by delta {}  ·  failed {}",
                format::bytes(p.bytes_saved),
                format::count(p.failed_items),
            )),
        ]),
        stats_area,
    );
    let active: Vec<Line> = if let (Screen::Done, Some(report)) = (app.screen, &app.report) {
        report.summary_lines().into_iter().map(Line::from).collect()
    } else {
        p.active
            .values()
            .map(|item| {
                Line::from(format!(
                    "{:>8} {:>10}/{:<10} {}",
                    item.action.name(),
                    format::bytes(item.done),
                    format::bytes(item.total),
                    item.path
                ))
            })
            .collect()
    };
    frame.render_widget(
        Paragraph::new(active)
            .wrap(ratatui::widgets::Wrap { trim: true })
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(if app.screen == Screen::Done {
                        " summary "
                    } else {
                        " active "
                    }),
            ),
        active_area,
    );
    let failures: Vec<Line> = p
        .failures
        .iter()
        .rev()
        .take(4)
        .map(|(path, error)| Line::styled(format!("{path}: {error}"), palette.danger()))
        .chain(p.conflicts.iter().rev().take(2).map(|(path, resolution)| {
            Line::styled(
                format!(
                    "{} conflict {path}: {resolution}",
                    super::style::CONFLICT_SYMBOL
                ),
                palette.warning(),
            )
        }))
        .chain(
            p.warnings
                .iter()
                .rev()
                .take(2)
                .map(|w| Line::from(format!("warning: {w}"))),
        )
        .collect();
    frame.render_widget(
        Paragraph::new(failures).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" failures, conflicts and warnings "),
        ),
        failures_area,
    );
    frame.render_widget(
        tui_logger::TuiLoggerWidget::default()
            .block(Block::default().borders(Borders::ALL).title(" log "))
            .output_timestamp(Some("%H:%M:%S".into()))
            .output_target(false)
            .output_file(false)
            .output_line(false),
        log_area,
    );
    if app.confirm_cancel {
        let popup = super::centered(area, 60, 5);
        frame.render_widget(ratatui::widgets::Clear, popup);
        frame.render_widget(
            Paragraph::new(vec![
                Line::from("Stop after the running items? Nothing partial is left."),
                Line::from(""),
                Line::from("y / Ctrl+C: stop    n / Esc: carry on"),
            ])
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" Stop the sync? "),
            ),
            popup,
        );
    }
    let hint = if app.screen == Screen::Done {
        "q: quit".to_string()
    } else {
        super::help::fit_hints(
            &["p: pause / resume", "Ctrl+C: stop after the running items"],
            "",
            status.width as usize,
        )
        .trim_end()
        .to_string()
    };
    frame.render_widget(Paragraph::new(hint).style(palette.dim()), status);
}
