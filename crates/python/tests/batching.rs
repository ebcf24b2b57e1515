//! Batched runs give exactly the answers and traces of one-at-a-time runs.
mod common;
use common::{job, HashBackend};
use sdvp_core::trace::Trace;
use sdvp_core::SchedulerConfig;
use sdvp_python::{run_python_programs, run_python_programs_streaming, Limits};

fn programs() -> Vec<String> {
    let templates = [
        "def execute_command(image):\n    p = ImagePatch(image)\n    xs = p.find('{o}')\n    return str(len(xs))\n",
        "def execute_command(image):\n    p = ImagePatch(image)\n    xs = p.find('{o}')\n    if not xs:\n        return 'no'\n    xs = sorted(xs, key=lambda x: x.horizontal_center)\n    return xs[0].simple_query('What color is the {o}?')\n",
        "def execute_command(image):\n    p = ImagePatch(image)\n    return bool_to_yesno(any(x.verify_property('{o}', 'red') for x in p.find('{o}')))\n",
        "def execute_command(image):\n    p = ImagePatch(image)\n    return p.best_text_match(['{o}', 'dog', 'cat'])\n",
        "def execute_command(image):\n    p = ImagePatch(image)\n    d = [x.compute_depth() for x in p.find('{o}')]\n    return str(min(d)) if d else 'none'\n",
    ];
    let objects = ["cup", "ball", "cube", "cone", "ring", "star", "moon", "box"];
    let mut out = Vec::new();
    for t in templates {
        for o in objects {
            out.push(t.replace("{o}", o));
        }
    }
    out
}

fn key(t: &Trace) -> (Option<String>, Vec<(String, usize, String)>) {
    let steps = t
        .steps
        .iter()
        .map(|s| {
            (
                s.module.clone(),
                s.line,
                serde_json::to_string(&(
                    &s.output,
                    s.calls
                        .iter()
                        .map(|c| (&c.request, &c.response))
                        .collect::<Vec<_>>(),
                ))
                .unwrap_or_default(),
            )
        })
        .collect();
    (t.answer.clone(), steps)
}

#[test]
fn batched_equals_one_at_a_time() {
    let progs = programs();
    let jobs: Vec<_> = progs
        .iter()
        .enumerate()
        .map(|(i, s)| job(&format!("img{}", i % 7), s))
        .collect();
    let limits = Limits::default();
    let batched_backend = HashBackend::default();
    let (batched, stats) =
        run_python_programs(&batched_backend, SchedulerConfig::default(), &jobs, &limits);
    assert_eq!(batched.len(), jobs.len());
    let single_backend = HashBackend::default();
    for (j, b) in jobs.iter().zip(&batched) {
        let (one, _) = run_python_programs(
            &single_backend,
            SchedulerConfig::default(),
            std::slice::from_ref(j),
            &limits,
        );
        assert!(b.error.is_none(), "{:?}", b.error);
        assert_eq!(key(&one[0]), key(b), "program {}", j.id);
    }
    let sizes = batched_backend
        .batches
        .lock()
        .map(|b| b.clone())
        .unwrap_or_default();
    let biggest = sizes.iter().map(|s| s.1).max().unwrap_or(0);
    assert!(biggest >= 20, "largest batch {biggest}: {sizes:?}");
    assert!(stats.batches < stats.calls / 4, "{stats:?}");
    let singles = single_backend
        .batches
        .lock()
        .map(|b| b.clone())
        .unwrap_or_default();
    assert!(
        singles.iter().all(|s| s.1 == 1),
        "one-at-a-time runs are unbatched"
    );
    // Small max_batch still gives the same answers.
    let (small, _) = run_python_programs(
        &HashBackend::default(),
        SchedulerConfig {
            max_batch: 3,
            window: 5,
        },
        &jobs,
        &limits,
    );
    for (a, b) in small.iter().zip(&batched) {
        assert_eq!(key(a), key(b));
    }
}

#[test]
fn streaming_delivers_every_trace_once() {
    let progs = programs();
    let jobs: Vec<_> = progs.iter().map(|s| job("img", s)).collect();
    let mut seen = vec![0; jobs.len()];
    run_python_programs_streaming(
        &HashBackend::default(),
        SchedulerConfig::default(),
        &jobs,
        &Limits::default(),
        |i, t| {
            assert_eq!(t.id, jobs[i].id);
            seen[i] += 1;
        },
    );
    assert!(seen.iter().all(|&n| n == 1));
}
