//! The filter's search text: every entry's path in one buffer, in node order.
//!
//! Reaching a path through its node, its plan item and the item's own heap
//! allocation costs a cache miss or more per entry; a million of them made the
//! first filter keystroke miss the 16 ms frame budget. Scanning one contiguous
//! buffer runs at memory speed and splits across cores.

use rayon::prelude::*;

use super::{NodeId, PlanTree};

/// Nodes each parallel search task takes at least.
const MIN_NODES_PER_TASK: usize = 16 * 1024;

#[derive(Clone, Debug, Default)]
pub(super) struct SearchText {
    bytes: Vec<u8>,
    /// `ends[id]` is where node `id`'s path ends in `bytes` (it starts where the
    /// previous node's ends). Directories without a plan entry have empty paths:
    /// their descendants' paths contain theirs, so they show up as ancestors
    /// whenever they would match.
    ends: Vec<usize>,
}

impl SearchText {
    /// The text of `tree`'s nodes, `path` giving each plan item's path.
    pub fn build<'a>(tree: &PlanTree, path: impl Fn(usize) -> &'a [u8]) -> Self {
        let mut text = SearchText {
            bytes: Vec::new(),
            ends: Vec::with_capacity(tree.nodes.len()),
        };
        for node in &tree.nodes {
            if let Some(item) = node.item() {
                text.bytes.extend_from_slice(path(item));
            }
            text.ends.push(text.bytes.len());
        }
        text.bytes.shrink_to_fit();
        text
    }

    /// The path of node `id` (empty for a directory the plan only implies).
    pub fn path(&self, id: NodeId) -> &[u8] {
        let id = id as usize;
        let start = if id == 0 { 0 } else { self.ends[id - 1] };
        &self.bytes[start..self.ends[id]]
    }

    /// Every node (but the root) whose path contains `needle`, in node order.
    pub fn search_all(&self, needle: &[u8]) -> Vec<NodeId> {
        let finder = memchr::memmem::Finder::new(needle);
        (1..self.ends.len() as NodeId)
            .into_par_iter()
            .with_min_len(MIN_NODES_PER_TASK)
            .filter(|&id| finder.find(self.path(id)).is_some())
            .collect()
    }

    /// The nodes of `among` whose path contains `needle`, in their order.
    pub fn search_among(&self, among: Vec<NodeId>, needle: &[u8]) -> Vec<NodeId> {
        let finder = memchr::memmem::Finder::new(needle);
        among
            .into_par_iter()
            .with_min_len(MIN_NODES_PER_TASK)
            .filter(|&id| finder.find(self.path(id)).is_some())
            .collect()
    }
}
