//! Execution: overall gauge, rate and ETA beside the rate's last seconds (a
//! sparkline), one line per active item with its own bar and rate, failures,
//! the log (warnings and retries as they happen); then the closing summary,
//! with what was planned beside what happened.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Gauge, Paragraph, Sparkline};

use super::style::Palette;
use crate::format;
use crate::tui::app::{App, Screen};

pub fn draw(frame: &mut Frame, area: Rect, app: &App, palette: &Palette) {
    let p = &app.progress;
    // Once done, a short screen gives the summary the rows the log and the
    // failures can spare (their last lines stay in sight).
    let (failures_rows, log_rows) = if app.screen == Screen::Done && area.height < 30 {
        (4, 3)
    } else {
        (5, 5)
    };
    let [
        gauge_area,
        stats_area,
        active_area,
        failures_area,
        log_area,
        status,
    ] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(3),
        Constraint::Min(3),
        Constraint::Length(failures_rows),
        Constraint::Length(log_rows),
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
    let now = app.now();
    let elapsed = p.elapsed_at(now);
    let eta = p.eta_at(now).map_or_else(|| "-".into(), format::duration);
    // The figures on the left, the rate of the last seconds on the right
    // (a column a second, the newest rightmost). The figures take the
    // longest they grow to: "rate 999.99 MiB/s  ·  eta 1h 02m  ·  elapsed 59m 59s".
    let [stats_area, spark_area] =
        Layout::horizontal([Constraint::Length(54), Constraint::Min(0)]).areas(stats_area);
    frame.render_widget(
        Sparkline::default()
            .data(p.rate_history(now, usize::from(spark_area.width)))
            .style(palette.accent()),
        spark_area,
    );
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
            Line::from(spending(app)),
        ]),
        stats_area,
    );
    let active: Vec<Line> = if let (Screen::Done, Some(report)) = (app.screen, &app.report) {
        report
            .summary_lines()
            .into_iter()
            .chain(planned_beside_done(app, report))
            .map(Line::from)
            .collect()
    } else {
        p.active
            .values()
            .map(|item| {
                let rate = item
                    .rate(now)
                    .map_or_else(|| "-".into(), |r| format!("{}/s", format::bytes(r as u64)));
                Line::from(format!(
                    "{:>8} {} {:>9}/{:<9} {:>11} {}",
                    item.action.name(),
                    bar(item.done, item.total, 10),
                    format::bytes(item.done),
                    format::bytes(item.total),
                    rate,
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

/// A bar of `width` cells, `done` of `total` filled.
fn bar(done: u64, total: u64, width: usize) -> String {
    let filled = if total == 0 {
        width
    } else {
        ((done.min(total) as f64 / total as f64) * width as f64).round() as usize
    };
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

/// What the plan said beside what happened: bytes to send and saved by
/// delta, requests and their cost, the time taken beside the time estimated.
fn planned_beside_done(app: &App, report: &crate::sync::ExecReport) -> Vec<String> {
    let stats = &app.plan.stats;
    let mut lines = vec![format!(
        "Planned: {} to send, {} saved by delta; sent {} ({}), saved {}.",
        format::bytes(stats.bytes_to_send),
        format::bytes(stats.bytes_saved),
        format::bytes(report.bytes_sent),
        share(report.bytes_sent, stats.bytes_to_send),
        format::bytes(report.bytes_saved),
    )];
    if app.requests.iter().any(Option::is_some) {
        lines.push(format!("Made: {}.", spending(app)));
    }
    // Plans carry no time: the estimate is the one the rate gave once it
    // settled, which a run's end shows was right or not.
    lines.push(match app.progress.first_estimate() {
        Some((at, estimate)) => format!(
            "Took {}; estimated {} after the first {}.",
            format::duration(report.duration),
            format::duration(estimate),
            format::duration(at),
        ),
        None => format!(
            "Took {}, too short for an estimate.",
            format::duration(report.duration)
        ),
    });
    lines
}

/// `part` of `whole` as a percentage ("-" of nothing).
fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.0}% of it", part as f64 * 100.0 / whole as f64)
    }
}

/// Requests made and money spent so far, beside the plan's estimate of them.
fn spending(app: &App) -> String {
    let [source, destination] = &app.requests;
    if source.is_none() && destination.is_none() {
        return "no requests: local disks".into();
    }
    let made = |side: &Option<std::sync::Arc<crate::storage::requests::RequestCounts>>| {
        side.as_ref().map(|c| c.snapshot()).unwrap_or_default()
    };
    let (source_made, destination_made) = (made(source), made(destination));
    let mut both = source_made;
    both.add(destination_made);
    let estimate = app.cost.as_ref();
    let mut line = format!("requests {}", format::count(both.total()));
    if let Some(estimate) = estimate {
        line.push_str(&format!(
            " of ~{}",
            format::count(estimate.requests.total())
        ));
    }
    // Bytes a download brings out of the source store are its egress.
    let egress = if source.is_some() && destination.is_none() {
        app.progress.bytes_sent
    } else {
        0
    };
    match crate::cost::spent(&app.plan, source_made, destination_made, egress) {
        Some(money) => {
            line.push_str(&format!("  ·  spent {}", crate::cost::dollars(money.total)));
            if let Some(planned) = estimate.and_then(|e| e.money.as_ref()) {
                line.push_str(&format!(" of ~{}", crate::cost::dollars(planned.total)));
            }
        }
        None => line.push_str("  ·  no prices for this store"),
    }
    line
}
