//! Command-line definitions (clap derive).

use std::path::PathBuf;

use clap::{ArgMatches, Args, Parser, Subcommand};

use crate::config::{Overrides, Size};
use crate::filter::{FilterRule, RuleKind};
use crate::format;

const AFTER_HELP: &str = "\
Locations are local paths, s3://bucket/prefix, gs://bucket/prefix, az://container/prefix,
sftp://[user@]host[:port]/path or rsync's [user@]host:path.

Exit codes: 0 done, 1 some entries failed, 2 usage/config error or refused plan,
3 a side could not be listed or written, 4 credentials missing or refused,
5 stopped on a conflict (--fail-on-conflict), 130 interrupted.";

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
    /// List incomplete multipart uploads under s3://BUCKET/PREFIX (those with
    /// resume state here are HugeSync's); `--abort` removes them.
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
}

#[derive(Debug, Args)]
pub struct UploadsArgs {
    /// s3://bucket/prefix to look under.
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
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[arg(value_name = "SRC")]
    pub source: String,
    #[arg(value_name = "DST")]
    pub destination: String,
    #[command(flatten)]
    pub plan: PlanFlags,
    /// Save the plan as JSON to FILE (for `hugesync apply`); `-` writes it to
    /// standard output and the summary to stderr.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
    /// Accepted for symmetry with `sync`; `plan` never changes anything.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan file written by `hugesync plan -o` or the TUI.
    #[arg(value_name = "PLAN")]
    pub plan_file: PathBuf,
    /// When planned entries changed since the plan was made, plan again (keeping
    /// the plan's edits) instead of refusing.
    #[arg(long, conflicts_with = "shard")]
    pub replan: bool,
    /// Run only shard K of N of the plan (`2/8`), or `auto`: K and N from the
    /// batch engine (Kubernetes Indexed Jobs, Slurm arrays, AWS Batch arrays).
    /// Deletions and directory times wait for `hugesync finalize`.
    #[arg(long, value_name = "K/N|auto", value_parser = crate::sync::shard::parse_shard)]
    pub shard: Option<crate::sync::shard::ShardSpec>,
    /// Where shard reports go (default: next to the plan): a local directory
    /// or an object-store prefix every worker reaches.
    #[arg(long, value_name = "DIR", requires = "shard")]
    pub report_dir: Option<String>,
    #[command(flatten)]
    pub exec: ExecFlags,
    #[command(flatten)]
    pub run: RunFlags,
}

#[derive(Debug, Args)]
pub struct FinalizeArgs {
    /// The plan the shards ran.
    #[arg(value_name = "PLAN")]
    pub plan_file: PathBuf,
    /// Where the shard reports are (as given to `apply --report-dir`).
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<String>,
    #[command(flatten)]
    pub exec: ExecFlags,
    /// One JSON line with the whole run's summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags that decide what the plan contains.
#[derive(Debug, Args, Default)]
pub struct PlanFlags {
    /// Archive mode: preserve permissions and directory times, copy symlinks as
    /// symlinks (file mtimes, to the nanosecond, are always preserved).
    #[arg(short, long)]
    pub archive: bool,
    /// Delete destination entries that do not exist at the source.
    #[arg(long)]
    pub delete: bool,
    /// Refuse to run a plan that deletes more than N entries.
    #[arg(long, value_name = "N")]
    pub max_delete: Option<u64>,
    /// Allow --delete to empty the destination when the source is empty.
    #[arg(long)]
    pub allow_empty_source: bool,
    /// Compare files by content (blake3) instead of size and modification time.
    #[arg(short, long)]
    pub checksum: bool,
    /// Skip files that are newer at the destination (rsync's -u).
    #[arg(short = 'u', long)]
    pub update: bool,
    /// Skip every file that exists at the destination (only new files go).
    #[arg(long, conflicts_with = "existing")]
    pub ignore_existing: bool,
    /// Skip every file that does not exist at the destination (only updates go).
    #[arg(long)]
    pub existing: bool,
    /// Files of equal size are unchanged, whatever their modification times.
    #[arg(long, conflicts_with_all = ["ignore_times", "checksum"])]
    pub size_only: bool,
    /// Transfer files even when size and modification time match (rsync's -I).
    #[arg(short = 'I', long)]
    pub ignore_times: bool,
    /// Modification times within SECONDS of each other are equal (FAT: 2).
    #[arg(long, value_name = "SECONDS")]
    pub modify_window: Option<u64>,
    /// Do not transfer files smaller than SIZE (e.g. 1KiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub min_size: Option<u64>,
    /// Do not transfer files larger than SIZE (e.g. 10GiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub max_size: Option<u64>,
    /// Keep each destination file about to be replaced or deleted, first:
    /// next to it with the suffix (`~`), or under --backup-dir.
    #[arg(short = 'b', long)]
    pub backup: bool,
    /// Keep backups under DIR: a directory below the destination (the same
    /// tree), an absolute path on the destination's machine, or a location on
    /// the destination's own bucket, container or server. Implies -b.
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<String>,
    /// Write files in this storage class: S3's (STANDARD, STANDARD_IA,
    /// INTELLIGENT_TIERING, GLACIER_IR, GLACIER, DEEP_ARCHIVE, …), Azure's
    /// access tiers (Hot, Cool, Cold, Archive) or GCS's (STANDARD, NEARLINE,
    /// COLDLINE, ARCHIVE). Archive tiers send changed files whole.
    #[arg(long, value_name = "CLASS")]
    pub storage_class: Option<String>,
    /// Append SUFFIX to backups' names (default `~`; none with --backup-dir).
    #[arg(long, value_name = "SUFFIX")]
    pub suffix: Option<String>,
    /// Never send a file by delta: changed files go whole (rsync's -W).
    #[arg(short = 'W', long)]
    pub whole_file: bool,
    /// Changed files of at least SIZE are sent by delta (e.g. 32MiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub delta_threshold: Option<u64>,
    /// Delta uploads whose object has no usable .hssig sidecar: `sidecar` sends the
    /// file whole; `generate` reads the object once to sign it, then sends a delta.
    #[arg(long, value_name = "MODE")]
    pub remote_signature: Option<crate::sync::RemoteSignature>,
    /// Where no checksum of the store's own can check a file rebuilt by delta
    /// (an SSH server without b3sum or sha256sum, an object without checksums),
    /// trust its .hssig sidecar instead of sending the file whole (or, to an SSH
    /// server, reading back the ranges it copies).
    #[arg(long)]
    pub unverified_rebuilds: bool,
    /// Delta block size, 64KiB to 5MiB.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub block_size: Option<u64>,
    /// Include paths matching GLOB (rsync rules; first matching rule wins).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Exclude paths matching GLOB (rsync rules; first matching rule wins).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Exclude the patterns in FILE, one per line (`-` for stdin; `#` and `;`
    /// start comments), at this place among the rules.
    #[arg(long, value_name = "FILE")]
    pub exclude_from: Vec<PathBuf>,
    /// Include the patterns in FILE, one per line, at this place among the rules.
    #[arg(long, value_name = "FILE")]
    pub include_from: Vec<PathBuf>,
    /// Only the paths listed in FILE (relative to the source root, one per
    /// line; `-` for stdin) take part, with everything below a listed directory.
    #[arg(long, value_name = "FILE")]
    pub files_from: Option<PathBuf>,
    /// The lists read by --files-from, --exclude-from and --include-from are
    /// separated by NUL bytes, not newlines (as `find -print0` writes them).
    #[arg(short = '0', long)]
    pub from0: bool,
}

/// Flags that decide how a plan is executed.
#[derive(Debug, Args, Default)]
pub struct ExecFlags {
    /// Transfer up to N files at once.
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Show progress bars.
    #[arg(short = 'P', long)]
    pub progress: bool,
    /// Do not fsync written files (faster, less safe on power loss).
    #[arg(long)]
    pub no_fsync: bool,
    /// Stop (exit code 5) when a destination object changed since the plan,
    /// instead of planning that file again.
    #[arg(long)]
    pub fail_on_conflict: bool,
    /// Delete even when part of the source could not be read (by default any
    /// source scan error withholds every deletion, as rsync does).
    #[arg(long)]
    pub ignore_errors: bool,
    /// At most RATE per second (e.g. 20MiB), all transfers of the run
    /// together, uploads and downloads alike.
    #[arg(long, value_name = "RATE", value_parser = parse_rate_arg)]
    pub bwlimit: Option<u64>,
}

/// How s3:// locations are reached (aws-cli's names; also in config.toml and env).
#[derive(Debug, Args, Default)]
pub struct S3Flags {
    /// AWS profile from ~/.aws/config and ~/.aws/credentials.
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// AWS region (e.g. eu-west-1).
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// Endpoint of an S3-compatible store (e.g. http://127.0.0.1:9000).
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Address buckets by path (endpoint/bucket/key) rather than by host name.
    #[arg(long, global = true)]
    pub path_style: bool,
    /// An S3-compatible service by name (r2, b2, wasabi, minio, …; `hugesync
    /// providers` lists them): fills in its endpoint, region and addressing.
    #[arg(long, global = true, value_name = "NAME")]
    pub provider: Option<String>,
    /// The account id the provider's endpoint names (Cloudflare R2).
    #[arg(long, global = true, value_name = "ID")]
    pub provider_account: Option<String>,
    /// Retry a failed request up to N times (throttling, 5xx, network errors,
    /// stalls; never 403/404), backing off up to `retry_max_delay`.
    #[arg(long, global = true, value_name = "N")]
    pub retries: Option<usize>,
    /// gs:// destinations: keep each object uploaded in parts also as hidden
    /// chunk objects, so a later edit re-sends only the chunks it touches.
    /// The data is then stored twice.
    #[arg(long, global = true)]
    pub gcs_chunked_objects: bool,
    /// gs:// destinations: upload each large file as one resumable stream
    /// instead of parallel composite parts (the object keeps an MD5; no
    /// temporary objects). Also what `-j 1` does.
    #[arg(long, global = true, conflicts_with = "gcs_chunked_objects")]
    pub gcs_no_composite: bool,
    /// sftp:// and HOST:PATH locations: read this ssh config file instead of
    /// ~/.ssh/config (as `ssh -F FILE`).
    #[arg(long, global = true, value_name = "FILE")]
    pub ssh_config: Option<String>,
    /// Accept and remember the key of an SSH server not yet in known_hosts
    /// (StrictHostKeyChecking=accept-new); a changed key is still refused.
    #[arg(long, global = true)]
    pub ssh_accept_new: bool,
}

impl S3Flags {
    pub fn apply_to(&self, overrides: &mut Overrides) {
        overrides.profile = self.profile.clone().map(Some);
        overrides.region = self.region.clone().map(Some);
        overrides.endpoint_url = self.endpoint_url.clone().map(Some);
        overrides.path_style = self.path_style.then_some(true);
        overrides.provider = self.provider.clone().map(Some);
        overrides.provider_account = self.provider_account.clone().map(Some);
        overrides.retries = self.retries;
        overrides.gcs_chunked_objects = self.gcs_chunked_objects.then_some(true);
        overrides.gcs_composite_uploads = self.gcs_no_composite.then_some(false);
        overrides.ssh_config = self.ssh_config.clone().map(Some);
        overrides.ssh_accept_new = self.ssh_accept_new.then_some(true);
    }
}

/// Flags shared by the commands that execute.
#[derive(Debug, Args, Default)]
pub struct RunFlags {
    /// Only print what would be done.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    /// Machine-readable output: the plan as JSON with --dry-run, otherwise one JSON
    /// event per line.
    #[arg(long)]
    pub json: bool,
}

fn parse_size_arg(text: &str) -> Result<u64, String> {
    format::parse_size(text)
}

fn parse_rate_arg(text: &str) -> Result<u64, String> {
    let size = text.trim().strip_suffix("/s").unwrap_or(text.trim());
    match format::parse_size(size)? {
        0 => Err("a rate of 0 would send nothing; leave --bwlimit out for no limit".into()),
        rate => Ok(rate),
    }
}

impl PlanFlags {
    pub fn apply_to(&self, overrides: &mut Overrides) {
        let flag = |on: bool| on.then_some(true);
        overrides.archive = flag(self.archive);
        overrides.delete = flag(self.delete);
        overrides.max_delete = self.max_delete.map(Some);
        overrides.allow_empty_source = flag(self.allow_empty_source);
        overrides.checksum = flag(self.checksum);
        overrides.delta_threshold = self.delta_threshold.map(Size);
        overrides.block_size = self.block_size.map(Size);
        overrides.remote_signature = self.remote_signature;
        overrides.unverified_rebuilds = flag(self.unverified_rebuilds);
        overrides.update = flag(self.update);
        overrides.ignore_existing = flag(self.ignore_existing);
        overrides.existing = flag(self.existing);
        overrides.size_only = flag(self.size_only);
        overrides.ignore_times = flag(self.ignore_times);
        overrides.modify_window = self
            .modify_window
            .map(|s| crate::config::Span(std::time::Duration::from_secs(s)));
        overrides.min_size = self.min_size.map(|n| Some(Size(n)));
        overrides.max_size = self.max_size.map(|n| Some(Size(n)));
        overrides.whole_file = flag(self.whole_file);
        overrides.backup = flag(self.backup || self.backup_dir.is_some());
        overrides.backup_dir = self.backup_dir.clone().map(Some);
        overrides.storage_class = self.storage_class.clone().map(Some);
        overrides.suffix = self.suffix.clone().map(Some);
    }
}

impl ExecFlags {
    pub fn apply_to(&self, overrides: &mut Overrides) {
        overrides.jobs = self.jobs;
        overrides.progress = self.progress.then_some(true);
        overrides.fsync = self.no_fsync.then_some(false);
        overrides.fail_on_conflict = self.fail_on_conflict.then_some(true);
        overrides.ignore_errors = self.ignore_errors.then_some(true);
        overrides.bwlimit = self.bwlimit.map(|rate| Some(Size(rate)));
    }
}

/// What selects the entries of a sync besides the settings: the filter rules
/// in command-line order and the `--files-from` list.
pub use crate::sync::session::Selectors;

/// The `--include`/`--exclude` rules (and those of `--include-from` /
/// `--exclude-from` files, at the flag's place) in the order they were given:
/// clap keeps each flag's values apart, their indices restore the
/// interleaving. With the `--files-from` list, read here too.
pub fn selectors(matches: &ArgMatches) -> Result<Selectors, crate::filelist::ListError> {
    let Some((_, sub)) = matches.subcommand() else {
        return Ok(Selectors::default());
    };
    let from0 = matches!(sub.try_get_one::<bool>("from0"), Ok(Some(true)));
    let mut rules: Vec<(usize, FilterRule)> = Vec::new();
    for (id, kind) in [
        ("include", RuleKind::Include),
        ("exclude", RuleKind::Exclude),
    ] {
        // `try_get_many` first: it answers (rather than panics) for commands
        // that have no such flag.
        let Ok(Some(values)) = sub.try_get_many::<String>(id) else {
            continue;
        };
        let Some(indices) = sub.indices_of(id) else {
            continue;
        };
        for (index, pattern) in indices.zip(values) {
            rules.push((
                index,
                FilterRule {
                    kind,
                    pattern: pattern.clone(),
                },
            ));
        }
    }
    for (id, kind) in [
        ("include_from", RuleKind::Include),
        ("exclude_from", RuleKind::Exclude),
    ] {
        let Ok(Some(files)) = sub.try_get_many::<PathBuf>(id) else {
            continue;
        };
        let Some(indices) = sub.indices_of(id) else {
            continue;
        };
        for (index, file) in indices.zip(files) {
            for pattern in crate::filelist::read_patterns(file, from0)? {
                rules.push((index, FilterRule { kind, pattern }));
            }
        }
    }
    // Stable: a file's patterns keep their order at its place.
    rules.sort_by_key(|(index, _)| *index);
    let files_from = match sub.try_get_one::<PathBuf>("files_from") {
        Ok(Some(file)) => Some(crate::filelist::read_paths(file, from0)?),
        _ => None,
    };
    Ok(Selectors {
        filters: rules.into_iter().map(|(_, rule)| rule).collect(),
        files_from,
    })
}

#[cfg(test)]
mod tests;
