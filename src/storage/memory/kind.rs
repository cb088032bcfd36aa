//! The in-memory store as a kind of store: `mem://NAME/prefix`, no prices.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::{MemoryOptions, MemoryStore};
use crate::storage::kind::{PriceService, StoreKind, parse_bucket, same_prefix};
use crate::storage::{SharedStore, StorageError, StoreSettings};
use crate::uri::{LocationError, RemoteLocation, TimeGrain};

pub static KIND: StoreKind = StoreKind {
    scheme: "mem",
    service: "this process's memory",
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
    classes: None,
    prices: PriceService::Free,
    open,
};

fn parse(uri: &str, rest: &str) -> Result<(String, String), LocationError> {
    parse_bucket(uri, rest, &KIND, |name| {
        if name.chars().any(|c| c.is_control()) {
            return Err("control characters are not allowed");
        }
        Ok(())
    })
}

fn open<'a>(
    location: &'a RemoteLocation,
    settings: &'a StoreSettings,
) -> BoxFuture<'a, Result<SharedStore, StorageError>> {
    Box::pin(async move {
        let mut store = MemoryStore::new(
            &location.bucket,
            &location.prefix,
            MemoryOptions::default(),
            &settings.retry,
        );
        store.info.sidecars = settings.sidecars;
        Ok(Arc::new(store) as SharedStore)
    })
}
