//! S3 as a kind of store: its locations, its classes, its prices.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::S3Storage;
use crate::storage::kind::{
    ClassTable, PriceService, StoreKind, check_bucket_name, parse_bucket, same_prefix,
};
use crate::storage::{ClassAccess, SharedStore, StorageError, StoreSettings};
use crate::uri::{LocationError, RemoteLocation, TimeGrain};

pub static KIND: StoreKind = StoreKind {
    scheme: "s3",
    service: "S3",
    container: "bucket",
    parse,
    parse_host_path: None,
    key_prefix: same_prefix,
    absolute_paths: false,
    time_grain: TimeGrain::WrittenOnly,
    lists_modes: false,
    delta_block_size: None,
    list_page: 1000,
    list_requests: 64,
    classes: Some(&CLASSES),
    prices: PriceService::S3Compatible,
    open,
};

static CLASSES: ClassTable = ClassTable {
    word: "storage class",
    classes: &[
        ("STANDARD", ClassAccess::Immediate),
        ("INTELLIGENT_TIERING", ClassAccess::Immediate),
        ("STANDARD_IA", ClassAccess::RetrievalFee),
        ("ONEZONE_IA", ClassAccess::RetrievalFee),
        ("GLACIER_IR", ClassAccess::RetrievalFee),
        ("GLACIER", ClassAccess::RestoreFirst),
        ("DEEP_ARCHIVE", ClassAccess::RestoreFirst),
        ("REDUCED_REDUNDANCY", ClassAccess::Immediate),
    ],
};

fn parse(uri: &str, rest: &str) -> Result<(String, String), LocationError> {
    parse_bucket(uri, rest, &KIND, |name| {
        check_bucket_name(
            name,
            63,
            |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.',
            "only lowercase letters, digits, `-` and `.` are allowed",
        )
    })
}

fn open<'a>(
    location: &'a RemoteLocation,
    settings: &'a StoreSettings,
) -> BoxFuture<'a, Result<SharedStore, StorageError>> {
    Box::pin(async move {
        let mut store = S3Storage::connect(
            &settings.s3,
            &settings.retry,
            &location.bucket,
            &location.prefix,
        )
        .await;
        store.info.sidecars = settings.sidecars;
        Ok(Arc::new(store) as SharedStore)
    })
}
