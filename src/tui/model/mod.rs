//! Review state: the plan tree, its rows and edits. No rendering, no IO.

pub mod tree;

pub use tree::{Edit, Node, NodeId, PlanTree, SortKey, Totals, TreeBuilder};
