//! SSH servers as a kind of store: their locations (`sftp://` and rsync's
//! `HOST:PATH`), whole-second times, file modes, no request prices.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::SftpStorage;
use super::target::{self, SftpTarget};
use crate::storage::kind::{PriceService, StoreKind};
use crate::storage::{RemoteErrorKind, SharedStore, StorageError, StoreSettings};
use crate::uri::{RemoteLocation, TimeGrain};

pub static KIND: StoreKind = StoreKind {
    scheme: "sftp",
    service: "an SSH server",
    container: "server",
    parse: target::parse_url,
    parse_host_path: Some(target::parse_host_path),
    key_prefix: target::path_of_prefix,
    absolute_paths: true,
    // SFTP v3 carries whole seconds.
    time_grain: TimeGrain::Seconds,
    lists_modes: true,
    // An SSH server copies ranges of any length, and a sidecar there is
    // updated by copying its unchanged records, so the smallest block costs
    // only its first upload's sidecar (0.05% of the file) and keeps an
    // edit's cost near the bytes edited.
    delta_block_size: Some(crate::signature::MIN_BLOCK_SIZE),
    list_page: 1000,
    list_requests: 1,
    classes: None,
    prices: PriceService::Free,
    open,
};

fn open<'a>(
    location: &'a RemoteLocation,
    settings: &'a StoreSettings,
) -> BoxFuture<'a, Result<SharedStore, StorageError>> {
    Box::pin(async move {
        let target = SftpTarget::of(location).map_err(|e| StorageError::Remote {
            op: "cannot reach",
            hints: &super::HINTS,
            kind: RemoteErrorKind::Rejected,
            target: location.to_string(),
            message: e.to_string(),
        })?;
        let mut store = SftpStorage::connect(&settings.sftp, &settings.retry, &target).await?;
        store.info.sidecars = settings.sidecars;
        Ok(Arc::new(store) as SharedStore)
    })
}
