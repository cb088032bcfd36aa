//! Drawing: one file per pane, every function reads `&App` and never blocks.

mod confirm;
mod details;
mod help;
mod plan_tree;
mod progress;
mod style;
mod summary;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};

use super::app::{App, Screen};

pub use style::Palette;

/// The review screen's panes for a terminal area: header, tree, details, status.
struct ReviewLayout {
    header: Rect,
    tree: Rect,
    details: Rect,
    status: Rect,
}

fn review_layout(area: Rect) -> ReviewLayout {
    let [header, body, status] = Layout::vertical([
        Constraint::Length(5),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    let (tree, details) = if area.width >= 110 {
        let [tree, details] =
            Layout::horizontal([Constraint::Min(60), Constraint::Length(44)]).areas(body);
        (tree, details)
    } else {
        let [tree, details] =
            Layout::vertical([Constraint::Min(3), Constraint::Length(6)]).areas(body);
        (tree, details)
    };
    ReviewLayout {
        header,
        tree,
        details,
        status,
    }
}

/// Rows the tree pane shows in `area` (inside its border).
pub fn tree_rows(area: Rect) -> usize {
    review_layout(area).tree.height.saturating_sub(2) as usize
}

pub fn draw(frame: &mut Frame, app: &App, palette: &Palette) {
    let area = frame.area();
    match app.screen {
        Screen::Review | Screen::Confirm => {
            let layout = review_layout(area);
            summary::draw(frame, layout.header, app, palette);
            plan_tree::draw(frame, layout.tree, app, palette);
            details::draw(frame, layout.details, app, palette);
            help::status_bar(frame, layout.status, app, palette);
            if app.screen == Screen::Confirm {
                confirm::draw(frame, area, app, palette);
            }
        }
        Screen::Executing | Screen::Done => progress::draw(frame, area, app, palette),
    }
    if app.show_help {
        help::overlay(frame, area, palette);
    }
}

/// A rectangle of at most `width` × `height` centred in `area`.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

#[cfg(test)]
mod tests;
