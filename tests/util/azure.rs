//! Azure test fixtures: a fresh container per test on the azurite server that
//! `scripts/test.sh` starts, and direct REST access (signed with the emulator's
//! well-known development key) to check what landed.

use std::collections::HashMap;

pub const ACCOUNT: &str = "devstoreaccount1";
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// azurite's Blob endpoint, account included.
pub fn endpoint() -> String {
    std::env::var("HUGESYNC_TEST_AZURE_ENDPOINT").expect(
        "Azure tests need the azurite server that scripts/test.sh starts: run `scripts/test.sh` \
         (or set HUGESYNC_TEST_AZURE_ENDPOINT to http://127.0.0.1:PORT/devstoreaccount1)",
    )
}

/// The connection string `az` users would have for this azurite.
pub fn connection_string(endpoint: &str) -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={endpoint};"
    )
}

/// A container of its own for one test.
pub struct Container {
    pub name: String,
    pub endpoint: String,
    client: reqwest::Client,
    signer: reqsign_core::Signer<reqsign_azure_storage::Credential>,
    runtime: tokio::runtime::Runtime,
}

/// A blob as the server reports it.
#[derive(Debug, Clone)]
pub struct Head {
    pub etag: String,
    pub size: u64,
    pub metadata: HashMap<String, String>,
    /// `x-ms-access-tier`.
    pub access_tier: Option<String>,
}

const PATH_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

impl Container {
    pub fn new() -> Container {
        Container::at(&endpoint())
    }

    /// A container on the server at `endpoint` (a proxy in front of azurite).
    pub fn at(endpoint: &str) -> Container {
        let name = super::unique_name();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let signer = reqsign_core::Signer::new(
            reqsign_core::Context::new(),
            reqsign_azure_storage::StaticCredentialProvider::new_shared_key(ACCOUNT, KEY),
            reqsign_azure_storage::RequestSigner::new(),
        );
        let container = Container {
            name,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            // A fresh connection per request: azurite closes idle ones early.
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
            signer,
            runtime,
        };
        let status = container
            .call("PUT", "?restype=container", &[], Vec::new())
            .0;
        assert!(status < 300, "create container: HTTP {status}");
        container
    }

    /// `az://container/prefix`
    pub fn url(&self, prefix: &str) -> String {
        format!("az://{}/{prefix}", self.name)
    }

    /// What points hugesync at this server: its connection string, as `az`
    /// users have it (an environment variable, so that an S3 side's
    /// --endpoint-url stays the S3 side's).
    pub fn env(&self) -> [(String, String); 1] {
        [(
            "AZURE_STORAGE_CONNECTION_STRING".into(),
            connection_string(&self.endpoint),
        )]
    }

    fn blob_path(&self, key: &str) -> String {
        format!(
            "/{}",
            percent_encoding::utf8_percent_encode(key, PATH_ESCAPES)
        )
    }

    /// One signed request: `(status, headers, body)`.
    fn call(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> (u16, HashMap<String, String>, Vec<u8>) {
        self.runtime.block_on(async {
            let url = format!("{}/{}{path_and_query}", self.endpoint, self.name);
            let mut builder = http::Request::builder()
                .method(method)
                .uri(&url)
                .header("x-ms-version", "2024-08-04");
            if method == "PUT" {
                builder = builder.header("content-length", body.len().to_string());
            }
            for (name, value) in headers {
                builder = builder.header(*name, value);
            }
            let (mut parts, ()) = builder.body(()).unwrap().into_parts();
            self.signer.sign(&mut parts, None).await.unwrap();
            let mut request =
                reqwest::Request::new(parts.method, reqwest::Url::parse(&url).unwrap());
            *request.headers_mut() = parts.headers;
            *request.body_mut() = Some(body.into());
            let response = self.client.execute(request).await.unwrap();
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                .collect();
            (status, headers, response.bytes().await.unwrap().to_vec())
        })
    }

    pub fn put(&self, key: &str, bytes: &[u8]) {
        let path = self.blob_path(key);
        let headers = [("x-ms-blob-type", "BlockBlob".to_string())];
        let (status, _, _) = self.call("PUT", &path, &headers, bytes.to_vec());
        assert!(status < 300, "PUT {key}: HTTP {status}");
    }

    pub fn get(&self, key: &str) -> Vec<u8> {
        let (status, _, body) = self.call("GET", &self.blob_path(key), &[], Vec::new());
        assert_eq!(status, 200, "GET {key}");
        body
    }

    pub fn head(&self, key: &str) -> Option<Head> {
        let (status, headers, _) = self.call("HEAD", &self.blob_path(key), &[], Vec::new());
        (status == 200).then(|| Head {
            etag: headers.get("etag").cloned().unwrap_or_default(),
            size: headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            metadata: headers
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix("x-ms-meta-")?.to_string(), v.clone())))
                .collect(),
            access_tier: headers.get("x-ms-access-tier").cloned(),
        })
    }

    /// Every blob name in the container, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let mut marker = String::new();
        loop {
            let mut query = "?restype=container&comp=list".to_string();
            if !marker.is_empty() {
                query.push_str(&format!("&marker={marker}"));
            }
            let (status, _, body) = self.call("GET", &query, &[], Vec::new());
            assert_eq!(status, 200, "list");
            let text = String::from_utf8(body).unwrap();
            for piece in text.split("<Name>").skip(1) {
                let escaped = piece.split("</Name>").next().unwrap();
                keys.push(
                    escaped
                        .replace("&lt;", "<")
                        .replace("&gt;", ">")
                        .replace("&quot;", "\"")
                        .replace("&apos;", "'")
                        .replace("&amp;", "&"),
                );
            }
            match text
                .split("<NextMarker>")
                .nth(1)
                .and_then(|t| t.split("</NextMarker>").next())
            {
                Some(next) if !next.is_empty() => marker = next.to_string(),
                _ => break,
            }
        }
        keys.sort();
        keys
    }

    /// How many uncommitted blocks the blob has (0 when there is no blob).
    pub fn uncommitted_blocks(&self, key: &str) -> usize {
        let query = format!(
            "{}?comp=blocklist&blocklisttype=uncommitted",
            self.blob_path(key)
        );
        let (status, _, body) = self.call("GET", &query, &[], Vec::new());
        if status == 404 {
            return 0;
        }
        String::from_utf8(body).unwrap().matches("<Block>").count()
    }
}

/// A container SAS for `container` with `permissions` (`rl`: read and list),
/// expiring at `expiry`, as a query string; and its signature, to look for
/// in what a run prints.
pub fn container_sas(
    container: &str,
    permissions: &str,
    expiry: reqsign_core::time::Timestamp,
) -> (String, String) {
    let sas = reqsign_azure_storage::ServiceSharedAccessSignature::new(
        ACCOUNT.to_string(),
        KEY.to_string(),
        reqsign_azure_storage::ServiceSasResource::Container {
            container: container.to_string(),
        },
        permissions.into(),
        expiry,
    );
    let pairs = sas.token().unwrap();
    let signature = pairs
        .iter()
        .find(|(k, _)| k == "sig")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let token = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    (token, signature)
}
