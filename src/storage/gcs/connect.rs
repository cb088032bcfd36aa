//! Building a client for a bucket: the endpoint, the HTTP client, the signer,
//! and the storage class a write asks for.

use super::*;

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
        let http = crate::storage::rest::HttpClient::new(retry, &format!("gs://{bucket}"))?;
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
                    http.client.clone(),
                ))
                .with_env(reqsign_core::OsEnv);
            Arc::new(reqsign_core::Signer::new(
                context,
                reqsign_google::DefaultCredentialProvider::new(),
                reqsign_google::RequestSigner::new("storage")
                    .with_scope("https://www.googleapis.com/auth/devstorage.read_write"),
            ))
        });
        let prefix = crate::storage::folder_prefix(prefix);
        let list_page_size = settings
            .list_page_size
            .unwrap_or(PAGE_SIZE)
            .clamp(1, PAGE_SIZE);
        Ok(GcsStorage {
            http,
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
                list_split: crate::storage::object::ListSplit::Ranges { end_key: true },
                requests: std::sync::Arc::default(),
                // Set from the settings when the store is opened.
                sidecars: Default::default(),
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
            metadata_compat: settings.metadata_compat,
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
}
