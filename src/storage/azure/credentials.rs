//! Where Azure credentials come from, in the order `az` users expect: a
//! connection string; an account name with its key or a SAS token; otherwise
//! Microsoft Entra ID (an environment service principal, workload identity,
//! managed identity, the Azure CLI's login). Keys, SAS tokens and connection
//! strings are held here and in the signer only: never printed, never logged.

use std::collections::HashMap;

/// The well-known key of the storage emulator's development account (public,
/// documented by Microsoft: `UseDevelopmentStorage=true`).
const DEVELOPMENT_ACCOUNT: &str = "devstoreaccount1";
const DEVELOPMENT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const DEVELOPMENT_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";

/// Azure settings from flags, config.toml and the environment.
#[derive(Clone, Default)]
pub struct AzureSettings {
    pub account: Option<String>,
    pub key: Option<String>,
    pub sas_token: Option<String>,
    pub connection_string: Option<String>,
    /// The Blob service endpoint (`--azure-endpoint-url`, or `--endpoint-url`
    /// when no store-specific one is given).
    pub endpoint_url: Option<String>,
    /// Blobs per listing page (`None`: Azure's most, 5000). Smaller pages only
    /// make tests of paging cheap.
    pub list_page_size: Option<u32>,
    /// The access tier files are written in (`--storage-class`: Hot, Cool,
    /// Cold, Archive); sidecars and directory markers take the account's
    /// default.
    pub storage_class: Option<String>,
    /// The checksum every uploaded body carries (`--upload-checksum`).
    pub body_checksum: crate::storage::body::BodyChecksum,
    /// Another tool's metadata keys written too (`--metadata-compat`).
    pub metadata_compat: Option<crate::storage::meta::MetadataCompat>,
}

impl std::fmt::Debug for AzureSettings {
    // Keys, SAS tokens and connection strings are secrets: only whether they
    // are set is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureSettings")
            .field("account", &self.account)
            .field("key", &self.key.as_ref().map(|_| "(set)"))
            .field("sas_token", &self.sas_token.as_ref().map(|_| "(set)"))
            .field(
                "connection_string",
                &self.connection_string.as_ref().map(|_| "(set)"),
            )
            .field("endpoint_url", &self.endpoint_url)
            .field("body_checksum", &self.body_checksum)
            .finish_non_exhaustive()
    }
}

/// How requests are authorised.
#[derive(Clone)]
pub enum Auth {
    /// Shared Key: requests signed with the account key; copy sources get a
    /// short-lived service SAS signed with it.
    SharedKey { account: String, key: String },
    /// A SAS token appended to every URL.
    Sas { token: String },
    /// Microsoft Entra ID: a bearer token from the credential chain.
    EntraId,
}

/// The account, its Blob endpoint, and how to authorise.
#[derive(Clone)]
pub struct Resolved {
    pub account: String,
    /// Without a trailing `/`: `https://ACCOUNT.blob.core.windows.net`, or an
    /// emulator's `http://127.0.0.1:10000/devstoreaccount1`.
    pub endpoint: String,
    pub auth: Auth,
}

/// Why no usable Azure configuration was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    #[error("the Azure connection string is malformed: {0}")]
    ConnectionString(String),
    // The variables to set follow in the error's hint.
    #[error("no Azure storage account is configured")]
    NoAccount,
}

/// The settings a connection string may hold (Azure's own list); only these
/// names are ever repeated in a message, since anything else in the string
/// may be a key that lost its name.
const CONNECTION_STRING_FIELDS: [&str; 11] = [
    "DefaultEndpointsProtocol",
    "AccountName",
    "AccountKey",
    "SharedAccessSignature",
    "BlobEndpoint",
    "QueueEndpoint",
    "TableEndpoint",
    "FileEndpoint",
    "EndpointSuffix",
    "UseDevelopmentStorage",
    "DevelopmentStorageProxyUri",
];

/// Parses `Key=Value;…` (values may contain `=`, as base64 keys and SAS
/// tokens do). A part that is not a known `Name=value` is named by its
/// place, never by its text.
fn parse_connection_string(text: &str) -> Result<HashMap<String, String>, CredentialsError> {
    let mut fields = HashMap::new();
    let parts: Vec<&str> = text
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    for (index, part) in parts.iter().enumerate() {
        let place = format!(
            "field {} of {} (its text is not shown: it may be a secret)",
            index + 1,
            parts.len()
        );
        let (name, value) = part.split_once('=').ok_or_else(|| {
            CredentialsError::ConnectionString(format!("{place} is not `Name=value`"))
        })?;
        let name = name.trim();
        let Some(known) = CONNECTION_STRING_FIELDS
            .iter()
            .find(|known| known.eq_ignore_ascii_case(name))
        else {
            return Err(CredentialsError::ConnectionString(format!(
                "{place} names no setting a connection string holds ({})",
                CONNECTION_STRING_FIELDS.join(", ")
            )));
        };
        fields.insert(known.to_ascii_lowercase(), value.trim().to_string());
    }
    Ok(fields)
}

/// The endpoint an account has on the public cloud, or under a suffix.
fn public_endpoint(protocol: &str, account: &str, suffix: &str) -> String {
    format!("{protocol}://{account}.blob.{suffix}")
}

/// Decides the account, endpoint and authorisation from the settings (already
/// merged with the environment).
pub fn resolve(settings: &AzureSettings) -> Result<Resolved, CredentialsError> {
    let explicit_endpoint = settings
        .endpoint_url
        .as_deref()
        .map(|e| e.trim_end_matches('/').to_string());
    if let Some(text) = &settings.connection_string {
        let fields = parse_connection_string(text)?;
        let get = |name: &str| fields.get(name).filter(|v| !v.is_empty()).cloned();
        if get("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(Resolved {
                account: DEVELOPMENT_ACCOUNT.into(),
                endpoint: explicit_endpoint.unwrap_or_else(|| DEVELOPMENT_ENDPOINT.into()),
                auth: Auth::SharedKey {
                    account: DEVELOPMENT_ACCOUNT.into(),
                    key: DEVELOPMENT_KEY.into(),
                },
            });
        }
        let endpoint = explicit_endpoint
            .or_else(|| get("blobendpoint").map(|e| e.trim_end_matches('/').to_string()));
        let account = get("accountname")
            .or_else(|| endpoint.as_deref().and_then(account_of_endpoint))
            .ok_or_else(|| CredentialsError::ConnectionString("it names no AccountName".into()))?;
        let endpoint = endpoint.unwrap_or_else(|| {
            public_endpoint(
                &get("defaultendpointsprotocol").unwrap_or_else(|| "https".into()),
                &account,
                &get("endpointsuffix").unwrap_or_else(|| "core.windows.net".into()),
            )
        });
        let auth = if let Some(key) = get("accountkey") {
            Auth::SharedKey {
                account: account.clone(),
                key,
            }
        } else if let Some(token) = get("sharedaccesssignature") {
            Auth::Sas {
                token: token.trim_start_matches('?').to_string(),
            }
        } else {
            Auth::EntraId
        };
        return Ok(Resolved {
            account,
            endpoint,
            auth,
        });
    }
    let account = settings
        .account
        .clone()
        .or_else(|| explicit_endpoint.as_deref().and_then(account_of_endpoint))
        .ok_or(CredentialsError::NoAccount)?;
    let endpoint =
        explicit_endpoint.unwrap_or_else(|| public_endpoint("https", &account, "core.windows.net"));
    let auth = match (&settings.key, &settings.sas_token) {
        (Some(key), _) => Auth::SharedKey {
            account: account.clone(),
            key: key.clone(),
        },
        (None, Some(token)) => Auth::Sas {
            token: token.trim_start_matches('?').to_string(),
        },
        (None, None) => Auth::EntraId,
    };
    Ok(Resolved {
        account,
        endpoint,
        auth,
    })
}

/// The account an endpoint names: `https://ACCOUNT.blob…`, or the first path
/// segment of an emulator's `http://127.0.0.1:PORT/ACCOUNT`.
fn account_of_endpoint(endpoint: &str) -> Option<String> {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let first_segment = path.split('/').find(|s| !s.is_empty());
    match first_segment {
        Some(account) => Some(account.to_string()),
        None => host
            .split_once(".blob.")
            .map(|(account, _)| account.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(connection_string: &str) -> AzureSettings {
        AzureSettings {
            connection_string: Some(connection_string.into()),
            ..AzureSettings::default()
        }
    }

    #[test]
    fn azurite_connection_strings_resolve() {
        let resolved = resolve(&settings(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5==;BlobEndpoint=http://127.0.0.1:1234/devstoreaccount1;",
        ))
        .unwrap();
        assert_eq!(resolved.account, "devstoreaccount1");
        assert_eq!(resolved.endpoint, "http://127.0.0.1:1234/devstoreaccount1");
        assert!(matches!(resolved.auth, Auth::SharedKey { key, .. } if key == "a2V5=="));
        let dev = resolve(&settings("UseDevelopmentStorage=true")).unwrap();
        assert_eq!(dev.endpoint, DEVELOPMENT_ENDPOINT);
    }

    #[test]
    fn public_cloud_endpoints_and_sas() {
        let resolved = resolve(&settings(
            "DefaultEndpointsProtocol=https;AccountName=acct;SharedAccessSignature=?sv=1&sig=x;EndpointSuffix=core.chinacloudapi.cn",
        ))
        .unwrap();
        assert_eq!(resolved.endpoint, "https://acct.blob.core.chinacloudapi.cn");
        assert!(matches!(resolved.auth, Auth::Sas { token } if token == "sv=1&sig=x"));
        let by_account = resolve(&AzureSettings {
            account: Some("acct".into()),
            ..AzureSettings::default()
        })
        .unwrap();
        assert_eq!(by_account.endpoint, "https://acct.blob.core.windows.net");
        assert!(matches!(by_account.auth, Auth::EntraId));
    }

    #[test]
    fn missing_accounts_and_bad_strings_are_named() {
        assert_eq!(
            resolve(&AzureSettings::default()).err(),
            Some(CredentialsError::NoAccount)
        );
        assert!(matches!(
            resolve(&settings("AccountName")),
            Err(CredentialsError::ConnectionString(_))
        ));
        assert_eq!(
            account_of_endpoint("http://127.0.0.1:10000/devstoreaccount1/"),
            Some("devstoreaccount1".into())
        );
        assert_eq!(
            account_of_endpoint("https://acct.blob.core.windows.net"),
            Some("acct".into())
        );
    }

    #[test]
    fn a_malformed_connection_string_never_repeats_its_text() {
        let key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw";
        for text in [
            format!("AccountName=acct;{key};BlobEndpoint=http://127.0.0.1:1/acct"),
            format!("AccountName=acct;{key}==;BlobEndpoint=http://127.0.0.1:1/acct"),
            format!("AccountName=acct;AccountKey{key}==;EndpointSuffix=core.windows.net"),
        ] {
            let error = resolve(&settings(&text)).err().unwrap().to_string();
            assert!(!error.contains(&key[..8]), "{error}");
            assert!(!error.contains("Eby8"), "{error}");
            assert!(error.contains("field 2 of 3"), "{error}");
        }
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let shown = format!(
            "{:?}",
            AzureSettings {
                key: Some("SECRETKEY".into()),
                connection_string: Some("AccountKey=SECRETKEY".into()),
                ..AzureSettings::default()
            }
        );
        assert!(!shown.contains("SECRETKEY"), "{shown}");
    }
}
