//! Listing a prefix: ListObjectsV2, one page per call.

use super::{S3Storage, remote_error};
use crate::retry::Budget;
use crate::storage::StorageError;
use crate::storage::listing::key_before;
use crate::storage::object::{ListPage, ListQuery, ListedObject};
use crate::types::ContentSums;

/// Nanoseconds since the epoch of an S3 timestamp.
pub(crate) fn timestamp_ns(time: &aws_sdk_s3::primitives::DateTime) -> i64 {
    time.secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(i64::from(time.subsec_nanos()))
}

impl S3Storage {
    /// One page of the keys `query` asks for, retried on its own. S3 has no
    /// end key: the lister stops a range at its end.
    pub(super) async fn list_objects(
        &self,
        query: &ListQuery,
        token: Option<String>,
    ) -> Result<ListPage, StorageError> {
        let url = self.url_of_prefix();
        let prefix = format!("{}{}", self.prefix, query.prefix);
        // StartAfter is exclusive: the key just below the range's start.
        let start_after = match (&token, &query.from) {
            (None, Some(from)) => key_before(&format!("{}{from}", self.prefix)),
            _ => None,
        };
        let page = self
            .retry
            .run(&url, Budget::Quick, || async {
                self.client()
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(&prefix)
                    .set_start_after(start_after.clone())
                    .set_delimiter(query.delimited.then(|| "/".to_string()))
                    .set_continuation_token(token.clone())
                    .set_max_keys(self.list_page_size.map(|n| n.min(1000) as i32))
                    .send()
                    .await
                    .map_err(|e| remote_error("cannot list", url.clone(), e))
            })
            .await?;
        let objects = page
            .contents()
            .iter()
            .filter_map(|object| {
                let rel_key = object.key()?.strip_prefix(&self.prefix)?.to_string();
                Some(ListedObject {
                    rel_key,
                    size: object.size().unwrap_or(0).max(0) as u64,
                    mtime_ns: object.last_modified().map_or(0, timestamp_ns),
                    version: object.e_tag().map(str::to_string),
                    meta: None,
                    sums: ContentSums {
                        md5: object.e_tag().and_then(super::etag::etag_md5),
                        ..ContentSums::default()
                    },
                })
            })
            .collect();
        let prefixes = page
            .common_prefixes()
            .iter()
            .filter_map(|p| Some(p.prefix()?.strip_prefix(&self.prefix)?.to_string()))
            .collect();
        let next = match page.next_continuation_token() {
            Some(next) if page.is_truncated() == Some(true) => Some(next.to_string()),
            _ => None,
        };
        Ok(ListPage {
            objects,
            prefixes,
            next,
            leftovers: Vec::new(),
        })
    }

    /// `s3://bucket/prefix`, for messages about the whole prefix.
    pub(super) fn url_of_prefix(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}
