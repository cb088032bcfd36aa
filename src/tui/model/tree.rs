//! The plan as a tree for review, with no rendering: directories carry the totals
//! of their subtree, the visible rows are kept in display order and updated in
//! place on expand/collapse (a keypress never walks the whole tree), and edits
//! change plan items and their ancestors' totals in O(changed items × depth).

mod edit;
mod rows;
mod search;
#[cfg(test)]
mod tests;

pub use edit::Edit;

use edit::Undo;

use crate::sync::SyncPlan;
use crate::sync::plan::{ItemFacts, PlanItem};
use crate::types::SyncAction;

pub type NodeId = u32;
const NONE: u32 = u32::MAX;

/// Counts and bytes of a node's subtree, per action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub counts: [u32; 7],
    /// Bytes of the entries of each action (what it moves or removes).
    pub sizes: [u64; 7],
    pub bytes_to_send: u64,
    pub bytes_saved: u64,
    pub size: u64,
}

impl Totals {
    fn of_item(item: &ItemFacts) -> Totals {
        let mut totals = Totals::default();
        totals.counts[action_index(item.action)] = 1;
        totals.bytes_to_send = item.bytes_to_send;
        totals.bytes_saved = item.bytes_saved;
        totals.size = item.size;
        totals.sizes[action_index(item.action)] = totals.size;
        totals
    }

    /// The totals without one entry of action `own` (a directory's own,
    /// when it changes nothing: its row and details speak of what is below).
    pub fn below(&self, own: Option<SyncAction>) -> Totals {
        let mut below = *self;
        if let Some(own) = own {
            let count = &mut below.counts[action_index(own)];
            *count = count.saturating_sub(1);
        }
        below
    }

    /// Bytes of the entries whose action is `action`.
    pub fn size_of(&self, action: SyncAction) -> u64 {
        self.sizes[action_index(action)]
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
        for (mine, theirs) in self.sizes.iter_mut().zip(other.sizes) {
            apply(mine, theirs);
        }
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

#[derive(Clone, Debug)]
pub struct PlanTree {
    nodes: Vec<Node>,
    dir_totals: Vec<Totals>,
    rows: Vec<NodeId>,
    /// The node of each plan item.
    item_node: Vec<NodeId>,
    /// What the tree keeps of each plan item (by its index in the plan).
    facts: Vec<ItemFacts>,
    undo: Vec<Undo>,
    filter: Option<PathFilter>,
    search: search::SearchText,
    hide_skipped: bool,
    sort: SortKey,
}

/// An active path filter and the nodes it matched (to narrow on the next key).
#[derive(Clone, Debug)]
struct PathFilter {
    query: String,
    matches: Vec<NodeId>,
}

/// Path order, a component at a time, so a directory's descendants follow it
/// directly (`a`, `a/b`, `a.txt`), and names in natural order within a
/// directory (`s2` before `s10`).
fn tree_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.split(|&c| c == b'/')
        .zip(b.split(|&c| c == b'/'))
        .map(|(x, y)| natural_order(x, y))
        .find(|o| o.is_ne())
        .unwrap_or_else(|| {
            let depth = |p: &[u8]| p.iter().filter(|&&c| c == b'/').count();
            depth(a).cmp(&depth(b))
        })
}

/// A tree built from a plan's items as they come: each item's path and
/// facts are kept, nothing else of it (its entries stay in the plan).
#[derive(Debug, Default)]
pub struct TreeBuilder {
    paths: Vec<u8>,
    /// Where item `i`'s path ends in `paths`.
    ends: Vec<usize>,
    facts: Vec<ItemFacts>,
}

impl TreeBuilder {
    /// Adds the plan's next item (its index is the count before it).
    pub fn push(&mut self, item: &PlanItem) {
        self.paths.extend_from_slice(item.path.as_bytes());
        self.ends.push(self.paths.len());
        self.facts.push(item.facts());
    }

    fn path(&self, item: usize) -> &[u8] {
        let start = if item == 0 { 0 } else { self.ends[item - 1] };
        &self.paths[start..self.ends[item]]
    }

    pub fn finish(self) -> PlanTree {
        PlanTree::build_from(self)
    }
}

/// Natural order of two names: runs of digits compare as numbers (`s2` <
/// `s10`; with equal values, fewer leading zeros first), other bytes as
/// bytes. Total: names that differ never compare equal.
pub(crate) fn natural_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let run = |s: &[u8], at: usize| {
                let end = s[at..]
                    .iter()
                    .position(|c| !c.is_ascii_digit())
                    .map_or(s.len(), |n| at + n);
                (at, end)
            };
            let ((x0, x1), (y0, y1)) = (run(a, i), run(b, j));
            let strip = |s: &[u8], from: usize, to: usize| {
                let zeros = s[from..to].iter().take_while(|&&c| c == b'0').count();
                from + zeros.min(to - from - 1)
            };
            let (xs, ys) = (strip(a, x0, x1), strip(b, y0, y1));
            let by_value = (x1 - xs)
                .cmp(&(y1 - ys))
                .then_with(|| a[xs..x1].cmp(&b[ys..y1]))
                .then_with(|| (x1 - x0).cmp(&(y1 - y0)));
            if by_value != Ordering::Equal {
                return by_value;
            }
            (i, j) = (x1, y1);
        } else {
            match a[i].cmp(&b[j]) {
                Ordering::Equal => (i, j) = (i + 1, j + 1),
                other => return other,
            }
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

impl PlanTree {
    /// The tree of a plan held whole.
    pub fn build(plan: &SyncPlan) -> PlanTree {
        let mut builder = TreeBuilder::default();
        for item in &plan.items {
            builder.push(item);
        }
        builder.finish()
    }

    fn build_from(built: TreeBuilder) -> PlanTree {
        let items = built.facts.len();
        let mut order: Vec<u32> = (0..items as u32).collect();
        order.sort_by(|&x, &y| tree_order(built.path(x as usize), built.path(y as usize)));
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
            item_node: vec![NONE; items],
            facts: Vec::new(),
            undo: Vec::new(),
            filter: None,
            search: search::SearchText::default(),
            hide_skipped: false,
            sort: SortKey::Path,
        };
        // The open directory chain: (node, path bytes).
        let mut stack: Vec<(NodeId, Vec<u8>)> = vec![(0, Vec::new())];
        let mut last_child: Vec<NodeId> = vec![NONE];
        for index in order {
            let facts = &built.facts[index as usize];
            let path = built.path(index as usize);
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
            let is_dir = facts.is_dir();
            let parent = stack[stack.len() - 1].0;
            let name = components[components.len() - 1];
            let id = tree.add_node(&mut last_child, parent, name, index, is_dir);
            tree.item_node[index as usize] = id;
            tree.add_to_ancestors(id, &Totals::of_item(facts), 1);
            if is_dir {
                stack.push((id, path.to_vec()));
            }
        }
        tree.search = search::SearchText::build(&tree, |item| built.path(item));
        tree.facts = built.facts;
        tree.expand_to_first_changes();
        tree.rebuild_rows();
        tree
    }

    /// What the tree keeps of the plan's item `index`, as edited.
    pub fn facts(&self, index: usize) -> &ItemFacts {
        &self.facts[index]
    }

    /// Every item's facts, in the plan's order.
    pub fn all_facts(&self) -> &[ItemFacts] {
        &self.facts
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
    fn expand_to_first_changes(&mut self) {
        let mut frontier = vec![0];
        while let Some(dir) = frontier.pop() {
            self.nodes[dir as usize].expanded = true;
            let children: Vec<NodeId> = self.children(dir).collect();
            let shows_change = children
                .iter()
                .any(|&c| !self.nodes[c as usize].is_dir() && self.totals_of(c).changes() > 0);
            if !shows_change {
                frontier.extend(children.into_iter().filter(|&c| {
                    self.nodes[c as usize].is_dir() && self.totals_of(c).changes() > 0
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
    pub fn totals_of(&self, id: NodeId) -> Totals {
        let node = &self.nodes[id as usize];
        match (node.is_dir(), node.item()) {
            (true, Some(item)) => {
                let mut t = self.dir_totals[node.totals as usize];
                t.add(&Totals::of_item(&self.facts[item]), 1);
                t
            }
            (true, None) => self.dir_totals[node.totals as usize],
            (false, Some(item)) => Totals::of_item(&self.facts[item]),
            (false, None) => Totals::default(),
        }
    }
}
