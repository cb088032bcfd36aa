//! The plan as a tree for review, with no rendering: directories carry the totals
//! of their subtree, the visible rows are kept in display order and updated in
//! place on expand/collapse (a keypress never walks the whole tree), and edits
//! change plan items and their ancestors' totals in O(changed items × depth).

use crate::sync::plan::{PlanItem, UserEdit};
use crate::sync::{SyncPlan, transfer_action};
use crate::types::{EntryKind, RelPath, SyncAction};

pub type NodeId = u32;
const NONE: u32 = u32::MAX;

/// Counts and bytes of a node's subtree, per action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub counts: [u32; 7],
    pub bytes_to_send: u64,
    pub bytes_saved: u64,
    pub size: u64,
}

impl Totals {
    fn of_item(item: &PlanItem) -> Totals {
        let mut totals = Totals::default();
        totals.counts[action_index(item.action)] = 1;
        totals.bytes_to_send = item.bytes_to_send;
        totals.bytes_saved = item.bytes_saved;
        totals.size = item
            .src
            .as_ref()
            .or(item.dst.as_ref())
            .map_or(0, |e| e.size);
        totals
    }

    pub fn count(&self, action: SyncAction) -> u32 {
        self.counts[action_index(action)]
    }

    /// Entries that change something.
    pub fn changes(&self) -> u32 {
        self.counts.iter().sum::<u32>() - self.count(SyncAction::Skip)
    }

    fn add(&mut self, other: &Totals, sign: i64) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine = (i64::from(*mine) + sign * i64::from(theirs)) as u32;
        }
        let apply = |value: &mut u64, delta: u64| {
            *value = if sign > 0 {
                *value + delta
            } else {
                *value - delta
            };
        };
        apply(&mut self.bytes_to_send, other.bytes_to_send);
        apply(&mut self.bytes_saved, other.bytes_saved);
        apply(&mut self.size, other.size);
    }
}

fn action_index(action: SyncAction) -> usize {
    SyncAction::ALL
        .iter()
        .position(|a| *a == action)
        .unwrap_or(0)
}

#[derive(Clone, Debug)]
pub struct Node {
    pub name: Box<[u8]>,
    pub parent: NodeId,
    first_child: NodeId,
    next_sibling: NodeId,
    /// Index of the plan item, or NONE for a directory the plan only implies.
    item: u32,
    /// Index into `dir_totals` for directories, NONE for other entries.
    totals: u32,
    pub depth: u16,
    pub expanded: bool,
    /// The order this directory's children are linked in.
    sorted_by: SortKey,
}

/// How siblings are ordered (`s` cycles through these).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    #[default]
    Path,
    /// Largest first.
    Size,
    /// Most bytes to send first.
    ToSend,
}

impl SortKey {
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Path => SortKey::Size,
            SortKey::Size => SortKey::ToSend,
            SortKey::ToSend => SortKey::Path,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SortKey::Path => "path",
            SortKey::Size => "size",
            SortKey::ToSend => "bytes to send",
        }
    }
}

impl Node {
    pub fn is_dir(&self) -> bool {
        self.totals != NONE
    }

    pub fn item(&self) -> Option<usize> {
        (self.item != NONE).then_some(self.item as usize)
    }
}

/// One review edit of an entry or a whole subtree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    /// Skip every changing entry (or, when all are skipped by the user, unskip them).
    ToggleSkip,
    /// Send deltas whole.
    ForceFull,
    /// Keep entries the plan would delete.
    VetoDelete,
    /// Leave the subtree out: skip everything in it, and record an exclude rule
    /// in the plan so `apply --replan` leaves it out too.
    Exclude,
}

/// What an edit changed, to undo it.
#[derive(Clone, Debug)]
pub struct Undo {
    previous: Vec<(u32, PlanItem)>,
    /// Filter rules the plan had before the edit added one.
    filters_before: Option<usize>,
}

#[derive(Clone, Debug)]
pub struct PlanTree {
    nodes: Vec<Node>,
    dir_totals: Vec<Totals>,
    rows: Vec<NodeId>,
    /// The node of each plan item.
    item_node: Vec<NodeId>,
    undo: Vec<Undo>,
    filter: Option<PathFilter>,
    hide_skipped: bool,
    sort: SortKey,
}

/// An active path filter and the nodes it matched (to narrow on the next key).
#[derive(Clone, Debug)]
struct PathFilter {
    query: String,
    matches: Vec<NodeId>,
}

/// Path order with `/` before every other byte, so a directory's descendants
/// follow it directly (`a`, `a/b`, `a.txt` rather than `a`, `a.txt`, `a/b`).
fn tree_order(a: &RelPath, b: &RelPath) -> std::cmp::Ordering {
    let key = |byte: &u8| {
        if *byte == b'/' {
            0u16
        } else {
            u16::from(*byte) + 1
        }
    };
    a.as_bytes()
        .iter()
        .map(key)
        .cmp(b.as_bytes().iter().map(key))
}

impl PlanTree {
    pub fn build(plan: &SyncPlan) -> PlanTree {
        let mut order: Vec<u32> = (0..plan.items.len() as u32).collect();
        order.sort_by(|&x, &y| {
            tree_order(&plan.items[x as usize].path, &plan.items[y as usize].path)
        });
        let mut tree = PlanTree {
            nodes: vec![Node {
                name: Box::default(),
                parent: NONE,
                first_child: NONE,
                next_sibling: NONE,
                item: NONE,
                totals: 0,
                depth: 0,
                expanded: true,
                sorted_by: SortKey::Path,
            }],
            dir_totals: vec![Totals::default()],
            rows: Vec::new(),
            item_node: vec![NONE; plan.items.len()],
            undo: Vec::new(),
            filter: None,
            hide_skipped: false,
            sort: SortKey::Path,
        };
        // The open directory chain: (node, path bytes).
        let mut stack: Vec<(NodeId, Vec<u8>)> = vec![(0, Vec::new())];
        let mut last_child: Vec<NodeId> = vec![NONE];
        for index in order {
            let item = &plan.items[index as usize];
            let path = item.path.as_bytes();
            // Close directories that are not ancestors of this path.
            while stack.len() > 1 {
                let dir = &stack[stack.len() - 1].1;
                if path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/' {
                    break;
                }
                stack.pop();
            }
            // Open the implied directories between the deepest open one and the entry.
            let components: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
            let open = stack.len() - 1;
            for &component in &components[open..components.len() - 1] {
                let parent = stack[stack.len() - 1].0;
                let id = tree.add_node(&mut last_child, parent, component, NONE, true);
                let mut dir_path = stack[stack.len() - 1].1.clone();
                if !dir_path.is_empty() {
                    dir_path.push(b'/');
                }
                dir_path.extend_from_slice(component);
                stack.push((id, dir_path));
            }
            let is_dir =
                item.src.as_ref().or(item.dst.as_ref()).map(|e| e.kind) == Some(EntryKind::Dir);
            let parent = stack[stack.len() - 1].0;
            let name = components[components.len() - 1];
            let id = tree.add_node(&mut last_child, parent, name, index, is_dir);
            tree.item_node[index as usize] = id;
            let totals = Totals::of_item(item);
            tree.add_to_ancestors(id, &totals, 1);
            if is_dir {
                stack.push((id, path.to_vec()));
            }
        }
        tree.expand_to_first_changes(plan);
        tree.rebuild_rows(plan);
        tree
    }

    fn add_node(
        &mut self,
        last_child: &mut Vec<NodeId>,
        parent: NodeId,
        name: &[u8],
        item: u32,
        is_dir: bool,
    ) -> NodeId {
        let id = self.nodes.len() as NodeId;
        let totals = if is_dir {
            self.dir_totals.push(Totals::default());
            (self.dir_totals.len() - 1) as u32
        } else {
            NONE
        };
        self.nodes.push(Node {
            name: name.into(),
            parent,
            first_child: NONE,
            next_sibling: NONE,
            item,
            totals,
            depth: self.nodes[parent as usize].depth + 1,
            expanded: false,
            sorted_by: SortKey::Path,
        });
        last_child.push(NONE);
        match last_child[parent as usize] {
            NONE => self.nodes[parent as usize].first_child = id,
            prev => self.nodes[prev as usize].next_sibling = id,
        }
        last_child[parent as usize] = id;
        id
    }

    /// Adds (sign 1) or removes (sign −1) `totals` to every directory above `id`.
    fn add_to_ancestors(&mut self, id: NodeId, totals: &Totals, sign: i64) {
        let mut at = self.nodes[id as usize].parent;
        while at != NONE {
            let node = &self.nodes[at as usize];
            self.dir_totals[node.totals as usize].add(totals, sign);
            at = node.parent;
        }
    }

    /// Opens directories from the root down until a level shows a change.
    fn expand_to_first_changes(&mut self, plan: &SyncPlan) {
        let mut frontier = vec![0];
        while let Some(dir) = frontier.pop() {
            self.nodes[dir as usize].expanded = true;
            let children: Vec<NodeId> = self.children(dir).collect();
            let shows_change = children.iter().any(|&c| {
                !self.nodes[c as usize].is_dir() && self.totals_of(c, plan).changes() > 0
            });
            if !shows_change {
                frontier.extend(children.into_iter().filter(|&c| {
                    self.nodes[c as usize].is_dir() && self.totals_of(c, plan).changes() > 0
                }));
            }
        }
    }

    pub fn children(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        let mut next = self.nodes[id as usize].first_child;
        std::iter::from_fn(move || {
            (next != NONE).then(|| {
                let current = next;
                next = self.nodes[current as usize].next_sibling;
                current
            })
        })
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    pub fn len(&self) -> usize {
        self.nodes.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole plan's totals.
    pub fn totals(&self) -> Totals {
        self.dir_totals[0]
    }

    /// Totals of a node: its subtree's for a directory (its own item included),
    /// its item's otherwise.
    pub fn totals_of(&self, id: NodeId, plan: &SyncPlan) -> Totals {
        let node = &self.nodes[id as usize];
        match (node.is_dir(), node.item()) {
            (true, Some(item)) => {
                let mut t = self.dir_totals[node.totals as usize];
                t.add(&Totals::of_item(&plan.items[item]), 1);
                t
            }
            (true, None) => self.dir_totals[node.totals as usize],
            (false, Some(item)) => Totals::of_item(&plan.items[item]),
            (false, None) => Totals::default(),
        }
    }

    /// The visible nodes in display order (the root itself is not shown).
    pub fn rows(&self) -> &[NodeId] {
        &self.rows
    }

    fn rebuild_rows(&mut self, plan: &SyncPlan) {
        if let Some(matches) = self.filter.as_ref().map(|f| f.matches.clone()) {
            self.rows = self.with_ancestors(&matches, plan);
            return;
        }
        let mut rows = Vec::new();
        self.push_visible(0, &mut rows, plan);
        self.rows = rows;
    }

    /// Whether a node is shown at all: with "hide skipped" on, only entries (or
    /// directories holding entries) that change something are.
    fn shown(&self, id: NodeId, plan: &SyncPlan) -> bool {
        !self.hide_skipped || self.totals_of(id, plan).changes() > 0
    }

    /// Relinks a directory's children in the current sort order, when they are
    /// not in it yet. Only directories about to be shown are sorted, so changing
    /// the order costs what is visible, not the whole tree.
    fn ensure_sorted(&mut self, dir: NodeId, plan: &SyncPlan) {
        if self.nodes[dir as usize].sorted_by == self.sort {
            return;
        }
        let mut children: Vec<NodeId> = self.children(dir).collect();
        match self.sort {
            // Nodes were created in path order.
            SortKey::Path => children.sort_unstable(),
            SortKey::Size => {
                children.sort_by_key(|&c| (std::cmp::Reverse(self.totals_of(c, plan).size), c))
            }
            SortKey::ToSend => children
                .sort_by_key(|&c| (std::cmp::Reverse(self.totals_of(c, plan).bytes_to_send), c)),
        }
        let mut next = NONE;
        for &child in children.iter().rev() {
            self.nodes[child as usize].next_sibling = next;
            next = child;
        }
        self.nodes[dir as usize].first_child = next;
        self.nodes[dir as usize].sorted_by = self.sort;
    }

    fn push_visible(&mut self, dir: NodeId, rows: &mut Vec<NodeId>, plan: &SyncPlan) {
        self.ensure_sorted(dir, plan);
        let mut stack: Vec<NodeId> = self.children(dir).collect();
        stack.reverse();
        while let Some(id) = stack.pop() {
            if !self.shown(id, plan) {
                continue;
            }
            rows.push(id);
            let node = &self.nodes[id as usize];
            if node.is_dir() && node.expanded {
                self.ensure_sorted(id, plan);
                let first = stack.len();
                stack.extend(self.children(id));
                stack[first..].reverse();
            }
        }
    }

    /// `ids` and all their directories, in display order: a walk that enters only
    /// directories holding a match.
    fn with_ancestors(&mut self, ids: &[NodeId], plan: &SyncPlan) -> Vec<NodeId> {
        let mut marked = vec![false; self.nodes.len()];
        for &id in ids {
            if !self.shown(id, plan) {
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
                self.ensure_sorted(dir, plan);
                let first = stack.len();
                stack.extend(self.children(dir).filter(|&c| marked[c as usize]));
                stack[first..].reverse();
            }
        }
        rows
    }

    /// Orders siblings by `key` (directories by their subtree's totals).
    pub fn set_sort(&mut self, plan: &SyncPlan, key: SortKey) {
        self.sort = key;
        self.rebuild_rows(plan);
    }

    pub fn sort(&self) -> SortKey {
        self.sort
    }

    /// The full path of a node.
    pub fn path_of<'a>(&self, id: NodeId, plan: &'a SyncPlan) -> std::borrow::Cow<'a, [u8]> {
        if let Some(item) = self.nodes[id as usize].item() {
            return std::borrow::Cow::Borrowed(plan.items[item].path.as_bytes());
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
    pub fn set_filter(&mut self, plan: &SyncPlan, query: &str) {
        if query.is_empty() {
            self.filter = None;
            self.rebuild_rows(plan);
            return;
        }
        let finder = memchr::memmem::Finder::new(query.as_bytes());
        let matches = match self.filter.take() {
            Some(previous) if query.starts_with(&previous.query) => previous
                .matches
                .into_iter()
                .filter(|&id| finder.find(&self.path_of(id, plan)).is_some())
                .collect(),
            _ => (1..self.nodes.len() as NodeId)
                .filter(|&id| finder.find(&self.path_of(id, plan)).is_some())
                .collect(),
        };
        self.filter = Some(PathFilter {
            query: query.to_string(),
            matches,
        });
        self.rebuild_rows(plan);
    }

    /// Shows or hides entries that change nothing.
    pub fn set_hide_skipped(&mut self, plan: &SyncPlan, hide: bool) {
        self.hide_skipped = hide;
        self.rebuild_rows(plan);
    }

    /// Expands or collapses the directory shown at `row`; the rows below it move,
    /// nothing else is visited. While a filter is active every match is shown.
    pub fn toggle(&mut self, plan: &SyncPlan, row: usize) {
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
            self.push_visible(id, &mut shown, plan);
            self.rows.splice(row + 1..row + 1, shown);
        }
    }

    /// Plan items in the subtree of `id` (its own included).
    fn items_below(&self, id: NodeId) -> Vec<(NodeId, usize)> {
        let mut out = Vec::new();
        let mut stack = vec![id];
        while let Some(n) = stack.pop() {
            if let Some(item) = self.nodes[n as usize].item() {
                out.push((n, item));
            }
            stack.extend(self.children(n));
        }
        out
    }

    /// Applies an edit to the entry at `id` or its whole subtree; returns how many
    /// items changed. The plan's stats are refreshed.
    pub fn edit(&mut self, plan: &mut SyncPlan, id: NodeId, edit: Edit) -> usize {
        let targets = self.items_below(id);
        let user_skipped = |item: &PlanItem| matches!(item.edit, Some(UserEdit::Skipped(_)));
        let unskip = edit == Edit::ToggleSkip
            && targets.iter().any(|(_, i)| user_skipped(&plan.items[*i]))
            && targets.iter().all(|(_, i)| {
                user_skipped(&plan.items[*i]) || plan.items[*i].action == SyncAction::Skip
            });
        let whole = transfer_action(&plan.source, &plan.destination);
        let mut undo = Undo {
            previous: Vec::new(),
            filters_before: None,
        };
        if edit == Edit::Exclude && id != 0 {
            let path = self.path_of(id, plan);
            let mut pattern = format!("/{}", String::from_utf8_lossy(&path));
            if self.nodes[id as usize].is_dir() {
                pattern.push('/');
            }
            let rule = crate::filter::FilterRule {
                kind: crate::filter::RuleKind::Exclude,
                pattern,
            };
            if !plan.options.filters.contains(&rule) {
                undo.filters_before = Some(plan.options.filters.len());
                // First matching rule wins: the user's exclusion goes first.
                plan.options.filters.insert(0, rule);
            }
        }
        for (node, index) in targets {
            let before = plan.items[index].clone();
            let mut after = before.clone();
            match edit {
                Edit::ToggleSkip if unskip => {
                    let Some(UserEdit::Skipped(was)) = before.edit else {
                        continue;
                    };
                    after.action = was;
                    after.edit = None;
                    restore_estimates(&mut after, whole);
                }
                Edit::ToggleSkip | Edit::VetoDelete | Edit::Exclude => {
                    if before.action == SyncAction::Skip
                        || (edit == Edit::VetoDelete && before.action != SyncAction::Delete)
                    {
                        continue;
                    }
                    after.edit = Some(UserEdit::Skipped(before.action));
                    after.action = SyncAction::Skip;
                    after.bytes_to_send = 0;
                    after.bytes_saved = 0;
                }
                Edit::ForceFull => {
                    if before.action != SyncAction::Delta {
                        continue;
                    }
                    after.edit = Some(UserEdit::ForcedFull(SyncAction::Delta));
                    after.action = whole;
                    after.bytes_to_send = after.src.as_ref().map_or(0, |e| e.size);
                    after.bytes_saved = 0;
                }
            }
            self.add_to_ancestors(node, &Totals::of_item(&before), -1);
            self.add_to_ancestors(node, &Totals::of_item(&after), 1);
            plan.items[index] = after;
            undo.previous.push((index as u32, before));
        }
        let changed = undo.previous.len();
        if changed > 0 || undo.filters_before.is_some() {
            plan.refresh_stats();
            self.undo.push(undo);
            if self.hide_skipped {
                self.rebuild_rows(plan);
            }
        }
        changed
    }

    /// Reverts the last edit; false when there is none.
    pub fn undo(&mut self, plan: &mut SyncPlan) -> bool {
        let Some(undo) = self.undo.pop() else {
            return false;
        };
        if undo.filters_before.is_some() {
            plan.options.filters.remove(0);
        }
        for (index, before) in undo.previous.into_iter().rev() {
            let node = self.item_node[index as usize];
            let current = Totals::of_item(&plan.items[index as usize]);
            self.add_to_ancestors(node, &current, -1);
            self.add_to_ancestors(node, &Totals::of_item(&before), 1);
            plan.items[index as usize] = before;
        }
        plan.refresh_stats();
        if self.hide_skipped {
            self.rebuild_rows(plan);
        }
        true
    }
}

/// An unskipped item gets its planned estimates back (whole size for transfers;
/// a delta's estimate is re-derived on the next plan).
fn restore_estimates(item: &mut PlanItem, whole: SyncAction) {
    if item.action == whole || item.action == SyncAction::Delta {
        item.bytes_to_send = item.src.as_ref().map_or(0, |e| e.size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Listing;
    use crate::sync::{Scan, SyncOptions, build_plan};
    use crate::types::{Entry, Manifest, ManifestEntry};
    use crate::uri::Location;

    fn listing(entries: &[(&str, Option<u64>)]) -> Listing {
        let entries = entries
            .iter()
            .map(|(path, size)| ManifestEntry {
                path: (*path).into(),
                entry: match size {
                    Some(size) => Entry::file(*size, 1, 0o644),
                    None => Entry {
                        kind: EntryKind::Dir,
                        size: 0,
                        mtime_ns: 1,
                        mode: 0o755,
                        extra: None,
                    },
                },
            })
            .collect();
        Listing {
            manifest: Manifest::new(entries, Vec::new(), true),
            issues: Vec::new(),
        }
    }

    fn sample() -> SyncPlan {
        let src = listing(&[
            ("a", None),
            ("a/b", None),
            ("a/b/big", Some(1000)),
            ("a/b/c", Some(10)),
            ("a.txt", Some(5)),
            ("same", Some(3)),
        ]);
        let dst = listing(&[
            ("a", None),
            ("a/b", None),
            ("a/b/big", Some(900)),
            ("old", Some(7)),
            ("same", Some(3)),
        ]);
        let options = SyncOptions {
            delete: true,
            max_delete: None,
            archive: false,
            checksum: false,
            delta_threshold: 100,
            block_size: 65536,
            allow_empty_source: false,
            filters: Vec::new(),
        };
        build_plan(
            Location::Local("/s".into()),
            Location::Local("/d".into()),
            &Scan {
                source: src,
                destination: dst,
            },
            options,
        )
    }

    fn names(tree: &PlanTree) -> Vec<String> {
        tree.rows()
            .iter()
            .map(|&id| {
                let node = tree.node(id);
                format!(
                    "{}{}",
                    "  ".repeat(node.depth as usize - 1),
                    String::from_utf8_lossy(&node.name)
                )
            })
            .collect()
    }

    #[test]
    fn builds_directories_before_siblings_and_aggregates() {
        let plan = sample();
        let tree = PlanTree::build(&plan);
        assert_eq!(tree.len(), 7);
        // Root level shows changes (a.txt, old), so only the root is expanded.
        assert_eq!(names(&tree), ["a", "a.txt", "old", "same"]);
        let a = tree.rows()[0];
        let t = tree.totals_of(a, &plan);
        assert_eq!(t.count(SyncAction::Delta), 1);
        assert_eq!(t.count(SyncAction::Copy), 1);
        assert_eq!(t.bytes_to_send, 1010);
        assert_eq!(tree.totals().changes(), 4, "big, c, a.txt, old");
        assert_eq!(tree.totals().count(SyncAction::Delete), 1);
    }

    #[test]
    fn expand_and_collapse_move_only_the_rows_below() {
        let plan = sample();
        let mut tree = PlanTree::build(&plan);
        tree.toggle(&plan, 0);
        assert_eq!(names(&tree), ["a", "  b", "a.txt", "old", "same"]);
        tree.toggle(&plan, 1);
        assert_eq!(
            names(&tree),
            ["a", "  b", "    big", "    c", "a.txt", "old", "same"]
        );
        tree.toggle(&plan, 0);
        assert_eq!(names(&tree), ["a", "a.txt", "old", "same"]);
        tree.toggle(&plan, 0);
        assert_eq!(
            names(&tree),
            ["a", "  b", "    big", "    c", "a.txt", "old", "same"],
            "b stays open"
        );
        tree.toggle(&plan, 6);
        assert_eq!(tree.rows().len(), 7, "files do not toggle");
    }

    #[test]
    fn filter_narrows_and_shows_directories_of_matches() {
        let plan = sample();
        let mut tree = PlanTree::build(&plan);
        tree.set_filter(&plan, "b");
        assert_eq!(names(&tree), ["a", "  b", "    big", "    c"]);
        tree.set_filter(&plan, "bi");
        assert_eq!(names(&tree), ["a", "  b", "    big"]);
        tree.set_filter(&plan, "txt");
        assert_eq!(names(&tree), ["a.txt"]);
        tree.set_filter(&plan, "");
        assert_eq!(names(&tree), ["a", "a.txt", "old", "same"]);
    }

    #[test]
    fn sort_orders_siblings_lazily() {
        let plan = sample();
        let mut tree = PlanTree::build(&plan);
        tree.toggle(&plan, 0);
        tree.toggle(&plan, 1);
        tree.set_sort(&plan, SortKey::Size);
        assert_eq!(
            names(&tree),
            ["a", "  b", "    big", "    c", "old", "a.txt", "same"]
        );
        tree.set_sort(&plan, SortKey::Path);
        assert_eq!(
            names(&tree),
            ["a", "  b", "    big", "    c", "a.txt", "old", "same"]
        );
        tree.set_sort(&plan, SortKey::Size);
        tree.set_filter(&plan, "a");
        assert_eq!(
            names(&tree),
            ["a", "  b", "    big", "    c", "a.txt", "same"]
        );
    }

    #[test]
    fn hide_skipped_keeps_only_changes() {
        let mut plan = sample();
        let mut tree = PlanTree::build(&plan);
        tree.set_hide_skipped(&plan, true);
        assert_eq!(names(&tree), ["a", "a.txt", "old"]);
        let txt = tree.rows()[1];
        tree.edit(&mut plan, txt, Edit::ToggleSkip);
        assert_eq!(names(&tree), ["a", "old"]);
        tree.undo(&mut plan);
        assert_eq!(names(&tree), ["a", "a.txt", "old"]);
    }

    #[test]
    fn subtree_edits_update_totals_and_undo_restores() {
        let mut plan = sample();
        let mut tree = PlanTree::build(&plan);
        let original = plan.clone();
        let a = tree.rows()[0];
        assert_eq!(tree.edit(&mut plan, a, Edit::ForceFull), 1);
        assert_eq!(plan.stats.delta.count, 0);
        assert_eq!(tree.totals_of(a, &plan).count(SyncAction::Copy), 2);
        assert_eq!(tree.edit(&mut plan, a, Edit::ToggleSkip), 2);
        assert_eq!(tree.totals_of(a, &plan).changes(), 0);
        assert_eq!(tree.totals().changes(), 2);
        assert_eq!(plan.stats.bytes_to_send, 5);
        // Space again unskips what the user skipped.
        assert_eq!(tree.edit(&mut plan, a, Edit::ToggleSkip), 2);
        assert_eq!(tree.totals_of(a, &plan).changes(), 2);

        let old = tree.rows()[2];
        assert_eq!(tree.edit(&mut plan, old, Edit::VetoDelete), 1);
        assert_eq!(plan.stats.delete.count, 0);
        assert_eq!(
            tree.edit(&mut plan, old, Edit::VetoDelete),
            0,
            "nothing left to veto"
        );

        while tree.undo(&mut plan) {}
        assert_eq!(plan, original);
        assert_eq!(tree.totals(), PlanTree::build(&original).totals());
    }
}
