//! HugeSync: sync very large files and trees between local disks and object
//! storage, moving only what changed.
//!
//! The pipeline runs one way: [`sync::scan`] both sides → [`sync::diff`] →
//! [`sync::build_plan`] → (review) → [`sync::execute`] → [`progress::ExecEvent`]s,
//! entered once through [`sync::session::Session`].

#![deny(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod bandwidth;
pub mod cli;
pub mod commands;
pub mod config;
pub mod cost;
pub mod delta;
pub mod error;
pub mod filelist;
pub mod filter;
pub mod format;
pub mod mapguard;
pub mod outfile;
pub mod progress;
pub mod resume;
pub mod retry;
pub mod sending;
pub mod signature;
pub mod storage;
pub mod sync;
pub mod tui;
pub mod types;
pub mod uri;
