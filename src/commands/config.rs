//! `hugesync config`: the effective settings, each with where it came from.

use super::{Context, print_json};
use crate::cli::ConfigArgs;
use crate::error::{Error, ExitStatus};

pub(super) fn config_command(args: &ConfigArgs, ctx: &Context) -> Result<ExitStatus, Error> {
    let rows = ctx.settings.rows();
    let file = ctx.config_path.as_ref().map(|p| p.display().to_string());
    // What `provider` makes of the S3 settings (checked when they resolved).
    let s3 = ctx.settings.provider.value.as_ref().map(|name| {
        let s3 = ctx.settings.store_settings().s3;
        (name.clone(), s3)
    });
    if args.json {
        let settings: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(key, _, value, origin, env)| {
                (
                    key.to_string(),
                    serde_json::json!({ "value": value, "origin": origin.to_string(), "env": env }),
                )
            })
            .collect();
        let provider = s3.map(|(name, s3)| {
            serde_json::json!({
                "name": name,
                "endpoint_url": s3.endpoint_url,
                "region": s3.region,
                "path_style": s3.path_style,
            })
        });
        let prices: serde_json::Map<String, serde_json::Value> = ctx
            .settings
            .prices
            .iter()
            .map(|(name, layer)| (name.clone(), price_override_json(layer)))
            .collect();
        print_json(&serde_json::json!({
            "config_file": file,
            "settings": settings,
            "provider": provider,
            "prices": prices,
        }))?;
    } else {
        println!("config file: {}", file.as_deref().unwrap_or("(none)"));
        for (key, shown, _, origin, env) in rows {
            println!("{key:<20} = {shown:<14} ({origin}; env {env})");
        }
        if let Some((name, s3)) = s3 {
            println!(
                "provider {name} gives: endpoint {}, region {}, {} addressing",
                s3.endpoint_url.as_deref().unwrap_or("AWS's own"),
                s3.region.as_deref().unwrap_or("from the AWS chain"),
                if s3.path_style {
                    "path-style"
                } else {
                    "virtual-host"
                }
            );
        }
        for (name, layer) in &ctx.settings.prices {
            let figures: Vec<String> = price_override_json(layer)
                .as_object()
                .into_iter()
                .flatten()
                .map(|(key, value)| format!("{key} = {value}"))
                .collect();
            println!("[prices.\"{name}\"] (config file): {}", figures.join(", "));
        }
    }
    Ok(ExitStatus::Success)
}

/// The figures a `[prices…]` table sets, by key.
fn price_override_json(layer: &crate::cost::PriceOverride) -> serde_json::Value {
    let fields = [
        ("put_per_1000", layer.put_per_1000),
        ("get_per_1000", layer.get_per_1000),
        ("list_per_1000", layer.list_per_1000),
        ("delete_per_1000", layer.delete_per_1000),
        ("retrieval_per_gb", layer.retrieval_per_gb),
        ("egress_per_gb", layer.egress_per_gb),
        ("storage_per_gb_month", layer.storage_per_gb_month),
    ];
    serde_json::Value::Object(
        fields
            .into_iter()
            .filter_map(|(key, value)| Some((key.to_string(), serde_json::json!(value?))))
            .collect(),
    )
}
