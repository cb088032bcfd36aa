//! The Blob service's XML: List Blobs pages and block lists, read with
//! quick-xml's serde support; the Put Block List body written by hand (block
//! ids are base64, which needs no escaping).

use std::collections::HashMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnumerationResults {
    #[serde(default)]
    pub blobs: Blobs,
    #[serde(default)]
    pub next_marker: Option<String>,
}

/// A page's blobs and, with a delimiter, the prefixes between them.
#[derive(Debug, Default, Deserialize)]
pub struct Blobs {
    #[serde(rename = "$value", default)]
    items: Vec<BlobItem>,
}

#[derive(Debug, Deserialize)]
enum BlobItem {
    Blob(Blob),
    BlobPrefix(BlobPrefix),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BlobPrefix {
    name: String,
}

impl Blobs {
    /// The blobs, and the common prefixes (full names, ending in `/`).
    pub fn into_parts(self) -> (Vec<Blob>, Vec<String>) {
        let mut blobs = Vec::new();
        let mut prefixes = Vec::new();
        for item in self.items {
            match item {
                BlobItem::Blob(blob) => blobs.push(blob),
                BlobItem::BlobPrefix(prefix) => prefixes.push(prefix.name),
            }
        }
        (blobs, prefixes)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Blob {
    pub name: String,
    pub properties: Properties,
    #[serde(default)]
    pub metadata: Option<HashMap<String, String>>,
}

#[derive(Debug, Deserialize)]
pub struct Properties {
    #[serde(rename = "Last-Modified")]
    pub last_modified: String,
    #[serde(rename = "Etag")]
    pub etag: String,
    #[serde(rename = "Content-Length")]
    pub content_length: u64,
    /// base64; empty when the blob has none (block lists committed without one).
    #[serde(rename = "Content-MD5", default)]
    pub content_md5: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BlockList {
    #[serde(default)]
    pub uncommitted_blocks: BlockSet,
}

#[derive(Debug, Default, Deserialize)]
pub struct BlockSet {
    #[serde(rename = "Block", default)]
    pub block: Vec<Block>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Block {
    pub name: String,
    pub size: u64,
}

/// The error body's message, if the body is one.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorBody {
    pub message: Option<String>,
}

pub fn parse<'de, T: Deserialize<'de>>(text: &'de str) -> Result<T, String> {
    quick_xml::de::from_str(text).map_err(|e| e.to_string())
}

/// The Put Block List body committing `ids` in order.
pub fn block_list_body(ids: &[String]) -> String {
    let mut body = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
    for id in ids {
        body.push_str("<Latest>");
        body.push_str(id);
        body.push_str("</Latest>");
    }
    body.push_str("</BlockList>");
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_list_blobs_page() {
        let text = r#"<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="http://127.0.0.1/devstoreaccount1" ContainerName="c">
  <Prefix>p/</Prefix><MaxResults>5000</MaxResults>
  <Blobs>
    <Blob><Name>p/a.txt</Name><Properties><Creation-Time>Sat, 28 Nov 2026 16:00:00 GMT</Creation-Time><Last-Modified>Sat, 28 Nov 2026 16:00:00 GMT</Last-Modified><Etag>"0x8D"</Etag><Content-Length>12</Content-Length><BlobType>BlockBlob</BlobType></Properties><Metadata><hugesync_mtime>5</hugesync_mtime></Metadata></Blob>
    <Blob><Name>p/b</Name><Properties><Last-Modified>Sat, 28 Nov 2026 16:00:01 GMT</Last-Modified><Etag>0x8E</Etag><Content-Length>0</Content-Length></Properties><Metadata /></Blob>
  </Blobs>
  <NextMarker>token</NextMarker>
</EnumerationResults>"#;
        let page: EnumerationResults = parse(text).unwrap();
        assert_eq!(page.next_marker.as_deref(), Some("token"));
        let (blobs, prefixes) = page.blobs.into_parts();
        assert_eq!(blobs.len(), 2);
        assert_eq!(blobs[0].name, "p/a.txt");
        assert_eq!(blobs[0].properties.content_length, 12);
        assert_eq!(blobs[0].metadata.as_ref().unwrap()["hugesync_mtime"], "5");
        assert!(prefixes.is_empty());
        let last: EnumerationResults =
            parse("<EnumerationResults><Blobs /><NextMarker /></EnumerationResults>").unwrap();
        assert!(last.blobs.into_parts().0.is_empty());
        // With a delimiter, prefixes come between the blobs.
        let delimited: EnumerationResults = parse(
            r#"<EnumerationResults><Prefix>p/</Prefix><Delimiter>/</Delimiter><Blobs>
    <Blob><Name>p/a.txt</Name><Properties><Last-Modified>Sat, 28 Nov 2026 16:00:00 GMT</Last-Modified><Etag>0x8D</Etag><Content-Length>1</Content-Length></Properties></Blob>
    <BlobPrefix><Name>p/d/</Name></BlobPrefix>
    <Blob><Name>p/e.txt</Name><Properties><Last-Modified>Sat, 28 Nov 2026 16:00:00 GMT</Last-Modified><Etag>0x8E</Etag><Content-Length>2</Content-Length></Properties></Blob>
    <BlobPrefix><Name>p/f/</Name></BlobPrefix>
  </Blobs><NextMarker /></EnumerationResults>"#,
        )
        .unwrap();
        let (blobs, prefixes) = delimited.blobs.into_parts();
        assert_eq!(blobs.len(), 2);
        assert_eq!(prefixes, ["p/d/", "p/f/"]);
        assert!(last.next_marker.unwrap_or_default().is_empty());
    }

    #[test]
    fn reads_uncommitted_blocks() {
        let text = "<BlockList><CommittedBlocks /><UncommittedBlocks><Block><Name>YWJj</Name><Size>5</Size></Block></UncommittedBlocks></BlockList>";
        let list: BlockList = parse(text).unwrap();
        assert_eq!(list.uncommitted_blocks.block[0].name, "YWJj");
        assert_eq!(list.uncommitted_blocks.block[0].size, 5);
        assert_eq!(
            block_list_body(&["YQ==".into()]),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList><Latest>YQ==</Latest></BlockList>"
        );
    }
}
