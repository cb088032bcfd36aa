//! Listing: List Blobs pages, and the XML answers a listing or block list reads.

use super::*;

impl AzureStorage {
    /// The List Blobs request for a page from `marker`.
    pub(super) fn list_url(&self, marker: Option<&str>, include: &str) -> String {
        let mut url = format!(
            "{}?restype=container&comp=list&include={include}&maxresults={}",
            self.container_url(),
            self.list_page_size
        );
        if !self.prefix.is_empty() {
            url.push_str(&format!("&prefix={}", query_value(&self.prefix)));
        }
        if let Some(marker) = marker {
            url.push_str(&format!("&marker={}", query_value(marker)));
        }
        url
    }

    pub(super) async fn list_blobs(
        &self,
        marker: Option<&str>,
        include: &str,
    ) -> Result<xml::EnumerationResults, StorageError> {
        let target = self.url_of_key(&self.prefix);
        self.get_xml("cannot list", target, self.list_url(marker, include))
            .await
    }

    /// A GET whose answer is an XML document (a listing, a block list).
    pub(super) async fn get_xml<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        target: String,
        url: String,
    ) -> Result<T, StorageError> {
        // The answer is read within the attempt: one that stalls or is cut
        // off midway is retried like a request that got none.
        let bytes = self
            .http
            .answer(self, op, &target, || Call {
                method: Method::GET,
                url: url.clone(),
                headers: Vec::new(),
                payload: Payload::Empty,
                server_side: false,
            })
            .await?;
        let text = std::str::from_utf8(&bytes).map_err(|e| StorageError::Transfer {
            target: target.clone(),
            message: format!("unreadable answer: {e}"),
        })?;
        xml::parse(text).map_err(|e| StorageError::Transfer {
            target: target.clone(),
            message: format!("unreadable answer: {e}"),
        })
    }

    pub(super) async fn list_blob_page(
        &self,
        token: Option<String>,
    ) -> Result<ListPage, StorageError> {
        let page = self.list_blobs(token.as_deref(), "metadata").await?;
        let objects = page
            .blobs
            .blob
            .into_iter()
            .filter_map(|blob| {
                let rel_key = blob.name.strip_prefix(&self.prefix)?.to_string();
                let meta = blob
                    .metadata
                    .as_ref()
                    .map(|m| meta_from_pairs(m.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
                Some(ListedObject {
                    rel_key,
                    size: blob.properties.content_length,
                    mtime_ns: http_date_ns(&blob.properties.last_modified),
                    version: Some(quoted(&blob.properties.etag)),
                    meta: Some(meta.unwrap_or_default()),
                    sums: ContentSums {
                        md5: blob
                            .properties
                            .content_md5
                            .as_deref()
                            .and_then(md5_of_base64),
                        ..ContentSums::default()
                    },
                })
            })
            .collect();
        Ok(ListPage {
            objects,
            next: page.next_marker.filter(|m| !m.is_empty()),
            leftovers: Vec::new(),
        })
    }
}
