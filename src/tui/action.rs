//! What the user asks for, and the key bindings that ask it.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind};

/// One user request; the app state changes only through these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    /// Enter: open or close the selected directory.
    Toggle,
    Expand,
    Collapse,
    ToggleSkip,
    ForceFull,
    VetoDelete,
    /// `e`: leave the subtree out (and out of re-plans).
    Exclude,
    /// `/`: start typing a path filter.
    Filter,
    /// A character typed into the filter.
    Input(char),
    /// Backspace in the filter.
    Erase,
    /// Enter in the filter: keep it and go back to the tree.
    Accept,
    /// `w`: write the edited plan for `hugesync apply`.
    WritePlan,
    /// `s`: cycle the sort order (path, size, bytes to send).
    CycleSort,
    Undo,
    ToggleHideSkipped,
    ToggleHelp,
    /// `a`: ask to run the plan.
    Approve,
    /// `y` in the confirmation dialog.
    Confirm,
    /// `n` / Esc: leave a dialog or overlay.
    Back,
    /// `n` in the tree: the next entry that changes something (in a
    /// dialog, `n` is [`Action::Back`]).
    NextChange,
    /// `N`: the previous entry that changes something.
    PrevChange,
    /// `p` while executing: pause or resume scheduling.
    TogglePause,
    /// Ctrl+C.
    Interrupt,
    Quit,
}

/// Every binding, for the help overlay and the status bar.
pub const BINDINGS: &[(&str, &str)] = &[
    ("↑/k ↓/j", "move"),
    ("PgUp PgDn Home End", "jump"),
    ("Enter ←/→", "collapse / expand"),
    ("space", "skip / unskip (entry or subtree)"),
    ("f", "force full copy instead of delta"),
    ("d", "veto deletes"),
    ("e", "exclude the subtree (also from re-plans)"),
    ("/", "filter by path (Enter keeps, Esc clears)"),
    ("w", "write the edited plan to hugesync-plan/"),
    ("u", "undo the last edit"),
    ("h", "hide / show skipped entries"),
    ("s", "sort by path, size or bytes to send"),
    ("a", "approve: review and run"),
    ("n / N", "next / previous entry that changes something"),
    ("y / n", "confirm / back (in a dialog)"),
    ("p", "pause / resume starting new items (while running)"),
    ("?", "this help"),
    ("q / Ctrl+C", "quit / interrupt"),
];

/// The action for a key; while `typing` a filter, characters are text.
pub fn for_key(key: KeyEvent, typing: bool) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Interrupt);
    }
    if typing {
        return match key.code {
            KeyCode::Char(c) => Some(Action::Input(c)),
            KeyCode::Backspace => Some(Action::Erase),
            KeyCode::Enter => Some(Action::Accept),
            KeyCode::Esc => Some(Action::Back),
            KeyCode::Up => Some(Action::Up),
            KeyCode::Down => Some(Action::Down),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Home | KeyCode::Char('g') => Action::Home,
        KeyCode::End | KeyCode::Char('G') => Action::End,
        KeyCode::Enter => Action::Toggle,
        KeyCode::Right | KeyCode::Char('l') => Action::Expand,
        KeyCode::Left => Action::Collapse,
        KeyCode::Char(' ') => Action::ToggleSkip,
        KeyCode::Char('f') => Action::ForceFull,
        KeyCode::Char('d') => Action::VetoDelete,
        KeyCode::Char('e') => Action::Exclude,
        KeyCode::Char('/') => Action::Filter,
        KeyCode::Char('w') => Action::WritePlan,
        KeyCode::Char('s') => Action::CycleSort,
        KeyCode::Char('u') => Action::Undo,
        KeyCode::Char('h') => Action::ToggleHideSkipped,
        KeyCode::Char('?') => Action::ToggleHelp,
        KeyCode::Char('a') => Action::Approve,
        KeyCode::Char('y') => Action::Confirm,
        KeyCode::Char('n') => Action::NextChange,
        KeyCode::Char('N') => Action::PrevChange,
        KeyCode::Esc => Action::Back,
        KeyCode::Char('p') => Action::TogglePause,
        KeyCode::Char('q') => Action::Quit,
        _ => return None,
    })
}

pub fn for_mouse(mouse: MouseEvent) -> Option<Action> {
    match mouse.kind {
        MouseEventKind::ScrollUp => Some(Action::Up),
        MouseEventKind::ScrollDown => Some(Action::Down),
        _ => None,
    }
}
