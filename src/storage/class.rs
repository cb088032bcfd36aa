//! Storage classes (`--storage-class`): S3's classes, Azure's access tiers,
//! GCS's classes. A class is validated against the destination's store before
//! anything runs, and carries what it does to reads: the planner needs to
//! know whether the old object can be read or copied at all (a delta reuses
//! its bytes), and the cost estimate whether reading it is charged.

use serde::{Deserialize, Serialize};

use crate::uri::Location;

/// A storage class as the destination's store spells it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageClass {
    /// `STANDARD_IA`, `Cool`, `NEARLINE`: what goes into the request.
    pub name: String,
    pub access: ClassAccess,
}

/// How an object stored in a class can be read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassAccess {
    /// At once, at the store's usual request prices.
    Immediate,
    /// At once, but every byte read (or copied server-side) is charged a
    /// retrieval fee.
    RetrievalFee,
    /// Only after a restore that takes hours: no reads, no server-side copies
    /// of it, no metadata changes in place.
    RestoreFirst,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageClassError {
    #[error("--storage-class {given}: {store} has no such {what}; it has {known}")]
    Unknown {
        given: String,
        store: &'static str,
        what: &'static str,
        known: String,
    },
    #[error(
        "--storage-class {given}: the destination {destination} is {what}, which has no storage classes"
    )]
    NoClasses {
        given: String,
        destination: String,
        what: &'static str,
    },
}

impl StorageClass {
    /// `given` (any case) as a class of the destination's store.
    pub fn for_destination(
        given: &str,
        destination: &Location,
    ) -> Result<StorageClass, StorageClassError> {
        let table = destination
            .remote()
            .and_then(|remote| remote.kind.classes.map(|table| (remote.kind, table)));
        let Some((kind, table)) = table else {
            return Err(StorageClassError::NoClasses {
                given: given.to_string(),
                destination: destination.to_string(),
                what: destination
                    .remote()
                    .map_or("a local directory", |remote| remote.kind.service),
            });
        };
        let (store, what, classes) = (kind.service, table.word, table.classes);
        let wanted = given.trim().replace(['-', ' '], "_");
        classes
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&wanted))
            .map(|(name, access)| StorageClass {
                name: (*name).to_string(),
                access: *access,
            })
            .ok_or_else(|| StorageClassError::Unknown {
                given: given.to_string(),
                store,
                what,
                known: classes
                    .iter()
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// What the class does to a delta transfer, for the plan header (`None`:
    /// nothing).
    pub fn delta_consequence(&self) -> Option<String> {
        match self.access {
            ClassAccess::Immediate => None,
            ClassAccess::RetrievalFee => Some(format!(
                "{}: bytes a delta reuses are read from the old object and charged as retrieval; deltas still save time, the cost estimate counts the fee",
                self.name
            )),
            ClassAccess::RestoreFirst => Some(format!(
                "{}: objects cannot be read, copied or changed until restored, so changed files go whole (no delta) and attribute changes send the file again; sidecars stay STANDARD, so `check` still verifies by blake3",
                self.name
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(uri: &str) -> Location {
        Location::parse(uri).unwrap()
    }

    #[test]
    fn each_store_takes_its_own_classes_in_any_case() {
        let s3 = StorageClass::for_destination("standard-ia", &at("s3://bkt/p")).unwrap();
        assert_eq!(s3.name, "STANDARD_IA");
        assert_eq!(s3.access, ClassAccess::RetrievalFee);
        let deep = StorageClass::for_destination("DEEP_ARCHIVE", &at("s3://bkt/p")).unwrap();
        assert_eq!(deep.access, ClassAccess::RestoreFirst);
        let cool = StorageClass::for_destination("cool", &at("az://ctr/p")).unwrap();
        assert_eq!(cool.name, "Cool");
        let archive = StorageClass::for_destination("Archive", &at("az://ctr/p")).unwrap();
        assert_eq!(archive.access, ClassAccess::RestoreFirst);
        let nearline = StorageClass::for_destination("Nearline", &at("gs://bkt/p")).unwrap();
        assert_eq!(nearline.name, "NEARLINE");
        // GCS's archive is online, at a price per byte read.
        let gcs_archive = StorageClass::for_destination("archive", &at("gs://bkt/p")).unwrap();
        assert_eq!(gcs_archive.access, ClassAccess::RetrievalFee);
    }

    #[test]
    fn a_class_of_another_store_or_of_none_is_refused_with_the_list() {
        let err = StorageClass::for_destination("NEARLINE", &at("s3://bkt/p")).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("S3 has no such storage class"),
            "{message}"
        );
        assert!(message.contains("STANDARD_IA"), "{message}");
        let err = StorageClass::for_destination("STANDARD_IA", &at("az://ctr/p")).unwrap_err();
        assert!(
            err.to_string().contains("Hot, Cool, Cold, Archive"),
            "{err}"
        );
        assert!(matches!(
            StorageClass::for_destination("STANDARD", &at("/srv/data")),
            Err(StorageClassError::NoClasses { .. })
        ));
        assert!(matches!(
            StorageClass::for_destination("STANDARD", &at("sftp://host/srv")),
            Err(StorageClassError::NoClasses { .. })
        ));
    }
}
