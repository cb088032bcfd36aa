//! Estimating what delta transfers will send, before anything is sent: the
//! destination's signature against the source's bytes. Local → local only for now;
//! object stores will read the remote `.hssig` sidecar instead.

use crate::delta::compute_delta;
use crate::signature::signature_of_file;
use crate::storage::Storage;
use crate::storage::local::map_readonly;
use crate::types::SyncAction;

use super::plan::{PlanItem, SyncPlan};

/// Fills in `bytes_to_send` and `bytes_saved` of every delta item. An item that
/// cannot be estimated (unreadable file) keeps the whole-file estimate; execution
/// reports its error.
pub async fn estimate_deltas(plan: &mut SyncPlan, source: &Storage, destination: &Storage) {
    let (Storage::Local(src), Storage::Local(dst)) = (source.clone(), destination.clone()) else {
        return; // object stores: estimated from their sidecars (delta upload)
    };
    let block_size = plan.options.block_size as u32;
    let mut items: Vec<(usize, PlanItem)> = plan
        .items
        .iter()
        .enumerate()
        .filter(|(_, item)| item.action == SyncAction::Delta)
        .map(|(i, item)| (i, item.clone()))
        .collect();
    if items.is_empty() {
        return;
    }
    let estimated = tokio::task::spawn_blocking(move || {
        for (_, item) in &mut items {
            let estimate = (|| -> std::io::Result<(u64, u64)> {
                let sig = signature_of_file(&dst.path_of(&item.path), block_size)?;
                let file = std::fs::File::open(src.path_of(&item.path))?;
                let new = map_readonly(&file)?;
                let delta = compute_delta(&new, &sig);
                Ok((delta.bytes_new(), delta.bytes_reused()))
            })();
            match estimate {
                Ok((send, saved)) => {
                    item.bytes_to_send = send;
                    item.bytes_saved = saved;
                }
                Err(e) => tracing::warn!("{}: cannot estimate the delta: {e}", item.path),
            }
        }
        items
    })
    .await;
    if let Ok(items) = estimated {
        for (i, item) in items {
            plan.items[i] = item;
        }
        plan.refresh_stats();
    }
}
