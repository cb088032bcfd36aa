//! What `signature`, `delta` and `patch` share: the delta engine on plain
//! files, rdiff-style, for debugging and benchmarking — their outputs, and
//! how a file changing under a read is told.

use std::io::BufWriter;
use std::path::Path;

use crate::error::{EngineError, Error};
use crate::outfile::Sink;

/// Largest `.hssig` read: a 5 TiB object at 64 KiB blocks needs ~2.9 GiB; anything
/// bigger is not a signature.
pub(super) const MAX_SIGNATURE_FILE: u64 = 4 << 30;

pub(super) fn io_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| {
        EngineError::Io {
            path: path.to_path_buf(),
            source,
        }
        .into()
    }
}

/// Writes an output the user named: see [`crate::outfile`].
pub(super) fn write_output(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<Sink>) -> Result<(), Error>,
) -> Result<(), Error> {
    crate::outfile::write_output(path, io_error(path), fill)
}

pub(super) fn changed(path: &Path) -> Error {
    EngineError::Changed {
        path: path.to_path_buf(),
    }
    .into()
}

/// Whether an error is a file changing underneath a read.
pub(super) fn is_changed(error: &Error) -> bool {
    match error {
        Error::Engine(EngineError::Io { source, .. }) => {
            crate::mapguard::ChangedWhileRead::is(source)
        }
        Error::Engine(EngineError::Changed { .. }) => true,
        _ => false,
    }
}
