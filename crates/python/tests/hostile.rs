//! Hostile programs: escape attempts, runaway loops and recursion, memory bombs, floods.
//! All run in this one process, in one batch beside well-behaved programs: every hostile
//! program must end with the expected error kind and no answer, the good ones must still
//! answer, and the host must stay healthy.
mod common;
use common::{job, prog, HashBackend};
use sdvp_core::SchedulerConfig;
use sdvp_python::{run_python_programs, Limits};
use std::time::Instant;

const INVALID: &str = "invalid_program";
const LIMIT: &str = "limit";
const PY: &str = "python_error";

fn cases() -> Vec<(&'static str, String, &'static str)> {
    let p = |s: &str| prog(s);
    vec![
        // Escape attempts: rejected before running.
        ("import os", p("import os\nreturn os.getcwd()"), INVALID),
        ("import subprocess", p("import subprocess\nreturn 1"), INVALID),
        ("from os import system", p("from os import system\nreturn 1"), INVALID),
        ("from math import *", p("from math import *\nreturn 1"), INVALID),
        ("import math.os", p("import math.os\nreturn 1"), INVALID),
        ("__import__", p("return __import__('os').listdir('/')"), INVALID),
        ("eval", p("return eval('1+1')"), INVALID),
        ("exec", p("exec('x = 1')\nreturn 1"), INVALID),
        ("compile", p("return compile('1', 'f', 'eval')"), INVALID),
        ("open", p("return open('/etc/passwd').read()"), INVALID),
        ("globals", p("return str(globals())"), INVALID),
        ("locals", p("return str(locals())"), INVALID),
        ("vars", p("return str(vars(image))"), INVALID),
        ("dir", p("return str(dir(image))"), INVALID),
        ("type", p("return str(type(image))"), INVALID),
        ("getattr dunder", p("return getattr(image, '__class__')"), INVALID),
        ("subclasses walk", p("return str(().__class__.__bases__[0].__subclasses__())"), INVALID),
        ("__dict__", p("return str(image.__dict__)"), INVALID),
        ("__builtins__", p("return str(__builtins__)"), INVALID),
        ("private attr", p("return image._source"), INVALID),
        ("method __self__", p("return str(print.__self__)"), INVALID),
        ("math.__loader__", p("import math\nreturn str(math.__loader__)"), INVALID),
        ("f-string dunder", p("return f'{image.__class__}'"), INVALID),
        ("dunder def", "def __init__(self):\n    pass\ndef execute_command(image):\n    return 1\n".into(), INVALID),
        ("class", p("class A:\n    pass\nreturn 1"), INVALID),
        ("with", p("with open('x') as f:\n    return f.read()"), INVALID),
        ("async def", p("async def f():\n    return 1\nreturn 1"), INVALID),
        ("global dunder", p("global __builtins__\nreturn 1"), INVALID),
        ("yield", p("def g():\n    yield 1\nreturn 1"), INVALID),
        ("breakpoint", p("breakpoint()\nreturn 1"), INVALID),
        ("input", p("return input()"), INVALID),
        ("decorator", p("@staticmethod\ndef f():\n    return 1\nreturn f()"), INVALID),
        // Escapes that only show at run time: plain Python errors, no access.
        ("format field attr", p("return '{0.__class__}'.format(image)"), PY),
        ("format field index", p("return '{0[0]}'.format([1])"), PY),
        ("math has no system", p("import math as m\nreturn m.system('ls')"), PY),
        ("int parse digit limit", p("return int('9' * 5000)"), PY),
        ("str digit limit", p("return len(str(10 ** 5000))"), PY),
        // Runaway computation.
        ("while True", p("while True:\n    pass"), LIMIT),
        ("huge range loop", p("for i in range(10 ** 18):\n    pass"), LIMIT),
        ("infinite recursion", p("def f(n):\n    return f(n + 1)\nreturn f(0)"), PY),
        ("mutual recursion", "def a(n):\n    return b(n)\ndef b(n):\n    return a(n)\ndef execute_command(image):\n    return a(1)\n".into(), PY),
        ("Y combinator", p("return (lambda f: f(f))(lambda f: f(f))"), PY),
        ("recursive sort key", p("def k(x):\n    return k(x)\nreturn sorted([1, 2], key=k)"), PY),
        ("nested comprehension", p("return len([[[i * j * k for i in range(1000)] for j in range(1000)] for k in range(1000)])"), LIMIT),
        ("big list comp", p("return len([x for x in range(10 ** 8)])"), LIMIT),
        ("big dict comp", p("return len({i: i for i in range(10 ** 8)})"), LIMIT),
        ("float loop", p("x = 1e308\nwhile True:\n    x = x * x"), LIMIT),
        // Memory bombs.
        ("string repeat", p("return len('a' * 10 ** 10)"), LIMIT),
        ("list repeat", p("return len([0] * 10 ** 9)"), LIMIT),
        ("list doubling", p("x = [0]\nwhile True:\n    x = x + x"), LIMIT),
        ("extend self", p("x = [1]\nwhile True:\n    x.extend(x)"), LIMIT),
        ("string doubling", p("s = 'a'\nwhile True:\n    s += s"), LIMIT),
        ("sum huge range", p("return sum(range(10 ** 12))"), LIMIT),
        ("list huge range", p("return len(list(range(10 ** 10)))"), LIMIT),
        ("join bomb", p("return len(' '.join(['x'] * 10 ** 7))"), LIMIT),
        ("replace bomb", p("s = 'a' * 1000000\nreturn len(s.replace('', s))"), LIMIT),
        ("format width", p("return f'{1:999999999999}'"), LIMIT),
        ("format width method", p("return '{:>100000000}'.format(1)"), LIMIT),
        ("deep nesting", p("x = []\nfor i in range(10 ** 7):\n    x = [x]\nreturn 1"), LIMIT),
        ("deep repr", p("x = []\nfor i in range(1000):\n    x = [x]\nreturn str(x)"), LIMIT),
        ("huge int power", p("return 10 ** 10 ** 10"), LIMIT),
        ("huge shift", p("return 1 << 10 ** 12"), LIMIT),
        ("int power loop", p("x = 3\nwhile True:\n    x = x * x"), LIMIT),
        ("cyclic eq", p("d = {}\nd['k'] = d\ne = {}\ne['k'] = e\nreturn d == e"), LIMIT),
        ("closure chain", p("def mk(prev):\n    def g():\n        return prev\n    return g\nx = None\nwhile True:\n    x = mk(x)"), LIMIT),
        // Floods.
        ("exception flood", p("while True:\n    try:\n        raise ValueError('x' * 100)\n    except ValueError:\n        pass"), LIMIT),
        ("print flood", p("while True:\n    print('x' * 1000)"), LIMIT),
        ("huge answer", p("return 'a' * 10 ** 6"), LIMIT),
        ("model call flood", p("p = ImagePatch(image)\nwhile True:\n    p.find('x')"), LIMIT),
        // Budgets cannot be caught.
        ("except swallows limit", p("try:\n    while True:\n        pass\nexcept:\n    return 'escaped'"), LIMIT),
        ("finally overrides limit", p("try:\n    while True:\n        pass\nfinally:\n    return 'escaped'"), LIMIT),
        ("except Exception recursion", p("def f():\n    try:\n        return f()\n    except Exception:\n        return f()\nreturn f()"), LIMIT),
    ]
}

fn rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn hostile_programs_are_contained() {
    let cases = cases();
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let good = prog("p = ImagePatch(image)\nreturn str(len(p.find('cup'))) + str(sum(range(10)))");
    let mut jobs = Vec::new();
    for (i, (name, src, _)) in cases.iter().enumerate() {
        jobs.push(job(&format!("bad{i}:{name}"), src));
        if i % 10 == 0 {
            jobs.push(job(&format!("good{i}"), &good));
        }
    }
    let limits = Limits::default();
    let rss_before = rss_kib();
    let backend = HashBackend::default();
    let start = Instant::now();
    let (traces, _) = run_python_programs(&backend, SchedulerConfig::default(), &jobs, &limits);
    let elapsed = start.elapsed();
    let mut wrong = Vec::new();
    let mut expected = cases.iter().map(|c| c.2);
    for t in &traces {
        if t.id.starts_with("good") {
            assert!(
                t.error.is_none() && t.answer.as_deref().is_some_and(|a| a.ends_with("45")),
                "good program failed: {t:?}"
            );
            continue;
        }
        let want = expected.next().unwrap_or("?");
        let got = t
            .error
            .as_ref()
            .map(|e| e.kind.as_str())
            .unwrap_or("answered");
        if got != want || t.answer.is_some() {
            wrong.push(format!(
                "{}: want {want}, got {got} ({:?}) answer {:?}",
                t.id,
                t.error.as_ref().map(|e| &e.message),
                t.answer
            ));
        }
        // Budgets are reported as such.
        if want == LIMIT {
            let msg = &t
                .error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_default();
            assert!(
                msg.contains("budget") || msg.contains("limit") || msg.contains("too deeply"),
                "{}: {msg}",
                t.id
            );
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // Every program ran within its own budgets: the whole batch is quick.
    assert!(elapsed.as_secs() < 120, "hostile batch took {elapsed:?}");
    // Nothing of the programs is kept alive, and no bomb was actually allocated.
    if let (Some(a), Some(b)) = (rss_before, rss_kib()) {
        assert!(
            b.saturating_sub(a) < 512 * 1024,
            "RSS grew from {a} KiB to {b} KiB"
        );
    }
    // The host still runs programs normally.
    let t = common::run(&good);
    assert!(t.error.is_none(), "{:?}", t.error);
}

#[test]
fn tight_limits_are_respected() {
    let limits = Limits {
        max_steps: 1000,
        ..Limits::default()
    };
    let t = common::run_with(
        &prog("x = 0\nfor i in range(100000):\n    x += i\nreturn x"),
        &limits,
    );
    assert_eq!(t.error.map(|e| e.kind).as_deref(), Some(LIMIT));
    let t = common::run_with(
        &prog("x = 0\nfor i in range(100):\n    x += i\nreturn x"),
        &limits,
    );
    assert_eq!(t.answer.as_deref(), Some("4950"));
    let limits = Limits {
        max_alloc_bytes: 10_000,
        ..Limits::default()
    };
    let t = common::run_with(&prog("return len('ab' * 10000)"), &limits);
    assert_eq!(t.error.map(|e| e.kind).as_deref(), Some(LIMIT));
    let limits = Limits {
        max_depth: 5,
        ..Limits::default()
    };
    let t = common::run_with(
        &prog("def f(n):\n    return 0 if n == 0 else f(n - 1)\nreturn f(3)"),
        &limits,
    );
    assert_eq!(t.answer.as_deref(), Some("0"));
    let t = common::run_with(
        &prog("def f(n):\n    return 0 if n == 0 else f(n - 1)\nreturn f(10)"),
        &limits,
    );
    // Past the depth limit: RecursionError, as in CPython.
    assert_eq!(t.error.map(|e| e.kind).as_deref(), Some(PY));
}
