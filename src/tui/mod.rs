//! The terminal UI. `model` holds review state with no rendering; views and the
//! event loop build on it.

pub mod model;
