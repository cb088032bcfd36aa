//! The kinds of values settings hold, how each is read from text (the
//! environment, the command line) and how `hugesync config` shows it.

use super::*;

/// A byte size that reads as a number or a human string (`"5MiB"`) from TOML.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Number(u64),
            Text(String),
        }
        match Repr::deserialize(d)? {
            Repr::Number(n) => Ok(Size(n)),
            Repr::Text(t) => format::parse_size(&t)
                .map(Size)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// A duration that reads as seconds or a human string (`"20s"`, `"1m 30s"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span(pub std::time::Duration);

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Seconds(u64),
            Text(String),
        }
        match Repr::deserialize(d)? {
            Repr::Seconds(n) => Ok(Span(std::time::Duration::from_secs(n))),
            Repr::Text(t) => parse_span(&t).map_err(serde::de::Error::custom),
        }
    }
}

pub(super) fn parse_span(text: &str) -> Result<Span, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Span(std::time::Duration::from_secs(seconds)));
    }
    humantime::parse_duration(text)
        .map(Span)
        .map_err(|e| format!("{e} (expected a duration such as `20s` or `1m 30s`)"))
}

/// How a setting's value is shown by `hugesync config`.
pub trait ShowValue {
    fn show(&self) -> String;
    fn to_json(&self) -> serde_json::Value;
}

impl ShowValue for usize {
    fn show(&self) -> String {
        self.to_string()
    }
    fn to_json(&self) -> serde_json::Value {
        (*self).into()
    }
}

impl ShowValue for bool {
    fn show(&self) -> String {
        self.to_string()
    }
    fn to_json(&self) -> serde_json::Value {
        (*self).into()
    }
}

impl ShowValue for Size {
    fn show(&self) -> String {
        format::bytes(self.0)
    }
    fn to_json(&self) -> serde_json::Value {
        self.0.into()
    }
}

impl ShowValue for Option<Size> {
    fn show(&self) -> String {
        self.map_or_else(|| "(unset)".into(), |s| format::bytes(s.0))
    }
    fn to_json(&self) -> serde_json::Value {
        self.map(|s| s.0).into()
    }
}

impl ShowValue for Span {
    fn show(&self) -> String {
        humantime::format_duration(self.0).to_string()
    }
    fn to_json(&self) -> serde_json::Value {
        self.0.as_secs_f64().into()
    }
}

impl ShowValue for Option<u64> {
    fn show(&self) -> String {
        self.map_or_else(|| "unlimited".into(), |n| n.to_string())
    }
    fn to_json(&self) -> serde_json::Value {
        (*self).into()
    }
}

/// Memory the scans may hold (`auto`: half of the machine's memory).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryBudget(pub Option<u64>);

impl MemoryBudget {
    /// The budget in bytes: the one set, or half of the machine's memory
    /// (4 GiB where it cannot be read).
    pub fn bytes(self) -> u64 {
        self.0.unwrap_or_else(|| {
            std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|info| {
                    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
                    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                    Some(kib * 1024 / 2)
                })
                .unwrap_or(4 << 30)
        })
    }
}

impl<'de> Deserialize<'de> for MemoryBudget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_memory_budget(&number_or_text(d)?).map_err(serde::de::Error::custom)
    }
}

/// A setting written as a number or as text, as text (one parser checks both).
fn number_or_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(u64),
        Text(String),
    }
    Ok(match Repr::deserialize(d)? {
        Repr::Number(n) => n.to_string(),
        Repr::Text(t) => t,
    })
}

impl ShowValue for MemoryBudget {
    fn show(&self) -> String {
        self.0
            .map_or_else(|| "auto".into(), |n| format::bytes(n).to_string())
    }
    fn to_json(&self) -> serde_json::Value {
        self.0.into()
    }
}

pub(super) fn parse_memory_budget(text: &str) -> Result<MemoryBudget, String> {
    match text.trim() {
        "" | "auto" => Ok(MemoryBudget(None)),
        size => match format::parse_size(size) {
            Ok(n) if n >= 1 << 20 => Ok(MemoryBudget(Some(n))),
            Ok(_) => Err("expected `auto` or a size of at least 1MiB".into()),
            Err(e) => Err(e),
        },
    }
}

/// A count the store chooses unless one is set (`auto`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreDefault(pub Option<usize>);

impl<'de> Deserialize<'de> for StoreDefault {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_store_default(&number_or_text(d)?).map_err(serde::de::Error::custom)
    }
}

impl ShowValue for StoreDefault {
    fn show(&self) -> String {
        self.0.map_or_else(|| "auto".into(), |n| n.to_string())
    }
    fn to_json(&self) -> serde_json::Value {
        self.0.into()
    }
}

impl ShowValue for Vec<String> {
    fn show(&self) -> String {
        if self.is_empty() {
            "[]".into()
        } else {
            format!("[{}]", self.join(", "))
        }
    }
    fn to_json(&self) -> serde_json::Value {
        self.clone().into()
    }
}

impl ShowValue for crate::sync::RemoteSignature {
    fn show(&self) -> String {
        self.name().into()
    }
    fn to_json(&self) -> serde_json::Value {
        self.name().into()
    }
}

pub(super) fn parse_remote_signature(text: &str) -> Result<crate::sync::RemoteSignature, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "sidecar" => Ok(crate::sync::RemoteSignature::Sidecar),
        "generate" => Ok(crate::sync::RemoteSignature::Generate),
        _ => Err("expected `sidecar` or `generate`".into()),
    }
}

impl ShowValue for Option<String> {
    fn show(&self) -> String {
        self.clone().unwrap_or_else(|| "(unset)".into())
    }
    fn to_json(&self) -> serde_json::Value {
        self.clone().into()
    }
}

/// A credential (an account key, a SAS token, a connection string): shown
/// only as set or unset, in `hugesync config`, in errors and in debug output.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that signs with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl ShowValue for Option<Secret> {
    fn show(&self) -> String {
        match self {
            Some(_) => "(set, not shown)".into(),
            None => "(unset)".into(),
        }
    }
    fn to_json(&self) -> serde_json::Value {
        match self {
            Some(_) => "(set, not shown)".into(),
            None => serde_json::Value::Null,
        }
    }
}

pub(super) fn parse_secret(text: &str) -> Result<Option<Secret>, String> {
    let text = text.trim();
    Ok((!text.is_empty()).then(|| Secret(text.to_string())))
}

pub(super) fn parse_upload_checksum(text: &str) -> Result<Option<String>, String> {
    use crate::storage::body::BodyChecksum;
    match text.trim() {
        "" | "auto" => Ok(None),
        name => BodyChecksum::parse(name)
            .map(|kind| Some(kind.name().to_string()))
            .ok_or_else(|| format!("expected one of {}", BodyChecksum::NAMES)),
    }
}

pub(super) fn parse_metadata_compat(text: &str) -> Result<Option<String>, String> {
    use crate::storage::meta::MetadataCompat;
    match text.trim() {
        "" | "none" => Ok(None),
        name => MetadataCompat::parse(name)
            .map(|compat| Some(compat.name().to_string()))
            .ok_or_else(|| format!("expected one of {}, or none", MetadataCompat::NAMES)),
    }
}

impl ShowValue for crate::storage::sidecars::SidecarLayout {
    fn show(&self) -> String {
        self.name().into()
    }
    fn to_json(&self) -> serde_json::Value {
        self.name().into()
    }
}

pub(super) fn parse_sidecars(
    text: &str,
) -> Result<crate::storage::sidecars::SidecarLayout, String> {
    use crate::storage::sidecars::SidecarLayout;
    SidecarLayout::parse(text).ok_or_else(|| format!("expected one of {}", SidecarLayout::NAMES))
}

pub(super) fn parse_optional_text(text: &str) -> Result<Option<String>, String> {
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.to_string()))
}

pub(super) fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err("expected true/false, yes/no, on/off or 1/0".into()),
    }
}

pub(super) fn parse_usize(text: &str) -> Result<usize, String> {
    text.trim()
        .parse()
        .map_err(|_| "expected a whole number".into())
}

pub(super) fn parse_size_setting(text: &str) -> Result<Size, String> {
    format::parse_size(text).map(Size)
}

pub(super) fn parse_optional_size(text: &str) -> Result<Option<Size>, String> {
    match text.trim() {
        "" => Ok(None),
        size => format::parse_size(size).map(|n| Some(Size(n))),
    }
}

/// A rate: a size per second (`20MiB`, `20MiB/s`); `0` or empty: none.
pub(super) fn parse_rate(text: &str) -> Result<Option<Size>, String> {
    let text = text.trim();
    let size = text.strip_suffix("/s").unwrap_or(text);
    match parse_optional_size(size)? {
        Some(Size(0)) | None => Ok(None),
        rate => Ok(rate),
    }
}

pub(super) fn parse_store_default(text: &str) -> Result<StoreDefault, String> {
    match text.trim() {
        "" | "auto" => Ok(StoreDefault(None)),
        n => match n.parse::<usize>() {
            Ok(n @ 1..=4096) => Ok(StoreDefault(Some(n))),
            _ => Err("expected `auto` or a whole number from 1 to 4096".into()),
        },
    }
}

pub(super) fn parse_limit(text: &str) -> Result<Option<u64>, String> {
    match text.trim() {
        "" | "unlimited" => Ok(None),
        n => n
            .parse()
            .map(Some)
            .map_err(|_| "expected a whole number or `unlimited`".into()),
    }
}

pub(super) fn parse_patterns(text: &str) -> Result<Vec<String>, String> {
    Ok(text
        .split(':')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect())
}
