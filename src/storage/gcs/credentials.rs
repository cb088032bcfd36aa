//! Where GCS requests go and how they are authorised, as Google's own tools
//! decide it: an emulator named by `STORAGE_EMULATOR_HOST` (or
//! `--endpoint-url`) takes no credentials; otherwise Application Default
//! Credentials — `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's
//! `application_default_credentials.json`, the metadata server on GCE/GKE —
//! found by reqsign. Tokens live in the signer only: never printed or logged.

/// The JSON API's endpoint on Google's side.
pub const GOOGLE_ENDPOINT: &str = "https://storage.googleapis.com";

/// GCS settings from flags, config.toml and the environment.
#[derive(Clone, Debug)]
pub struct GcsSettings {
    /// Where the JSON API is served (`--endpoint-url`, unless
    /// `STORAGE_EMULATOR_HOST` names an emulator).
    pub endpoint_url: Option<String>,
    /// Objects per listing page (`None`: GCS's most, 1000). Smaller pages only
    /// make tests of paging cheap.
    pub list_page_size: Option<u32>,
    /// Keep every object HugeSync uploads in parts also as hidden chunk
    /// objects, so later edits re-send only the chunks they touch
    /// (`--gcs-chunked-objects`; the data is stored twice).
    pub chunked_objects: bool,
    /// Large uploads as parallel composite uploads (parts composed); off,
    /// one resumable stream each — what `--gcs-no-composite`, the config's
    /// `gcs_composite_uploads = false` or `-j 1` (nothing to do in parallel)
    /// ask for.
    pub composite_uploads: bool,
    /// The storage class files are written in (`--storage-class`); sidecars,
    /// directory markers and temporaries take the bucket's default.
    pub storage_class: Option<String>,
    /// Another tool's metadata keys written too (`--metadata-compat`).
    pub metadata_compat: Option<crate::storage::meta::MetadataCompat>,
}

impl Default for GcsSettings {
    fn default() -> Self {
        GcsSettings {
            endpoint_url: None,
            list_page_size: None,
            chunked_objects: false,
            composite_uploads: true,
            storage_class: None,
            metadata_compat: None,
        }
    }
}

/// How requests are authorised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// An emulator: no credentials at all.
    Anonymous,
    /// Application Default Credentials, as a bearer token.
    Adc,
}

/// Where requests go, and with what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// Scheme, host and port, no trailing slash.
    pub endpoint: String,
    pub auth: Auth,
}

/// The endpoint and authorisation for these settings and this environment
/// (`emulator_host`: `STORAGE_EMULATOR_HOST`).
pub fn resolve(settings: &GcsSettings, emulator_host: Option<&str>) -> Resolved {
    let with_scheme = |host: &str| {
        let host = host.trim().trim_end_matches('/');
        if host.contains("://") {
            host.to_string()
        } else {
            format!("http://{host}")
        }
    };
    // The emulator variable is GCS's own: it wins over --endpoint-url, which
    // every object store of a run shares (so an S3 side keeps its endpoint).
    if let Some(host) = emulator_host.filter(|h| !h.trim().is_empty()) {
        return Resolved {
            endpoint: with_scheme(host),
            auth: Auth::Anonymous,
        };
    }
    match &settings.endpoint_url {
        Some(url) => {
            // An explicit endpoint that is Google's own still takes credentials.
            let endpoint = with_scheme(url);
            let auth = if endpoint == GOOGLE_ENDPOINT {
                Auth::Adc
            } else {
                Auth::Anonymous
            };
            Resolved { endpoint, auth }
        }
        None => Resolved {
            endpoint: GOOGLE_ENDPOINT.into(),
            auth: Auth::Adc,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulators_and_endpoints_as_google_tools_find_them() {
        let none = GcsSettings::default();
        assert_eq!(
            resolve(&none, None),
            Resolved {
                endpoint: GOOGLE_ENDPOINT.into(),
                auth: Auth::Adc
            }
        );
        // STORAGE_EMULATOR_HOST with or without a scheme.
        for host in ["127.0.0.1:4443", "http://127.0.0.1:4443/"] {
            assert_eq!(
                resolve(&none, Some(host)),
                Resolved {
                    endpoint: "http://127.0.0.1:4443".into(),
                    auth: Auth::Anonymous
                }
            );
        }
        let flag = GcsSettings {
            endpoint_url: Some("https://gcs.internal:8443".into()),
            ..GcsSettings::default()
        };
        assert_eq!(resolve(&flag, None).endpoint, "https://gcs.internal:8443");
        assert_eq!(resolve(&flag, None).auth, Auth::Anonymous);
        // The store's own variable wins over the flag every store shares.
        assert_eq!(
            resolve(&flag, Some("127.0.0.1:4443")).endpoint,
            "http://127.0.0.1:4443"
        );
        let google = GcsSettings {
            endpoint_url: Some(GOOGLE_ENDPOINT.into()),
            ..GcsSettings::default()
        };
        assert_eq!(resolve(&google, None).auth, Auth::Adc);
    }
}
