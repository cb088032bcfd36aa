//! The top-level error, and the documented exit codes it maps to.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::delta::file::DeltaFileError;
use crate::filter::FilterError;
use crate::signature::SignatureFileError;
use crate::storage::StorageError;
use crate::sync::{LocationConflict, PlanError, ScanError};
use crate::uri::LocationError;

/// Process exit codes (documented in the README and the manual pages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything planned was done (or there was nothing to do).
    Success = 0,
    /// The run finished but some entries failed or could not be read.
    Partial = 1,
    /// Bad arguments, configuration or input; a refused plan. Nothing was changed.
    Usage = 2,
    /// The sync could not run at all (a side could not be listed or written).
    Fatal = 3,
    /// Credentials are missing or were refused, or access was denied.
    Denied = 4,
    /// `--fail-on-conflict`: the destination changed since the plan; the run
    /// stopped before starting anything more.
    Conflict = 5,
    /// Interrupted by Ctrl+C or SIGTERM.
    Interrupted = 130,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The status a finished (or stopped) run ends with.
    pub fn of_report(report: &crate::sync::ExecReport) -> ExitStatus {
        if report.interrupted {
            ExitStatus::Interrupted
        } else if report.stopped_on_denial.is_some() {
            ExitStatus::Denied
        } else if report.stopped_on_plan.is_some() {
            ExitStatus::Fatal
        } else if report.stopped_on_conflict {
            ExitStatus::Conflict
        } else if report.failed > 0 || report.deletes_withheld > 0 {
            ExitStatus::Partial
        } else {
            ExitStatus::Success
        }
    }
}

/// A failure of the delta engine's file commands (`signature`, `delta`,
/// `patch`), naming the file it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("{}: {source}", crate::outfile::describe(path))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Signature {
        path: PathBuf,
        #[source]
        source: SignatureFileError,
    },
    #[error("{}: {source}", path.display())]
    Delta {
        path: PathBuf,
        #[source]
        source: DeltaFileError,
    },
    #[error("{}: block size {size} is not {}", path.display(), crate::signature::BLOCK_SIZE_RULE)]
    BlockSize { path: PathBuf, size: u64 },
    /// Another process changed the file while it was read (exit code 1).
    #[error("{}: {}", path.display(), crate::mapguard::ChangedWhileRead)]
    Changed { path: PathBuf },
}

impl EngineError {
    /// Malformed input files are the user's to fix (exit 2); IO failures are not.
    pub fn is_bad_input(&self) -> bool {
        match self {
            EngineError::Signature { .. } | EngineError::BlockSize { .. } => true,
            EngineError::Delta { source, .. } => !matches!(source, DeltaFileError::Io(_)),
            EngineError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            EngineError::Changed { .. } => false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Location(#[from] LocationError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error(transparent)]
    List(#[from] crate::filelist::ListError),
    #[error(transparent)]
    Overlap(#[from] LocationConflict),
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    BackupDir(#[from] crate::sync::BackupDirError),
    #[error(transparent)]
    StorageClass(#[from] crate::storage::StorageClassError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
    #[error("interrupted")]
    Interrupted,
}

impl From<crate::sync::session::SessionError> for Error {
    fn from(error: crate::sync::session::SessionError) -> Error {
        use crate::sync::session::SessionError;
        match error {
            SessionError::Overlap(e) => Error::Overlap(e),
            SessionError::Storage(e) => Error::Storage(e),
            SessionError::StorageClass(e) => Error::StorageClass(e),
            SessionError::BackupDir(e) => Error::BackupDir(e),
        }
    }
}

impl From<crate::sync::shard::CheckError> for Error {
    fn from(error: crate::sync::shard::CheckError) -> Error {
        use crate::sync::shard::CheckError;
        match error {
            CheckError::Plan(e) => Error::Plan(e),
            CheckError::Lookup {
                side: "source",
                source,
            } => Error::Scan(ScanError::Source(source)),
            CheckError::Lookup { source, .. } => Error::Scan(ScanError::Destination(source)),
        }
    }
}

impl Error {
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Location(_)
            | Error::Config(_)
            | Error::Filter(_)
            | Error::List(_)
            | Error::Overlap(_)
            | Error::Usage(_)
            | Error::BackupDir(_)
            | Error::StorageClass(_)
            | Error::Plan(
                PlanError::TooManyDeletes { .. }
                | PlanError::EmptySource { .. }
                | PlanError::Invalid { .. }
                | PlanError::Read { .. }
                | PlanError::Stale { .. }
                | PlanError::PartDamaged { .. }
                | PlanError::NotFound { .. },
            )
            | Error::Scan(ScanError::Filter(_) | ScanError::SourceMissing { .. })
            | Error::Scan(
                ScanError::Source(StorageError::NotADirectory { .. })
                | ScanError::Destination(StorageError::NotADirectory { .. }),
            ) => ExitStatus::Usage,
            Error::Engine(e) if e.is_bad_input() => ExitStatus::Usage,
            // One file changed under the command: that file failed, nothing broke.
            Error::Engine(EngineError::Changed { .. }) => ExitStatus::Partial,
            Error::Interrupted => ExitStatus::Interrupted,
            Error::Storage(e)
            | Error::Scan(ScanError::Source(e) | ScanError::Destination(e))
            | Error::Plan(PlanError::Place { source: e, .. })
                if e.is_denied() =>
            {
                ExitStatus::Denied
            }
            _ => ExitStatus::Fatal,
        }
    }
}
