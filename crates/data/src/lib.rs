//! The procedural visual-reasoning world, its tasks and oracle, and loaders for real datasets.
