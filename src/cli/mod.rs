//! Command-line definitions (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod flags;

use flags::parse_size_arg;
pub use flags::{ExecFlags, PlanFlags, RunFlags, S3Flags, ScanFlags, Selectors, selectors};

const AFTER_HELP: &str = "\
Locations are local paths, s3://bucket/prefix, gs://bucket/prefix, az://container/prefix,
sftp://[user@]host[:port]/path or rsync's [user@]host:path.

Exit codes: 0 done, 1 some entries failed, 2 usage/config error or refused plan,
3 a side could not be listed or written (or a plan changed while it ran),
4 credentials missing or refused, 5 stopped on a conflict (--fail-on-conflict),
130 interrupted.";

/// The version, with the commit it was built from (`--version`).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("HUGESYNC_GIT_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "hugesync",
    version = VERSION,
    about,
    after_help = AFTER_HELP,
    propagate_version = true
)]
pub struct Cli {
    /// More output: -v lists every item, -vv adds debug logs.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Config file to read instead of ~/.config/hugesync/config.toml
    /// (also HUGESYNC_CONFIG).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub s3: S3Flags,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make DST like SRC: scan both, show the plan, ask, then execute it.
    Sync(SyncArgs),
    /// Review, edit and approve the plan in a terminal UI, then watch it execute.
    Tui(TuiArgs),
    /// Scan both sides and print the plan without changing anything.
    Plan(PlanArgs),
    /// Execute a plan saved with `plan -o`, after checking it is still current.
    Apply(ApplyArgs),
    /// Finish a plan run as shards (`apply --shard`): once every shard's
    /// report is in and clean, put cut files together, then delete and set
    /// directory times, and print the whole run's summary.
    Finalize(FinalizeArgs),
    /// Print the effective settings and where each came from.
    Config(ConfigArgs),
    /// Compute a file's block signature (.hssig), like `rdiff signature`.
    Signature(SignatureArgs),
    /// Compute the delta from a signature's file to NEWFILE, like `rdiff delta`.
    Delta(DeltaArgs),
    /// Rebuild NEWFILE from BASIS and a delta, like `rdiff patch`.
    Patch(PatchArgs),
    /// List incomplete uploads under a location (S3 multipart uploads, Azure
    /// uncommitted blocks, GCS and SSH temp objects; those with resume state
    /// here are HugeSync's); `--abort` removes them.
    Uploads(UploadsArgs),
    /// Verify that DST holds what SRC holds, without downloading: each file
    /// compared by the strongest checksum both sides hold (blake3, MD5,
    /// CRC64NVME, CRC32C), else by size (and said so) or, with --download, by
    /// its bytes. Exit 0 when alike, 1 when anything differs.
    Check(CheckArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell);
    /// the README says where each shell looks for it.
    Completions(CompletionsArgs),
    /// List the S3-compatible services `--provider` knows, with what each
    /// needs.
    Providers,
    /// Print the manual page (roff): `hugesync man > hugesync.1`, one
    /// subcommand's (`hugesync man sync`, hugesync-sync(1)), or write them
    /// all into a directory (`--dir`).
    Man(ManArgs),
}

impl Command {
    /// The scan flags of a command that scans.
    pub fn scan_flags(&self) -> Option<&ScanFlags> {
        match self {
            Command::Sync(args) => Some(&args.scan),
            Command::Tui(args) => Some(&args.scan),
            Command::Plan(args) => Some(&args.scan),
            Command::Apply(args) => Some(&args.scan),
            Command::Finalize(args) => Some(&args.scan),
            Command::Check(args) => Some(&args.scan),
            _ => None,
        }
    }
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The subcommand whose page to print (default: hugesync(1)).
    #[arg(value_name = "SUBCOMMAND", conflicts_with = "dir")]
    pub subcommand: Option<String>,
    /// Write every page (hugesync.1, hugesync-sync.1, …) into DIR instead.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[arg(value_name = "SRC")]
    pub source: String,
    #[arg(value_name = "DST")]
    pub destination: String,
    /// Include paths matching GLOB (rsync rules; first matching rule wins).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Exclude paths matching GLOB (rsync rules; first matching rule wins).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Where no checksum settles a pair, read both sides' bytes and compare
    /// them (objects are downloaded: this costs their transfer).
    #[arg(long)]
    pub download: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub scan: ScanFlags,
}

#[derive(Debug, Args)]
pub struct UploadsArgs {
    /// The location to look under (s3://, az://, gs://, sftp://).
    #[arg(value_name = "LOCATION")]
    pub location: String,
    /// Abort the uploads HugeSync started (those with resume state on this
    /// machine) and forget their state.
    #[arg(long)]
    pub abort: bool,
    /// With --abort: abort every incomplete upload under the prefix, whoever
    /// started it.
    #[arg(long, requires = "abort")]
    pub all: bool,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SignatureArgs {
    /// The file to sign.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Where to write the signature (default: FILE.hssig; `-` for standard
    /// output). A device or FIFO is written into, a regular file replaced whole.
    #[arg(short, long, value_name = "SIG")]
    pub output: Option<PathBuf>,
    /// Block size, 64KiB to 5MiB.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub block_size: Option<u64>,
}

#[derive(Debug, Args)]
pub struct DeltaArgs {
    /// Signature of the old file.
    #[arg(value_name = "SIG")]
    pub signature: PathBuf,
    /// The new file.
    #[arg(value_name = "NEWFILE")]
    pub new_file: PathBuf,
    /// Where to write the delta (without it, only the statistics are printed;
    /// `-` for standard output, the statistics then go to stderr).
    #[arg(short, long, value_name = "DELTA")]
    pub output: Option<PathBuf>,
    /// Print the statistics as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PatchArgs {
    /// The old file the signature was made from.
    #[arg(value_name = "BASIS")]
    pub basis: PathBuf,
    /// The delta from `hugesync delta`.
    #[arg(value_name = "DELTA")]
    pub delta: PathBuf,
    /// Where to write the rebuilt file (a file is written whole or not at all;
    /// `-` for standard output).
    #[arg(value_name = "NEWFILE")]
    pub new_file: PathBuf,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Source: a local directory or a bucket URI.
    #[arg(value_name = "SRC")]
    pub source: String,
    /// Destination: a local directory or a bucket URI.
    #[arg(value_name = "DST")]
    pub destination: String,
    #[command(flatten)]
    pub plan: PlanFlags,
    #[command(flatten)]
    pub exec: ExecFlags,
    #[command(flatten)]
    pub run: RunFlags,
    #[command(flatten)]
    pub scan: ScanFlags,
}

#[derive(Debug, Args)]
pub struct TuiArgs {
    #[arg(value_name = "SRC")]
    pub source: String,
    #[arg(value_name = "DST")]
    pub destination: String,
    #[command(flatten)]
    pub plan: PlanFlags,
    #[command(flatten)]
    pub exec: ExecFlags,
    #[command(flatten)]
    pub scan: ScanFlags,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[arg(value_name = "SRC")]
    pub source: String,
    #[arg(value_name = "DST")]
    pub destination: String,
    #[command(flatten)]
    pub plan: PlanFlags,
    /// Save the plan for `hugesync apply` at PLAN: a local directory (made if
    /// need be) or an object-store prefix (`s3://bucket/plans/run-1/`), as a
    /// header and parts of JSON lines. `-` writes it to standard output as
    /// one JSON document and the summary to stderr; so does a FIFO or device
    /// that exists.
    #[arg(short, long, value_name = "PLAN")]
    pub output: Option<PathBuf>,
    /// Divide the saved plan into N shards for `apply PLAN --shard K/N`
    /// (separate workers at once), `finalize PLAN` after them. Each shard's
    /// share (a few runs of consecutive paths, balanced by bytes and by
    /// requests) is kept in the plan and printed, with the memory a worker
    /// needs. Needs `-o` naming a directory or an object-store prefix.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub shards: Option<u32>,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
    /// Accepted for symmetry with `sync`; `plan` never changes anything.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub scan: ScanFlags,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved by `hugesync plan -o` or the TUI: its directory or
    /// object-store prefix (or a plan file of an earlier version).
    #[arg(value_name = "PLAN")]
    pub plan: String,
    /// When planned entries changed since the plan was made, plan again (keeping
    /// the plan's edits) instead of refusing.
    #[arg(long, conflicts_with = "shard")]
    pub replan: bool,
    /// Run only shard K of N of a plan written with `plan --shards N` (`2/8`),
    /// or `auto`: K and N from the batch engine (Kubernetes Indexed Jobs,
    /// Slurm arrays, AWS Batch arrays). The shard reads its own parts, looks up
    /// only its own entries and journals what it finishes; deletions and
    /// directory times wait for `hugesync finalize`.
    #[arg(long, value_name = "K/N|auto", value_parser = crate::sync::shard::parse_shard)]
    pub shard: Option<crate::sync::shard::ShardSpec>,
    /// Where shard reports go (default: with the plan, in its directory or
    /// prefix): a local directory or an object-store prefix every worker
    /// reaches.
    #[arg(long, value_name = "DIR", requires = "shard")]
    pub report_dir: Option<String>,
    #[command(flatten)]
    pub exec: ExecFlags,
    #[command(flatten)]
    pub run: RunFlags,
    #[command(flatten)]
    pub scan: ScanFlags,
}

#[derive(Debug, Args)]
pub struct FinalizeArgs {
    /// The plan the shards ran.
    #[arg(value_name = "PLAN")]
    pub plan: String,
    /// Where the shard reports are (as given to `apply --report-dir`).
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<String>,
    #[command(flatten)]
    pub exec: ExecFlags,
    /// One JSON line with the whole run's summary.
    #[arg(long)]
    pub json: bool,
    /// Do not ask for confirmation (without a terminal, finalize refuses to
    /// change anything unless given).
    #[arg(short, long)]
    pub yes: bool,
    #[command(flatten)]
    pub scan: ScanFlags,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests;
