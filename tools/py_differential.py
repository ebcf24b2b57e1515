#!/usr/bin/env python3
"""Record what CPython 3.11 returns for every program of the sandbox's differential corpus.

Usage:
  python3 tools/py_differential.py            # rewrite crates/python/tests/differential/expected.json
  python3 tools/py_differential.py --check    # recompute and compare with the committed file
  python3 tools/py_differential.py --check --sample N   # only every N-th case (a quick live check)

Corpus format (crates/python/tests/differential/corpus/<category>.py):
  `>>> EXPR`        one case: a function body `return (EXPR)`
  `#: NAME`         a case whose body is the following lines, up to the next case marker
  other lines before the first case are comments.
Each body is run as `_case()` inside
  def _case(): BODY
  def execute_command(image): return repr(_case())
and the result is the repr text, or the exception's type name. The Rust test
(crates/python/tests/differential.rs) builds exactly the same program text.
"""
import contextlib
import io
import json
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DIR = os.path.join(ROOT, "crates", "python", "tests", "differential")


def parse(category, text):
    cases = []
    name, body = None, []

    def flush():
        if name is not None:
            while body and not body[-1].strip():
                body.pop()
            cases.append((name, "\n".join(body)))

    n = 0
    for line in text.split("\n"):
        if line.startswith(">>> "):
            flush()
            n += 1
            name, body = None, []
            cases.append((f"{category}:{n}", f"return ({line[4:]})"))
        elif line.startswith("#: "):
            flush()
            n += 1
            name, body = f"{category}:{n}:{line[3:].strip()}", []
        elif name is not None:
            body.append(line)
    flush()
    return cases


def program(body):
    inner = "\n".join(("    " + l) if l.strip() else "" for l in body.split("\n"))
    return f"def _case():\n{inner}\n\ndef execute_command(image):\n    return repr(_case())\n"


def run(src):
    env = {"__name__": "case"}
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(src, "<program>", "exec"), env)
            r = env["execute_command"](None)
        return {"ok": r}
    except BaseException as e:  # SystemExit and KeyboardInterrupt are results too
        return {"exc": type(e).__name__}


def corpus():
    cases = []
    for f in sorted(os.listdir(os.path.join(DIR, "corpus"))):
        if f.endswith(".py"):
            cat = f[:-3]
            with open(os.path.join(DIR, "corpus", f), encoding="utf-8") as fh:
                cases.extend(parse(cat, fh.read()))
    return cases


def main():
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"CPython 3.11 is the reference; this is {sys.version.split()[0]}")
    if os.environ.get("PYTHONHASHSEED") != "0":
        # A fixed hash seed makes set-of-str ordering reproducible between runs.
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable] + sys.argv)
    check = "--check" in sys.argv
    sample = 1
    if "--sample" in sys.argv:
        sample = max(1, int(sys.argv[sys.argv.index("--sample") + 1]))
    results = {}
    for i, (name, body) in enumerate(corpus()):
        if i % sample:
            continue
        r = run(program(body))
        r["src"] = body
        results[name] = r
    path = os.path.join(DIR, "expected.json")
    if check:
        with open(path, encoding="utf-8") as fh:
            old = json.load(fh)["cases"]
        bad = [k for k, v in results.items() if old.get(k) != v]
        for k in bad[:20]:
            print(f"differs: {k}: fixture {old.get(k)} now {results[k]}")
        print(f"checked {len(results)} cases live, {len(bad)} differ")
        sys.exit(1 if bad else 0)
    doc = {"python": sys.version.split()[0], "cases": results}
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=0, sort_keys=True, ensure_ascii=False)
        fh.write("\n")
    print(f"wrote {len(results)} cases to {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()
