//! S3-compatible services by name (`--provider`): each one's endpoint, region
//! rule and addressing style, so nobody has to look them up. A provider only
//! fills in what the user left unset: an explicit `--endpoint-url`,
//! `--region` or `--path-style` wins.

use crate::storage::body::BodyChecksum;

/// Where a provider's endpoint comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// The SDK's own (AWS).
    Sdk,
    /// A URL template: `{region}` and `{account}` are filled in.
    Template(&'static str),
    /// Each deployment has its own: `--endpoint-url` is required.
    Given,
}

/// What a provider needs of the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionRule {
    /// The SDK's chain (profile, AWS_REGION), else us-east-1.
    Sdk,
    /// This one unless `--region` says otherwise.
    Default(&'static str),
    /// Required: the service has no default. `examples` lists a few.
    Required { examples: &'static str },
}

/// One S3-compatible service.
#[derive(Clone, Copy, Debug)]
pub struct Provider {
    /// What `--provider` takes.
    pub name: &'static str,
    pub title: &'static str,
    pub endpoint: Endpoint,
    pub region: RegionRule,
    /// Whether its account id goes into the endpoint (`--provider-account`).
    pub needs_account: bool,
    /// Path-style addressing unless the user asks otherwise.
    pub path_style: bool,
    /// The checksum uploads carry unless the user asks otherwise: CRC64NVME
    /// where the service is known to check it, else Content-MD5.
    pub upload_checksum: BodyChecksum,
}

/// The services HugeSync knows by name.
pub const PROVIDERS: &[Provider] = &[
    Provider {
        name: "aws",
        title: "Amazon S3",
        endpoint: Endpoint::Sdk,
        region: RegionRule::Sdk,
        needs_account: false,
        path_style: false,
        upload_checksum: BodyChecksum::Crc64Nvme,
    },
    Provider {
        name: "r2",
        title: "Cloudflare R2",
        endpoint: Endpoint::Template("https://{account}.r2.cloudflarestorage.com"),
        region: RegionRule::Default("auto"),
        needs_account: true,
        path_style: false,
        upload_checksum: BodyChecksum::Md5,
    },
    Provider {
        name: "b2",
        title: "Backblaze B2",
        endpoint: Endpoint::Template("https://s3.{region}.backblazeb2.com"),
        region: RegionRule::Required {
            examples: "us-west-004, us-east-005, eu-central-003",
        },
        needs_account: false,
        path_style: false,
        upload_checksum: BodyChecksum::Md5,
    },
    Provider {
        name: "wasabi",
        title: "Wasabi",
        endpoint: Endpoint::Template("https://s3.{region}.wasabisys.com"),
        region: RegionRule::Default("us-east-1"),
        needs_account: false,
        path_style: false,
        upload_checksum: BodyChecksum::Md5,
    },
    Provider {
        name: "minio",
        title: "MinIO",
        endpoint: Endpoint::Given,
        region: RegionRule::Default("us-east-1"),
        needs_account: false,
        path_style: true,
        upload_checksum: BodyChecksum::Crc64Nvme,
    },
    Provider {
        name: "digitalocean",
        title: "DigitalOcean Spaces",
        endpoint: Endpoint::Template("https://{region}.digitaloceanspaces.com"),
        region: RegionRule::Required {
            examples: "nyc3, ams3, fra1, sgp1",
        },
        needs_account: false,
        path_style: false,
        upload_checksum: BodyChecksum::Md5,
    },
    Provider {
        name: "hetzner",
        title: "Hetzner Object Storage",
        endpoint: Endpoint::Template("https://{region}.your-objectstorage.com"),
        region: RegionRule::Required {
            examples: "fsn1, nbg1, hel1",
        },
        needs_account: false,
        path_style: false,
        upload_checksum: BodyChecksum::Md5,
    },
    Provider {
        name: "scaleway",
        title: "Scaleway Object Storage",
        endpoint: Endpoint::Template("https://s3.{region}.scw.cloud"),
        region: RegionRule::Required {
            examples: "fr-par, nl-ams, pl-waw",
        },
        needs_account: false,
        path_style: false,
        upload_checksum: BodyChecksum::Md5,
    },
    Provider {
        name: "linode",
        title: "Akamai (Linode) Object Storage",
        endpoint: Endpoint::Template("https://{region}.linodeobjects.com"),
        region: RegionRule::Required {
            examples: "us-east-1, eu-central-1, ap-south-1",
        },
        needs_account: false,
        path_style: false,
        upload_checksum: BodyChecksum::Md5,
    },
    Provider {
        name: "ovh",
        title: "OVHcloud Object Storage",
        endpoint: Endpoint::Template("https://s3.{region}.io.cloud.ovh.net"),
        region: RegionRule::Required {
            examples: "gra, sbg, de, uk, bhs",
        },
        needs_account: false,
        path_style: false,
        upload_checksum: BodyChecksum::Md5,
    },
    Provider {
        name: "idrive",
        title: "IDrive e2",
        endpoint: Endpoint::Given,
        region: RegionRule::Default("us-east-1"),
        needs_account: false,
        path_style: true,
        upload_checksum: BodyChecksum::Md5,
    },
];

/// A provider's name that is unknown, or a parameter it needs and lacks.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProviderError {
    #[error("unknown provider {name:?}: `hugesync providers` lists the ones known ({known})")]
    Unknown { name: String, known: String },
    #[error("{title} needs its region: --region REGION (config region), e.g. {examples}")]
    MissingRegion {
        title: &'static str,
        examples: &'static str,
    },
    #[error(
        "{title} needs its account id: --provider-account ID (config provider_account; Cloudflare's dashboard shows it)"
    )]
    MissingAccount { title: &'static str },
    #[error(
        "{title} has an endpoint per deployment: --endpoint-url URL (config endpoint_url), as its console shows it"
    )]
    MissingEndpoint { title: &'static str },
}

/// What the S3 client is given once a provider is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub path_style: bool,
}

/// The provider called `name` (any case).
pub fn find(name: &str) -> Result<&'static Provider, ProviderError> {
    PROVIDERS
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| ProviderError::Unknown {
            name: name.to_string(),
            known: PROVIDERS
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The endpoint, region and addressing for `provider`, from what the user
/// set (which wins) and what the provider implies.
pub fn resolve(
    provider: &Provider,
    region: Option<&str>,
    account: Option<&str>,
    endpoint_url: Option<&str>,
    path_style: bool,
) -> Result<Resolved, ProviderError> {
    let region = match provider.region {
        RegionRule::Sdk => region.map(str::to_string),
        RegionRule::Default(default) => Some(region.unwrap_or(default).to_string()),
        RegionRule::Required { examples } => match region {
            Some(region) => Some(region.to_string()),
            // An explicit endpoint names the place; the region only signs.
            None if endpoint_url.is_some() => Some("us-east-1".to_string()),
            None => {
                return Err(ProviderError::MissingRegion {
                    title: provider.title,
                    examples,
                });
            }
        },
    };
    let endpoint_url = match (endpoint_url, provider.endpoint) {
        (Some(url), _) => Some(url.to_string()),
        (None, Endpoint::Sdk) => None,
        (None, Endpoint::Given) => {
            return Err(ProviderError::MissingEndpoint {
                title: provider.title,
            });
        }
        (None, Endpoint::Template(template)) => {
            let account = match (provider.needs_account, account) {
                (true, None) => {
                    return Err(ProviderError::MissingAccount {
                        title: provider.title,
                    });
                }
                (_, account) => account.unwrap_or_default(),
            };
            Some(
                template
                    .replace("{region}", region.as_deref().unwrap_or_default())
                    .replace("{account}", account),
            )
        }
    };
    Ok(Resolved {
        endpoint_url,
        region,
        path_style: path_style || provider.path_style,
    })
}

/// What a provider needs, for `hugesync providers`.
pub fn needs(provider: &Provider) -> String {
    let mut needs = Vec::new();
    if provider.needs_account {
        needs.push("--provider-account ID".to_string());
    }
    match provider.region {
        RegionRule::Required { examples } => needs.push(format!("--region ({examples})")),
        RegionRule::Default(default) => needs.push(format!("region {default} unless --region")),
        RegionRule::Sdk => needs.push("region from the profile or AWS_REGION".into()),
    }
    if provider.endpoint == Endpoint::Given {
        needs.push("--endpoint-url URL".into());
    }
    needs.join("; ")
}

/// The endpoint a provider uses, for `hugesync providers`.
pub fn endpoint_text(provider: &Provider) -> &'static str {
    match provider.endpoint {
        Endpoint::Sdk => "AWS's own",
        Endpoint::Template(template) => template,
        Endpoint::Given => "yours (--endpoint-url)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_fill_in_what_the_user_left_unset() {
        let r2 = find("R2").unwrap();
        assert_eq!(
            resolve(r2, None, Some("abc123"), None, false).unwrap(),
            Resolved {
                endpoint_url: Some("https://abc123.r2.cloudflarestorage.com".into()),
                region: Some("auto".into()),
                path_style: false,
            }
        );
        let b2 = find("b2").unwrap();
        assert_eq!(
            resolve(b2, Some("us-west-004"), None, None, false)
                .unwrap()
                .endpoint_url
                .as_deref(),
            Some("https://s3.us-west-004.backblazeb2.com")
        );
        let minio = find("minio").unwrap();
        let resolved = resolve(minio, None, None, Some("http://10.0.0.5:9000"), false).unwrap();
        assert!(resolved.path_style);
        assert_eq!(resolved.region.as_deref(), Some("us-east-1"));
        let aws = find("aws").unwrap();
        assert_eq!(
            resolve(aws, None, None, None, false).unwrap(),
            Resolved {
                endpoint_url: None,
                region: None,
                path_style: false
            }
        );
    }

    #[test]
    fn an_explicit_endpoint_wins() {
        let hetzner = find("hetzner").unwrap();
        let resolved = resolve(hetzner, None, None, Some("https://proxy.example"), true).unwrap();
        assert_eq!(
            resolved.endpoint_url.as_deref(),
            Some("https://proxy.example")
        );
        assert!(resolved.path_style);
    }

    #[test]
    fn missing_parameters_are_asked_for_by_name() {
        let err = resolve(find("r2").unwrap(), None, None, None, false).unwrap_err();
        assert!(err.to_string().contains("--provider-account"), "{err}");
        let err = resolve(find("scaleway").unwrap(), None, None, None, false).unwrap_err();
        assert!(
            err.to_string().contains("--region") && err.to_string().contains("fr-par"),
            "{err}"
        );
        let err = resolve(find("idrive").unwrap(), None, None, None, false).unwrap_err();
        assert!(err.to_string().contains("--endpoint-url"), "{err}");
        let err = find("dropbox").unwrap_err();
        assert!(err.to_string().contains("wasabi"), "{err}");
    }

    #[test]
    fn every_template_names_only_what_it_is_given() {
        for p in PROVIDERS {
            if let Endpoint::Template(t) = p.endpoint {
                assert!(t.starts_with("https://"), "{}", p.name);
                assert_eq!(t.contains("{account}"), p.needs_account, "{}", p.name);
                let region_in_url = t.contains("{region}");
                let region_known = !matches!(p.region, RegionRule::Sdk);
                assert!(!region_in_url || region_known, "{}", p.name);
            }
        }
    }
}
