//! Listing: pages of objects under a prefix, narrowed to a range
//! (`startOffset`/`endOffset`) and rolled up by a delimiter when asked.

use super::*;
use crate::storage::object::ListQuery;

/// Bucket-level names one listing request asks for.
#[derive(Default)]
pub(super) struct Names<'a> {
    pub prefix: &'a str,
    pub start: Option<String>,
    pub end: Option<String>,
    pub delimited: bool,
}

impl GcsStorage {
    /// One page of the objects `names` asks for.
    pub(super) async fn list_objects(
        &self,
        names: &Names<'_>,
        token: Option<&str>,
    ) -> Result<json::ObjectList, StorageError> {
        let mut url = format!(
            "{}/o?projection=noAcl&maxResults={}&prefix={}",
            self.bucket_url(),
            self.list_page_size,
            escaped(names.prefix)
        );
        if let Some(start) = &names.start {
            url.push_str(&format!("&startOffset={}", escaped(start)));
        }
        if let Some(end) = &names.end {
            url.push_str(&format!("&endOffset={}", escaped(end)));
        }
        if names.delimited {
            url.push_str("&delimiter=%2F");
        }
        if let Some(token) = token {
            url.push_str(&format!("&pageToken={}", escaped(token)));
        }
        let target = self.url_of_key(names.prefix);
        self.json("cannot list", &target, || Call::new(Method::GET, &url))
            .await
    }

    /// Every object whose name starts with `prefix`, all pages.
    pub(super) async fn list_all(&self, prefix: &str) -> Result<Vec<json::Object>, StorageError> {
        let names = Names {
            prefix,
            ..Names::default()
        };
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.list_objects(&names, token.as_deref()).await?;
            objects.extend(page.items);
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next),
                None => return Ok(objects),
            }
        }
    }

    pub(super) async fn list_object_page(
        &self,
        query: &ListQuery,
        token: Option<String>,
    ) -> Result<ListPage, StorageError> {
        let full = |rel: &str| format!("{}{rel}", self.prefix);
        let names = Names {
            prefix: &full(&query.prefix),
            start: query.from.as_deref().map(full),
            end: query.to.as_deref().map(full),
            delimited: query.delimited,
        };
        let page = self.list_objects(&names, token.as_deref()).await?;
        // A composite upload's temporaries and kept chunks are never user
        // files (nor their folders).
        let hidden =
            |name: &str| name.starts_with(staging::STAGING) || name.starts_with(chunks::CHUNKS);
        let objects = page
            .items
            .into_iter()
            .filter(|o| !hidden(&o.name))
            .filter_map(|o| {
                let head = Self::head_of(&o);
                Some(ListedObject {
                    rel_key: o.name.strip_prefix(&self.prefix)?.to_string(),
                    size: head.size,
                    mtime_ns: head.mtime_ns,
                    version: head.version,
                    meta: Some(head.meta),
                    sums: head.sums,
                })
            })
            .collect();
        let prefixes = page
            .prefixes
            .into_iter()
            .filter(|p| !hidden(p))
            .filter_map(|p| Some(p.strip_prefix(&self.prefix)?.to_string()))
            .collect();
        Ok(ListPage {
            objects,
            prefixes,
            next: page.next_page_token.filter(|t| !t.is_empty()),
            leftovers: Vec::new(),
        })
    }
}
