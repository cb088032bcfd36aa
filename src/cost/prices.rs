//! Published list prices, in US dollars, per service and storage class: what
//! the plan's cost estimate multiplies requests and bytes by. Taken from each
//! service's public price page in November 2026 for its first tier and its
//! reference region (AWS us-east-1, Azure East US LRS, GCS us-central1);
//! prices published in euros (Hetzner, Scaleway, OVHcloud) are converted at
//! 1 EUR = 1.08 USD. Contracts, regions and free tiers differ: every figure
//! can be overridden in config.toml (`[prices.SERVICE]`,
//! `[prices."SERVICE/CLASS"]`; docs/cost.md).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What one service charges, for one storage class.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PriceSheet {
    /// `AWS S3 STANDARD_IA`, as the estimate names it.
    pub label: String,
    /// PUT, POST, COPY, upload part and part copy, per 1,000 requests.
    pub put_per_1000: f64,
    /// GET and HEAD, per 1,000.
    pub get_per_1000: f64,
    /// LIST, per 1,000.
    pub list_per_1000: f64,
    /// DELETE, per 1,000 (free at most services).
    pub delete_per_1000: f64,
    /// Per GB read from this class (server-side copies included).
    pub retrieval_per_gb: f64,
    /// Per GB leaving the service to the internet.
    pub egress_per_gb: f64,
    /// Per GB stored for a month (shown for what a push adds).
    pub storage_per_gb_month: f64,
    /// Where the figures come from (built in, or config.toml).
    pub source: String,
}

/// `[prices.SERVICE]` or `[prices."SERVICE/CLASS"]` in config.toml: any of a
/// sheet's figures.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceOverride {
    pub put_per_1000: Option<f64>,
    pub get_per_1000: Option<f64>,
    pub list_per_1000: Option<f64>,
    pub delete_per_1000: Option<f64>,
    pub retrieval_per_gb: Option<f64>,
    pub egress_per_gb: Option<f64>,
    pub storage_per_gb_month: Option<f64>,
}

/// Every `[prices.…]` table of config.toml, by its name.
pub type PriceOverrides = BTreeMap<String, PriceOverride>;

/// `put, get, list, delete` per 1,000; `retrieval, egress, storage` per GB.
type Figures = (f64, f64, f64, f64, f64, f64, f64);

const AWS_EGRESS: f64 = 0.09;
const AWS: &[(&str, Figures)] = &[
    (
        "STANDARD",
        (0.005, 0.0004, 0.005, 0.0, 0.0, AWS_EGRESS, 0.023),
    ),
    (
        "INTELLIGENT_TIERING",
        (0.005, 0.0004, 0.005, 0.0, 0.0, AWS_EGRESS, 0.023),
    ),
    (
        "REDUCED_REDUNDANCY",
        (0.005, 0.0004, 0.005, 0.0, 0.0, AWS_EGRESS, 0.024),
    ),
    (
        "STANDARD_IA",
        (0.01, 0.001, 0.005, 0.0, 0.01, AWS_EGRESS, 0.0125),
    ),
    (
        "ONEZONE_IA",
        (0.01, 0.001, 0.005, 0.0, 0.01, AWS_EGRESS, 0.01),
    ),
    (
        "GLACIER_IR",
        (0.02, 0.01, 0.005, 0.0, 0.03, AWS_EGRESS, 0.004),
    ),
    (
        "GLACIER",
        (0.03, 0.0004, 0.005, 0.0, 0.01, AWS_EGRESS, 0.0036),
    ),
    (
        "DEEP_ARCHIVE",
        (0.05, 0.0004, 0.005, 0.0, 0.02, AWS_EGRESS, 0.00099),
    ),
];

const AZURE_EGRESS: f64 = 0.087;
const AZURE: &[(&str, Figures)] = &[
    (
        "Hot",
        (0.0065, 0.0005, 0.0065, 0.0, 0.0, AZURE_EGRESS, 0.0184),
    ),
    (
        "Cool",
        (0.013, 0.0013, 0.0065, 0.0, 0.01, AZURE_EGRESS, 0.01),
    ),
    (
        "Cold",
        (0.0234, 0.013, 0.0065, 0.0, 0.03, AZURE_EGRESS, 0.0036),
    ),
    (
        "Archive",
        (0.0143, 0.65, 0.0065, 0.0, 0.022, AZURE_EGRESS, 0.00099),
    ),
];

const GCS_EGRESS: f64 = 0.12;
const GCS: &[(&str, Figures)] = &[
    (
        "STANDARD",
        (0.005, 0.0004, 0.005, 0.0, 0.0, GCS_EGRESS, 0.02),
    ),
    ("NEARLINE", (0.01, 0.001, 0.01, 0.0, 0.01, GCS_EGRESS, 0.01)),
    (
        "COLDLINE",
        (0.01, 0.005, 0.01, 0.0, 0.02, GCS_EGRESS, 0.004),
    ),
    ("ARCHIVE", (0.05, 0.05, 0.05, 0.0, 0.05, GCS_EGRESS, 0.0012)),
];

/// S3-compatible services (`--provider`): one sheet each, whatever the class.
const S3_COMPATIBLE: &[(&str, &str, Figures)] = &[
    (
        "r2",
        "Cloudflare R2",
        (0.0045, 0.00036, 0.0045, 0.0, 0.0, 0.0, 0.015),
    ),
    (
        "b2",
        "Backblaze B2",
        (0.0, 0.0004, 0.004, 0.0, 0.0, 0.01, 0.006),
    ),
    ("wasabi", "Wasabi", (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0069)),
    (
        "minio",
        "MinIO (self-hosted)",
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    ),
    (
        "digitalocean",
        "DigitalOcean Spaces",
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.01, 0.02),
    ),
    (
        "hetzner",
        "Hetzner Object Storage",
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0011, 0.0065),
    ),
    (
        "scaleway",
        "Scaleway Object Storage",
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0108, 0.0158),
    ),
    (
        "linode",
        "Akamai (Linode) Object Storage",
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.005, 0.02),
    ),
    (
        "ovh",
        "OVHcloud Object Storage",
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0108, 0.0076),
    ),
    ("idrive", "IDrive e2", (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.004)),
];

/// A service whose prices the estimate uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Service {
    Aws,
    Azure,
    Gcs,
    /// An S3-compatible service by its `--provider` name.
    Provider(String),
    /// An S3 endpoint of unknown ownership: requests are counted, money only
    /// with a `[prices.s3-compatible]` table.
    S3Compatible,
}

impl Service {
    /// The service config.toml's `[prices.NAME]` calls `name`.
    pub fn named(name: &str) -> Service {
        match name {
            "aws" => Service::Aws,
            "azure" => Service::Azure,
            "gcs" => Service::Gcs,
            "s3-compatible" => Service::S3Compatible,
            other => Service::Provider(other.to_string()),
        }
    }

    /// What a plan calls the service.
    fn title(&self) -> &'static str {
        match self {
            Service::Aws => "AWS S3",
            Service::Azure => "Azure Blob",
            Service::Gcs => "Google Cloud Storage",
            Service::Provider(_) | Service::S3Compatible => "S3-compatible",
        }
    }

    /// The name config.toml's `[prices.NAME]` uses.
    pub fn name(&self) -> &str {
        match self {
            Service::Aws => "aws",
            Service::Azure => "azure",
            Service::Gcs => "gcs",
            Service::Provider(name) => name,
            Service::S3Compatible => "s3-compatible",
        }
    }

    /// The service's own table of classes, when it has one (each table's
    /// first row is the class a write lands in when none is asked for).
    fn table(&self) -> Option<&'static [(&'static str, Figures)]> {
        match self {
            Service::Aws => Some(AWS),
            Service::Azure => Some(AZURE),
            Service::Gcs => Some(GCS),
            Service::Provider(_) | Service::S3Compatible => None,
        }
    }

    /// The class a write lands in when none is asked for.
    fn default_class(&self) -> &'static str {
        self.table().map_or("STANDARD", |table| table[0].0)
    }
}

/// The sheet for `service` and `class` (its default when `None`): the built-in
/// figures with config.toml's overrides on top, service-wide first, then the
/// class's. `None` when neither the table nor config.toml knows the service.
pub fn sheet(
    service: &Service,
    class: Option<&str>,
    overrides: &PriceOverrides,
) -> Option<PriceSheet> {
    let class = class.unwrap_or(service.default_class());
    let built_in = match service {
        Service::Aws | Service::Azure | Service::Gcs => service
            .table()
            .and_then(|table| find_class(table, class))
            .map(|f| (service.title(), f)),
        Service::Provider(name) => S3_COMPATIBLE
            .iter()
            .find(|(known, _, _)| known == name)
            .map(|(_, title, figures)| (*title, *figures)),
        Service::S3Compatible => None,
    };
    let service_wide = overrides.get(service.name());
    let for_class = overrides.get(&format!("{}/{class}", service.name()));
    let (title, figures) = match built_in {
        Some(found) => found,
        None if service_wide.is_some() || for_class.is_some() => {
            (service.name(), (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0))
        }
        None => return None,
    };
    let (put, get, list, delete, retrieval, egress, storage) = figures;
    let mut sheet = PriceSheet {
        label: match service {
            Service::Provider(_) | Service::S3Compatible => title.to_string(),
            _ => format!("{title} {class}"),
        },
        put_per_1000: put,
        get_per_1000: get,
        list_per_1000: list,
        delete_per_1000: delete,
        retrieval_per_gb: retrieval,
        egress_per_gb: egress,
        storage_per_gb_month: storage,
        source: if built_in.is_some() {
            "list prices built in (November 2026)".into()
        } else {
            String::new()
        },
    };
    for (name, layer) in [
        (service.name().to_string(), service_wide),
        (format!("{}/{class}", service.name()), for_class),
    ] {
        if let Some(layer) = layer {
            sheet.apply(layer);
            let table = format!("config.toml's [prices.\"{name}\"]");
            sheet.source = if sheet.source.is_empty() {
                table
            } else {
                format!("{}, with {table}", sheet.source)
            };
        }
    }
    Some(sheet)
}

fn find_class(table: &[(&str, Figures)], class: &str) -> Option<Figures> {
    table
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(class))
        .map(|(_, figures)| *figures)
}

impl PriceSheet {
    fn apply(&mut self, layer: &PriceOverride) {
        let fields = [
            (&mut self.put_per_1000, layer.put_per_1000),
            (&mut self.get_per_1000, layer.get_per_1000),
            (&mut self.list_per_1000, layer.list_per_1000),
            (&mut self.delete_per_1000, layer.delete_per_1000),
            (&mut self.retrieval_per_gb, layer.retrieval_per_gb),
            (&mut self.egress_per_gb, layer.egress_per_gb),
            (&mut self.storage_per_gb_month, layer.storage_per_gb_month),
        ];
        for (field, value) in fields {
            if let Some(value) = value {
                *field = value;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_sheets_by_service_and_class() {
        let none = PriceOverrides::new();
        let standard = sheet(&Service::Aws, None, &none).unwrap();
        assert_eq!(standard.label, "AWS S3 STANDARD");
        assert_eq!(standard.put_per_1000, 0.005);
        let ia = sheet(&Service::Aws, Some("STANDARD_IA"), &none).unwrap();
        assert_eq!(ia.retrieval_per_gb, 0.01);
        let cool = sheet(&Service::Azure, Some("Cool"), &none).unwrap();
        assert_eq!(cool.label, "Azure Blob Cool");
        let r2 = sheet(&Service::Provider("r2".into()), Some("STANDARD"), &none).unwrap();
        assert_eq!(r2.egress_per_gb, 0.0);
        assert_eq!(sheet(&Service::S3Compatible, None, &none), None);
    }

    #[test]
    fn config_overrides_the_service_then_the_class() {
        let overrides: PriceOverrides = toml::from_str(
            r#"
            [aws]
            egress_per_gb = 0.0
            ["aws/STANDARD_IA"]
            put_per_1000 = 0.02
            ["s3-compatible"]
            put_per_1000 = 0.001
            "#,
        )
        .unwrap();
        let ia = sheet(&Service::Aws, Some("STANDARD_IA"), &overrides).unwrap();
        assert_eq!(ia.egress_per_gb, 0.0);
        assert_eq!(ia.put_per_1000, 0.02);
        assert_eq!(ia.get_per_1000, 0.001, "the rest stays built in");
        assert!(ia.source.contains("aws/STANDARD_IA"), "{}", ia.source);
        let other = sheet(&Service::S3Compatible, None, &overrides).unwrap();
        assert_eq!(other.put_per_1000, 0.001);
        assert_eq!(other.source, "config.toml's [prices.\"s3-compatible\"]");
    }
}
