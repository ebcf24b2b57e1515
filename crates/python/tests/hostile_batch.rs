//! One batch mixing good programs with every hostile class of issue 14: the hostile ones end
//! with errors, the good ones still give their answers, and the process's peak RSS stays
//! within a bound. (The only test in this binary, so the peak measured is this batch's.)
mod common;
use common::{job, prog, HashBackend};
use sdvp_core::SchedulerConfig;
use sdvp_python::{run_python_programs, Limits};

fn hostile() -> Vec<(&'static str, String)> {
    let deep = "t = 0\nfor i in range(300000):\n    t = (t,)\n";
    let shared = "t = (0,)\nfor i in range(30):\n    t = (t, t)\n";
    vec![
        ("deep hash", prog(&format!("{deep}return len({{t}})"))),
        (
            "deep dict key",
            prog(&format!("{deep}return t in {{1: 2}}")),
        ),
        (
            "deep isinstance",
            prog(&format!("{deep}return isinstance(1, t)")),
        ),
        ("shared hash", prog(&format!("{shared}return len({{t}})"))),
        ("shared repr", prog(&format!("{shared}return str(t)"))),
        (
            "splitlines",
            prog("return len(('\\n' * (63 << 20)).splitlines())"),
        ),
        ("split", prog("return len(('a ' * (15 << 20)).split())")),
        ("list of chars", prog("return len(list('a' * (30 << 20)))")),
        ("assert text", prog("assert False, 'q' * (50 << 20)")),
        ("raise text", prog("raise ValueError('q' * (50 << 20))")),
        ("key text", prog("d = {}\nreturn d['k' * (30 << 20)]")),
        ("percent width", prog("return len('%60000000d' % 1)")),
        ("fill width", prog("return len(f'{1:🎉>60000000}')")),
        (
            "nan crop",
            prog("return ImagePatch(image).crop(0, 0, float('nan'), 1).width"),
        ),
        ("big power", prog("return 10 ** 10 ** 10")),
        ("system exit", prog("raise SystemExit(1)")),
        (
            "deep recursion",
            prog("def f(n):\n    return f(n + 1)\nreturn f(0)"),
        ),
    ]
}

fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn good_programs_survive_a_batch_of_every_hostile_class() {
    let good = [
        (
            "p = ImagePatch(image)\nreturn str(len(p.find('cup'))) + '/' + str(sum(range(10)))",
            "/45",
        ),
        (
            "return str(2 ** 70) + ' ' + f'{3.14159:.2f}'",
            "1180591620717411303424 3.14",
        ),
        ("d = {(1, 2): 'a'}\nreturn d[(1, 2)] + str(chr(66))", "aB"),
    ];
    let hostile = hostile();
    let mut jobs = Vec::new();
    let mut want = Vec::new();
    for (i, (name, src)) in hostile.iter().enumerate() {
        let (g, answer) = good[i % good.len()];
        jobs.push(job(&format!("good{i}"), &prog(g)));
        want.push(Some(answer));
        jobs.push(job(&format!("bad{i}:{name}"), src));
        want.push(None);
    }
    let before = peak_rss_kib();
    let backend = HashBackend::default();
    let (traces, _) = run_python_programs(
        &backend,
        SchedulerConfig::default(),
        &jobs,
        &Limits::default(),
    );
    assert_eq!(traces.len(), jobs.len());
    let mut good_ok = 0;
    for (t, w) in traces.iter().zip(&want) {
        match w {
            Some(answer) => {
                let got = t.answer.clone().unwrap_or_default();
                assert!(
                    got.ends_with(answer),
                    "{}: {:?} {:?}",
                    t.id,
                    t.answer,
                    t.error
                );
                good_ok += 1;
            }
            None => {
                assert!(t.answer.is_none(), "{} answered {:?}", t.id, t.answer);
                let e = t.error.as_ref().map(|e| e.kind.as_str()).unwrap_or("");
                assert!(e == "limit" || e == "python_error", "{}: {e}", t.id);
                let len = t.error.as_ref().map(|e| e.message.len()).unwrap_or(0);
                assert!(len < 200_000, "{}: {len}-byte error", t.id);
            }
        }
    }
    assert_eq!(good_ok, hostile.len());
    // Coordinates at the ends of i64 are clipped to the image, not wrapped around.
    let t = common::run(&prog(
        "return ImagePatch(image).crop(-2**63, 0, 2**63 - 1, 9).width",
    ));
    assert_eq!(t.answer.as_deref(), Some("320"), "{:?}", t.error);
    if let (Some(a), Some(b)) = (before, peak_rss_kib()) {
        let grew = b.saturating_sub(a);
        eprintln!("peak RSS {a} KiB -> {b} KiB (+{grew} KiB)");
        // Each program's budget is 64 MiB of charged bytes; transient copies stay close to it.
        assert!(grew < 400 * 1024, "peak RSS grew by {grew} KiB");
    }
}
