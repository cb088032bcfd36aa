//! `hugesync uploads STORE://bucket/prefix [--abort [--all]]`: incomplete staged
//! uploads (S3 multipart uploads, uncommitted Azure blocks, the temporary parts
//! of a GCS composite upload, an SSH server's temp files), which cost storage
//! until completed or aborted. Those with resume state on this machine are
//! HugeSync's (the next sync resumes them); the store cannot tell who started
//! the others.

use serde::Serialize;

use super::{Context, Verbosity, print_json};
use crate::cli::UploadsArgs;
use crate::error::{Error, ExitStatus};
use crate::format;
use crate::resume::{ResumeStore, UploadState};
use crate::storage::Storage;
use crate::storage::object::StagedUpload;
use crate::uri::Location;

#[derive(Serialize)]
struct Row {
    key: String,
    upload_id: String,
    /// Seconds since the epoch.
    initiated: Option<i64>,
    /// Resume state on this machine: the upload is HugeSync's.
    resumable: Option<Resumable>,
    aborted: bool,
}

#[derive(Serialize)]
struct Resumable {
    source: String,
    parts_done: usize,
    bytes_done: u64,
    size: u64,
}

pub(super) async fn run(args: &UploadsArgs, ctx: &Context) -> Result<ExitStatus, Error> {
    let location = Location::parse(&args.location)?;
    let Storage::Object(store) = Storage::open(&location, &ctx.settings.store_settings()).await?
    else {
        return Err(Error::Usage(format!(
            "{}: `hugesync uploads` looks at a remote store; give s3://, az://, gs:// or sftp:// and a prefix",
            args.location
        )));
    };
    let pending = store.need_staged()?.list_pending().await?;
    let id = store.id();
    let resume = ResumeStore::default_location();
    let states: Vec<(std::path::PathBuf, UploadState)> = resume
        .as_ref()
        .map(|r| r.all())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(path, state)| Some((path, state.ok()?)))
        .filter(|(_, s)| {
            s.target.scheme == store.scheme()
                && s.target.endpoint == id.endpoint
                && s.target.bucket == id.bucket
        })
        .collect();
    let mut rows = Vec::with_capacity(pending.len());
    let mut failures = 0;
    for upload in pending {
        let state = states.iter().find(|(_, s)| s.upload_id == upload.id);
        let mut aborted = false;
        if args.abort && (state.is_some() || args.all) {
            let handle = StagedUpload {
                key: upload.key.clone(),
                id: upload.id.clone(),
            };
            match store.need_staged()?.abort_staged(&handle).await {
                Ok(()) => {
                    aborted = true;
                    if let (Some(resume), Some((path, _))) = (&resume, state) {
                        resume.remove_file(path);
                    }
                }
                Err(e) => {
                    failures += 1;
                    eprintln!("error: {e}");
                }
            }
        }
        rows.push(Row {
            key: upload.key,
            upload_id: upload.id,
            initiated: upload.initiated_ns.map(|ns| ns.div_euclid(1_000_000_000)),
            resumable: state.map(|(_, s)| Resumable {
                source: s.target.source.display().to_string(),
                parts_done: s.parts.len(),
                bytes_done: s.parts.iter().map(|p| p.len).sum(),
                size: s.size,
            }),
            aborted,
        });
    }
    // State whose upload is gone (completed or aborted elsewhere) is useless.
    let prefix = store.prefix();
    let stale: Vec<_> = states
        .iter()
        .filter(|(_, s)| s.target.key.starts_with(prefix))
        .filter(|(_, s)| !rows.iter().any(|r| r.upload_id == s.upload_id))
        .collect();
    if args.abort
        && let Some(resume) = &resume
    {
        for (path, _) in &stale {
            resume.remove_file(path);
        }
    }
    if args.json {
        print_json(&rows)?;
    } else if ctx.verbosity != Verbosity::Quiet {
        print_rows(&rows, args.abort);
        if !stale.is_empty() {
            println!(
                "{} resume state file(s) name uploads that no longer exist{}.",
                stale.len(),
                if args.abort {
                    "; removed"
                } else {
                    " (--abort removes them)"
                }
            );
        }
    }
    Ok(if failures > 0 {
        ExitStatus::Partial
    } else {
        ExitStatus::Success
    })
}

fn print_rows(rows: &[Row], abort: bool) {
    if rows.is_empty() {
        println!("No incomplete uploads.");
        return;
    }
    for row in rows {
        let started = row
            .initiated
            .and_then(|s| u64::try_from(s).ok())
            .map(|s| {
                humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(s),
                )
                .to_string()
            })
            .unwrap_or_else(|| "-".into());
        let whose = match &row.resumable {
            Some(r) => format!(
                "HugeSync's: {} of {} sent in {} part(s), from {}",
                format::bytes(r.bytes_done),
                format::bytes(r.size),
                r.parts_done,
                r.source
            ),
            None => "no resume state here".into(),
        };
        let status = if row.aborted { "  [aborted]" } else { "" };
        println!(
            "{}  {}  started {started}  {whose}{status}",
            row.key,
            short(&row.upload_id)
        );
    }
    let ours = rows.iter().filter(|r| r.resumable.is_some()).count();
    let aborted = rows.iter().filter(|r| r.aborted).count();
    println!(
        "{} incomplete upload(s), {ours} with resume state here{}.",
        rows.len(),
        if abort {
            format!("; {aborted} aborted")
        } else {
            "; a sync of the same files resumes them, --abort removes them".into()
        }
    );
}

/// Upload ids are long; the start tells them apart.
fn short(id: &str) -> String {
    let head: String = id.chars().take(12).collect();
    if head.len() < id.len() {
        format!("{head}…")
    } else {
        head
    }
}
