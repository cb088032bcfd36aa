//! The flag groups commands share (what the plan holds, how it runs, S3
//! addressing, the run's output) and the selectors read from them.

use std::path::PathBuf;

use clap::{ArgMatches, Args};

use crate::config::{Overrides, Size};
use crate::filter::{FilterRule, RuleKind};
use crate::format;

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
    /// Listing requests in flight per side (default: the store's own; 1
    /// lists page after page).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub list_requests: Option<u16>,
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

/// How much a scan may hold in memory.
#[derive(Debug, Args, Default)]
pub struct ScanFlags {
    /// Memory both scans together may hold before they spill to a temporary
    /// file (e.g. 4GiB, at least 1MiB; default: half of the machine's memory).
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub memory_budget: Option<u64>,
}

impl ScanFlags {
    pub fn apply_to(&self, overrides: &mut Overrides) {
        overrides.memory_budget = self
            .memory_budget
            .map(|n| crate::config::MemoryBudget(Some(n.max(1 << 20))));
    }
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
    /// The checksum every body uploaded to s3:// or az:// carries for the
    /// server to check: crc64nvme (S3's default and Azure's CRC64, a tenth of
    /// MD5's CPU) or md5 (for S3-compatible services that lack the newer
    /// checksums, the default for providers known to; Azure emulators older
    /// than CRC64 support).
    #[arg(long, global = true, value_name = "KIND", value_parser = ["crc64nvme", "md5"])]
    pub upload_checksum: Option<String>,
    /// Also write another tool's metadata keys on uploads, so it sees the
    /// files' times and modes: rclone (mtime, octal mode, uid, gid, as
    /// `rclone --metadata` writes them) or s3fs (s3fs-fuse's). Their keys are
    /// read where HugeSync's are absent either way.
    #[arg(long, global = true, value_name = "TOOL", value_parser = ["rclone", "s3fs", "none"])]
    pub metadata_compat: Option<String>,
    /// Where signature sidecars go on object stores and SSH servers: beside
    /// (KEY.hssig next to each file) or hidden (ROOT/.hugesync/sig/REL.hssig,
    /// out of sight of tools that read a whole prefix: Spark, Hive, Trino,
    /// pyarrow). Sidecars found in the other layout are moved by the run.
    #[arg(long, global = true, value_name = "LAYOUT", value_parser = ["beside", "hidden"])]
    pub sidecars: Option<String>,
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
        overrides.upload_checksum = self.upload_checksum.clone().map(Some);
        overrides.metadata_compat = self
            .metadata_compat
            .as_deref()
            .map(|tool| (tool != "none").then(|| tool.to_string()));
        overrides.sidecars = self
            .sidecars
            .as_deref()
            .and_then(crate::storage::sidecars::SidecarLayout::parse);
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

pub(super) fn parse_size_arg(text: &str) -> Result<u64, String> {
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
        overrides.list_requests = self
            .list_requests
            .map(|n| crate::config::StoreDefault(Some(usize::from(n))));
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
