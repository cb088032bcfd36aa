//! Listing: pages of objects under a prefix.

use super::*;

impl GcsStorage {
    /// One page of the objects whose names start with `prefix` (bucket-level).
    pub(super) async fn list_objects(
        &self,
        prefix: &str,
        token: Option<&str>,
    ) -> Result<json::ObjectList, StorageError> {
        let mut url = format!(
            "{}/o?projection=noAcl&maxResults={}&prefix={}",
            self.bucket_url(),
            self.list_page_size,
            escaped(prefix)
        );
        if let Some(token) = token {
            url.push_str(&format!("&pageToken={}", escaped(token)));
        }
        let target = self.url_of_key(prefix);
        self.json("cannot list", &target, || Call::new(Method::GET, &url))
            .await
    }

    /// Every object whose name starts with `prefix`, all pages.
    pub(super) async fn list_all(&self, prefix: &str) -> Result<Vec<json::Object>, StorageError> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.list_objects(prefix, token.as_deref()).await?;
            objects.extend(page.items);
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next),
                None => return Ok(objects),
            }
        }
    }

    pub(super) async fn list_object_page(
        &self,
        token: Option<String>,
    ) -> Result<ListPage, StorageError> {
        let page = self.list_objects(&self.prefix, token.as_deref()).await?;
        let objects = page
            .items
            .into_iter()
            // A composite upload's temporaries and kept chunks are never
            // user files.
            .filter(|o| {
                !o.name.starts_with(staging::STAGING) && !o.name.starts_with(chunks::CHUNKS)
            })
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
        Ok(ListPage {
            objects,
            next: page.next_page_token.filter(|t| !t.is_empty()),
            leftovers: Vec::new(),
        })
    }
}
