//! A task's own sub-tasks as training items: the `vqa` and `detect` calls its gold programs
//! make on the oracle (both styles, de-duplicated), labelled from the scene graphs. A
//! task-specific teacher learns these (verify and choose questions, relation questions on
//! crops; the phrases and regions its programs detect) besides the items every model of its
//! kind learns.

use crate::blip::VqaItem;
use crate::detect::{clip_to, DetectItem};
use crate::scenes::SplitScenes;
use anyhow::Result;
use sdvp_core::{Request, Response};
use std::collections::HashMap;
use std::path::Path;

/// The sub-tasks of `task`'s `split` (which must be train or val) whose image lies in
/// `scenes`, each with its scene's index; the oracle's runs are kept under `work`.
fn task_subtasks(
    world: &Path,
    task: &str,
    scenes: &SplitScenes,
    work: &Path,
) -> Result<Vec<(usize, Request, Response)>> {
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
        .filter_map(|(q, r)| {
            let scene = *index.get(q.image()?.source.as_str())?;
            Some((scene, q, r))
        })
        .collect())
}

/// The `vqa` sub-tasks of `task`'s `split` whose image lies in `scenes`.
pub fn task_vqa_items(
    world: &Path,
    task: &str,
    scenes: &SplitScenes,
    work: &Path,
) -> Result<Vec<VqaItem>> {
    Ok(task_subtasks(world, task, scenes, work)?
        .into_iter()
        .filter_map(|(scene, q, r)| match (q, r) {
            (Request::Vqa { image, question }, Response::Answer { text, .. }) => Some(VqaItem {
                scene,
                object_box: image.crops.last().copied(),
                question,
                answer: text,
            }),
            _ => None,
        })
        .collect())
}

/// The `detect` sub-tasks of `task`'s `split` whose image lies in `scenes`: the region the
/// program sent, the phrase, and the oracle's boxes (clipped to the region).
pub fn task_detect_items(
    world: &Path,
    task: &str,
    scenes: &SplitScenes,
    work: &Path,
) -> Result<Vec<DetectItem>> {
    Ok(task_subtasks(world, task, scenes, work)?
        .into_iter()
        .filter_map(|(scene, q, r)| match (q, r) {
            (Request::Detect { image, object }, Response::Detections { boxes, .. }) => {
                let region = image.region();
                Some(DetectItem {
                    scene,
                    region,
                    phrases: vec![object],
                    targets: vec![boxes.into_iter().map(|b| clip_to(b, region)).collect()],
                })
            }
            _ => None,
        })
        .collect())
}
