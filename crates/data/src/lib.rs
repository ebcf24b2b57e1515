//! The procedural visual-reasoning world, its tasks and oracle, and loaders for real datasets.
//!
//! # The world on disk
//!
//! `sdvp world generate --out DIR` writes:
//!
//! | path | content |
//! |---|---|
//! | `DIR/TASK/{train,val,test}.jsonl` | one [`Example`](example::Example) per line |
//! | `DIR/images/ID.png` | RGB images, `ID` = world image id = `ImageRef::source` |
//! | `DIR/scenes.jsonl` | one [`Scene`](scene::Scene) graph per line (what the oracle reads) |
//!
//! Tasks: `gqa-world` (GQA-style, `cluttered` domain), `nlvr-world` (image pairs, `night`
//! domain), `attr-world` (the unseen task, `sketch` domain) and `pretrain` (generic corpus,
//! all domains: mostly `clean` and `sketch`, the target domains thinly, see
//! [`world::PRETRAIN_MIX`]).
//!
//! # Example schema `sdvp.example/1` (every loader produces it)
//!
//! | field | meaning |
//! |---|---|
//! | `schema` | `"sdvp.example/1"` (written, ignored on read) |
//! | `id`, `task`, `split` | identity |
//! | `question`, `answer` | text; answers are lower case; NLVR `True`/`False` become `yes`/`no` |
//! | `question_type` | e.g. `query_color`, `relate_exist`, `nlvr_count`, `caption` |
//! | `images[]` | `name` (`IMAGE`, `LEFT`, `RIGHT`), `image` (an `ImageRef`: `source`, `width`, `height`), `path` (relative to `DIR` on disk) |
//! | `gold_step` | VisProg-style step program (optional) |
//! | `gold_python` | ViperGPT-style `execute_command` (optional) |
//! | `meta` | free-form: `domain`, `boxes` for pretrain regions, fields of real datasets |
//!
//! Boxes everywhere are pixels, origin top-left, `x1`/`y1` exclusive
//! ([`sdvp_core::BBox`]). Gold Python programs use ViperGPT's convention instead (origin
//! bottom-left, `lower` < `upper`).
//!
//! [`oracle::OracleBackend`] answers every module call from the scene graphs; every gold
//! step program run on it reproduces its gold answer (tested on a tiny world).

pub mod example;
pub mod font;
pub mod loaders;
pub mod oracle;
pub mod phrase;
pub mod render;
pub use sdvp_core::rng;
pub mod scene;
pub mod sheet;
pub mod tasks;
pub mod world;

pub use example::{load_split, Example, ImageInput, ImageStore, LoadReport, RowError};
pub use oracle::OracleBackend;
