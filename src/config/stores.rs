//! The stores' settings, built from the effective settings: configuration
//! builds stores' settings, stores never read it (object_store's builders
//! the same way).

use std::path::PathBuf;

use super::Settings;
use crate::storage::body::BodyChecksum;
use crate::storage::meta::MetadataCompat;
use crate::storage::{AzureSettings, GcsSettings, S3Settings, SftpSettings, StoreSettings};

impl Settings {
    /// Each store's settings. One retry policy serves both sides of a run
    /// (and so counts their retries together).
    pub fn store_settings(&self) -> StoreSettings {
        StoreSettings {
            s3: s3(self),
            azure: azure(self),
            gcs: gcs(self),
            sftp: sftp(self),
            retry: self.retry_policy(),
            sidecars: self.sidecars.value,
        }
    }
}

fn s3(settings: &Settings) -> S3Settings {
    let mut s3 = S3Settings {
        profile: settings.profile.value.clone(),
        region: settings.region.value.clone(),
        endpoint_url: settings.endpoint_url.value.clone(),
        path_style: settings.path_style.value,
        list_page_size: None,
        storage_class: None,
        body_checksum: BodyChecksum::default(),
        metadata_compat: metadata_compat(settings),
    };
    let provider = settings
        .provider
        .value
        .as_deref()
        .and_then(|name| crate::storage::s3::providers::find(name).ok());
    s3.body_checksum = match settings.upload_checksum.value.as_deref() {
        Some(name) => BodyChecksum::parse(name).unwrap_or_default(),
        None => provider.map_or(BodyChecksum::default(), |p| p.upload_checksum),
    };
    // Checked when the settings were resolved: a provider that cannot
    // be applied never gets this far.
    if let Some(Ok(resolved)) = settings
        .provider
        .value
        .as_deref()
        .map(|name| settings.provider_resolved(name))
    {
        s3.endpoint_url = resolved.endpoint_url;
        s3.region = resolved.region;
        s3.path_style = resolved.path_style;
    }
    s3
}

fn azure(settings: &Settings) -> AzureSettings {
    let secret = |value: &Option<super::Secret>| value.as_ref().map(|s| s.expose().to_string());
    AzureSettings {
        account: settings.azure_account.value.clone(),
        key: secret(&settings.azure_key.value),
        sas_token: secret(&settings.azure_sas_token.value),
        connection_string: secret(&settings.azure_connection_string.value),
        // A store-specific endpoint wins; else the one --endpoint-url gives
        // every object store of the run, unless a connection string names
        // its own (so s3:// and az:// sides can each have theirs).
        endpoint_url: settings.azure_endpoint_url.value.clone().or_else(|| {
            settings
                .azure_connection_string
                .value
                .is_none()
                .then(|| settings.endpoint_url.value.clone())
                .flatten()
        }),
        list_page_size: None,
        storage_class: None,
        // Providers are S3's: Azure and its emulator (azurite from 3.37) both
        // check CRC64.
        body_checksum: settings
            .upload_checksum
            .value
            .as_deref()
            .and_then(BodyChecksum::parse)
            .unwrap_or_default(),
        metadata_compat: metadata_compat(settings),
    }
}

/// `--metadata-compat`: checked when the settings were read.
fn metadata_compat(settings: &Settings) -> Option<MetadataCompat> {
    settings
        .metadata_compat
        .value
        .as_deref()
        .and_then(MetadataCompat::parse)
}

fn gcs(settings: &Settings) -> GcsSettings {
    GcsSettings {
        endpoint_url: settings.endpoint_url.value.clone(),
        list_page_size: None,
        chunked_objects: settings.gcs_chunked_objects.value,
        composite_uploads: settings.gcs_composite_uploads.value && settings.jobs.value > 1,
        storage_class: None,
        metadata_compat: metadata_compat(settings),
    }
}

fn sftp(settings: &Settings) -> SftpSettings {
    SftpSettings {
        config_file: settings.ssh_config.value.clone().map(PathBuf::from),
        accept_new: settings.ssh_accept_new.value,
        program: std::env::var_os("HUGESYNC_SSH").map(PathBuf::from),
        fsync: settings.fsync.value,
    }
}
