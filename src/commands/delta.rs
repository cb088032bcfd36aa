//! `hugesync delta SIG NEWFILE`: a file matched against a signature.

use std::fs::File;
use std::time::Instant;

use super::Verbosity;
use super::engine::*;
use crate::cli::DeltaArgs;
use crate::delta::compute_delta;
use crate::delta::file::write_delta;
use crate::error::{EngineError, Error, ExitStatus};
use crate::format;
use crate::signature::{SignatureFileError, read_signature};
use crate::storage::local::map_readonly;

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
