//! Azure Blob Storage as a kind of store: its locations, its tiers, its
//! prices.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::AzureStorage;
use crate::storage::kind::{
    ClassTable, PriceService, StoreKind, check_bucket_name, parse_bucket, same_prefix,
};
use crate::storage::{ClassAccess, SharedStore, StorageError, StoreSettings};
use crate::uri::{LocationError, RemoteLocation, TimeGrain};

pub static KIND: StoreKind = StoreKind {
    scheme: "az",
    service: "Azure Blob Storage",
    container: "container",
    parse,
    parse_host_path: None,
    key_prefix: same_prefix,
    absolute_paths: false,
    time_grain: TimeGrain::WrittenOnly,
    lists_modes: false,
    delta_block_size: None,
    list_page: 5000,
    list_requests: 32,
    classes: Some(&TIERS),
    prices: PriceService::Named("azure"),
    open,
};

static TIERS: ClassTable = ClassTable {
    word: "access tier",
    classes: &[
        ("Hot", ClassAccess::Immediate),
        ("Cool", ClassAccess::RetrievalFee),
        ("Cold", ClassAccess::RetrievalFee),
        ("Archive", ClassAccess::RestoreFirst),
    ],
};

fn parse(uri: &str, rest: &str) -> Result<(String, String), LocationError> {
    parse_bucket(uri, rest, &KIND, |name| {
        check_bucket_name(
            name,
            63,
            |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
            "only lowercase letters, digits and `-` are allowed",
        )?;
        if name.contains("--") {
            return Err("consecutive `.` or `-` are not allowed");
        }
        Ok(())
    })
}

fn open<'a>(
    location: &'a RemoteLocation,
    settings: &'a StoreSettings,
) -> BoxFuture<'a, Result<SharedStore, StorageError>> {
    Box::pin(async move {
        let mut store = AzureStorage::connect(
            &settings.azure,
            &settings.retry,
            &location.bucket,
            &location.prefix,
        )?;
        store.info.sidecars = settings.sidecars;
        Ok(Arc::new(store) as SharedStore)
    })
}
