//! `hugesync completions SHELL`: the shell's completion script.

use super::write_stdout;
use crate::cli::Cli;
use crate::error::{Error, ExitStatus};

/// `hugesync completions SHELL`: the completion script on stdout.
pub(super) fn completions(shell: clap_complete::Shell) -> Result<ExitStatus, Error> {
    use clap::CommandFactory;
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "hugesync", &mut out);
    write_stdout(&out)
}
