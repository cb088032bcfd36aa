//! The terminal UI: review, edit and approve a plan, then watch it execute.
//!
//! `model` holds review state without rendering, `app` the state machine fed by
//! `action`s and engine events, `view` draws from `&App`. The loop here owns the
//! terminal: it restores it on every exit path (ratatui's panic hook covers panics)
//! and merges redraws: engine events only mark the screen dirty, a tick draws.

pub mod action;
pub mod app;
mod edited;
pub mod model;
pub mod view;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossterm::event::{self, Event};
use ratatui::DefaultTerminal;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};
use tokio::sync::mpsc;

use crate::error::ExitStatus;
use crate::format;
use crate::sync::session::Session;
use crate::sync::{self, ExecOptions, ScanProgress};
use action::Action;
use app::{App, Effect, Screen};
use view::Palette;

/// How often the screen is redrawn at most.
const TICK: Duration = Duration::from_millis(50);

/// The terminal, owned while the UI runs; restored when dropped.
pub struct Tui {
    terminal: DefaultTerminal,
    keys: mpsc::UnboundedReceiver<Event>,
    stop_keys: Arc<AtomicBool>,
    palette: Palette,
}

impl Tui {
    /// Takes over the terminal (raw mode, alternate screen; ratatui's panic hook
    /// restores it) and starts reading keys on a thread of their own.
    pub fn start() -> Tui {
        let terminal = ratatui::init();
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
        let (tx, keys) = mpsc::unbounded_channel();
        let stop_keys = Arc::new(AtomicBool::new(false));
        let stop = stop_keys.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if !event::poll(Duration::from_millis(100)).unwrap_or(false) {
                    continue;
                }
                if let Ok(event @ (Event::Key(_) | Event::Mouse(_) | Event::Resize(..))) =
                    event::read()
                    && tx.send(event).is_err()
                {
                    break;
                }
            }
        });
        Tui {
            terminal,
            keys,
            stop_keys,
            palette: Palette::from_env(),
        }
    }

    /// Shows live scan counts until `scan` finishes; `None` when the user quit.
    pub async fn scanning<F: Future>(
        &mut self,
        progress: &ScanProgress,
        scan: F,
    ) -> Option<F::Output> {
        let started = std::time::Instant::now();
        let mut tick = tokio::time::interval(TICK);
        tokio::pin!(scan);
        loop {
            tokio::select! {
                output = &mut scan => return Some(output),
                Some(event) = self.keys.recv() => {
                    if matches!(to_action(&event, false), Some(Action::Quit | Action::Interrupt)) {
                        return None;
                    }
                }
                _ = tick.tick() => {
                    let elapsed = started.elapsed();
                    let mut lines = vec![
                        Line::from(format!("source       {}", progress.source.describe(elapsed))),
                        Line::from(format!("destination  {}", progress.destination.describe(elapsed))),
                    ];
                    if let Some(content) = progress.content.describe() {
                        lines.push(Line::from(format!("content      {content}")));
                    }
                    lines.extend([
                        Line::from(format!("elapsed      {}", format::duration(started.elapsed()))),
                        Line::from(""),
                        Line::from("q: quit"),
                    ]);
                    let _ = self.terminal.draw(|frame| {
                        let block = Block::default().borders(Borders::ALL).title(" scanning ");
                        frame.render_widget(Paragraph::new(lines).block(block), frame.area());
                    });
                }
            }
        }
    }

    /// Review, then (when approved) execute. Returns the exit status headless
    /// `sync` would give.
    pub async fn review_and_run(
        &mut self,
        mut app: App,
        session: &Session,
        mut options: ExecOptions,
    ) -> ExitStatus {
        let (pause_tx, pause_rx) = tokio::sync::watch::channel(false);
        options.pause = Some(pause_rx);
        // The run screen reads each side's request count as it draws.
        app.requests = [session.source.requests(), session.destination.requests()];
        let cancel = session.cancel().clone();
        let (events_tx, mut events) = mpsc::channel(4096);
        let mut events_tx = Some(events_tx);
        let (written_tx, mut written) = mpsc::channel::<String>(4);
        // Parts of a plan in parts, read for the details pane off the loop.
        let (parts_tx, mut parts_read) = mpsc::channel::<Result<sync::execute::Part, String>>(2);
        let mut reading = false;
        let mut running: Option<tokio::task::JoinHandle<sync::ExecReport>> = None;
        let mut tick = tokio::time::interval(TICK);
        let mut dirty = true;
        loop {
            tokio::select! {
                Some(event) = self.keys.recv() => {
                    let Some(action) = to_action(&event, app.typing) else {
                        dirty = true; // a resize
                        continue;
                    };
                    match app.update(action) {
                        Effect::None => {}
                        Effect::Quit => break,
                        Effect::WritePlan => {
                            // Written off the UI loop: a large plan takes a while.
                            app.message = Some(format!("writing the plan to {SAVED_PLAN}/ …"));
                            let (plan, items, edits) = (app.plan.clone(), app.items.clone(), app.edited());
                            let (settings, written) = (session.settings().store_settings(), written_tx.clone());
                            tokio::spawn(async move {
                                let at = crate::uri::Location::Local(SAVED_PLAN.into());
                                let inside = crate::sync::plan::parts::side_holding(&at, [&plan.source, &plan.destination]);
                                let message = match inside {
                                    // It would be synced, or deleted, with that side.
                                    Some((side, root)) => format!("not written: {SAVED_PLAN}/ here lies inside the {side} {root}; run the review from outside both sides, or save with `hugesync plan -o`"),
                                    None => {
                                        let saved = async {
                                            let place = crate::sync::plan::parts::PlanPlace::open(&at, &settings).await?;
                                            edited::write(&plan, &items, &edits, &place).await
                                        };
                                        match saved.await {
                                            Ok(_) => format!("plan written to {SAVED_PLAN}/; run it with `hugesync apply {SAVED_PLAN}`"),
                                            Err(e) => e.to_string(),
                                        }
                                    }
                                };
                                let _ = written.send(message).await;
                            });
                        }
                        Effect::Cancel => cancel.cancel(),
                        Effect::Pause(paused) => {
                            let _ = pause_tx.send(paused);
                        }
                        Effect::StartExecution => {
                            if let Err(refusal) = app.plan.check_safety() {
                                app.progress.warnings.push(refusal.to_string());
                                app.screen = Screen::Review;
                            } else if let Some(tx) = events_tx.take() {
                                let (plan, items, edits) = (app.plan.clone(), app.items.clone(), app.edited());
                                let (session, options) = (session.clone(), options.clone());
                                running = Some(tokio::spawn(async move {
                                    // The plan as edited; kept (a temporary
                                    // directory of parts) until the run ends.
                                    match edited::to_run(&plan, &items, &edits).await {
                                        Ok((plan, _kept)) => session.execute_to(plan, options, tx).await,
                                        Err(e) => sync::ExecReport {
                                            stopped_on_plan: Some(e.to_string()),
                                            ..sync::ExecReport::default()
                                        },
                                    }
                                }));
                            }
                        }
                    }
                    dirty = true;
                }
                Some(event) = events.recv() => {
                    app.on_event(&event);
                    dirty = true;
                }
                Some(message) = written.recv() => {
                    app.message = Some(message);
                    dirty = true;
                }
                Some(read) = parts_read.recv() => {
                    reading = false;
                    match read {
                        Ok(part) => app.take_part(part),
                        Err(e) => app.message = Some(e),
                    }
                    dirty = true;
                }
                _ = tick.tick() => {
                    if let Some(n) = app.wanted_part().filter(|_| !reading) {
                        reading = true;
                        let (items, done) = (app.items.clone(), parts_tx.clone());
                        tokio::spawn(async move {
                            let _ = done.send(items.part(n).await.map_err(|e| e.to_string())).await;
                        });
                    }
                    if let Some(handle) = running.as_mut().filter(|h| h.is_finished()) {
                        if let Ok(report) = handle.await {
                            while let Ok(event) = events.try_recv() {
                                app.on_event(&event);
                            }
                            app.on_finished(report);
                        }
                        running = None;
                        dirty = true;
                    }
                    if dirty || app.screen == Screen::Executing {
                        let area = self.terminal.size().map(|s| ratatui::layout::Rect::new(0, 0, s.width, s.height)).unwrap_or_default();
                        app.scroll_into_view(view::tree_rows(area));
                        let palette = self.palette;
                        let _ = self.terminal.draw(|frame| view::draw(frame, &app, &palette));
                        dirty = false;
                    }
                }
            }
        }
        app.report
            .as_ref()
            .map_or(ExitStatus::Success, ExitStatus::of_report)
    }
}

/// Where the review's `w` saves the edited plan (a directory of parts, in
/// the working directory).
const SAVED_PLAN: &str = "hugesync-plan";

fn to_action(event: &Event, typing: bool) -> Option<Action> {
    match event {
        Event::Key(key) => action::for_key(*key, typing),
        Event::Mouse(mouse) => action::for_mouse(*mouse),
        _ => None,
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        self.stop_keys.store(true, Ordering::Relaxed);
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
        ratatui::restore();
    }
}
