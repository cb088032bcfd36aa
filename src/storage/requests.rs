//! Requests made to a store, counted as they go out (every attempt, as the
//! service bills them) by the classes the cost estimate prices
//! (`cost::Requests`), so a run can show what it has spent beside what was
//! estimated. Each store classifies its own requests.

use std::sync::atomic::{AtomicU64, Ordering};

/// The classes a store's bill counts requests in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestClass {
    /// Writes: PUT, POST, upload parts, commits.
    Put,
    /// Server-side copies of objects or ranges.
    Copy,
    /// Reads: GET and HEAD.
    Get,
    List,
    Delete,
}

/// Requests made so far, by class; shared by every clone of a store.
#[derive(Debug, Default)]
pub struct RequestCounts {
    put: AtomicU64,
    copy: AtomicU64,
    get: AtomicU64,
    list: AtomicU64,
    delete: AtomicU64,
}

impl RequestCounts {
    pub fn add(&self, class: RequestClass) {
        let counter = match class {
            RequestClass::Put => &self.put,
            RequestClass::Copy => &self.copy,
            RequestClass::Get => &self.get,
            RequestClass::List => &self.list,
            RequestClass::Delete => &self.delete,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now, in the estimate's terms.
    pub fn snapshot(&self) -> crate::cost::Requests {
        crate::cost::Requests {
            put: self.put.load(Ordering::Relaxed),
            copy: self.copy.load(Ordering::Relaxed),
            get: self.get.load(Ordering::Relaxed),
            list: self.list.load(Ordering::Relaxed),
            delete: self.delete.load(Ordering::Relaxed),
        }
    }
}

/// The query of a URL (what follows `?`), or nothing.
pub(crate) fn query_of(url: &str) -> &str {
    url.split_once('?').map_or("", |(_, query)| query)
}

/// The path of a URL (before `?`).
pub(crate) fn path_of(url: &str) -> &str {
    url.split_once('?').map_or(url, |(path, _)| path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_class() {
        let counts = RequestCounts::default();
        for class in [
            RequestClass::Put,
            RequestClass::Put,
            RequestClass::Copy,
            RequestClass::Get,
            RequestClass::List,
            RequestClass::Delete,
        ] {
            counts.add(class);
        }
        let now = counts.snapshot();
        assert_eq!(
            (now.put, now.copy, now.get, now.list, now.delete),
            (2, 1, 1, 1, 1)
        );
        assert_eq!(query_of("http://h/b/k?list-type=2"), "list-type=2");
        assert_eq!(path_of("http://h/b/o?prefix=x"), "http://h/b/o");
    }
}
