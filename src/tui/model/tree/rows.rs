//! The visible rows: expand/collapse, path filter, hidden skips and sorting.

use super::{NONE, NodeId, PathFilter, PlanTree, SortKey};

impl PlanTree {
    /// The visible nodes in display order (the root itself is not shown).
    pub fn rows(&self) -> &[NodeId] {
        &self.rows
    }

    pub(super) fn rebuild_rows(&mut self) {
        if let Some(matches) = self.filter.as_ref().map(|f| f.matches.clone()) {
            self.rows = self.with_ancestors(&matches);
            return;
        }
        let mut rows = Vec::new();
        self.push_visible(0, &mut rows);
        self.rows = rows;
    }

    /// Whether a node is shown at all: with "hide skipped" on, only entries (or
    /// directories holding entries) that change something are.
    fn shown(&self, id: NodeId) -> bool {
        !self.hide_skipped || self.totals_of(id).changes() > 0
    }

    /// Relinks a directory's children in the current sort order, when they are
    /// not in it yet. Only directories about to be shown are sorted, so changing
    /// the order costs what is visible, not the whole tree.
    fn ensure_sorted(&mut self, dir: NodeId) {
        if self.nodes[dir as usize].sorted_by == self.sort {
            return;
        }
        let mut children: Vec<NodeId> = self.children(dir).collect();
        match self.sort {
            // Nodes were created in path order.
            SortKey::Path => children.sort_unstable(),
            SortKey::Size => {
                children.sort_by_key(|&c| (std::cmp::Reverse(self.totals_of(c).size), c))
            }
            SortKey::ToSend => {
                children.sort_by_key(|&c| (std::cmp::Reverse(self.totals_of(c).bytes_to_send), c))
            }
        }
        let mut next = NONE;
        for &child in children.iter().rev() {
            self.nodes[child as usize].next_sibling = next;
            next = child;
        }
        self.nodes[dir as usize].first_child = next;
        self.nodes[dir as usize].sorted_by = self.sort;
    }

    fn push_visible(&mut self, dir: NodeId, rows: &mut Vec<NodeId>) {
        self.ensure_sorted(dir);
        let mut stack: Vec<NodeId> = self.children(dir).collect();
        stack.reverse();
        while let Some(id) = stack.pop() {
            if !self.shown(id) {
                continue;
            }
            rows.push(id);
            let node = &self.nodes[id as usize];
            if node.is_dir() && node.expanded {
                self.ensure_sorted(id);
                let first = stack.len();
                stack.extend(self.children(id));
                stack[first..].reverse();
            }
        }
    }

    /// `ids` and all their directories, in display order: a walk that enters only
    /// directories holding a match.
    fn with_ancestors(&mut self, ids: &[NodeId]) -> Vec<NodeId> {
        if self.sort == SortKey::Path {
            return self.with_ancestors_in_path_order(ids);
        }
        let mut marked = vec![false; self.nodes.len()];
        for &id in ids {
            if !self.shown(id) {
                continue;
            }
            let mut at = id;
            while at != 0 && at != NONE && !marked[at as usize] {
                marked[at as usize] = true;
                at = self.nodes[at as usize].parent;
            }
        }
        let mut rows = Vec::new();
        let mut stack = vec![0];
        while let Some(dir) = stack.pop() {
            if dir != 0 {
                rows.push(dir);
            }
            if dir == 0 || self.nodes[dir as usize].is_dir() {
                self.ensure_sorted(dir);
                let first = stack.len();
                stack.extend(self.children(dir).filter(|&c| marked[c as usize]));
                stack[first..].reverse();
            }
        }
        rows
    }

    /// [`Self::with_ancestors`] when the display order is path order, which is
    /// node order (nodes are created depth first in path order): a node's
    /// ancestors that are not shown yet go right before it, and no sibling list
    /// is walked.
    fn with_ancestors_in_path_order(&self, ids: &[NodeId]) -> Vec<NodeId> {
        let mut emitted = vec![false; self.nodes.len()];
        let mut rows = Vec::with_capacity(ids.len());
        let mut chain = Vec::new();
        for &id in ids {
            if !self.shown(id) || emitted[id as usize] {
                continue;
            }
            let mut at = self.nodes[id as usize].parent;
            while at != 0 && at != NONE && !emitted[at as usize] {
                chain.push(at);
                at = self.nodes[at as usize].parent;
            }
            for &dir in chain.iter().rev() {
                emitted[dir as usize] = true;
                rows.push(dir);
            }
            chain.clear();
            emitted[id as usize] = true;
            rows.push(id);
        }
        rows
    }

    /// Orders siblings by `key` (directories by their subtree's totals).
    pub fn set_sort(&mut self, key: SortKey) {
        self.sort = key;
        self.rebuild_rows();
    }

    pub fn sort(&self) -> SortKey {
        self.sort
    }

    /// The full path of a node.
    pub fn path_of(&self, id: NodeId) -> std::borrow::Cow<'_, [u8]> {
        if self.nodes[id as usize].item().is_some() {
            return std::borrow::Cow::Borrowed(self.search.path(id));
        }
        let mut parts: Vec<&[u8]> = Vec::new();
        let mut at = id;
        while at != 0 && at != NONE {
            parts.push(&*self.nodes[at as usize].name);
            at = self.nodes[at as usize].parent;
        }
        parts.reverse();
        std::borrow::Cow::Owned(parts.join(&b'/'))
    }

    /// Shows only entries whose path contains `query`, with their directories; an
    /// empty query returns to the tree as it was expanded. A longer query narrows
    /// the previous matches rather than searching everything again.
    pub fn set_filter(&mut self, query: &str) {
        if query.is_empty() {
            self.filter = None;
            self.rebuild_rows();
            return;
        }
        let needle = query.as_bytes();
        let matches = match self.filter.take() {
            Some(previous) if query.starts_with(&previous.query) => {
                self.search.search_among(previous.matches, needle)
            }
            _ => self.search.search_all(needle),
        };
        self.filter = Some(PathFilter {
            query: query.to_string(),
            matches,
        });
        self.rebuild_rows();
    }

    /// Shows or hides entries that change nothing.
    pub fn set_hide_skipped(&mut self, hide: bool) {
        self.hide_skipped = hide;
        self.rebuild_rows();
    }

    /// Expands or collapses the directory shown at `row`; the rows below it move,
    /// nothing else is visited. While a filter is active every match is shown.
    pub fn toggle(&mut self, row: usize) {
        if self.filter.is_some() {
            return;
        }
        let Some(&id) = self.rows.get(row) else {
            return;
        };
        if !self.nodes[id as usize].is_dir() {
            return;
        }
        if self.nodes[id as usize].expanded {
            let depth = self.nodes[id as usize].depth;
            let end = self.rows[row + 1..]
                .iter()
                .position(|&r| self.nodes[r as usize].depth <= depth)
                .map_or(self.rows.len(), |p| row + 1 + p);
            self.rows.drain(row + 1..end);
            self.nodes[id as usize].expanded = false;
        } else {
            self.nodes[id as usize].expanded = true;
            let mut shown = Vec::new();
            self.push_visible(id, &mut shown);
            self.rows.splice(row + 1..row + 1, shown);
        }
    }
}
