//! `hugesync patch BASIS DELTA NEWFILE`: a file rebuilt from its basis and a
//! delta, verified by blake3.

use std::fs::File;
use std::io::BufReader;

use super::Verbosity;
use super::engine::*;
use crate::cli::PatchArgs;
use crate::delta::file::apply_delta_stream;
use crate::error::{EngineError, Error, ExitStatus};
use crate::format;
use crate::storage::local::map_readonly;

pub fn patch(args: &PatchArgs, verbosity: Verbosity) -> Result<ExitStatus, Error> {
    let basis_file = File::open(&args.basis).map_err(io_error(&args.basis))?;
    let basis = map_readonly(&basis_file).map_err(io_error(&args.basis))?;
    let delta_file = File::open(&args.delta).map_err(io_error(&args.delta))?;
    let delta_len = delta_file.metadata().map_err(io_error(&args.delta))?.len();
    let mut written = 0;
    let result = write_output(&args.new_file, |out| {
        written = apply_delta_stream(
            &basis,
            BufReader::with_capacity(1 << 20, &delta_file),
            delta_len,
            out,
        )
        .map_err(|source| EngineError::Delta {
            path: args.delta.clone(),
            source,
        })?;
        Ok(())
    });
    // A basis cut short meanwhile fails verification, or a write: say why.
    if basis.faulted() || result.as_ref().is_err_and(is_changed) {
        return Err(changed(&args.basis));
    }
    result?;
    if verbosity != Verbosity::Quiet {
        eprintln!(
            "{}: {} written and verified",
            crate::outfile::describe(&args.new_file),
            format::bytes(written)
        );
    }
    Ok(ExitStatus::Success)
}
