//! Object names GCS refuses: carriage returns and line feeds, and names
//! reserved by the service (its naming rules, which rclone's GCS encoding
//! follows too).

/// Why the service would refuse an object of this name, if it would.
pub(super) fn refusal(key: &str) -> Option<&'static str> {
    if key.contains(['\r', '\n']) {
        return Some(
            "Google Cloud Storage refuses carriage returns and line feeds in object names",
        );
    }
    if key.starts_with(".well-known/acme-challenge/") {
        return Some("Google Cloud Storage reserves names under .well-known/acme-challenge/");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_and_reserved_names_are_refused() {
        assert!(refusal("dir/file.txt").is_none());
        assert!(refusal("a\nb").is_some());
        assert!(refusal("a\rb").is_some());
        assert!(refusal(".well-known/acme-challenge/x").is_some());
        assert!(refusal("tab\there").is_none());
    }
}
