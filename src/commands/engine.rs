//! `signature`, `delta` and `patch`: the delta engine on plain files, rdiff-style,
//! for debugging and benchmarking.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::Verbosity;
use crate::cli::{DeltaArgs, PatchArgs, SignatureArgs};
use crate::delta::compute_delta;
use crate::delta::file::{apply_delta_stream, write_delta};
use crate::error::{EngineError, Error, ExitStatus};
use crate::format;
use crate::outfile::Sink;
use crate::signature::{
    SignatureFileError, SourceIdentity, read_signature, signature_of_file, valid_block_size,
    write_signature,
};
use crate::storage::local::{map_readonly, mtime_ns};

/// Largest `.hssig` read: a 5 TiB object at 64 KiB blocks needs ~2.9 GiB; anything
/// bigger is not a signature.
const MAX_SIGNATURE_FILE: u64 = 4 << 30;

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| {
        EngineError::Io {
            path: path.to_path_buf(),
            source,
        }
        .into()
    }
}

/// Writes an output the user named: see [`crate::outfile`].
fn write_output(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<Sink>) -> Result<(), Error>,
) -> Result<(), Error> {
    crate::outfile::write_output(path, io_error(path), fill)
}

fn changed(path: &Path) -> Error {
    EngineError::Changed {
        path: path.to_path_buf(),
    }
    .into()
}

/// Whether an error is a file changing underneath a read.
fn is_changed(error: &Error) -> bool {
    match error {
        Error::Engine(EngineError::Io { source, .. }) => {
            crate::mapguard::ChangedWhileRead::is(source)
        }
        Error::Engine(EngineError::Changed { .. }) => true,
        _ => false,
    }
}

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

pub fn delta(args: &DeltaArgs, verbosity: Verbosity) -> Result<ExitStatus, Error> {
    let to_stdout = super::output_is_stdout(args.output.as_deref(), args.json, "the delta")?;
    let started = Instant::now();
    let sig_path = &args.signature;
    let sig_file = File::open(sig_path).map_err(io_error(sig_path))?;
    let sig_len = sig_file.metadata().map_err(io_error(sig_path))?.len();
    if sig_len > MAX_SIGNATURE_FILE {
        return Err(EngineError::Signature {
            path: sig_path.clone(),
            source: SignatureFileError::LengthMismatch {
                expected: MAX_SIGNATURE_FILE,
                actual: sig_len,
            },
        }
        .into());
    }
    let sig_bytes = map_readonly(&sig_file).map_err(io_error(sig_path))?;
    let (sig, _) = read_signature(&sig_bytes).map_err(|source| EngineError::Signature {
        path: sig_path.clone(),
        source,
    })?;
    let new_file = File::open(&args.new_file).map_err(io_error(&args.new_file))?;
    let new = map_readonly(&new_file).map_err(io_error(&args.new_file))?;
    let delta = compute_delta(&new, &sig);
    if new.faulted() {
        return Err(changed(&args.new_file));
    }
    if let Some(output) = &args.output {
        let written = write_output(output, |out| {
            write_delta(out, &delta, &new).map_err(io_error(output))
        });
        if new.faulted() || written.as_ref().is_err_and(is_changed) {
            return Err(changed(&args.new_file));
        }
        written?;
    }
    let (reused, fresh) = (delta.bytes_reused(), delta.bytes_new());
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "new_size": delta.new_size,
                "bytes_reused": reused,
                "bytes_new": fresh,
                "ops": delta.ops.len(),
                "seconds": started.elapsed().as_secs_f64(),
            })
        );
    } else if verbosity != Verbosity::Quiet {
        let percent = if delta.new_size == 0 {
            0.0
        } else {
            100.0 * fresh as f64 / delta.new_size as f64
        };
        let line = format!(
            "{}: reused {}, new {} ({percent:.2}% of {}), {} ops, {}",
            args.new_file.display(),
            format::bytes(reused),
            format::bytes(fresh),
            format::bytes(delta.new_size),
            format::count(delta.ops.len() as u64),
            format::duration(started.elapsed()),
        );
        // The delta itself owns standard output when it is written there.
        if to_stdout {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    Ok(ExitStatus::Success)
}

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
