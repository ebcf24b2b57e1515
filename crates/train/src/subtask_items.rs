//! A task's own VQA sub-tasks as training items: the `vqa` calls its gold programs make on
//! the oracle (both styles, de-duplicated), labelled from the scene graphs. A task-specific
//! teacher learns these (verify and choose questions, relation questions on crops) besides
//! the attribute questions every VQA model learns.

use crate::blip::VqaItem;
use crate::scenes::SplitScenes;
use anyhow::Result;
use sdvp_core::{Request, Response};
use std::collections::HashMap;
use std::path::Path;

/// The `vqa` sub-tasks of `task`'s `split` (which must be train or val) whose image lies in
/// `scenes`; the oracle's runs are kept under `work`.
pub fn task_vqa_items(
    world: &Path,
    task: &str,
    scenes: &SplitScenes,
    work: &Path,
) -> Result<Vec<VqaItem>> {
    let split = scenes.split.as_str();
    let index: HashMap<&str, usize> = scenes
        .scenes
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    // Only the examples whose images are loaded, and an oracle that knows only those scenes:
    // nothing of another split is read.
    let examples: Vec<_> = sdvp_data::loaders::load_task(world, task, split)?
        .examples
        .into_iter()
        .filter(|e| {
            e.images
                .iter()
                .all(|i| index.contains_key(i.image.source.as_str()))
        })
        .collect();
    let oracle = sdvp_data::OracleBackend::new(scenes.scenes.iter().cloned());
    let pairs = sdvp_eval::subtasks::gold_subtasks(&examples, task, split, &oracle, work)?;
    Ok(pairs
        .into_iter()
        .filter_map(|(q, r)| match (q, r) {
            (Request::Vqa { image, question }, Response::Answer { text, .. }) => {
                let scene = *index.get(image.source.as_str())?;
                Some(VqaItem {
                    scene,
                    object_box: image.crops.last().copied(),
                    question,
                    answer: text,
                })
            }
            _ => None,
        })
        .collect())
}
