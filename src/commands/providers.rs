//! `hugesync providers`: the S3-compatible services known by name.

use super::write_stdout;
use crate::error::{Error, ExitStatus};

/// `hugesync providers`: the S3-compatible services known by name.
pub(super) fn providers() -> Result<ExitStatus, Error> {
    use crate::storage::s3::providers::{PROVIDERS, endpoint_text, needs};
    let mut out = String::from("S3-compatible providers (--provider NAME):\n\n");
    for p in PROVIDERS {
        out.push_str(&format!(
            "  {:<13} {}\n  {:<13} endpoint {}{}\n  {:<13} needs {}\n\n",
            p.name,
            p.title,
            "",
            endpoint_text(p),
            if p.path_style { ", path-style" } else { "" },
            "",
            needs(p)
        ));
    }
    out.push_str(
        "An explicit --endpoint-url, --region or --path-style wins over the provider's.\n",
    );
    write_stdout(out.as_bytes())
}
