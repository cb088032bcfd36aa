//! S3 test fixtures: a fresh bucket per test on the moto server that
//! `scripts/test.sh` starts, and direct SDK access to check what landed.

use std::collections::HashMap;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;

/// The moto server open to any credentials.
pub fn endpoint() -> String {
    std::env::var("HUGESYNC_TEST_S3_ENDPOINT").expect(
        "S3 tests need the moto server that scripts/test.sh starts: run `scripts/test.sh` \
         (or set HUGESYNC_TEST_S3_ENDPOINT to a running S3-compatible endpoint)",
    )
}

/// The moto server that checks credentials (and knows none).
pub fn auth_endpoint() -> String {
    std::env::var("HUGESYNC_TEST_S3_AUTH_ENDPOINT")
        .expect("run scripts/test.sh: it starts a credential-checking moto server too")
}

/// A bucket of its own for one test.
pub struct Bucket {
    pub name: String,
    pub endpoint: String,
    client: Client,
    runtime: tokio::runtime::Runtime,
}

/// An object as the server reports it.
#[derive(Debug, Clone)]
pub struct Head {
    pub etag: String,
    pub last_modified: i64,
    pub size: u64,
    pub metadata: HashMap<String, String>,
    /// `x-amz-storage-class` (absent: STANDARD).
    pub storage_class: Option<String>,
    /// `x-amz-checksum-crc64nvme`, as the upload gave it.
    pub crc64nvme: Option<String>,
}

impl Bucket {
    pub fn new() -> Bucket {
        let endpoint = endpoint();
        let name = super::unique_name();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
            .region(Region::new("us-east-1"))
            .endpoint_url(&endpoint)
            .force_path_style(true)
            // moto gives a multipart upload made with CRC64NVME a value of its
            // own (SHA-256s of the parts, under the CRC64NVME header), which a
            // validating reader refuses: the tests read bytes and compare them.
            .response_checksum_validation(
                aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
            )
            .build();
        let client = Client::from_conf(config);
        runtime
            .block_on(client.create_bucket().bucket(&name).send())
            .unwrap();
        Bucket {
            name,
            endpoint,
            client,
            runtime,
        }
    }

    /// `s3://bucket/prefix`
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.name)
    }

    /// The flags that point hugesync at this server.
    pub fn args(&self) -> [String; 3] {
        [
            "--endpoint-url".into(),
            self.endpoint.clone(),
            "--path-style".into(),
        ]
    }

    pub fn put(&self, key: &str, bytes: &[u8]) {
        self.runtime
            .block_on(
                self.client
                    .put_object()
                    .bucket(&self.name)
                    .key(key)
                    .body(ByteStream::from(bytes.to_vec()))
                    .send(),
            )
            .unwrap();
    }

    /// A PUT with user metadata (`x-amz-meta-NAME`), as another tool writes.
    pub fn put_with_metadata(
        &self,
        key: &str,
        bytes: &[u8],
        metadata: &std::collections::HashMap<String, String>,
    ) {
        self.runtime
            .block_on(
                self.client
                    .put_object()
                    .bucket(&self.name)
                    .key(key)
                    .set_metadata(Some(metadata.clone()))
                    .body(ByteStream::from(bytes.to_vec()))
                    .send(),
            )
            .unwrap();
    }

    pub fn get(&self, key: &str) -> Vec<u8> {
        self.runtime.block_on(async {
            let out = self
                .client
                .get_object()
                .bucket(&self.name)
                .key(key)
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {key}: {e:?}"));
            out.body.collect().await.unwrap().into_bytes().to_vec()
        })
    }

    pub fn head(&self, key: &str) -> Option<Head> {
        self.runtime.block_on(async {
            let out = self
                .client
                .head_object()
                .bucket(&self.name)
                .key(key)
                .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
                .send()
                .await
                .ok()?;
            Some(Head {
                crc64nvme: out.checksum_crc64_nvme().map(str::to_string),
                etag: out.e_tag().unwrap_or_default().to_string(),
                last_modified: out.last_modified().map_or(0, |t| t.secs()),
                size: out.content_length().unwrap_or(0) as u64,
                metadata: out.metadata().cloned().unwrap_or_default(),
                storage_class: out.storage_class().map(|c| c.as_str().to_string()),
            })
        })
    }

    /// Every key in the bucket, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.runtime.block_on(async {
            let mut keys = Vec::new();
            let mut pages = self
                .client
                .list_objects_v2()
                .bucket(&self.name)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                keys.extend(
                    page.unwrap()
                        .contents()
                        .iter()
                        .filter_map(|o| o.key().map(str::to_string)),
                );
            }
            keys.sort();
            keys
        })
    }

    /// Incomplete multipart uploads in the bucket.
    pub fn pending_uploads(&self) -> usize {
        self.runtime.block_on(async {
            let out = self
                .client
                .list_multipart_uploads()
                .bucket(&self.name)
                .send()
                .await
                .unwrap();
            out.uploads().len()
        })
    }
}
