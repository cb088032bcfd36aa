//! Building a client for a container: credentials, the HTTP client, the signer.

use super::*;

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
        let http = crate::storage::rest::HttpClient::new(retry, &format!("az://{container}"))?;
        let context = reqsign_core::Context::new()
            .with_file_read(reqsign_file_read_tokio::TokioFileRead)
            .with_http_send(reqsign_http_send_reqwest::ReqwestHttpSend::new(
                http.client.clone(),
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
        let prefix = crate::storage::folder_prefix(prefix);
        let list_page_size = settings
            .list_page_size
            .unwrap_or(PAGE_SIZE)
            .clamp(1, PAGE_SIZE);
        Ok(AzureStorage {
            http,
            signer: Arc::new(signer),
            info: StoreInfo {
                kind: &KIND,
                bucket: container.to_string(),
                prefix: prefix.clone(),
                id: StoreId {
                    endpoint: resolved.endpoint.clone(),
                    bucket: container.to_string(),
                },
                limits: match settings.body_checksum {
                    BodyChecksum::Crc64Nvme => &LIMITS,
                    BodyChecksum::Md5 => &LIMITS_MD5,
                },
                retry: retry.clone(),
                hints: &HINTS,
                page_size: list_page_size,
                list_split: crate::storage::object::ListSplit::Prefixes,
                requests: std::sync::Arc::default(),
                // Set from the settings when the store is opened.
                sidecars: Default::default(),
            },
            resolved,
            container: container.to_string(),
            prefix,
            list_page_size,
            access_tier: settings.storage_class.clone(),
            metadata_compat: settings.metadata_compat,
        })
    }
}
