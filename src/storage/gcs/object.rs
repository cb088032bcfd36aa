//! Whole objects: head, a single-request upload, deletes, and what an
//! object resource says.

use super::*;
use crate::storage::body::BodySums;

impl GcsStorage {
    pub(super) async fn head_object(
        &self,
        key: &str,
    ) -> Result<Option<json::Object>, StorageError> {
        let url = format!("{}?projection=noAcl", self.object_url(key));
        let found = self
            .json("cannot head", &self.url_of_key(key), || {
                Call::new(Method::GET, &url)
            })
            .await;
        crate::storage::found(found)
    }

    /// One multipart upload: the resource and the bytes in one request.
    pub(super) async fn upload(
        &self,
        key: &str,
        body: BodySource<'_>,
        len: u64,
        metadata: HashMap<String, String>,
        sums: BodySums,
        expect: Expect<'_>,
    ) -> Result<json::Object, StorageError> {
        let target = self.url_of_key(key);
        let base64 = base64::engine::general_purpose::STANDARD;
        let resource = serde_json::to_string(&json::NewObject {
            name: Some(key),
            content_type: CONTENT_TYPE,
            md5_hash: sums.md5.map(|m| base64.encode(m)),
            crc32c: sums.crc32c.map(|crc| base64.encode(crc.to_be_bytes())),
            metadata,
            storage_class: self.class_for(key),
        })
        .map_err(|e| StorageError::Transfer {
            target: target.clone(),
            message: e.to_string(),
        })?;
        let mut url = self.upload_url();
        if let Some(generation) = generation_condition(expect) {
            url.push_str(&format!("&ifGenerationMatch={generation}"));
        }
        let object: json::Object = self
            .json("cannot upload", &target, || Call {
                payload: Payload::Upload {
                    resource: &resource,
                    source: body,
                    len,
                },
                ..Call::new(Method::POST, &url)
            })
            .await?;
        // The service checks a given MD5 or CRC32C; what it stored is
        // compared too (emulators may not check).
        if let (Some(sent), Some(stored)) = (sums.md5, object.md5())
            && sent != stored
        {
            return Err(StorageError::Verification {
                target,
                message: "the stored object's MD5 differs from what was sent".into(),
            });
        }
        if let (Some(sent), Some(stored)) = (sums.crc32c, object.crc32c())
            && sent != stored
        {
            return Err(StorageError::Verification {
                target,
                message: "the stored object's CRC32C differs from what was sent".into(),
            });
        }
        if object.size() != len {
            return Err(StorageError::Verification {
                target,
                message: format!("{len} bytes were sent but {} stored", object.size()),
            });
        }
        Ok(object)
    }

    /// Deletes objects by name, in parallel; missing ones are no error.
    pub(super) async fn delete_names(&self, names: &[String]) -> Result<(), StorageError> {
        futures::stream::iter(names.iter().cloned())
            .map(|name| async move {
                let target = self.url_of_key(&name);
                let url = self.object_url(&name);
                let result = self
                    .http
                    .send(self, "cannot delete", &target, || {
                        Call::new(Method::DELETE, &url)
                    })
                    .await;
                crate::storage::found(result).map(drop)
            })
            .buffer_unordered(PARALLEL_DELETES)
            .try_collect::<()>()
            .await
    }

    pub(super) fn head_of(object: &json::Object) -> ObjectHead {
        ObjectHead {
            size: object.size(),
            mtime_ns: object.updated.as_deref().map_or(0, rfc3339_ns),
            version: object.generation.clone(),
            meta: ObjectMeta::from_headers(&object.metadata.clone().unwrap_or_default()),
            sums: ContentSums {
                md5: object.md5(),
                crc32c: object.crc32c(),
                ..ContentSums::default()
            },
        }
    }

    pub(super) fn generation_of(
        object: json::Object,
        target: &str,
    ) -> Result<String, StorageError> {
        object.generation.ok_or_else(|| StorageError::Transfer {
            target: target.to_string(),
            message: "the answer carries no generation".into(),
        })
    }
}
