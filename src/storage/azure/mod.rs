//! Azure Blob Storage: block blobs over the REST API (reqwest), signed by
//! reqsign (Shared Key, SAS, Microsoft Entra ID).
//!
//! One `AzureStorage` is a container and a key prefix. Small files are one Put
//! Blob; large ones a staged object — Put Block (bytes) and Put Block From URL
//! (a byte range of any object the service can read: this account's blobs under
//! a short-lived SAS or bearer token, another store's presigned URL) committed
//! by Put Block List. Azure has no floor on block size, so a delta's parts follow
//! the signature's blocks. Block ids are `STEM` + the part number, base64: one
//! length for every block of a blob, as the service requires, and the stem
//! (the staged upload's id) tells one upload's blocks from another's.

mod blocks;
mod credentials;
mod families;
mod headers;
mod kind;
mod naming;
mod request;
mod store;
mod xml;

use std::sync::Arc;

use base64::Engine;
use futures::{StreamExt, TryStreamExt};
use reqwest::Method;

use self::blocks::{block_id, check_block_list, parse_block_id};
use self::credentials::{Auth, Resolved};
use self::headers::{
    condition_headers, etag_of, header, http_date_ns, md5_header, md5_of_base64, meta_from_pairs,
    meta_headers, quoted,
};
use self::request::{Call, Header, Payload};
use super::body::BodySource;
use super::meta::ObjectMeta;
use super::object::{
    ByteStream, ChecksumKind, CopyRange, CopySource, Expect, ListPage, ListedObject, ObjectHead,
    ObjectStore, PendingUpload, ReadableUrl, ReadableUrls, RebuildCheck, StagedCopies,
    StagedObjects, StagedPart, StagedUpload, Stitching, StoreId, StoreInfo, StoreLimits,
};
use super::{RemoteErrorKind, StorageError, StoreHints};
use crate::retry::RetryPolicy;
use crate::types::ContentSums;

pub use credentials::{AzureSettings, CredentialsError};
pub use kind::KIND;

/// What to check when Azure refuses a request.
pub(crate) const HINTS: StoreHints = StoreHints {
    credentials: "AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, or an Entra ID login (`az login`)",
    bucket: "container",
};

const MIB: u64 = 1024 * 1024;

/// Block blob limits: no floor on a block, 4000 MiB per block (staged or
/// copied from a URL), 50,000 committed blocks; 5000 MiB per Put Blob.
/// Enforced here: azurite accepts 50,001 blocks and truncates source ranges
/// past the end of their object.
const LIMITS: StoreLimits = StoreLimits {
    min_part: 1,
    max_part: 4000 * MIB,
    max_parts: 50_000,
    max_single_put: 5000 * MIB,
    max_single_copy: 4000 * MIB,
    stitching: Stitching::Ranges,
    delete_batch: 256,
    checksums: &[ChecksumKind::Md5],
    keeps_metadata: true,
    cheap_range_copies: false,
    rebuild_check: RebuildCheck::StoreRefusesMismatch,
};

/// Deletes in flight at once.
const PARALLEL_DELETES: usize = 16;
/// Blobs per List Blobs page.
const PAGE_SIZE: u32 = 5000;
/// How long a copy source's SAS (or a presigned URL) stays valid: long enough
/// for one Put Block From URL of the largest block.
const COPY_SOURCE_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Characters left as they are in a blob's URL path.
const PATH_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// Characters left as they are in a query value.
const QUERY_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn query_value(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, QUERY_ESCAPES).to_string()
}

/// A container and a prefix, with a client and signer shared by every clone.
#[derive(Clone)]
pub struct AzureStorage {
    http: crate::storage::rest::HttpClient,
    signer: Arc<reqsign_core::Signer<reqsign_azure_storage::Credential>>,
    resolved: Resolved,
    container: String,
    /// Empty, or ending in `/`.
    prefix: String,
    info: StoreInfo,
    list_page_size: u32,
    access_tier: Option<String>,
}

impl std::fmt::Debug for AzureStorage {
    // The signer holds keys and tokens: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureStorage")
            .field("account", &self.resolved.account)
            .field("container", &self.container)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl AzureStorage {
    /// Resolves credentials and builds the client. No request is made yet; a
    /// missing account is an error now (exit code 4, with the variables to set).
    pub fn connect(
        settings: &AzureSettings,
        retry: &RetryPolicy,
        container: &str,
        prefix: &str,
    ) -> Result<AzureStorage, StorageError> {
        let resolved = credentials::resolve(settings).map_err(|e| StorageError::Remote {
            op: "cannot reach",
            target: format!("az://{container}/{prefix}"),
            kind: RemoteErrorKind::Denied,
            message: e.to_string(),
            hints: &HINTS,
        })?;
        let client = reqwest::Client::builder()
            .connect_timeout(retry.stall_timeout.min(std::time::Duration::from_secs(10)))
            // Servers close idle connections (Node's default, azurite's, is
            // 5 s): one reused just as it is closed fails its request, so idle
            // ones are dropped before then.
            .pool_idle_timeout(std::time::Duration::from_secs(4))
            .build()
            .map_err(|e| StorageError::Transfer {
                target: format!("az://{container}"),
                message: request::error_chain(&e.without_url()),
            })?;
        let context = reqsign_core::Context::new()
            .with_file_read(reqsign_file_read_tokio::TokioFileRead)
            .with_http_send(reqsign_http_send_reqwest::ReqwestHttpSend::new(
                client.clone(),
            ))
            .with_command_execute(reqsign_command_execute_tokio::TokioCommandExecute)
            .with_env(reqsign_core::OsEnv);
        let builder = reqsign_azure_storage::RequestSigner::new();
        let signer = match &resolved.auth {
            Auth::SharedKey { account, key } => reqsign_core::Signer::new(
                context,
                reqsign_azure_storage::StaticCredentialProvider::new_shared_key(account, key),
                builder,
            ),
            Auth::Sas { token } => reqsign_core::Signer::new(
                context,
                reqsign_azure_storage::StaticCredentialProvider::new_sas_token(token),
                builder,
            ),
            Auth::EntraId => {
                // az's order: an environment service principal, workload
                // identity, managed identity, then the Azure CLI's login.
                let chain = reqsign_core::ProvideCredentialChain::new()
                    .push(reqsign_azure_storage::ClientSecretCredentialProvider::new())
                    .push(reqsign_azure_storage::ClientCertificateCredentialProvider::new())
                    .push(reqsign_azure_storage::WorkloadIdentityCredentialProvider::new())
                    .push(reqsign_azure_storage::ImdsCredentialProvider::new())
                    .push(reqsign_azure_storage::AzureCliCredentialProvider::new());
                reqsign_core::Signer::new(
                    context,
                    reqsign_azure_storage::DefaultCredentialProvider::with_chain(chain),
                    builder,
                )
            }
        };
        let prefix = match prefix.trim_matches('/') {
            "" => String::new(),
            prefix => format!("{prefix}/"),
        };
        let list_page_size = settings
            .list_page_size
            .unwrap_or(PAGE_SIZE)
            .clamp(1, PAGE_SIZE);
        Ok(AzureStorage {
            http: crate::storage::rest::HttpClient {
                client,
                retry: retry.clone(),
            },
            signer: Arc::new(signer),
            info: StoreInfo {
                kind: &KIND,
                bucket: container.to_string(),
                prefix: prefix.clone(),
                id: StoreId {
                    endpoint: resolved.endpoint.clone(),
                    bucket: container.to_string(),
                },
                limits: &LIMITS,
                retry: retry.clone(),
                hints: &HINTS,
                page_size: list_page_size,
            },
            resolved,
            container: container.to_string(),
            prefix,
            list_page_size,
            access_tier: settings.storage_class.clone(),
        })
    }

    /// The access tier a write of `key` asks for: the run's, for files;
    /// none (the account's default) for sidecars and directory markers,
    /// which every plan reads.
    fn tier_header(&self, key: &str) -> Option<(Header, String)> {
        let tier = self.access_tier.as_ref()?;
        (!crate::storage::is_sidecar(key.as_bytes()) && !key.ends_with('/'))
            .then(|| ("x-ms-access-tier".into(), tier.clone()))
    }

    fn container_url(&self) -> String {
        format!("{}/{}", self.resolved.endpoint, self.container)
    }

    fn blob_url(&self, key: &str) -> String {
        format!(
            "{}/{}",
            self.container_url(),
            percent_encoding::utf8_percent_encode(key, PATH_ESCAPES)
        )
    }

    fn url_of_key(&self, key: &str) -> String {
        ObjectStore::url_of(self, key)
    }

    /// The List Blobs request for a page from `marker`.
    fn list_url(&self, marker: Option<&str>, include: &str) -> String {
        let mut url = format!(
            "{}?restype=container&comp=list&include={include}&maxresults={}",
            self.container_url(),
            self.list_page_size
        );
        if !self.prefix.is_empty() {
            url.push_str(&format!("&prefix={}", query_value(&self.prefix)));
        }
        if let Some(marker) = marker {
            url.push_str(&format!("&marker={}", query_value(marker)));
        }
        url
    }

    async fn list_blobs(
        &self,
        marker: Option<&str>,
        include: &str,
    ) -> Result<xml::EnumerationResults, StorageError> {
        let target = self.url_of_key(&self.prefix);
        self.get_xml("cannot list", target, self.list_url(marker, include))
            .await
    }

    /// A GET whose answer is an XML document (a listing, a block list).
    async fn get_xml<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        target: String,
        url: String,
    ) -> Result<T, StorageError> {
        // The answer is read within the attempt: one that stalls or is cut
        // off midway is retried like a request that got none.
        let bytes = self
            .answer(op, &target, || Call {
                method: Method::GET,
                url: url.clone(),
                headers: Vec::new(),
                payload: Payload::Empty,
                server_side: false,
            })
            .await?;
        let text = std::str::from_utf8(&bytes).map_err(|e| StorageError::Transfer {
            target: target.clone(),
            message: format!("unreadable answer: {e}"),
        })?;
        xml::parse(text).map_err(|e| StorageError::Transfer {
            target: target.clone(),
            message: format!("unreadable answer: {e}"),
        })
    }

    /// A read-only SAS for a blob of this account, signed with the key.
    fn service_sas(&self, key: &str, ttl: std::time::Duration) -> Result<String, StorageError> {
        let Auth::SharedKey {
            account,
            key: secret,
        } = &self.resolved.auth
        else {
            return Ok(String::new());
        };
        let expiry = reqsign_core::time::Timestamp::now() + ttl;
        let sas = reqsign_azure_storage::ServiceSharedAccessSignature::new(
            account.clone(),
            secret.clone(),
            reqsign_azure_storage::ServiceSasResource::Blob {
                container: self.container.clone(),
                blob: key.to_string(),
            },
            "r".into(),
            expiry,
        );
        let pairs = sas.token().map_err(|e| StorageError::Transfer {
            target: self.url_of_key(key),
            message: format!("cannot sign a read grant: {e}"),
        })?;
        Ok(pairs
            .iter()
            .map(|(k, v)| format!("{}={}", query_value(k), query_value(v)))
            .collect::<Vec<_>>()
            .join("&"))
    }

    /// A bearer token's `Authorization` value, for a copy source under Entra ID.
    async fn bearer(&self, url: &str, target: &str) -> Result<Option<String>, StorageError> {
        let request = http::Request::get(url)
            .header("x-ms-version", request::API_VERSION)
            .body(())
            .map_err(|e| StorageError::Transfer {
                target: target.to_string(),
                message: e.to_string(),
            })?;
        let (mut parts, ()) = request.into_parts();
        self.signer
            .sign(&mut parts, None)
            .await
            .map_err(|e| StorageError::Remote {
                op: "cannot authorise a copy from",
                target: target.to_string(),
                kind: RemoteErrorKind::Denied,
                message: e.to_string(),
                hints: &HINTS,
            })?;
        Ok(parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string))
    }

    async fn put_block(
        &self,
        upload: &StagedUpload,
        number: u32,
        extra: Vec<(Header, String)>,
        payload: Payload<'_>,
        len: u64,
    ) -> Result<StagedPart, StorageError> {
        let target = self.url_of_key(&upload.key);
        if number == 0 || number as usize > LIMITS.max_parts {
            return Err(StorageError::Transfer {
                target,
                message: format!("block number {number} is outside 1..=50000"),
            });
        }
        if len == 0 || len > LIMITS.max_part {
            return Err(StorageError::Transfer {
                target,
                message: format!("a {len}-byte block is outside 1 byte..4000 MiB"),
            });
        }
        let id = block_id(&upload.id, number);
        let url = format!(
            "{}?comp=block&blockid={}",
            self.blob_url(&upload.key),
            query_value(&id)
        );
        let response = self
            .send("cannot stage a block of", &target, || Call {
                method: Method::PUT,
                url: url.clone(),
                headers: extra.clone(),
                payload,
                // A block copied from a URL is read by the service first.
                server_side: matches!(payload, Payload::Empty),
            })
            .await?;
        Ok(StagedPart {
            number,
            tag: id,
            size: len,
            md5: md5_header(&response),
        })
    }

    async fn head_blob(&self, key: &str) -> Result<Option<ObjectHead>, StorageError> {
        let target = self.url_of_key(key);
        let url = self.blob_url(key);
        let result = self
            .send("cannot head", &target, || Call {
                method: Method::HEAD,
                url: url.clone(),
                headers: Vec::new(),
                payload: Payload::Empty,
                server_side: false,
            })
            .await;
        let response = match result {
            Ok(response) => response,
            Err(StorageError::Remote {
                kind: RemoteErrorKind::NotFound,
                ..
            }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let meta = meta_from_pairs(response.headers().iter().filter_map(|(name, value)| {
            let name = name.as_str().strip_prefix("x-ms-meta-")?;
            Some((name, value.to_str().ok()?))
        }));
        Ok(Some(ObjectHead {
            size: header(&response, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            mtime_ns: header(&response, "last-modified").map_or(0, http_date_ns),
            version: header(&response, "etag").map(str::to_string),
            meta,
            sums: ContentSums {
                md5: md5_header(&response),
                ..ContentSums::default()
            },
        }))
    }

    /// The uncommitted blocks of a blob (`NotFound` when it has none and no
    /// committed content either).
    async fn uncommitted_blocks(&self, key: &str) -> Result<Vec<xml::Block>, StorageError> {
        let url = format!(
            "{}?comp=blocklist&blocklisttype=uncommitted",
            self.blob_url(key)
        );
        let list: xml::BlockList = self
            .get_xml("cannot list the blocks of", self.url_of_key(key), url)
            .await?;
        Ok(list.uncommitted_blocks.block)
    }
}
