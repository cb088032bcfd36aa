//! Listing: List Blobs pages, and the XML answers a listing or block list reads.

use super::*;
use crate::storage::object::ListQuery;

impl AzureStorage {
    /// The List Blobs request for a page from `marker` of the blobs whose
    /// names start with `prefix` (container-level), rolled up at `/` when
    /// `delimited`.
    pub(super) fn list_url(
        &self,
        prefix: &str,
        delimited: bool,
        marker: Option<&str>,
        include: &str,
    ) -> String {
        let mut url = format!(
            "{}?restype=container&comp=list&include={include}&maxresults={}",
            self.container_url(),
            self.list_page_size
        );
        if !prefix.is_empty() {
            url.push_str(&format!("&prefix={}", query_value(prefix)));
        }
        if delimited {
            url.push_str("&delimiter=%2F");
        }
        if let Some(marker) = marker {
            url.push_str(&format!("&marker={}", query_value(marker)));
        }
        url
    }

    pub(super) async fn list_blobs(
        &self,
        prefix: &str,
        delimited: bool,
        marker: Option<&str>,
        include: &str,
    ) -> Result<xml::EnumerationResults, StorageError> {
        let target = self.url_of_key(prefix);
        let url = self.list_url(prefix, delimited, marker, include);
        self.get_xml("cannot list", target, url).await
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

    /// One page of the blobs `query` asks for: Azure narrows by prefix, so
    /// the lister splits a listing by prefixes (and keeps a range itself).
    pub(super) async fn list_blob_page(
        &self,
        query: &ListQuery,
        token: Option<String>,
    ) -> Result<ListPage, StorageError> {
        let prefix = format!("{}{}", self.prefix, query.prefix);
        let page = self
            .list_blobs(&prefix, query.delimited, token.as_deref(), "metadata")
            .await?;
        let (blobs, prefixes) = page.blobs.into_parts();
        let objects = blobs
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
        let prefixes = prefixes
            .into_iter()
            .filter_map(|p| Some(p.strip_prefix(&self.prefix)?.to_string()))
            .collect();
        Ok(ListPage {
            objects,
            prefixes,
            next: page.next_marker.filter(|m| !m.is_empty()),
            leftovers: Vec::new(),
        })
    }
}
