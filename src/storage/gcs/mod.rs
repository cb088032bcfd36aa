//! Google Cloud Storage over the JSON API (reqwest), authorised by reqsign
//! with Application Default Credentials (or nothing, for an emulator).
//!
//! One `GcsStorage` is a bucket and a key prefix. Small files are one
//! multipart upload (resource and bytes in one request, MD5 checked by the
//! service). Large ones are parallel composite uploads: parts go up at once as
//! temporary objects (`staging`), are composed into the object — in a tree
//! when there are more than 32 — and removed. Compose joins whole objects
//! only, so a delta cannot reuse a range of the old object: the store says so
//! in its limits (`Stitching::WholeObjects`) and the planner sends such files
//! whole. Versions are generations: `ifGenerationMatch` guards every write
//! (`0`: the object must not exist) and pins every read.

mod chunks;
mod compose;
mod credentials;
mod families;
mod json;
mod kind;
mod naming;
mod request;
mod staging;
mod store;
mod stream;

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use futures::{StreamExt, TryStreamExt};
use reqwest::Method;

use self::credentials::{Auth, Resolved};
use self::request::{Call, Payload};
use super::body::BodySource;
use super::meta::ObjectMeta;
use super::object::{
    ByteStream, ChecksumKind, CopyRange, CopySource, Expect, KeptChunk, KeptChunks, ListPage,
    ListedObject, ObjectHead, ObjectStore, PendingUpload, ReadableUrl, ReadableUrls, RebuildCheck,
    StagedCopies, StagedObjects, StagedPart, StagedUpload, Stitching, StoreId, StoreInfo,
    StoreLimits, StreamAck, StreamEnd, StreamUpload, UploadStreams,
};
use super::{RemoteErrorKind, StorageError, StoreHints};
use crate::retry::RetryPolicy;
use crate::types::ContentSums;

pub use credentials::GcsSettings;
pub use kind::KIND;

/// What to check when GCS refuses a request.
pub(crate) const HINTS: StoreHints = StoreHints {
    credentials: "GOOGLE_APPLICATION_CREDENTIALS, `gcloud auth application-default login`, or the metadata server on GCE/GKE; STORAGE_EMULATOR_HOST for an emulator",
    bucket: "bucket",
};

const TIB: u64 = 1024 * 1024 * 1024 * 1024;

/// Objects up to 5 TiB; compose takes 1–32 whole objects of one bucket per
/// call. The count of parts is ours (a compose tree has no limit of its own):
/// it keeps parts of a 5 TiB file at 512 MiB or less.
const LIMITS: StoreLimits = StoreLimits {
    min_part: 1,
    max_part: 5 * TIB,
    max_parts: 10_000,
    max_single_put: 5 * TIB,
    max_single_copy: 5 * TIB,
    stitching: Stitching::WholeObjects {
        sources: COMPOSE_SOURCES,
    },
    delete_batch: 100,
    checksums: &[ChecksumKind::Md5, ChecksumKind::Crc32c],
    keeps_metadata: true,
    cheap_range_copies: false,
    rebuild_check: RebuildCheck::WholeObjectCompared,
};

/// With chunked objects, a staged part is a chunk kept past the commit, and
/// reused by a later upload after its checksums are compared.
const CHUNKED_LIMITS: StoreLimits = StoreLimits {
    rebuild_check: RebuildCheck::ChunksCompared,
    ..LIMITS
};

/// Sources of one compose call.
const COMPOSE_SOURCES: usize = 32;
/// Deletes in flight at once.
const PARALLEL_DELETES: usize = 16;
/// Objects per listing page.
const PAGE_SIZE: u32 = 1000;
/// The content type of every object HugeSync writes.
const CONTENT_TYPE: &str = "application/octet-stream";

/// Characters left as they are in a path segment or query value (an object's
/// name is one segment: its `/`s are escaped too).
const ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn escaped(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, ESCAPES).to_string()
}

/// Nanoseconds since the epoch of an RFC 3339 time (0 when unreadable).
fn rfc3339_ns(text: &str) -> i64 {
    humantime::parse_rfc3339_weak(text)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The `ifGenerationMatch` a write carries for an expectation.
fn generation_condition(expect: Expect<'_>) -> Option<String> {
    match expect {
        Expect::Any => None,
        Expect::Absent => Some("0".into()),
        Expect::Version(version) => Some(version.trim_matches('"').to_string()),
    }
}

/// Chunk objects by the key they are kept for.
type ChunkIndex = HashMap<String, Vec<String>>;

/// A bucket and a prefix, with a client and signer shared by every clone.
#[derive(Clone)]
pub struct GcsStorage {
    http: crate::storage::rest::HttpClient,
    /// `None` for an emulator.
    signer: Option<Arc<reqsign_core::Signer<reqsign_google::Credential>>>,
    resolved: Resolved,
    bucket: String,
    /// Empty, or ending in `/`.
    prefix: String,
    retry: RetryPolicy,
    info: StoreInfo,
    list_page_size: u32,
    /// Objects are kept as chunks too (`chunks`).
    chunked: bool,
    /// Large uploads go as one resumable stream, not composite parts.
    streams: bool,
    /// The keys below the prefix that have chunks, and their chunks' names:
    /// listed once, at the first write or delete that may leave them behind.
    chunk_index: Arc<tokio::sync::Mutex<Option<ChunkIndex>>>,
    storage_class: Option<String>,
}

impl std::fmt::Debug for GcsStorage {
    // The signer holds tokens: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsStorage")
            .field("endpoint", &self.resolved.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl GcsStorage {
    /// Resolves the endpoint and builds the client. No request is made yet:
    /// credentials are looked for at the first one (refused ones: exit 4).
    pub fn connect(
        settings: &GcsSettings,
        retry: &RetryPolicy,
        bucket: &str,
        prefix: &str,
    ) -> Result<GcsStorage, StorageError> {
        let emulator = std::env::var("STORAGE_EMULATOR_HOST").ok();
        let resolved = credentials::resolve(settings, emulator.as_deref());
        let client = reqwest::Client::builder()
            .connect_timeout(retry.stall_timeout.min(std::time::Duration::from_secs(10)))
            .pool_idle_timeout(std::time::Duration::from_secs(4))
            .build()
            .map_err(|e| StorageError::Transfer {
                target: format!("gs://{bucket}"),
                message: request::error_chain(&e.without_url()),
            })?;
        if resolved.auth == Auth::Adc
            && let Some(path) =
                std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").filter(|p| !p.is_empty())
            && let Err(e) = std::fs::File::open(&path)
        {
            // reqsign would fall through to other sources and end with a
            // message that names none: the file the user named is the cause.
            return Err(StorageError::Remote {
                op: "cannot reach",
                target: format!("gs://{bucket}"),
                kind: super::RemoteErrorKind::Denied,
                message: format!(
                    "no usable Google credentials: GOOGLE_APPLICATION_CREDENTIALS names {}, which cannot be read: {e}",
                    std::path::Path::new(&path).display()
                ),
                hints: &HINTS,
            });
        }
        let signer = (resolved.auth == Auth::Adc).then(|| {
            let context = reqsign_core::Context::new()
                .with_file_read(reqsign_file_read_tokio::TokioFileRead)
                .with_http_send(reqsign_http_send_reqwest::ReqwestHttpSend::new(
                    client.clone(),
                ))
                .with_env(reqsign_core::OsEnv);
            Arc::new(reqsign_core::Signer::new(
                context,
                reqsign_google::DefaultCredentialProvider::new(),
                reqsign_google::RequestSigner::new("storage")
                    .with_scope("https://www.googleapis.com/auth/devstorage.read_write"),
            ))
        });
        let prefix = match prefix.trim_matches('/') {
            "" => String::new(),
            prefix => format!("{prefix}/"),
        };
        let list_page_size = settings
            .list_page_size
            .unwrap_or(PAGE_SIZE)
            .clamp(1, PAGE_SIZE);
        Ok(GcsStorage {
            http: crate::storage::rest::HttpClient {
                client,
                retry: retry.clone(),
            },
            signer,
            info: StoreInfo {
                kind: &KIND,
                bucket: bucket.to_string(),
                prefix: prefix.clone(),
                id: StoreId {
                    endpoint: resolved.endpoint.clone(),
                    bucket: bucket.to_string(),
                },
                limits: if settings.chunked_objects {
                    &CHUNKED_LIMITS
                } else {
                    &LIMITS
                },
                retry: retry.clone(),
                hints: &HINTS,
                page_size: list_page_size,
            },
            resolved,
            bucket: bucket.to_string(),
            prefix,
            retry: retry.clone(),
            list_page_size,
            chunked: settings.chunked_objects,
            streams: !settings.composite_uploads && !settings.chunked_objects,
            chunk_index: Arc::default(),
            storage_class: settings.storage_class.clone(),
        })
    }

    /// The storage class a write of `key` asks for: the run's, for files;
    /// none (the bucket's default) for sidecars, directory markers, chunks
    /// and temporaries (which a class's minimum storage time would charge
    /// long after they are gone).
    pub(super) fn class_for(&self, key: &str) -> Option<&str> {
        let class = self.storage_class.as_deref()?;
        let name = key.strip_prefix(self.prefix.as_str()).unwrap_or(key);
        let plain_file = !crate::storage::is_sidecar(key.as_bytes())
            && !key.ends_with('/')
            && !key.starts_with(staging::STAGING)
            && !name.starts_with(staging::STAGING)
            && !key.starts_with(chunks::CHUNKS)
            && !name.starts_with(chunks::CHUNKS);
        plain_file.then_some(class)
    }

    fn bucket_url(&self) -> String {
        self.bucket_url_of(&self.bucket)
    }

    /// The URL of a bucket of this service.
    fn bucket_url_of(&self, bucket: &str) -> String {
        format!(
            "{}/storage/v1/b/{}",
            self.resolved.endpoint,
            escaped(bucket)
        )
    }

    /// The bucket of `source` when it is on this GCS service, which rewrite
    /// and compose read from.
    fn same_service<'a>(&self, source: &'a dyn ObjectStore) -> Option<&'a str> {
        let info = source.info();
        (info.kind.scheme == self.info.kind.scheme && info.id.endpoint == self.info.id.endpoint)
            .then_some(info.bucket.as_str())
    }

    /// The object resource's URL (its name is one escaped segment).
    fn object_url(&self, key: &str) -> String {
        format!("{}/o/{}", self.bucket_url(), escaped(key))
    }

    fn upload_url(&self) -> String {
        format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=multipart",
            self.resolved.endpoint,
            escaped(&self.bucket)
        )
    }

    fn url_of_key(&self, key: &str) -> String {
        ObjectStore::url_of(self, key)
    }

    /// One page of the objects whose names start with `prefix` (bucket-level).
    async fn list_objects(
        &self,
        prefix: &str,
        token: Option<&str>,
    ) -> Result<json::ObjectList, StorageError> {
        let mut url = format!(
            "{}/o?projection=noAcl&maxResults={}&prefix={}",
            self.bucket_url(),
            self.list_page_size,
            escaped(prefix)
        );
        if let Some(token) = token {
            url.push_str(&format!("&pageToken={}", escaped(token)));
        }
        let target = self.url_of_key(prefix);
        self.json("cannot list", &target, || Call::new(Method::GET, &url))
            .await
    }

    /// Every object whose name starts with `prefix`, all pages.
    async fn list_all(&self, prefix: &str) -> Result<Vec<json::Object>, StorageError> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.list_objects(prefix, token.as_deref()).await?;
            objects.extend(page.items);
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next),
                None => return Ok(objects),
            }
        }
    }

    async fn head_object(&self, key: &str) -> Result<Option<json::Object>, StorageError> {
        let url = format!("{}?projection=noAcl", self.object_url(key));
        let found = self
            .json("cannot head", &self.url_of_key(key), || {
                Call::new(Method::GET, &url)
            })
            .await;
        match found {
            Ok(object) => Ok(Some(object)),
            Err(StorageError::Remote {
                kind: RemoteErrorKind::NotFound,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One multipart upload: the resource and the bytes in one request.
    async fn upload(
        &self,
        key: &str,
        body: BodySource<'_>,
        len: u64,
        metadata: HashMap<String, String>,
        md5: Option<[u8; 16]>,
        expect: Expect<'_>,
    ) -> Result<json::Object, StorageError> {
        let target = self.url_of_key(key);
        let resource = serde_json::to_string(&json::NewObject {
            name: Some(key),
            content_type: CONTENT_TYPE,
            md5_hash: md5.map(|m| base64::engine::general_purpose::STANDARD.encode(m)),
            metadata,
            storage_class: self.class_for(key),
        })
        .map_err(|e| StorageError::Transfer {
            target: target.clone(),
            message: e.to_string(),
        })?;
        let mut url = self.upload_url();
        if let Some(generation) = generation_condition(expect) {
            url.push_str(&format!("&ifGenerationMatch={generation}"));
        }
        let object: json::Object = self
            .json("cannot upload", &target, || Call {
                payload: Payload::Upload {
                    resource: &resource,
                    source: body,
                    len,
                },
                ..Call::new(Method::POST, &url)
            })
            .await?;
        // The service checks a given MD5; what it stored is compared too
        // (emulators do not check).
        if let (Some(sent), Some(stored)) = (md5, object.md5())
            && sent != stored
        {
            return Err(StorageError::Verification {
                target,
                message: "the stored object's MD5 differs from what was sent".into(),
            });
        }
        if object.size() != len {
            return Err(StorageError::Verification {
                target,
                message: format!("{len} bytes were sent but {} stored", object.size()),
            });
        }
        Ok(object)
    }

    /// Deletes objects by name, in parallel; missing ones are no error.
    pub(super) async fn delete_names(&self, names: &[String]) -> Result<(), StorageError> {
        futures::stream::iter(names.iter().cloned())
            .map(|name| async move {
                let target = self.url_of_key(&name);
                let url = self.object_url(&name);
                match self
                    .send("cannot delete", &target, || Call::new(Method::DELETE, &url))
                    .await
                {
                    Ok(_)
                    | Err(StorageError::Remote {
                        kind: RemoteErrorKind::NotFound,
                        ..
                    }) => Ok(()),
                    Err(e) => Err(e),
                }
            })
            .buffer_unordered(PARALLEL_DELETES)
            .try_collect::<()>()
            .await
    }

    /// Checks an object about to be reused whole against the bytes it stands
    /// for: its MD5 (single-request uploads) and its CRC32C (every object,
    /// composites too). Either disagreeing refuses it; returns whether one
    /// was compared at all.
    pub(super) fn compare_reused(
        &self,
        range: &CopyRange,
        object: &json::Object,
        name: &str,
    ) -> Result<bool, StorageError> {
        let md5_agrees = match (range.expected_md5, object.md5()) {
            (Some(expected), Some(actual)) => Some(expected == actual),
            _ => None,
        };
        let crc_agrees = match (range.expected_crc32c, object.crc32c()) {
            (Some(expected), Some(actual)) => Some(expected == actual),
            _ => None,
        };
        if md5_agrees == Some(false) || crc_agrees == Some(false) {
            return Err(StorageError::Remote {
                op: "cannot compose from",
                target: self.url_of_key(name),
                kind: RemoteErrorKind::ChecksumMismatch,
                message: "the object's checksum is not that of the file's bytes".into(),
                hints: &HINTS,
            });
        }
        Ok(md5_agrees == Some(true) || crc_agrees == Some(true))
    }

    fn head_of(object: &json::Object) -> ObjectHead {
        ObjectHead {
            size: object.size(),
            mtime_ns: object.updated.as_deref().map_or(0, rfc3339_ns),
            version: object.generation.clone(),
            meta: ObjectMeta::from_headers(&object.metadata.clone().unwrap_or_default()),
            sums: ContentSums {
                md5: object.md5(),
                crc32c: object.crc32c(),
                ..ContentSums::default()
            },
        }
    }

    fn generation_of(object: json::Object, target: &str) -> Result<String, StorageError> {
        object.generation.ok_or_else(|| StorageError::Transfer {
            target: target.to_string(),
            message: "the answer carries no generation".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_carry_the_generation_they_expect() {
        // fake-gcs-server ignores these: what is sent is checked here.
        assert_eq!(generation_condition(Expect::Any), None);
        assert_eq!(generation_condition(Expect::Absent).as_deref(), Some("0"));
        assert_eq!(
            generation_condition(Expect::Version("\"1795909674699645\"")).as_deref(),
            Some("1795909674699645")
        );
    }

    #[test]
    fn names_are_one_escaped_segment() {
        assert_eq!(escaped("a/b c#d.bin"), "a%2Fb%20c%23d.bin");
        assert_eq!(
            rfc3339_ns("2026-11-28T23:47:54.699616Z") % 1_000_000_000,
            699_616_000
        );
        assert_eq!(rfc3339_ns("not a time"), 0);
    }
}
