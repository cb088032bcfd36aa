//! Effective settings: defaults, then `config.toml`, then `HUGESYNC_*` environment
//! variables, then command-line flags (the later wins). Every value remembers where
//! it came from so `hugesync config` can say so.

mod stores;
mod values;

use values::*;
pub use values::{MemoryBudget, Secret, ShowValue, Size, Span, StoreDefault};

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::format;

/// The block sizes the delta engine accepts, as settings see them.
const DEFAULT_BLOCK_SIZE: u64 = crate::signature::DEFAULT_BLOCK_SIZE as u64;
pub const MAX_JOBS: usize = 1024;
pub const MAX_RETRIES: usize = 100;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var} is not valid UTF-8; fix or unset it")]
    UnreadableEnv { var: String },
    #[error("environment variable {var}={value:?}: {reason}")]
    BadEnv {
        var: &'static str,
        value: String,
        reason: String,
    },
    #[error("{key} = {value} ({origin}) is out of range: {range}")]
    OutOfRange {
        key: &'static str,
        value: String,
        origin: Origin,
        range: String,
    },
    #[error("provider {name} ({origin}): {source}")]
    Provider {
        name: String,
        origin: Origin,
        #[source]
        source: crate::storage::s3::providers::ProviderError,
    },
}

/// Where an effective setting came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(&'static str),
    CommandLine,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(path) => write!(f, "file {}", path.display()),
            Origin::Env(var) => write!(f, "env {var}"),
            Origin::CommandLine => f.write_str("command line"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Setting<T> {
    pub value: T,
    pub origin: Origin,
}

/// One table drives the file format, the environment variables, the command-line
/// overrides and the `hugesync config` listing, so they cannot drift apart.
macro_rules! settings {
    ($( $(#[doc = $doc:literal])* $name:ident : $ty:ty = $default:expr, env $env:literal, parse $parse:path; )*) => {
        /// The keys `config.toml` accepts. Unknown keys are an error naming the key.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct ConfigFile {
            $( #[serde(default)] pub $name: Option<$ty>, )*
            /// `[prices.SERVICE]` and `[prices."SERVICE/CLASS"]`: the cost
            /// estimate's figures, over the built-in list prices.
            #[serde(default)]
            pub prices: crate::cost::PriceOverrides,
        }

        /// Values given on the command line; `None` where the flag was not given.
        #[derive(Debug, Default, Clone)]
        pub struct Overrides {
            $( pub $name: Option<$ty>, )*
        }

        /// The effective settings, each with its origin.
        #[derive(Debug, Clone)]
        pub struct Settings {
            $( $(#[doc = $doc])* pub $name: Setting<$ty>, )*
            /// config.toml's `[prices…]` tables.
            pub prices: crate::cost::PriceOverrides,
        }

        impl Settings {
            fn layer(
                file: Option<(PathBuf, ConfigFile)>,
                env: &dyn Fn(&str) -> Option<String>,
                cli: Overrides,
            ) -> Result<Settings, ConfigError> {
                let (path, file) = match file {
                    Some((path, file)) => (Some(path), file),
                    None => (None, ConfigFile::default()),
                };
                Ok(Settings {
                    prices: file.prices.clone(),
                    $(
                    $name: {
                        let mut setting = Setting { value: $default, origin: Origin::Default };
                        if let (Some(value), Some(path)) = (file.$name, &path) {
                            setting = Setting { value, origin: Origin::File(path.clone()) };
                        }
                        if let Some(text) = env($env) {
                            let value = $parse(&text).map_err(|reason| ConfigError::BadEnv {
                                var: $env, value: text.clone(), reason,
                            })?;
                            setting = Setting { value, origin: Origin::Env($env) };
                        }
                        if let Some(value) = cli.$name {
                            setting = Setting { value, origin: Origin::CommandLine };
                        }
                        setting
                    },
                )* })
            }

            /// The environment variable of every setting.
            pub const ENV_VARS: &'static [&'static str] = &[ $( $env, )* ];

            /// `(key, value, origin, env var)` for every setting, in table order.
            pub fn rows(&self) -> Vec<(&'static str, String, serde_json::Value, &Origin, &'static str)> {
                vec![ $( (
                    stringify!($name),
                    self.$name.value.show(),
                    self.$name.value.to_json(),
                    &self.$name.origin,
                    $env,
                ), )* ]
            }
        }
    };
}

settings! {
    /// Files transferred at once (`-j`).
    jobs: usize = 8, env "HUGESYNC_JOBS", parse parse_usize;
    /// Listing requests in flight per side (`auto`: the store's own: S3 64, Azure and GCS 32).
    list_requests: StoreDefault = StoreDefault(None), env "HUGESYNC_LIST_REQUESTS", parse parse_store_default;
    /// Memory the two scans may hold before they spill to a temporary file (`auto`: half of the machine's memory).
    memory_budget: MemoryBudget = MemoryBudget(None), env "HUGESYNC_MEMORY_BUDGET", parse parse_memory_budget;
    /// Delete destination entries that are missing at the source.
    delete: bool = false, env "HUGESYNC_DELETE", parse parse_bool;
    /// Refuse a plan that deletes more than this many entries.
    max_delete: Option<u64> = None, env "HUGESYNC_MAX_DELETE", parse parse_limit;
    /// Changed files at least this large are sent by delta.
    delta_threshold: Size = Size(32 * 1024 * 1024), env "HUGESYNC_DELTA_THRESHOLD", parse parse_size_setting;
    /// Delta block size.
    block_size: Size = Size(DEFAULT_BLOCK_SIZE), env "HUGESYNC_BLOCK_SIZE", parse parse_size_setting;
    /// Skip files that are newer at the destination (`-u`).
    update: bool = false, env "HUGESYNC_UPDATE", parse parse_bool;
    /// Skip every file that exists at the destination.
    ignore_existing: bool = false, env "HUGESYNC_IGNORE_EXISTING", parse parse_bool;
    /// Skip every file that does not exist at the destination (update only).
    existing: bool = false, env "HUGESYNC_EXISTING", parse parse_bool;
    /// Files of equal size are unchanged, whatever their times.
    size_only: bool = false, env "HUGESYNC_SIZE_ONLY", parse parse_bool;
    /// Transfer files even when size and time match (`-I`).
    ignore_times: bool = false, env "HUGESYNC_IGNORE_TIMES", parse parse_bool;
    /// Modification times this close (seconds) are equal: FAT (2), SMB, some object stores.
    modify_window: Span = Span(std::time::Duration::ZERO), env "HUGESYNC_MODIFY_WINDOW", parse parse_span;
    /// Files smaller than this are not transferred.
    min_size: Option<Size> = None, env "HUGESYNC_MIN_SIZE", parse parse_optional_size;
    /// Files larger than this are not transferred.
    max_size: Option<Size> = None, env "HUGESYNC_MAX_SIZE", parse parse_optional_size;
    /// Never send a file by delta (`-W`).
    whole_file: bool = false, env "HUGESYNC_WHOLE_FILE", parse parse_bool;
    /// Compare files by blake3 of their content instead of size and mtime.
    checksum: bool = false, env "HUGESYNC_CHECKSUM", parse parse_bool;
    /// Preserve mode and directory times, copy symlinks as symlinks.
    archive: bool = false, env "HUGESYNC_ARCHIVE", parse parse_bool;
    /// Show progress bars.
    progress: bool = false, env "HUGESYNC_PROGRESS", parse parse_bool;
    /// fsync every written file before it is renamed into place.
    fsync: bool = true, env "HUGESYNC_FSYNC", parse parse_bool;
    /// Allow --delete when the source is empty (normally refused as a likely mistake).
    allow_empty_source: bool = false, env "HUGESYNC_ALLOW_EMPTY_SOURCE", parse parse_bool;
    /// Exclude patterns applied after the command line's rules.
    exclude: Vec<String> = Vec::new(), env "HUGESYNC_EXCLUDE", parse parse_patterns;
    /// AWS profile for s3:// locations (unset: the SDK's chain, AWS_PROFILE included).
    profile: Option<String> = None, env "HUGESYNC_PROFILE", parse parse_optional_text;
    /// AWS region for s3:// locations (unset: from the profile or AWS_REGION).
    region: Option<String> = None, env "HUGESYNC_REGION", parse parse_optional_text;
    /// S3-compatible endpoint (MinIO, R2, Ceph, a local test server).
    endpoint_url: Option<String> = None, env "HUGESYNC_ENDPOINT_URL", parse parse_optional_text;
    /// Path-style bucket addressing (endpoint/bucket/key), as most S3-compatible stores need.
    path_style: bool = false, env "HUGESYNC_PATH_STYLE", parse parse_bool;
    /// An S3-compatible service by name (`hugesync providers`): its endpoint,
    /// region rule and addressing, where not set otherwise.
    provider: Option<String> = None, env "HUGESYNC_PROVIDER", parse parse_optional_text;
    /// The account id a provider's endpoint names (Cloudflare R2).
    provider_account: Option<String> = None, env "HUGESYNC_PROVIDER_ACCOUNT", parse parse_optional_text;
    /// The checksum every body uploaded to S3 or Azure carries for the server to check: `crc64nvme` (S3's own default and Azure's CRC64, a tenth of MD5's CPU) or `md5` (Content-MD5, for S3-compatible services without the newer checksums and older Azure emulators); unset: `crc64nvme`, or `md5` for a --provider that lacks it.
    upload_checksum: Option<String> = None, env "HUGESYNC_UPLOAD_CHECKSUM", parse parse_upload_checksum;
    /// Also write another tool's metadata keys on uploads, in its form: `rclone` (`mtime`, octal `mode`, `uid`, `gid`) or `s3fs` (whole-second `mtime`, decimal `mode`, `uid`, `gid`). Their keys are read where HugeSync's are absent either way.
    metadata_compat: Option<String> = None, env "HUGESYNC_METADATA_COMPAT", parse parse_metadata_compat;
    /// Where signature sidecars go on object stores and SSH servers: `beside` (`KEY.hssig` next to each file, the format's documented place) or `hidden` (`ROOT/.hugesync/sig/REL.hssig`, out of sight of readers that list a prefix: Spark, Hive, Trino, pyarrow). Switching moves existing sidecars on the next run.
    sidecars: crate::storage::sidecars::SidecarLayout = crate::storage::sidecars::SidecarLayout::Beside, env "HUGESYNC_SIDECARS", parse parse_sidecars;
    /// Azure storage account for az:// locations (unset: from the connection string or the endpoint).
    azure_account: Option<String> = None, env "AZURE_STORAGE_ACCOUNT", parse parse_optional_text;
    /// Azure account key (Shared Key); never shown.
    azure_key: Option<Secret> = None, env "AZURE_STORAGE_KEY", parse parse_secret;
    /// Azure SAS token; never shown.
    azure_sas_token: Option<Secret> = None, env "AZURE_STORAGE_SAS_TOKEN", parse parse_secret;
    /// Azure connection string (account, key or SAS, endpoint); never shown.
    azure_connection_string: Option<Secret> = None, env "AZURE_STORAGE_CONNECTION_STRING", parse parse_secret;
    /// Blob service endpoint for az:// locations (azurite, sovereign clouds); unset: --endpoint-url, the connection string's, or the account's public one.
    azure_endpoint_url: Option<String> = None, env "HUGESYNC_AZURE_ENDPOINT_URL", parse parse_optional_text;
    /// Keep objects uploaded to gs:// in parts also as hidden chunk objects, so a later edit re-sends only the chunks it touches (the data is stored twice).
    gcs_chunked_objects: bool = false, env "HUGESYNC_GCS_CHUNKED_OBJECTS", parse parse_bool;
    /// Upload large files to gs:// as parallel composite uploads (parts composed); false: one resumable stream each (objects keep an MD5, no temporaries).
    gcs_composite_uploads: bool = true, env "HUGESYNC_GCS_COMPOSITE_UPLOADS", parse parse_bool;
    /// An ssh config file for sftp:// and HOST:PATH locations, used instead of ~/.ssh/config (`ssh -F`).
    ssh_config: Option<String> = None, env "HUGESYNC_SSH_CONFIG", parse parse_optional_text;
    /// Accept and remember the host key of an SSH server not yet in known_hosts (`StrictHostKeyChecking=accept-new`; a changed key is still refused).
    ssh_accept_new: bool = false, env "HUGESYNC_SSH_ACCEPT_NEW", parse parse_bool;
    /// Delta uploads without a usable sidecar: `sidecar` (upload whole) or `generate` (read the object to sign it).
    remote_signature: crate::sync::RemoteSignature = crate::sync::RemoteSignature::Sidecar, env "HUGESYNC_REMOTE_SIGNATURE", parse parse_remote_signature;
    /// Where no checksum of the store's own can check a file rebuilt by delta (an SSH server without b3sum or sha256sum, an object without checksums), trust its sidecar instead of sending the file whole or reading back what is copied.
    unverified_rebuilds: bool = false, env "HUGESYNC_UNVERIFIED_REBUILDS", parse parse_bool;
    /// Retries of a failed request (throttling, server errors, network failures, stalls).
    retries: usize = 6, env "HUGESYNC_RETRIES", parse parse_usize;
    /// Longest wait between two attempts (the backoff doubles up to it, with full jitter).
    retry_max_delay: Span = Span(std::time::Duration::from_secs(20)), env "HUGESYNC_RETRY_MAX_DELAY", parse parse_span;
    /// A request that makes no progress (no answer, no body bytes moving) for this long is abandoned and retried.
    stall_timeout: Span = Span(std::time::Duration::from_secs(60)), env "HUGESYNC_STALL_TIMEOUT", parse parse_span;
    /// Most bytes per second the run sends and receives, all transfers together (`--bwlimit`; unset: no limit).
    bwlimit: Option<Size> = None, env "HUGESYNC_BWLIMIT", parse parse_rate;
    /// Keep each destination file about to be replaced or deleted, first (`-b`): next to it with `suffix`, or under `backup_dir`.
    backup: bool = false, env "HUGESYNC_BACKUP", parse parse_bool;
    /// The storage class (Azure: access tier) files are written in at the destination; unset: the bucket's default.
    storage_class: Option<String> = None, env "HUGESYNC_STORAGE_CLASS", parse parse_optional_text;
    /// Where backups go: a directory below the destination, an absolute path on its machine, or a location on its own bucket; implies `backup`.
    backup_dir: Option<String> = None, env "HUGESYNC_BACKUP_DIR", parse parse_optional_text;
    /// Appended to a backup's name (default `~`, or nothing with `backup_dir`).
    suffix: Option<String> = None, env "HUGESYNC_SUFFIX", parse parse_optional_text;
    /// Delete even when part of the source could not be read (normally every deletion is withheld then).
    ignore_errors: bool = false, env "HUGESYNC_IGNORE_ERRORS", parse parse_bool;
    /// Stop the sync when a destination object changed since it was planned (default: re-plan that file once).
    fail_on_conflict: bool = false, env "HUGESYNC_FAIL_ON_CONFLICT", parse parse_bool;
}

/// The retry policy the settings describe.
impl Settings {
    pub fn retry_policy(&self) -> crate::retry::RetryPolicy {
        crate::retry::RetryPolicy::new(
            u32::try_from(self.retries.value).unwrap_or(u32::MAX),
            self.retry_max_delay.value.0,
            self.stall_timeout.value.0,
        )
    }
}

/// Where the config file is looked for: `--config`, then `HUGESYNC_CONFIG`, then
/// `$XDG_CONFIG_HOME/hugesync/config.toml` (`~/.config/hugesync/config.toml`).
/// Returns the path and whether it was named explicitly (then it must exist).
pub fn config_path(
    flag: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<(PathBuf, bool)> {
    if let Some(path) = flag {
        return Some((path.to_path_buf(), true));
    }
    if let Some(path) = env("HUGESYNC_CONFIG").filter(|p| !p.is_empty()) {
        return Some((PathBuf::from(path), true));
    }
    use etcetera::BaseStrategy;
    let base = etcetera::choose_base_strategy().ok()?;
    Some((
        base.config_dir().join("hugesync").join("config.toml"),
        false,
    ))
}

/// Reads and parses a config file. A missing file that was not named explicitly is
/// no file at all.
pub fn load_file(path: &Path, explicit: bool) -> Result<Option<ConfigFile>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    toml::from_str(&text)
        .map(Some)
        .map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })
}

impl Settings {
    /// Resolves the effective settings for this process.
    pub fn resolve(
        config_flag: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        cli: Overrides,
    ) -> Result<(Settings, Option<PathBuf>), ConfigError> {
        let mut file = None;
        let mut file_path = None;
        if let Some((path, explicit)) = config_path(config_flag, env) {
            if let Some(parsed) = load_file(&path, explicit)? {
                file = Some((path.clone(), parsed));
            }
            file_path = Some(path);
        }
        let settings = Settings::layer(file, env, cli)?;
        settings.validate()?;
        Ok((settings, file_path))
    }

    /// The S3 endpoint, region and addressing the `provider` setting makes
    /// of the others (an explicit one wins).
    /// The canonical name of the `--provider` set, whose price sheet an
    /// S3-compatible destination is charged at.
    pub fn price_provider(&self) -> Option<&'static str> {
        let name = self.provider.value.as_deref()?;
        crate::storage::s3::providers::find(name)
            .ok()
            .map(|provider| provider.name)
    }

    pub fn provider_resolved(
        &self,
        name: &str,
    ) -> Result<crate::storage::s3::providers::Resolved, crate::storage::s3::providers::ProviderError>
    {
        use crate::storage::s3::providers;
        providers::resolve(
            providers::find(name)?,
            self.region.value.as_deref(),
            self.provider_account.value.as_deref(),
            self.endpoint_url.value.as_deref(),
            self.path_style.value,
        )
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let jobs = &self.jobs;
        if jobs.value == 0 || jobs.value > MAX_JOBS {
            return Err(ConfigError::OutOfRange {
                key: "jobs",
                value: jobs.value.to_string(),
                origin: jobs.origin.clone(),
                range: format!("1 to {MAX_JOBS}"),
            });
        }
        let retries = &self.retries;
        if retries.value > MAX_RETRIES {
            return Err(ConfigError::OutOfRange {
                key: "retries",
                value: retries.value.to_string(),
                origin: retries.origin.clone(),
                range: format!("0 to {MAX_RETRIES}"),
            });
        }
        let stall = &self.stall_timeout;
        if stall.value.0 < std::time::Duration::from_secs(1) {
            return Err(ConfigError::OutOfRange {
                key: "stall_timeout",
                value: stall.value.show(),
                origin: stall.origin.clone(),
                range: "at least 1s".into(),
            });
        }
        if let Some(dir) = &self.backup_dir.value
            && (dir.trim_matches('/').is_empty() || dir.split('/').any(|part| part == ".."))
        {
            return Err(ConfigError::OutOfRange {
                key: "backup_dir",
                value: dir.clone(),
                origin: self.backup_dir.origin.clone(),
                range: "a directory below the destination, an absolute path on the destination's machine, or a location on the destination's own bucket, container or server; without `..`"
                    .into(),
            });
        }
        if self.backup.value
            && self.backup_dir.value.is_none()
            && self.suffix.value.as_deref() == Some("")
        {
            return Err(ConfigError::OutOfRange {
                key: "suffix",
                value: "\"\"".into(),
                origin: self.suffix.origin.clone(),
                range: "a non-empty suffix without backup_dir (a backup next to the file needs another name)"
                    .into(),
            });
        }
        let block = &self.block_size;
        if crate::signature::valid_block_size(block.value.0).is_none() {
            return Err(ConfigError::OutOfRange {
                key: "block_size",
                // As given: a rounded "64.00 KiB" would hide why 65537 is refused.
                value: format!("{} bytes", block.value.0),
                origin: block.origin.clone(),
                range: crate::signature::BLOCK_SIZE_RULE.to_string(),
            });
        }
        if let Some(name) = &self.provider.value {
            self.provider_resolved(name)
                .map_err(|source| ConfigError::Provider {
                    name: name.clone(),
                    origin: self.provider.origin.clone(),
                    source,
                })?;
        }
        for (key, setting) in [
            ("endpoint_url", &self.endpoint_url),
            ("azure_endpoint_url", &self.azure_endpoint_url),
        ] {
            if let Some(url) = &setting.value
                && let Err(why) = check_endpoint(url)
            {
                return Err(ConfigError::OutOfRange {
                    key,
                    value: url.escape_debug().to_string(),
                    origin: setting.origin.clone(),
                    range: format!("an http:// or https:// URL ({why})"),
                });
            }
        }
        Ok(())
    }
}

/// Whether an endpoint setting is a URL a client can send requests to.
fn check_endpoint(text: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(text).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme {}:", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    Ok(())
}

/// Refuses settings' environment variables that cannot be read (not UTF-8):
/// silently falling back to defaults would run with settings nobody chose.
pub fn check_process_env() -> Result<(), ConfigError> {
    let names = Settings::ENV_VARS
        .iter()
        .copied()
        .chain(["HUGESYNC_CONFIG"]);
    for name in names {
        if let Some(value) = std::env::var_os(name)
            && value.to_str().is_none()
        {
            return Err(ConfigError::UnreadableEnv { var: name.into() });
        }
    }
    Ok(())
}

/// The process environment, as the resolver's lookup function.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests;
