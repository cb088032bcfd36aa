//! Blob names Azure refuses or changes: control characters (invalid in the
//! XML its listings are written in) and path segments ending in a dot, which
//! the service's URL handling drops, so that `notes.` would be stored as
//! `notes` (rclone encodes both for the same reasons).

/// Why the service would refuse or alter a blob of this name, if it would.
pub(super) fn refusal(key: &str) -> Option<&'static str> {
    if key.chars().any(|c| c.is_ascii_control()) {
        return Some("Azure Blob Storage refuses control characters in blob names");
    }
    if key.split('/').any(|segment| segment.ends_with('.')) {
        return Some(
            "Azure Blob Storage drops the dots that end a name or a directory name (`notes.` would become `notes`)",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_trailing_dots_are_refused() {
        assert!(refusal("dir/file.txt").is_none());
        assert!(refusal("a/.hidden").is_none());
        assert!(refusal("a/b.").is_some());
        assert!(refusal("a./b").is_some());
        assert!(refusal("tab\there").is_some());
        assert!(refusal("caf\u{e9}").is_none());
    }
}
