//! Google Cloud Storage as a kind of store: its locations, its classes, its
//! prices.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::GcsStorage;
use crate::storage::kind::{
    ClassTable, PriceService, StoreKind, check_bucket_name, parse_bucket, same_prefix,
};
use crate::storage::{ClassAccess, SharedStore, StorageError, StoreSettings};
use crate::uri::{LocationError, RemoteLocation, TimeGrain};

pub static KIND: StoreKind = StoreKind {
    scheme: "gs",
    service: "Google Cloud Storage",
    container: "bucket",
    parse,
    parse_host_path: None,
    key_prefix: same_prefix,
    absolute_paths: false,
    time_grain: TimeGrain::WrittenOnly,
    lists_modes: false,
    delta_block_size: None,
    list_page: 1000,
    list_requests: 32,
    classes: Some(&CLASSES),
    prices: PriceService::Named("gcs"),
    open,
};

// GCS's Archive class is online (reads take milliseconds), but charged per
// byte read, with a year's minimum storage.
static CLASSES: ClassTable = ClassTable {
    word: "storage class",
    classes: &[
        ("STANDARD", ClassAccess::Immediate),
        ("NEARLINE", ClassAccess::RetrievalFee),
        ("COLDLINE", ClassAccess::RetrievalFee),
        ("ARCHIVE", ClassAccess::RetrievalFee),
    ],
};

fn parse(uri: &str, rest: &str) -> Result<(String, String), LocationError> {
    parse_bucket(uri, rest, &KIND, |name| {
        // Names with dots (domain names) may be longer.
        let max = if name.contains('.') { 222 } else { 63 };
        check_bucket_name(
            name,
            max,
            |c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'),
            "only lowercase letters, digits, `-`, `_` and `.` are allowed",
        )
    })
}

fn open<'a>(
    location: &'a RemoteLocation,
    settings: &'a StoreSettings,
) -> BoxFuture<'a, Result<SharedStore, StorageError>> {
    Box::pin(async move {
        let mut store = GcsStorage::connect(
            &settings.gcs,
            &settings.retry,
            &location.bucket,
            &location.prefix,
        )?;
        store.info.sidecars = settings.sidecars;
        Ok(Arc::new(store) as SharedStore)
    })
}
