//! What a plan will cost before anything runs: the requests each side's
//! store will be sent (by the kinds stores bill), the bytes that cross the
//! network, and what that comes to at each service's published prices
//! (`prices`). A pure function of the plan and its cost model, so the TUI
//! recomputes it after every edit.
//!
//! Request counts follow what the transfer code does: a file up to 32 MiB is
//! one PUT, a larger one its parts plus the two requests that open and close
//! a multipart upload; a download up to 32 MiB is one GET, a larger one a GET
//! per 16 MiB range. Deltas count the parts they send and the ranges they
//! copy server-side at the file's part size. Azure and GCS differ from S3 by
//! a request or two per large file (a block list has no "open"; a composite
//! upload composes and removes its parts).

pub mod prices;

use serde::{Deserialize, Serialize};

use crate::sync::SyncPlan;
use crate::sync::plan::{ItemFacts, PlanItem};
use crate::types::{EntryKind, SyncAction};

pub use prices::{PriceOverride, PriceOverrides, PriceSheet, Service};

const GB: f64 = 1_000_000_000.0;

/// One side as the estimate sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SideModel {
    /// How requests are made (`None`: a local disk, which bills nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreModel>,
    pub billing: Billing,
}

/// Who charges for the side's requests and bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Billing {
    /// A local disk or an SSH server: requests cost nothing.
    Free,
    Priced(PriceSheet),
    /// An S3-compatible endpoint of unknown prices: requests are counted,
    /// money needs `[prices."s3-compatible"]` or `--provider`.
    Unknown {
        service: String,
    },
}

/// The limits of a store that decide how many requests a transfer takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreModel {
    pub min_part: u64,
    pub max_parts: u64,
    pub delete_batch: u64,
    /// Largest object one copy request makes (larger: a multipart copy).
    pub max_single_copy: u64,
    /// Keys per listing page.
    pub list_page: u64,
    /// Whether the store keeps a sidecar next to each file at or past the
    /// delta threshold (every object store and SSH server does).
    pub sidecars: bool,
}

/// The inputs of an estimate, fixed when the plan is made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostModel {
    pub source: SideModel,
    pub destination: SideModel,
    /// Both sides on one service: object-to-object copies are server-side.
    pub same_service: bool,
    /// Entries the scan listed on each side (the listing requests a run makes).
    pub listed: (u64, u64),
}

/// Requests by the kinds stores bill.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requests {
    /// PUT, POST and upload parts.
    pub put: u64,
    /// Server-side copies: whole objects and part copies.
    pub copy: u64,
    /// GET and HEAD.
    pub get: u64,
    pub list: u64,
    pub delete: u64,
}

impl Requests {
    pub fn add(&mut self, other: Requests) {
        self.put += other.put;
        self.copy += other.copy;
        self.get += other.get;
        self.list += other.list;
        self.delete += other.delete;
    }

    pub fn total(&self) -> u64 {
        self.put + self.copy + self.get + self.list + self.delete
    }
}

/// What one side is asked to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideUse {
    pub requests: Requests,
    /// Bytes read out of the side's store to this machine (egress, where
    /// charged).
    pub bytes_out: u64,
    /// Bytes read from the objects' storage class (downloads and server-side
    /// copies alike), charged where the class has a retrieval fee.
    pub bytes_retrieved: u64,
    /// Bytes the side will hold afterwards beyond what it holds now.
    pub bytes_stored_added: i64,
}

/// Money, in US dollars.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Money {
    pub requests: f64,
    pub egress: f64,
    pub retrieval: f64,
    pub total: f64,
    /// What the destination's added bytes cost to store for a month.
    pub storage_per_month: f64,
}

/// The estimate a plan carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostEstimate {
    pub source: SideUse,
    pub destination: SideUse,
    /// Both sides together.
    pub requests: Requests,
    /// Bytes this machine sends to a store, and receives from one.
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// `None` when a side that is billed has no known prices.
    pub money: Option<Money>,
    /// Bytes delta transfers leave unsent.
    pub delta_saved_bytes: u64,
    /// What those would have cost (egress of a delta download), less what
    /// reusing them costs (retrieval of the ranges a delta upload copies):
    /// negative when a delta saves time but not money.
    pub delta_saved_money: Option<f64>,
    /// The price sheets used, as the estimate names them.
    pub prices: Vec<String>,
}

/// The estimate of `plan`, or `None` for a plan made without a cost model.
pub fn estimate(plan: &SyncPlan) -> Option<CostEstimate> {
    let model = billed_model(plan)?;
    Some(estimate_of(
        plan,
        model,
        plan.items.iter().map(PlanItem::facts),
        true,
    ))
}

/// The plan's cost model, where a side is billed: between local disks
/// nothing is, and nothing is worth saying.
fn billed_model(plan: &SyncPlan) -> Option<&CostModel> {
    plan.cost_model
        .as_ref()
        .filter(|m| m.source.store.is_some() || m.destination.store.is_some())
}

/// What the requests made so far cost, with the bytes read out of the
/// source (egress), at the prices the plan's estimate used; `None` for a
/// plan without a cost model or a billed side of unknown prices.
pub fn spent(
    plan: &SyncPlan,
    source: Requests,
    destination: Requests,
    bytes_out_of_source: u64,
) -> Option<Money> {
    let model = billed_model(plan)?;
    let source = SideUse {
        requests: source,
        bytes_out: bytes_out_of_source,
        ..SideUse::default()
    };
    let destination = SideUse {
        requests: destination,
        ..SideUse::default()
    };
    let a = money_of(&source, &model.source.billing, false)?;
    let b = money_of(&destination, &model.destination.billing, false)?;
    Some(Money {
        requests: a.requests + b.requests,
        egress: a.egress + b.egress,
        retrieval: a.retrieval + b.retrieval,
        total: a.total + b.total,
        storage_per_month: 0.0,
    })
}

/// The estimate of one item alone (the TUI's details), listings left out.
pub fn item_estimate(plan: &SyncPlan, item: &ItemFacts) -> Option<CostEstimate> {
    let model = plan.cost_model.as_ref()?;
    let mut estimate = estimate_of(plan, model, std::iter::once(*item), false);
    estimate.delta_saved_bytes = item.bytes_saved;
    Some(estimate)
}

/// The estimate of the plan whose items are `items` (the review's, as
/// edited).
pub fn estimate_of_facts<'a>(
    plan: &SyncPlan,
    items: impl Iterator<Item = &'a ItemFacts>,
) -> Option<CostEstimate> {
    let model = billed_model(plan)?;
    Some(estimate_of(plan, model, items.copied(), true))
}

/// What a plan's items ask of each side, summed item by item: a plan in
/// parts is priced part by part, never held whole.
#[derive(Clone, Debug, Default)]
pub struct Usage {
    source: SideUse,
    destination: SideUse,
    up: u64,
    down: u64,
    delta_egress_saved: u64,
    delta_copied: u64,
    deletes: u64,
}

impl Usage {
    /// Adds what `item` of `plan` asks.
    pub fn add(&mut self, plan: &SyncPlan, model: &CostModel, item: &ItemFacts) {
        let size = item.size;
        let is_file = item.kind == EntryKind::File;
        let old_size = item.dst.map_or(0, |(_, size)| size) as i64;
        let replaces_or_deletes = (item.action.transfers() || item.action == SyncAction::Delete)
            && item.dst.is_some_and(|(kind, _)| kind != EntryKind::Dir);
        if plan.options.backup.is_some() && replaces_or_deletes && model.destination.store.is_some()
        {
            // A server-side copy of the old version (a link on disks).
            self.destination.requests.copy += 1;
            self.destination.bytes_retrieved += old_size as u64;
            self.destination.bytes_stored_added += old_size;
        }
        match item.action {
            SyncAction::Skip => {}
            SyncAction::Delete => {
                // Directories take no request of their own: a store's are
                // implied by its keys.
                if item.kind != EntryKind::Dir {
                    self.deletes += 1;
                }
                self.destination.bytes_stored_added -= if plan.options.backup.is_some() {
                    0
                } else {
                    old_size
                };
            }
            SyncAction::Metadata => {
                if model.destination.store.is_some() {
                    // An object's metadata is rewritten server-side.
                    self.destination.requests.copy += 1;
                }
            }
            SyncAction::Upload | SyncAction::Download | SyncAction::Copy => {
                let sent = item.bytes_to_send;
                match (&model.source.store, &model.destination.store) {
                    (None, None) => {}
                    (None, Some(dst)) => {
                        self.destination.requests.put +=
                            crate::sending::put_requests(sent, dst.max_parts, dst.min_part);
                        if is_file && dst.sidecars && size >= plan.options.delta_threshold {
                            self.destination.requests.put += 1;
                        }
                        self.up += sent;
                    }
                    (Some(_), None) => {
                        self.source.requests.get += crate::sending::get_requests(sent);
                        self.source.bytes_out += sent;
                        self.source.bytes_retrieved += sent;
                        self.down += sent;
                    }
                    (Some(_), Some(dst)) if model.same_service => {
                        self.destination.requests.copy += copy_requests(size, dst);
                        self.source.bytes_retrieved += size;
                    }
                    (Some(_), Some(dst)) => {
                        // Through this machine: read there, written here.
                        self.source.requests.get += crate::sending::get_requests(sent);
                        self.source.bytes_out += sent;
                        self.source.bytes_retrieved += sent;
                        self.destination.requests.put +=
                            crate::sending::put_requests(sent, dst.max_parts, dst.min_part);
                        self.down += sent;
                        self.up += sent;
                    }
                }
                self.destination.bytes_stored_added += size as i64 - old_size;
            }
            SyncAction::Delta => {
                let (sent, saved) = (item.bytes_to_send, item.bytes_saved);
                match (
                    plan.source.is_local(),
                    plan.destination.is_local(),
                    &model.destination.store,
                ) {
                    // A delta upload: the new bytes as parts, the rest
                    // copied from the old object, then the sidecar.
                    (true, false, Some(dst)) => {
                        let part =
                            crate::sending::part_size_within(size, dst.max_parts, dst.min_part);
                        self.destination.requests.put += sent.div_ceil(part).max(1) + 2 + 1;
                        self.destination.requests.copy += saved.div_ceil(part);
                        self.destination.bytes_retrieved += saved;
                        self.delta_copied += saved;
                        self.up += sent;
                    }
                    // A delta download: the missing ranges only, the
                    // sidecar, and the HEAD whose checksum the rebuilt file
                    // is checked against (priced as a GET).
                    (false, true, _) => {
                        self.source.requests.get += sent.div_ceil(part_of(&model.source)) + 2;
                        self.source.bytes_out += sent;
                        self.source.bytes_retrieved += sent;
                        self.delta_egress_saved += saved;
                        self.down += sent;
                    }
                    _ => {}
                }
                self.destination.bytes_stored_added += size as i64 - old_size;
            }
        }
    }
}

/// The estimate of `plan` from the usage of its items, or `None` for a plan
/// made without a cost model.
pub fn estimate_of_usage(plan: &SyncPlan, usage: Usage) -> Option<CostEstimate> {
    let model = billed_model(plan)?;
    Some(finish(plan, model, usage, true))
}

fn estimate_of(
    plan: &SyncPlan,
    model: &CostModel,
    items: impl Iterator<Item = ItemFacts>,
    with_listings: bool,
) -> CostEstimate {
    let mut usage = Usage::default();
    for item in items {
        usage.add(plan, model, &item);
    }
    finish(plan, model, usage, with_listings)
}

fn finish(plan: &SyncPlan, model: &CostModel, usage: Usage, with_listings: bool) -> CostEstimate {
    let Usage {
        mut source,
        mut destination,
        up,
        down,
        delta_egress_saved,
        delta_copied,
        deletes,
    } = usage;
    if let Some(store) = &model.destination.store {
        destination.requests.delete += deletes.div_ceil(store.delete_batch.max(1));
    }
    for (side, store, listed) in [
        (&mut source, &model.source.store, model.listed.0),
        (&mut destination, &model.destination.store, model.listed.1),
    ] {
        if let Some(store) = store.as_ref().filter(|_| with_listings) {
            side.requests.list += listed.div_ceil(store.list_page.max(1)).max(1);
        }
    }
    let mut requests = source.requests;
    requests.add(destination.requests);
    let money = match (
        money_of(&source, &model.source.billing, false),
        money_of(&destination, &model.destination.billing, true),
    ) {
        (Some(a), Some(b)) => Some(Money {
            requests: a.requests + b.requests,
            egress: a.egress + b.egress,
            retrieval: a.retrieval + b.retrieval,
            total: a.total + b.total,
            storage_per_month: b.storage_per_month,
        }),
        _ => None,
    };
    let delta_saved_money = match (
        sheet_of(&model.source.billing),
        sheet_of(&model.destination.billing),
    ) {
        (Some(src), Some(dst)) => Some(
            delta_egress_saved as f64 / GB * src.egress_per_gb
                - delta_copied as f64 / GB * dst.retrieval_per_gb,
        ),
        _ => None,
    };
    let prices = [&model.source.billing, &model.destination.billing]
        .into_iter()
        .filter_map(|billing| match billing {
            Billing::Priced(sheet) => Some(sheet.label.clone()),
            _ => None,
        })
        .fold(Vec::new(), |mut names, name| {
            if !names.contains(&name) {
                names.push(name);
            }
            names
        });
    CostEstimate {
        source,
        destination,
        requests,
        bytes_up: up,
        bytes_down: down,
        money,
        delta_saved_bytes: plan.stats.bytes_saved,
        delta_saved_money,
        prices,
    }
}

/// The sheet a side is billed by: free sides bill nothing (all zeros).
fn sheet_of(billing: &Billing) -> Option<PriceSheet> {
    match billing {
        Billing::Free => Some(PriceSheet::default()),
        Billing::Priced(sheet) => Some(sheet.clone()),
        Billing::Unknown { .. } => None,
    }
}

fn money_of(side: &SideUse, billing: &Billing, is_destination: bool) -> Option<Money> {
    let sheet = sheet_of(billing)?;
    let r = side.requests;
    let requests = (r.put + r.copy) as f64 / 1000.0 * sheet.put_per_1000
        + r.get as f64 / 1000.0 * sheet.get_per_1000
        + r.list as f64 / 1000.0 * sheet.list_per_1000
        + r.delete as f64 / 1000.0 * sheet.delete_per_1000;
    let egress = side.bytes_out as f64 / GB * sheet.egress_per_gb;
    let retrieval = side.bytes_retrieved as f64 / GB * sheet.retrieval_per_gb;
    Some(Money {
        requests,
        egress,
        retrieval,
        total: requests + egress + retrieval,
        storage_per_month: if is_destination {
            side.bytes_stored_added.max(0) as f64 / GB * sheet.storage_per_gb_month
        } else {
            0.0
        },
    })
}

fn part_of(side: &SideModel) -> u64 {
    side.store
        .as_ref()
        .map_or(16 * 1024 * 1024, |store| store.min_part.max(1))
}

/// Requests to copy an object of `size` server-side: one copy, or a
/// multipart copy of `storage::objects::COPY_PART` parts.
fn copy_requests(size: u64, store: &StoreModel) -> u64 {
    if size <= store.max_single_copy {
        1
    } else {
        size.div_ceil(crate::storage::objects::COPY_PART) + 2
    }
}

/// How a location is billed: the service its prices come from (`provider`:
/// `--provider`; `endpoint_set`: an S3 endpoint of unknown ownership), at
/// `class` (`None`: the service's default).
pub fn billing_for(
    location: &crate::uri::Location,
    provider: Option<&str>,
    endpoint_set: bool,
    class: Option<&str>,
    overrides: &PriceOverrides,
) -> Billing {
    use crate::storage::kind::PriceService;
    let Some(remote) = location.remote() else {
        return Billing::Free;
    };
    let service = match remote.kind.prices {
        PriceService::Free => return Billing::Free,
        PriceService::Named(name) => Service::named(name),
        PriceService::S3Compatible => match provider {
            Some("aws") => Service::Aws,
            Some(name) => Service::Provider(name.to_string()),
            None if endpoint_set => Service::S3Compatible,
            None => Service::Aws,
        },
    };
    match prices::sheet(&service, class, overrides) {
        Some(sheet) => Billing::Priced(sheet),
        None => Billing::Unknown {
            service: service.name().to_string(),
        },
    }
}

impl StoreModel {
    /// The model of a store with these limits, listing `list_page` keys a
    /// request.
    pub fn of(limits: &crate::storage::StoreLimits, list_page: u64) -> StoreModel {
        StoreModel {
            min_part: limits.min_part,
            max_parts: limits.max_parts as u64,
            delete_batch: limits.delete_batch as u64,
            max_single_copy: limits.max_single_copy,
            list_page,
            sidecars: true,
        }
    }
}

/// Keys a listing request returns on a location's store.
pub fn list_page_of(location: &crate::uri::Location) -> u64 {
    location
        .remote()
        .map_or(1000, |remote| remote.kind.list_page)
}

impl CostEstimate {
    /// One line: the money (where known), then the requests by kind.
    pub fn short(&self) -> String {
        let r = &self.requests;
        let kinds = [
            (r.put, "PUT"),
            (r.copy, "COPY"),
            (r.get, "GET"),
            (r.list, "LIST"),
            (r.delete, "DELETE"),
        ];
        let requests: Vec<String> = kinds
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, kind)| format!("{} {kind}", crate::format::count(*n)))
            .collect();
        let requests = if requests.is_empty() {
            "no requests".to_string()
        } else {
            requests.join(" ")
        };
        match &self.money {
            Some(money) => format!("≈ {} ({requests})", dollars(money.total)),
            None => requests,
        }
    }

    /// The estimate in a few lines (the plan text, the TUI's details).
    pub fn lines(&self, model: &CostModel) -> Vec<String> {
        use crate::format::{bytes, count};
        let r = &self.requests;
        let mut lines = Vec::new();
        match &self.money {
            Some(money) => lines.push(format!(
                "cost: ≈ {} at {} prices (requests {}, egress {}, retrieval {})",
                dollars(money.total),
                if self.prices.is_empty() {
                    "no charged".to_string()
                } else {
                    self.prices.join(" and ")
                },
                dollars(money.requests),
                dollars(money.egress),
                dollars(money.retrieval),
            )),
            None => {
                let unknown = [&model.source.billing, &model.destination.billing]
                    .into_iter()
                    .find_map(|b| match b {
                        Billing::Unknown { service } => Some(service.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                lines.push(format!(
                    "cost: no prices for this S3-compatible endpoint: name its service with --provider, or give [prices.\"{unknown}\"] in config.toml"
                ));
            }
        }
        lines.push(format!(
            "  requests: {} PUT/part, {} COPY/part-copy, {} GET, {} LIST, {} DELETE",
            count(r.put),
            count(r.copy),
            count(r.get),
            count(r.list),
            count(r.delete)
        ));
        lines.push(format!(
            "  bytes: {} up, {} down",
            bytes(self.bytes_up),
            bytes(self.bytes_down)
        ));
        if self.delta_saved_bytes > 0 {
            lines.push(match self.delta_saved_money {
                Some(saved) if saved < -0.000_05 => format!(
                    "  delta saves {} of transfer, and costs {} more: the ranges it reuses pay retrieval, while sending is free",
                    bytes(self.delta_saved_bytes),
                    dollars(-saved)
                ),
                Some(saved) if saved > 0.000_05 => format!(
                    "  delta saves {} of transfer, {} of egress",
                    bytes(self.delta_saved_bytes),
                    dollars(saved)
                ),
                Some(_) => format!(
                    "  delta saves {} of transfer, and no money: sending to a store is free, the saving is time",
                    bytes(self.delta_saved_bytes)
                ),
                None => format!("  delta saves {} of transfer", bytes(self.delta_saved_bytes)),
            });
        }
        if let Some(money) = &self.money
            && self.destination.bytes_stored_added > 0
            && money.storage_per_month > 0.0
        {
            lines.push(format!(
                "  the destination holds {} more: {} a month",
                bytes(self.destination.bytes_stored_added as u64),
                dollars(money.storage_per_month)
            ));
        }
        lines
    }
}

/// `$0.0123`: four decimals under a dollar, two above, `<$0.0001` for less
/// than that but something; a minus sign for money lost.
pub fn dollars(amount: f64) -> String {
    let sign = if amount < 0.0 { "−" } else { "" };
    let amount = amount.abs();
    if amount == 0.0 {
        "$0".to_string()
    } else if amount < 0.000_05 {
        format!("{sign}<$0.0001")
    } else if amount >= 1.0 {
        format!("{sign}${amount:.2}")
    } else {
        format!("{sign}${amount:.4}")
    }
}

#[cfg(test)]
mod tests;
