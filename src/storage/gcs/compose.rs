//! Joining a composite upload's parts into its object: compose calls (a tree
//! of intermediates past 32 sources), the CRC32C the result must have, and
//! the removal of the temporaries.

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt};
use reqwest::Method;

use super::request::{Call, Payload};
use super::{
    COMPOSE_SOURCES, CONTENT_TYPE, GcsStorage, PARALLEL_DELETES, generation_condition, json,
    staging,
};
use crate::storage::StorageError;
use crate::storage::meta::ObjectMeta;
use crate::storage::object::Expect;

impl GcsStorage {
    /// Composes `sources` (name, generation) into `key`, in a tree of
    /// intermediates under the upload's folder when there are more than a
    /// call takes. Returns the object and the intermediates' names.
    pub(super) async fn compose(
        &self,
        stem: &str,
        key: &str,
        mut sources: Vec<(String, String)>,
        meta: &ObjectMeta,
        expect: Expect<'_>,
    ) -> Result<(json::Object, Vec<String>), StorageError> {
        let mut intermediates = Vec::new();
        let mut level = 0;
        while sources.len() > COMPOSE_SOURCES {
            level += 1;
            let groups: Vec<Vec<(String, String)>> =
                sources.chunks(COMPOSE_SOURCES).map(<[_]>::to_vec).collect();
            let composed: Vec<json::Object> = futures::stream::iter(groups.into_iter().enumerate())
                .map(|(index, group)| {
                    let name = staging::composite_name(stem, level, index, key);
                    async move {
                        self.compose_once(&name, &group, HashMap::new(), Expect::Any)
                            .await
                    }
                })
                .buffered(PARALLEL_DELETES)
                .try_collect()
                .await?;
            sources = composed
                .into_iter()
                .map(|o| (o.name, o.generation.unwrap_or_default()))
                .collect();
            intermediates.extend(sources.iter().map(|(name, _)| name.clone()));
        }
        let object = self
            .compose_once(key, &sources, self.meta_headers(meta), expect)
            .await?;
        Ok((object, intermediates))
    }

    async fn compose_once(
        &self,
        key: &str,
        sources: &[(String, String)],
        metadata: HashMap<String, String>,
        expect: Expect<'_>,
    ) -> Result<json::Object, StorageError> {
        let target = self.url_of_key(key);
        let body = serde_json::to_string(&json::ComposeRequest {
            source_objects: sources
                .iter()
                .map(|(name, generation)| json::ComposeSource {
                    name,
                    generation: Some(generation)
                        .filter(|g| !g.is_empty())
                        .map(|g| g.as_str()),
                })
                .collect(),
            destination: json::NewObject {
                name: None,
                content_type: CONTENT_TYPE,
                md5_hash: None,
                crc32c: None,
                metadata,
                storage_class: self.class_for(key),
            },
        })
        .map_err(|e| StorageError::Transfer {
            target: target.clone(),
            message: e.to_string(),
        })?;
        let mut url = format!("{}/compose", self.object_url(key));
        if let Some(generation) = generation_condition(expect) {
            url.push_str(&format!("?ifGenerationMatch={generation}"));
        }
        self.json("cannot compose", &target, || Call {
            payload: Payload::Json(&body),
            server_side: true,
            ..Call::new(Method::POST, &url)
        })
        .await
    }

    /// Removes an upload's temporaries (parts and intermediates).
    pub(super) async fn remove_upload_folder(&self, stem: &str) -> Result<(), StorageError> {
        let names: Vec<String> = self
            .list_all(&staging::upload_folder(stem))
            .await?
            .into_iter()
            .map(|o| o.name)
            .filter(|name| name.starts_with(staging::STAGING))
            .collect();
        self.delete_names(&names).await
    }

    /// The CRC32C the composite of `sources` (name, generation) must have:
    /// each source's, as the service stored it (`staged`: the upload's
    /// folder as listed), combined in order (`None` when one is not known).
    pub(super) async fn combined_crc32c(
        &self,
        staged: &[json::Object],
        sources: &[(String, String)],
    ) -> Result<Option<u32>, StorageError> {
        let mut stored: HashMap<String, (Option<String>, Option<u32>, u64)> = staged
            .iter()
            .map(|o| {
                let facts = (o.generation.clone(), o.crc32c(), o.size());
                (o.name.clone(), facts)
            })
            .collect();
        let mut combined: Option<u32> = None;
        for (name, generation) in sources {
            if !stored.contains_key(name) {
                // An object reused whole (an append's old content).
                if let Some(o) = self.head_object(name).await? {
                    stored.insert(name.clone(), (o.generation.clone(), o.crc32c(), o.size()));
                }
            }
            let Some((Some(found), Some(crc), len)) = stored.get(name).cloned() else {
                return Ok(None);
            };
            if &found != generation {
                return Ok(None);
            }
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            combined = Some(match combined {
                None => crc,
                Some(before) => crc32c::crc32c_combine(before, crc, len),
            });
        }
        Ok(combined)
    }
}
