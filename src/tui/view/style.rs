//! Colours and symbols per action; everything plain when NO_COLOR is set.

use ratatui::style::{Color, Modifier, Style};

use crate::types::SyncAction;

#[derive(Clone, Copy, Debug)]
pub struct Palette {
    pub color: bool,
}

impl Palette {
    /// Colour unless NO_COLOR is set (https://no-color.org).
    pub fn from_env() -> Self {
        Self {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    pub fn action(&self, action: SyncAction) -> Style {
        if !self.color {
            return Style::default();
        }
        Style::default().fg(match action {
            SyncAction::Upload | SyncAction::Copy => Color::Green,
            SyncAction::Download => Color::Blue,
            SyncAction::Delta => Color::Cyan,
            SyncAction::Metadata => Color::Yellow,
            SyncAction::Delete => Color::Red,
            SyncAction::Skip => Color::DarkGray,
        })
    }

    pub fn danger(&self) -> Style {
        if self.color {
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }

    /// The rate's sparkline.
    pub fn accent(&self) -> Style {
        if self.color {
            Style::default().fg(Color::Cyan)
        } else {
            Style::default()
        }
    }

    /// Conflicts: worth a look, not failures.
    pub fn warning(&self) -> Style {
        if self.color {
            Style::default().fg(Color::Magenta)
        } else {
            Style::default()
        }
    }

    /// A directory whose entries do different things: its summary reads in
    /// the default colour, no one action's.
    pub fn dir_mixed(&self) -> Style {
        Style::default()
    }

    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    pub fn dim(&self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }
}

/// Marks an item the destination changed under since the plan.
pub const CONFLICT_SYMBOL: &str = "≠";

/// A symbol that tells actions apart without colour.
pub fn symbol(action: SyncAction) -> &'static str {
    match action {
        SyncAction::Upload => "↑",
        SyncAction::Download => "↓",
        SyncAction::Copy => "+",
        SyncAction::Delta => "Δ",
        SyncAction::Metadata => "~",
        SyncAction::Delete => "✗",
        SyncAction::Skip => "·",
    }
}
