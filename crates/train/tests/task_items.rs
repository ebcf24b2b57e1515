//! A teacher's task sub-tasks as training items: the `detect` calls of a task's gold
//! programs become items on the region the program sent, with the oracle's boxes clipped
//! to that region.

use sdvp_data::world::{generate_world, Scale, WorldConfig};
use sdvp_train::scenes::SplitScenes;
use sdvp_train::subtask_items::{task_detect_items, task_vqa_items};

#[test]
fn detect_sub_tasks_become_items_inside_their_regions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = WorldConfig {
        seed: 3,
        scale: Scale::Tiny,
        size: 128,
        threads: 2,
    };
    generate_world(dir.path(), &cfg, &|_, _| {}).expect("generate the world");
    let mut checked = 0usize;
    for task in ["gqa-world", "nlvr-world"] {
        let scenes = SplitScenes::load(dir.path(), task, "train", None).expect("scenes");
        let work = dir.path().join(format!("work-{task}"));
        let items = task_detect_items(dir.path(), task, &scenes, &work).expect("detect items");
        assert!(!items.is_empty(), "{task}: no detect sub-tasks");
        let mut with_boxes = 0usize;
        for it in &items {
            assert_eq!(it.phrases.len(), 1);
            assert_eq!(it.targets.len(), 1);
            assert!(!it.phrases[0].trim().is_empty());
            let s = &scenes.scenes[it.scene];
            let r = it.region;
            assert!(
                r.x0 >= 0.0 && r.y0 >= 0.0 && r.x1 <= s.width as f32 && r.y1 <= s.height as f32
            );
            for b in &it.targets[0] {
                assert!(
                    b.x0 >= r.x0 && b.y0 >= r.y0 && b.x1 <= r.x1 && b.y1 <= r.y1,
                    "{b:?} outside {r:?}"
                );
                assert!(b.x1 > b.x0 && b.y1 > b.y0);
                checked += 1;
            }
            with_boxes += usize::from(!it.targets[0].is_empty());
        }
        // Programs look for objects that are there and for objects that are not.
        assert!(
            with_boxes > 0 && with_boxes < items.len(),
            "{task}: {with_boxes}/{}",
            items.len()
        );
        // The same oracle runs give the VQA items; both kinds come from one set of calls.
        let vqa = task_vqa_items(dir.path(), task, &scenes, &work).expect("vqa items");
        assert!(!vqa.is_empty(), "{task}: no vqa sub-tasks");
    }
    assert!(checked > 10, "{checked} boxes checked");
}
