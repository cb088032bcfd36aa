//! Memory maps that survive their file being cut short underneath.
//!
//! Reading a mapped page past the end of a file that another process truncated
//! raises SIGBUS, which kills the process. Every map HugeSync reads is
//! registered here; a SIGBUS inside a registered range is answered by mapping a
//! zero page over the faulting one and marking the range as faulted, so the read
//! goes on (over zeros) and the code that owns the map sees [`Guard::faulted`]
//! afterwards and reports "changed while it was read" instead. A SIGBUS anywhere
//! else goes to the handler that was there before (the default: the process
//! dies, as it should for a real bug).

use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The error of a read that met a file changing underneath (cut short, or
/// `EFAULT` from a system call reading a mapped page past the new end).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("changed while it was read; re-run to pick up the new version")]
pub struct ChangedWhileRead;

impl ChangedWhileRead {
    /// As an `io::Error`, for code that reports those.
    pub fn io() -> std::io::Error {
        std::io::Error::other(ChangedWhileRead)
    }

    /// Whether an I/O error means the file changed while it was read: ours,
    /// or `EFAULT` (the kernel copying from a mapped page past a new end).
    pub fn is(error: &std::io::Error) -> bool {
        error.raw_os_error() == Some(libc::EFAULT)
            || error
                .get_ref()
                .is_some_and(|inner| inner.is::<ChangedWhileRead>())
    }
}

/// Ranges guarded at once (two per running transfer at most; `jobs` ≤ 1024).
const SLOTS: usize = 4096;

struct Slot {
    start: AtomicUsize,
    end: AtomicUsize,
    faulted: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    faulted: AtomicBool::new(false),
};

static TABLE: [Slot; SLOTS] = [FREE; SLOTS];
static INSTALL: Once = Once::new();
/// The SIGBUS action before ours, to hand other faults on to.
static mut PREVIOUS: Option<libc::sigaction> = None;

/// A registered range; unregistered when dropped.
#[derive(Debug)]
pub struct Guard {
    slot: Option<usize>,
}

impl Guard {
    /// Registers `len` bytes from `start` (a mapping's address).
    pub fn register(start: *const u8, len: usize) -> Guard {
        INSTALL.call_once(install);
        let start = start as usize;
        for (index, slot) in TABLE.iter().enumerate() {
            // The end is written first and read after the start: the handler
            // never sees a claimed slot with a stale end.
            if slot
                .start
                .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                slot.faulted.store(false, Ordering::Release);
                slot.end.store(start + len, Ordering::Release);
                slot.start.store(start, Ordering::Release);
                return Guard { slot: Some(index) };
            }
        }
        // Every slot taken: the map works unguarded, as maps always did.
        tracing::debug!("mapguard: no free slot; a map is read unguarded");
        Guard { slot: None }
    }

    /// Whether a read of the range met the end of a file cut short.
    pub fn faulted(&self) -> bool {
        self.slot
            .is_some_and(|i| TABLE[i].faulted.load(Ordering::Acquire))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(index) = self.slot {
            let slot = &TABLE[index];
            slot.start.store(usize::MAX, Ordering::Release);
            slot.end.store(0, Ordering::Release);
            slot.start.store(0, Ordering::Release);
        }
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096).max(4096)
}

fn install() {
    // SAFETY: a zeroed sigaction is a valid starting point; we fill the handler
    // and flags, and keep the previous action to chain to.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
        libc::sigemptyset(&mut action.sa_mask);
        let mut previous: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGBUS, &action, &mut previous) == 0 {
            PREVIOUS = Some(previous);
        }
    }
}

extern "C" fn on_sigbus(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let address = unsafe { (*info).si_addr() } as usize;
    for slot in &TABLE {
        let start = slot.start.load(Ordering::Acquire);
        if start == 0 || start == usize::MAX || address < start {
            continue;
        }
        if address < slot.end.load(Ordering::Acquire) {
            slot.faulted.store(true, Ordering::Release);
            let page = page_size();
            let at = address & !(page - 1);
            // SAFETY: the page lies inside a live mapping of ours; replacing
            // it by an anonymous zero page only changes what the reader sees
            // (zeros), and the owner discards the result (`faulted`).
            let mapped = unsafe {
                libc::mmap(
                    at as *mut libc::c_void,
                    page,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if mapped != libc::MAP_FAILED {
                return; // the read is retried, over zeros
            }
        }
    }
    // Not ours: what was there before decides.
    // SAFETY: PREVIOUS is written once, before this handler can run.
    unsafe {
        match std::ptr::addr_of!(PREVIOUS).read() {
            Some(previous)
                if previous.sa_sigaction != libc::SIG_DFL
                    && previous.sa_sigaction != libc::SIG_IGN =>
            {
                if previous.sa_flags & libc::SA_SIGINFO != 0 {
                    let handler: extern "C" fn(
                        libc::c_int,
                        *mut libc::siginfo_t,
                        *mut libc::c_void,
                    ) = std::mem::transmute(previous.sa_sigaction);
                    handler(signal, info, context);
                } else {
                    let handler: extern "C" fn(libc::c_int) =
                        std::mem::transmute(previous.sa_sigaction);
                    handler(signal);
                }
            }
            _ => {
                // Back to the default action: the retried access kills the
                // process with SIGBUS, as it would have without us.
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_of_a_file_cut_short_reads_zeros_and_says_so() {
        use std::io::Write;
        let page = page_size();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&vec![7u8; 4 * page]).unwrap();
        // SAFETY: the test owns the file; truncation below is the point.
        let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
        let guard = Guard::register(map.as_ptr(), map.len());
        assert_eq!(map[0], 7);
        file.set_len(page as u64).unwrap();
        // Past the new end: no SIGBUS, zeros, and the guard knows.
        let sum: u64 = map[page..].iter().map(|&b| u64::from(b)).sum();
        assert_eq!(sum, 0);
        assert!(guard.faulted());
        drop(guard);
        let other = Guard::register(map.as_ptr(), map.len());
        assert!(!other.faulted(), "a fresh registration starts clean");
    }
}
