//! `hugesync signature FILE`: a file's block signature (`.hssig`).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use super::Verbosity;
use super::engine::*;
use crate::cli::SignatureArgs;
use crate::error::{EngineError, Error, ExitStatus};
use crate::format;
use crate::signature::{SourceIdentity, signature_of_file, valid_block_size, write_signature};
use crate::storage::local::mtime_ns;

pub fn signature(
    args: &SignatureArgs,
    block_size: u64,
    verbosity: Verbosity,
) -> Result<ExitStatus, Error> {
    let block = valid_block_size(block_size).ok_or_else(|| EngineError::BlockSize {
        path: args.file.clone(),
        size: block_size,
    })?;
    let started = Instant::now();
    let meta = std::fs::metadata(&args.file).map_err(io_error(&args.file))?;
    let sig = signature_of_file(&args.file, block).map_err(|e| {
        if crate::mapguard::ChangedWhileRead::is(&e) {
            changed(&args.file)
        } else {
            io_error(&args.file)(e)
        }
    })?;
    let identity = SourceIdentity {
        etag: None,
        mtime_ns: Some(mtime_ns(&meta)),
    };
    let output = args.output.clone().unwrap_or_else(|| {
        let mut name = args.file.clone().into_os_string();
        name.push(".hssig");
        PathBuf::from(name)
    });
    let bytes = write_signature(&sig, &identity);
    write_output(&output, |out| {
        out.write_all(&bytes).map_err(io_error(&output))
    })?;
    if verbosity != Verbosity::Quiet {
        eprintln!(
            "{}: {} in {} blocks of {} → {} ({})",
            args.file.display(),
            format::bytes(sig.file_size),
            format::count(sig.blocks.len() as u64),
            format::bytes(u64::from(sig.block_size)),
            crate::outfile::describe(&output),
            format::duration(started.elapsed()),
        );
    }
    Ok(ExitStatus::Success)
}
