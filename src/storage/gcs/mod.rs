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
mod json;
mod kind;
mod naming;
mod request;
mod staging;
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
        Ok(GcsStorage {
            http: crate::storage::rest::HttpClient {
                client,
                retry: retry.clone(),
            },
            signer,
            info: StoreInfo {
                scheme: "gs",
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
            },
            resolved,
            bucket: bucket.to_string(),
            prefix,
            retry: retry.clone(),
            list_page_size: settings
                .list_page_size
                .unwrap_or(PAGE_SIZE)
                .clamp(1, PAGE_SIZE),
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
        (info.scheme == self.info.scheme && info.id.endpoint == self.info.id.endpoint)
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

#[async_trait::async_trait]
impl ObjectStore for GcsStorage {
    fn info(&self) -> &StoreInfo {
        &self.info
    }

    fn staged(&self) -> Option<&dyn StagedObjects> {
        Some(self)
    }

    fn staged_copies(&self) -> Option<&dyn StagedCopies> {
        Some(self)
    }

    fn streams(&self) -> Option<&dyn UploadStreams> {
        self.streams.then_some(self as &dyn UploadStreams)
    }

    fn chunks(&self) -> Option<&dyn KeptChunks> {
        self.chunked.then_some(self as &dyn KeptChunks)
    }

    fn readable_urls(&self) -> Option<&dyn ReadableUrls> {
        Some(self)
    }

    fn refuses_key(&self, key: &str) -> Option<&'static str> {
        naming::refusal(key)
    }

    async fn list_page(&self, token: Option<String>) -> Result<ListPage, StorageError> {
        let page = self.list_objects(&self.prefix, token.as_deref()).await?;
        let objects = page
            .items
            .into_iter()
            // A composite upload's temporaries and kept chunks are never
            // user files.
            .filter(|o| {
                !o.name.starts_with(staging::STAGING) && !o.name.starts_with(chunks::CHUNKS)
            })
            .filter_map(|o| {
                let head = Self::head_of(&o);
                Some(ListedObject {
                    rel_key: o.name.strip_prefix(&self.prefix)?.to_string(),
                    size: head.size,
                    mtime_ns: head.mtime_ns,
                    version: head.version,
                    meta: Some(head.meta),
                    sums: head.sums,
                })
            })
            .collect();
        Ok(ListPage {
            objects,
            next: page.next_page_token.filter(|t| !t.is_empty()),
            leftovers: Vec::new(),
        })
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, StorageError> {
        Ok(self.head_object(key).await?.as_ref().map(Self::head_of))
    }

    async fn open_read(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
        version: Option<&str>,
    ) -> Result<ByteStream, StorageError> {
        let target = self.url_of_key(key);
        let mut url = format!("{}?alt=media", self.object_url(key));
        if let Some(version) = version {
            // The generation itself is read: a replaced object is no longer
            // there under it, whether or not a server honours the condition.
            let generation = version.trim_matches('"');
            url.push_str(&format!(
                "&generation={generation}&ifGenerationMatch={generation}"
            ));
        }
        let mut call = Call::new(Method::GET, &url);
        if let Some((start, len)) = range.filter(|&(_, len)| len > 0) {
            call.headers
                .push(("range", format!("bytes={start}-{}", start + len - 1)));
        }
        let activity = Arc::default();
        let response = self
            .send_once("cannot read", &target, call, &activity)
            .await
            .map_err(|e| match e {
                // Under a pinned generation, "not found" means replaced or
                // deleted since it was listed.
                StorageError::Remote {
                    op,
                    target,
                    kind: RemoteErrorKind::NotFound,
                    message,
                    hints,
                } if version.is_some() => StorageError::Remote {
                    op,
                    target,
                    kind: RemoteErrorKind::PreconditionFailed,
                    message,
                    hints,
                },
                other => other,
            })?;
        Ok(response
            .bytes_stream()
            .map_err(move |e| StorageError::Interrupted {
                target: target.clone(),
                message: request::error_chain(&e.without_url()),
            })
            .boxed())
    }

    async fn put(
        &self,
        key: &str,
        body: BodySource<'_>,
        len: u64,
        meta: &ObjectMeta,
        md5: Option<[u8; 16]>,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let object = self
            .upload(key, body, len, meta.to_headers(), md5, expect)
            .await?;
        let generation = Self::generation_of(object, &self.url_of_key(key))?;
        self.drop_chunks_after_write(key).await;
        Ok(generation)
    }

    fn copies_from(&self, source: &dyn ObjectStore) -> bool {
        // Rewrite copies between buckets of the same service.
        self.same_service(source).is_some()
    }

    async fn copy_object(
        &self,
        source: CopySource<'_>,
        key: &str,
        meta: Option<&ObjectMeta>,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let target = self.url_of_key(key);
        let Some(from_bucket) = self.same_service(source.store) else {
            return Err(StorageError::Transfer {
                target,
                message: "GCS copies server-side only from GCS".into(),
            });
        };
        // Without a resource the copy keeps the source's metadata; with one
        // it takes the resource's (and the run's class, which a rewrite
        // would otherwise leave to the bucket's default).
        let body = match (meta, self.class_for(key)) {
            (None, None) => "{}".to_string(),
            (meta, storage_class) => {
                let head;
                let meta = match meta {
                    Some(meta) => meta,
                    None => {
                        head = source.store.head(source.key).await?.ok_or_else(|| {
                            StorageError::Transfer {
                                target: source.store.url_of(source.key),
                                message: "the source object is gone".into(),
                            }
                        })?;
                        &head.meta
                    }
                };
                serde_json::to_string(&json::NewObject {
                    name: None,
                    content_type: CONTENT_TYPE,
                    md5_hash: None,
                    metadata: meta.to_headers(),
                    storage_class,
                })
                .map_err(|e| StorageError::Transfer {
                    target: target.clone(),
                    message: e.to_string(),
                })?
            }
        };
        let mut base = format!(
            "{}/o/{}/rewriteTo/b/{}/o/{}?projection=noAcl",
            self.bucket_url_of(from_bucket),
            escaped(source.key),
            escaped(&self.bucket),
            escaped(key)
        );
        if let Some(generation) = source.version {
            base.push_str(&format!(
                "&ifSourceGenerationMatch={}",
                generation.trim_matches('"')
            ));
        }
        if let Some(generation) = generation_condition(expect) {
            base.push_str(&format!("&ifGenerationMatch={generation}"));
        }
        // Large copies across locations or classes take several calls.
        let mut token: Option<String> = None;
        loop {
            let url = match &token {
                Some(token) => format!("{base}&rewriteToken={}", escaped(token)),
                None => base.clone(),
            };
            let answer: json::RewriteResponse = self
                .json("cannot copy to", &target, || Call {
                    payload: Payload::Json(&body),
                    server_side: true,
                    ..Call::new(Method::POST, &url)
                })
                .await?;
            if answer.done {
                let object = answer.resource.ok_or_else(|| StorageError::Transfer {
                    target: target.clone(),
                    message: "the finished copy's answer has no object".into(),
                })?;
                let generation = Self::generation_of(object, &target)?;
                if source.key != key {
                    self.drop_chunks_after_write(key).await;
                }
                return Ok(generation);
            }
            token = answer.rewrite_token;
            if token.is_none() {
                return Err(StorageError::Transfer {
                    target,
                    message: "an unfinished copy's answer has no token to continue with".into(),
                });
            }
        }
    }

    async fn set_metadata(
        &self,
        key: &str,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let target = self.url_of_key(key);
        // A patch merges keys: every key HugeSync writes is named, those
        // without a value now are removed.
        let mut metadata: HashMap<String, Option<String>> = ObjectMeta::KEYS
            .iter()
            .map(|k| ((*k).to_string(), None))
            .collect();
        metadata.extend(meta.to_headers().into_iter().map(|(k, v)| (k, Some(v))));
        let body = serde_json::to_string(&json::MetadataPatch { metadata }).map_err(|e| {
            StorageError::Transfer {
                target: target.clone(),
                message: e.to_string(),
            }
        })?;
        let mut url = format!("{}?projection=noAcl", self.object_url(key));
        if let Some(generation) = generation_condition(expect) {
            url.push_str(&format!("&ifGenerationMatch={generation}"));
        }
        let object: json::Object = self
            .json("cannot set the metadata of", &target, || Call {
                payload: Payload::Json(&body),
                ..Call::new(Method::PATCH, &url)
            })
            .await?;
        Self::generation_of(object, &target)
    }

    async fn delete_keys(&self, keys: &[String]) -> Result<(), StorageError> {
        self.delete_names(keys).await?;
        self.drop_chunks_of(keys).await
    }
}

#[async_trait::async_trait]
impl StagedObjects for GcsStorage {
    async fn begin_staged(
        &self,
        key: &str,
        _meta: &ObjectMeta,
    ) -> Result<StagedUpload, StorageError> {
        // Nothing to ask the service: parts are objects of their own, the
        // metadata goes with the compose.
        Ok(StagedUpload {
            key: key.to_string(),
            id: staging::new_stem(),
        })
    }
    async fn stage_bytes(
        &self,
        upload: &StagedUpload,
        number: u32,
        _at: u64,
        body: BodySource<'_>,
        len: u64,
        md5: Option<[u8; 16]>,
    ) -> Result<StagedPart, StorageError> {
        if number == 0 || number as usize > LIMITS.max_parts {
            return Err(StorageError::Transfer {
                target: self.url_of_key(&upload.key),
                message: format!("part number {number} is outside 1..={}", LIMITS.max_parts),
            });
        }
        if len > LIMITS.max_part {
            return Err(StorageError::Transfer {
                target: self.url_of_key(&upload.key),
                message: format!("a {len}-byte part is over the 5 TiB an object may hold"),
            });
        }
        let name = if self.chunked {
            chunks::name(&upload.key, number)
        } else {
            staging::part_name(&upload.id, number, &upload.key)
        };
        let object = self
            .upload(&name, body, len, HashMap::new(), md5, Expect::Any)
            .await?;
        let stored_md5 = object.md5();
        let generation = Self::generation_of(object, &self.url_of_key(&upload.key))?;
        Ok(StagedPart {
            number,
            tag: staging::tag(&name, &generation),
            size: len,
            md5: stored_md5,
        })
    }
    async fn list_staged(&self, upload: &StagedUpload) -> Result<Vec<StagedPart>, StorageError> {
        if self.chunked {
            // What is staged for the key is its chunks.
            let parts: Vec<StagedPart> = self
                .chunk_objects(&upload.key)
                .await?
                .into_iter()
                .map(|(number, o)| StagedPart {
                    number,
                    tag: staging::tag(&o.name, o.generation.as_deref().unwrap_or_default()),
                    size: o.size(),
                    md5: o.md5(),
                })
                .collect();
            if parts.is_empty() {
                return Err(StorageError::Remote {
                    op: "cannot resume",
                    target: self.url_of_key(&upload.key),
                    kind: RemoteErrorKind::NotFound,
                    message: "no chunk of the upload is left".into(),
                    hints: &HINTS,
                });
            }
            return Ok(parts);
        }
        let objects = self.list_all(&staging::upload_folder(&upload.id)).await?;
        if objects.is_empty() {
            return Err(StorageError::Remote {
                op: "cannot resume",
                target: self.url_of_key(&upload.key),
                kind: RemoteErrorKind::NotFound,
                message: "no part of the upload is left".into(),
                hints: &HINTS,
            });
        }
        let mut parts: Vec<StagedPart> = objects
            .iter()
            .filter_map(|o| {
                let (_, number, key) = staging::parse_part_name(&o.name)?;
                (key == upload.key).then(|| StagedPart {
                    number,
                    tag: staging::tag(&o.name, o.generation.as_deref().unwrap_or_default()),
                    size: o.size(),
                    md5: o.md5(),
                })
            })
            .collect();
        parts.sort_by_key(|p| p.number);
        Ok(parts)
    }
    async fn commit_staged(
        &self,
        upload: &StagedUpload,
        parts: &[StagedPart],
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<String, StorageError> {
        let target = self.url_of_key(&upload.key);
        let sources = parts
            .iter()
            .map(|p| {
                staging::parse_tag(&p.tag)
                    .map(|(name, generation)| (name.to_string(), generation.to_string()))
                    .ok_or_else(|| StorageError::Transfer {
                        target: target.clone(),
                        message: format!("part {} has no object to compose from", p.number),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if sources.is_empty() {
            return Err(StorageError::Transfer {
                target,
                message: "an object needs at least one part".into(),
            });
        }
        // One listing of the parts serves the checksum and, once the object
        // is made, the removal of what it no longer needs: the upload's
        // folder, or with chunked objects the key's chunks (those past the
        // new last one are stale).
        let staged = if self.chunked {
            self.chunk_objects(&upload.key)
                .await?
                .into_iter()
                .map(|(_, object)| object)
                .collect()
        } else {
            self.list_all(&staging::upload_folder(&upload.id)).await?
        };
        let expected_crc32c = self.combined_crc32c(&staged, &sources).await?;
        let (object, intermediates) = self
            .compose(&upload.id, &upload.key, sources.clone(), meta, expect)
            .await?;
        // The parts were checked against the file's bytes (MD5) as they went
        // up; the composite is checked against the parts: its CRC32C must be
        // theirs, combined in order.
        if let (Some(expected), Some(actual)) = (expected_crc32c, object.crc32c())
            && expected != actual
        {
            return Err(StorageError::Verification {
                target,
                message: format!(
                    "the composed object's CRC32C {actual:08x} is not its parts' {expected:08x}"
                ),
            });
        }
        let expected: u64 = parts.iter().map(|p| p.size).sum();
        if object.size() != expected {
            return Err(StorageError::Verification {
                target,
                message: format!(
                    "the composed object holds {} bytes, not the {expected} of its parts",
                    object.size()
                ),
            });
        }
        let generation = Self::generation_of(object, &target)?;
        if self.chunked {
            // The chunks composed stay; any other chunk of the key goes.
            let (kept, stale): (Vec<String>, Vec<String>) = staged
                .into_iter()
                .map(|o| o.name)
                .partition(|name| sources.iter().any(|(source, _)| source == name));
            if let Some(index) = self.chunk_index.lock().await.as_mut() {
                index.insert(upload.key.clone(), kept);
            }
            let unneeded: Vec<String> = stale.into_iter().chain(intermediates).collect();
            if let Err(e) = self.delete_names(&unneeded).await {
                tracing::warn!("{target}: cannot remove the chunks it no longer has: {e}");
            }
            return Ok(generation);
        }
        // The object is made: its temporaries go (a failure here leaves
        // only them, which `hugesync uploads --abort` removes).
        let temporaries: Vec<String> = staged
            .into_iter()
            .map(|o| o.name)
            .chain(intermediates)
            .filter(|name| name.starts_with(staging::STAGING))
            .collect();
        if let Err(e) = self.delete_names(&temporaries).await {
            tracing::warn!("{target}: cannot remove the upload's temporary parts: {e}");
        }
        self.drop_chunks_after_write(&upload.key).await;
        Ok(generation)
    }
    async fn abort_staged(&self, upload: &StagedUpload) -> Result<(), StorageError> {
        if upload.id != chunks::ORPHANED {
            self.remove_upload_folder(&upload.id).await?;
        }
        // Chunks stay for the next upload of an object that exists; those of
        // an object that never came to be go with the upload.
        if (self.chunked || upload.id == chunks::ORPHANED)
            && self.head_object(&upload.key).await?.is_none()
        {
            let names: Vec<String> = self
                .chunk_objects(&upload.key)
                .await?
                .into_iter()
                .map(|(_, o)| o.name)
                .collect();
            self.delete_names(&names).await?;
        }
        Ok(())
    }
    async fn list_pending(&self) -> Result<Vec<PendingUpload>, StorageError> {
        let mut pending: Vec<PendingUpload> = Vec::new();
        for object in self.list_all(staging::STAGING).await? {
            let Some((stem, _, key)) = staging::parse_part_name(&object.name) else {
                continue;
            };
            if !key.starts_with(&self.prefix) {
                continue;
            }
            let created = object.time_created.as_deref().map(rfc3339_ns);
            match pending.iter_mut().find(|p| p.id == stem && p.key == key) {
                Some(found) => {
                    found.initiated_ns = found.initiated_ns.min(created).or(created);
                }
                None => pending.push(PendingUpload {
                    key: key.to_string(),
                    id: stem.to_string(),
                    initiated_ns: created,
                }),
            }
        }
        // Chunks kept for an object that does not exist (its first upload
        // was interrupted, and never run again).
        let mut orphaned: Vec<PendingUpload> = Vec::new();
        let folder = format!("{}{}", chunks::CHUNKS, self.prefix);
        for object in self.list_all(&folder).await? {
            let Some((key, _)) = chunks::parse(&object.name) else {
                continue;
            };
            let created = object.time_created.as_deref().map(rfc3339_ns);
            match orphaned.iter_mut().find(|p| p.key == key) {
                Some(found) => found.initiated_ns = found.initiated_ns.min(created).or(created),
                None => orphaned.push(PendingUpload {
                    key: key.to_string(),
                    id: chunks::ORPHANED.to_string(),
                    initiated_ns: created,
                }),
            }
        }
        for candidate in orphaned {
            if self.head_object(&candidate.key).await?.is_none() {
                pending.push(candidate);
            }
        }
        Ok(pending)
    }
}

#[async_trait::async_trait]
impl StagedCopies for GcsStorage {
    async fn stage_copy(
        &self,
        upload: &StagedUpload,
        number: u32,
        _at: u64,
        source: CopySource<'_>,
        range: CopyRange,
    ) -> Result<StagedPart, StorageError> {
        // Compose takes whole objects of this bucket: an existing object
        // becomes a part as it is (an append's old content), by reference.
        let target = self.url_of_key(&upload.key);
        let same_bucket = self.same_service(source.store) == Some(self.bucket.as_str());
        if !same_bucket {
            return Err(StorageError::Transfer {
                target,
                message: "GCS composes objects of the same bucket only".into(),
            });
        }
        if self.chunked && source.key == upload.key {
            // A chunk the object is kept as; without one, the first range
            // may still be the old object whole (an append to an object
            // uploaded before chunks were kept).
            match self.stage_kept_chunk(upload, number, &range).await? {
                Some(part) => return Ok(part),
                None if range.start == 0 => {}
                None => {
                    return Err(StorageError::Remote {
                        op: "cannot compose from",
                        target: self.url_of_key(&chunks::name(&upload.key, number)),
                        kind: RemoteErrorKind::ChecksumMismatch,
                        message: "no kept chunk holds this range any more".into(),
                        hints: &HINTS,
                    });
                }
            }
        }
        let object = self
            .head_object(source.key)
            .await?
            .ok_or_else(|| StorageError::Remote {
                op: "cannot compose from",
                target: self.url_of_key(source.key),
                kind: RemoteErrorKind::NotFound,
                message: "the source object is gone".into(),
                hints: &HINTS,
            })?;
        let generation = object.generation.clone().unwrap_or_default();
        if let Some(version) = source.version
            && version.trim_matches('"') != generation
        {
            return Err(StorageError::Remote {
                op: "cannot compose from",
                target: self.url_of_key(source.key),
                kind: RemoteErrorKind::PreconditionFailed,
                message: "the source object changed".into(),
                hints: &HINTS,
            });
        }
        if range.start != 0 || range.len != object.size() {
            return Err(StorageError::Transfer {
                target,
                message: format!(
                    "GCS cannot reuse bytes {}..{} of a {}-byte object: compose takes whole objects",
                    range.start,
                    range.start + range.len,
                    object.size()
                ),
            });
        }
        let checked = self.compare_reused(&range, &object, source.key)?;
        let md5 = range.expected_md5.filter(|_| checked);
        Ok(StagedPart {
            number,
            tag: staging::tag(source.key, &generation),
            size: range.len,
            md5,
        })
    }
}

#[async_trait::async_trait]
impl UploadStreams for GcsStorage {
    async fn begin_stream(
        &self,
        key: &str,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<StreamUpload, StorageError> {
        self.start_session(key, meta, expect).await
    }
    async fn stream_persisted(
        &self,
        upload: &StreamUpload,
        recorded: u64,
    ) -> Result<u64, StorageError> {
        self.session_persisted(upload, recorded).await
    }
    async fn stream_bytes(
        &self,
        upload: &StreamUpload,
        offset: u64,
        body: BodySource<'_>,
        len: u64,
        end: Option<&StreamEnd>,
    ) -> Result<StreamAck, StorageError> {
        let ack = self.send_piece(upload, offset, body, len, end).await?;
        if matches!(ack, StreamAck::Done(_)) {
            self.drop_chunks_after_write(&upload.key).await;
        }
        Ok(ack)
    }
    async fn abort_stream(&self, upload: &StreamUpload) -> Result<(), StorageError> {
        self.cancel_session(upload).await
    }
}

#[async_trait::async_trait]
impl KeptChunks for GcsStorage {
    async fn kept_chunks(&self, key: &str) -> Result<Vec<KeptChunk>, StorageError> {
        // Chunks are placed by the sizes of those before them: a gap (a
        // chunk removed meanwhile) leaves the rest unplaced.
        let mut kept = Vec::new();
        let mut start = 0;
        for (number, object) in self.chunk_objects(key).await? {
            if number as usize != kept.len() + 1 {
                break;
            }
            kept.push(KeptChunk {
                number,
                start,
                len: object.size(),
                md5: object.md5(),
                crc32c: object.crc32c(),
            });
            start += object.size();
        }
        Ok(kept)
    }
}

#[async_trait::async_trait]
impl ReadableUrls for GcsStorage {
    async fn readable_url(
        &self,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<ReadableUrl>, StorageError> {
        let Some(signer) = &self.signer else {
            // An emulator serves anyone.
            return Ok(Some(ReadableUrl {
                url: format!("{}?alt=media", self.object_url(key)),
                authorization: None,
            }));
        };
        // A V4 signed URL needs a service account's key (or a signer email):
        // credentials that cannot sign grant no URL, and copies go through
        // this machine instead.
        let url = format!(
            "{}/{}/{}",
            self.resolved.endpoint,
            escaped(&self.bucket),
            percent_encoding::utf8_percent_encode(key, ESCAPES)
                .to_string()
                .replace("%2F", "/")
        );
        let Ok(request) = http::Request::get(&url).body(()) else {
            return Ok(None);
        };
        let (mut parts, ()) = request.into_parts();
        if signer.sign(&mut parts, Some(ttl)).await.is_err() {
            return Ok(None);
        }
        Ok(Some(ReadableUrl {
            url: parts.uri.to_string(),
            authorization: None,
        }))
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
