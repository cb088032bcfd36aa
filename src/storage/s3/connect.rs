//! Building a client for a bucket from the settings and the SDK's chain.

use std::sync::Arc;

use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};

use super::*;
use crate::storage::requests::{RequestClass, RequestCounts, query_of};

/// Counts every attempt the SDK sends, by the class S3 bills it in.
#[derive(Debug)]
struct CountRequests(Arc<RequestCounts>);

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        let request = context.request();
        self.0.add(class_of(
            request.method(),
            request.uri(),
            request.headers().contains_key("x-amz-copy-source"),
        ));
        Ok(())
    }
}

/// The class of an S3 request, from its method, URL and whether it copies.
fn class_of(method: &str, uri: &str, copies: bool) -> RequestClass {
    let query = query_of(uri);
    let has = |name: &str| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some(name))
    };
    match method {
        "DELETE" => RequestClass::Delete,
        // DeleteObjects is a POST to ?delete.
        "POST" if has("delete") => RequestClass::Delete,
        "PUT" if copies => RequestClass::Copy,
        "GET" if has("list-type") || has("uploads") || has("uploadId") => RequestClass::List,
        "GET" | "HEAD" => RequestClass::Get,
        _ => RequestClass::Put,
    }
}

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
        let requests = Arc::new(RequestCounts::default());
        let mut config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(settings.path_style)
            .interceptor(CountRequests(requests.clone()))
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
                requests,
                // Set from the settings when the store is opened.
                sidecars: Default::default(),
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

#[cfg(test)]
mod class_tests {
    use super::*;

    #[test]
    fn s3_requests_are_classed_as_billed() {
        let url = "http://h/b/k";
        assert_eq!(class_of("PUT", url, false), RequestClass::Put);
        assert_eq!(
            class_of("PUT", "http://h/b/k?partNumber=2&uploadId=u", false),
            RequestClass::Put
        );
        assert_eq!(
            class_of("PUT", "http://h/b/k?partNumber=2&uploadId=u", true),
            RequestClass::Copy
        );
        assert_eq!(
            class_of("POST", "http://h/b/k?uploads", false),
            RequestClass::Put
        );
        assert_eq!(
            class_of("GET", "http://h/b?list-type=2&prefix=a", false),
            RequestClass::List
        );
        assert_eq!(
            class_of("GET", "http://h/b?uploads", false),
            RequestClass::List
        );
        assert_eq!(
            class_of("GET", "http://h/b/k?uploadId=u", false),
            RequestClass::List
        );
        assert_eq!(
            class_of("GET", "http://h/b/k?x-id=GetObject", false),
            RequestClass::Get
        );
        assert_eq!(class_of("HEAD", url, false), RequestClass::Get);
        assert_eq!(class_of("DELETE", url, false), RequestClass::Delete);
        assert_eq!(
            class_of("POST", "http://h/b?delete", false),
            RequestClass::Delete
        );
    }
}
