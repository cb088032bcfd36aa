//! Names of temp files on an SSH server, telling which run writes them:
//! `.hugesync-<machine>-<pid>-<random>.tmp`. A local disk can ask whether a
//! temp file is still being written (a lock); a server cannot, so the name
//! says it instead: a temp file of this machine whose process is gone is a
//! leftover of a killed run, removed by the next; one of another machine is
//! left alone for a day, in case that run is still going.

use crate::storage::local::{TEMP_PREFIX, TEMP_SUFFIX};

/// Another machine's temp file is a leftover once untouched this long.
const FOREIGN_AGE_S: i64 = 24 * 3600;

/// This machine's tag: the CRC32C of its host name.
fn machine() -> u32 {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    crc32c::crc32c(name.trim().as_bytes())
}

/// A fresh temp file name for this process.
pub(super) fn make() -> String {
    format!(
        "{TEMP_PREFIX}{:08x}-{}-{:016x}{TEMP_SUFFIX}",
        machine(),
        std::process::id(),
        fastrand::u64(..)
    )
}

/// Whether the temp file `name`, last written at `mtime_ns`, was left by a
/// run that is over.
pub(super) fn is_leftover(name: &[u8], mtime_ns: i64, now_ns: i64) -> bool {
    let old = now_ns.saturating_sub(mtime_ns) > FOREIGN_AGE_S * 1_000_000_000;
    let Some(middle) = std::str::from_utf8(name)
        .ok()
        .and_then(|n| n.strip_prefix(TEMP_PREFIX))
        .and_then(|n| n.strip_suffix(TEMP_SUFFIX))
    else {
        return old;
    };
    let mut fields = middle.split('-');
    let (Some(host), Some(pid)) = (fields.next(), fields.next()) else {
        return old;
    };
    let (Ok(host), Ok(pid)) = (u32::from_str_radix(host, 16), pid.parse::<u32>()) else {
        return old;
    };
    if host != machine() {
        return old;
    }
    pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_run_of_this_machine_left_it_a_live_one_did_not() {
        let now = 1_000_000 * 1_000_000_000;
        let mine = make();
        assert!(crate::storage::local::is_temp_name(mine.as_bytes()));
        assert!(!is_leftover(mine.as_bytes(), now, now), "this run's own");
        // A pid that cannot be running (past pid_max).
        let dead = format!("{TEMP_PREFIX}{:08x}-4294967290-0{TEMP_SUFFIX}", machine());
        assert!(is_leftover(dead.as_bytes(), now, now));
        let foreign = format!("{TEMP_PREFIX}00000001-1-0{TEMP_SUFFIX}");
        let foreign = if machine() == 1 { dead } else { foreign };
        assert!(
            !is_leftover(foreign.as_bytes(), now, now),
            "another machine's, fresh"
        );
        assert!(is_leftover(
            foreign.as_bytes(),
            now - 2 * FOREIGN_AGE_S * 1_000_000_000,
            now
        ));
    }
}
