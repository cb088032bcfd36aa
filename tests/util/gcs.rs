//! GCS test fixtures: a fresh bucket per test on the fake-gcs-server that
//! `scripts/test.sh` starts, and direct JSON API access (no credentials, as
//! on any emulator) to check what landed.

use std::collections::HashMap;

/// fake-gcs-server's address.
pub fn endpoint() -> String {
    std::env::var("HUGESYNC_TEST_GCS_ENDPOINT").expect(
        "GCS tests need the fake-gcs-server that scripts/test.sh starts: run `scripts/test.sh` \
         (or set HUGESYNC_TEST_GCS_ENDPOINT to http://127.0.0.1:PORT)",
    )
}

/// A bucket of its own for one test.
pub struct GcsBucket {
    pub name: String,
    pub endpoint: String,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

/// An object as the server reports it.
#[derive(Debug, Clone)]
pub struct Head {
    pub generation: String,
    pub size: u64,
    pub metadata: HashMap<String, String>,
    pub storage_class: String,
}

const ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn escaped(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, ESCAPES).to_string()
}

impl GcsBucket {
    pub fn new() -> GcsBucket {
        let bucket = GcsBucket {
            name: super::unique_name(),
            endpoint: endpoint().trim_end_matches('/').to_string(),
            client: reqwest::Client::new(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        };
        let body = serde_json::json!({ "name": bucket.name }).to_string();
        let (status, _) = bucket.call("POST", "/storage/v1/b?project=test", body.into_bytes());
        assert!(status < 300, "create bucket: HTTP {status}");
        bucket
    }

    /// `gs://bucket/prefix`
    pub fn url(&self, prefix: &str) -> String {
        format!("gs://{}/{prefix}", self.name)
    }

    /// What points hugesync at this server, as Google's tools find an
    /// emulator (so an S3 side's --endpoint-url stays the S3 side's).
    pub fn env(&self) -> [(String, String); 1] {
        [("STORAGE_EMULATOR_HOST".into(), self.endpoint.clone())]
    }

    fn call(&self, method: &str, path_and_query: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
        self.runtime.block_on(async {
            let url = format!("{}{path_and_query}", self.endpoint);
            let response = self
                .client
                .request(method.parse().unwrap(), &url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.bytes().await.unwrap().to_vec())
        })
    }

    fn object_path(&self, key: &str) -> String {
        format!("/storage/v1/b/{}/o/{}", self.name, escaped(key))
    }

    pub fn put(&self, key: &str, bytes: &[u8]) {
        let path = format!(
            "/upload/storage/v1/b/{}/o?uploadType=media&name={}",
            self.name,
            escaped(key)
        );
        let (status, _) = self.call("POST", &path, bytes.to_vec());
        assert!(status < 300, "PUT {key}: HTTP {status}");
    }

    pub fn get(&self, key: &str) -> Vec<u8> {
        let (status, body) = self.call(
            "GET",
            &format!("{}?alt=media", self.object_path(key)),
            Vec::new(),
        );
        assert_eq!(status, 200, "GET {key}");
        body
    }

    pub fn head(&self, key: &str) -> Option<Head> {
        let (status, body) = self.call("GET", &self.object_path(key), Vec::new());
        if status == 404 {
            return None;
        }
        assert_eq!(status, 200, "HEAD {key}");
        let object: serde_json::Value = serde_json::from_slice(&body).unwrap();
        Some(Head {
            generation: object["generation"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            size: object["size"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            metadata: object["metadata"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            storage_class: object["storageClass"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        })
    }

    /// Every object name in the bucket (temporaries included), sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token = String::new();
        loop {
            let mut path = format!("/storage/v1/b/{}/o?maxResults=1000", self.name);
            if !token.is_empty() {
                path.push_str(&format!("&pageToken={}", escaped(&token)));
            }
            let (status, body) = self.call("GET", &path, Vec::new());
            assert_eq!(status, 200, "list");
            let page: serde_json::Value = serde_json::from_slice(&body).unwrap();
            if let Some(items) = page["items"].as_array() {
                keys.extend(
                    items
                        .iter()
                        .filter_map(|o| o["name"].as_str().map(str::to_string)),
                );
            }
            match page["nextPageToken"].as_str() {
                Some(next) if !next.is_empty() => token = next.to_string(),
                _ => break,
            }
        }
        keys.sort();
        keys
    }
}
