//! Building a client for a bucket from the settings and the SDK's chain.

use super::*;

impl S3Storage {
    /// Builds a client from the settings and the SDK's configuration chain. No
    /// request is made yet: credentials are resolved on first use.
    pub async fn connect(
        settings: &S3Settings,
        retry: &RetryPolicy,
        bucket: &str,
        prefix: &str,
    ) -> S3Storage {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(profile) = &settings.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &settings.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        let mut config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(settings.path_style)
            // Checksums only where S3 demands them (DeleteObjects): integrity is
            // checked end to end by size and ETag, and by blake3 for delta
            // transfers, without a CRC pass over every byte sent or received.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            // Our retry layer is the only one (see `crate::retry`), and it times
            // attempts itself: the SDK's read timeout would cover the whole
            // upload of a body, cutting slow parts off.
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(retry.stall_timeout.min(CONNECT_TIMEOUT))
                    .build(),
            );
        if shared.region().is_none() {
            // S3-compatible stores rarely care; AWS itself redirects.
            config = config.region(Region::new("us-east-1"));
        }
        let prefix = crate::storage::folder_prefix(prefix);
        S3Storage {
            client: Client::from_conf(config.build()),
            retry: retry.clone(),
            list_page_size: settings.list_page_size,
            storage_class: settings.storage_class.clone(),
            metadata_compat: settings.metadata_compat,
            info: StoreInfo {
                kind: &KIND,
                bucket: bucket.to_string(),
                prefix: prefix.clone(),
                id: StoreId {
                    // The endpoint URL, or `aws`.
                    endpoint: settings
                        .endpoint_url
                        .clone()
                        .unwrap_or_else(|| "aws".into()),
                    bucket: bucket.to_string(),
                },
                limits: match settings.body_checksum {
                    BodyChecksum::Crc64Nvme => &LIMITS,
                    BodyChecksum::Md5 => &LIMITS_MD5,
                },
                retry: retry.clone(),
                hints: &HINTS,
                page_size: settings.list_page_size.unwrap_or(1000),
                list_split: crate::storage::object::ListSplit::Ranges { end_key: false },
            },
            bucket: bucket.to_string(),
            prefix,
        }
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The storage class a write of `key` asks for: the run's, for files;
    /// none (STANDARD) for sidecars and directory markers, which every plan
    /// reads.
    pub(super) fn class_of(&self, key: &str) -> Option<aws_sdk_s3::types::StorageClass> {
        let class = self.storage_class.as_deref()?;
        (!crate::storage::is_sidecar(key.as_bytes()) && !key.ends_with('/'))
            .then(|| aws_sdk_s3::types::StorageClass::from(class))
    }

    /// The bucket of `source` when it is on the same S3 service as this
    /// store, which CopyObject and UploadPartCopy can read from.
    pub(super) fn same_service<'a>(&self, source: &'a dyn ObjectStore) -> Option<&'a str> {
        let info = source.info();
        (info.kind.scheme == self.info.kind.scheme && info.id.endpoint == self.info.id.endpoint)
            .then_some(info.bucket.as_str())
    }
}
