//! The Python subset behaves as CPython does on ViperGPT-style code.
mod common;
use common::{answer_of, prog, run};

fn check(body: &str, want: &str) {
    let got = answer_of(&prog(body));
    assert_eq!(got, want, "program:\n{body}");
}

#[test]
fn arithmetic_and_numbers() {
    check("return 7 // 2 + 7 % 3 + 2 ** 3", "12");
    check("return -7 // 2", "-4");
    check("return -7 % 3", "2");
    check("return str(7 / 2)", "3.5");
    check("return str(1.0)", "1.0");
    check(
        "return str(round(2.5)) + str(round(3.5)) + str(round(2.675, 2))",
        "242.67",
    );
    check("return str(int('42') + int(3.9) + int(-3.9))", "42");
    check("return str(abs(-3)) + str(float('1.5'))", "31.5");
    check("return str(1e20)", "1e+20");
    check("return str(0.0001) + ' ' + str(0.00001)", "0.0001 1e-05");
}

#[test]
fn control_flow() {
    check("x = 0\nfor i in range(10):\n    if i == 3:\n        continue\n    if i == 6:\n        break\n    x += i\nreturn x", "12");
    check("i = 0\nwhile True:\n    i += 1\n    if i > 4:\n        break\nelse:\n    i = 100\nreturn i", "5");
    check(
        "for i in range(3):\n    pass\nelse:\n    return 'done'\nreturn 'no'",
        "done",
    );
    check(
        "x = 5\nif x < 3:\n    return 'a'\nelif x < 6:\n    return 'b'\nelse:\n    return 'c'",
        "b",
    );
    check("return 'y' if 2 > 1 else 'n'", "y");
    check("return 1 < 2 < 3 and not (3 < 2 < 1)", "yes");
    check("return [] or 'fallback'", "fallback");
}

#[test]
fn functions_closures_lambdas() {
    check(
        "def add(a, b=10):\n    return a + b\nreturn str(add(1)) + str(add(1, b=2))",
        "113",
    );
    check("k = 3\ndef mul(x):\n    return x * k\nreturn mul(4)", "12");
    check("f = lambda x, y=1: x - y\nreturn f(5) + f(5, 3)", "6");
    check(
        "def fact(n):\n    return 1 if n <= 1 else n * fact(n - 1)\nreturn fact(10)",
        "3628800",
    );
    let src =
        "def helper(x):\n    return x * 2\n\ndef execute_command(image):\n    return helper(21)\n";
    assert_eq!(answer_of(src), "42");
}

#[test]
fn containers_and_comprehensions() {
    check(
        "xs = [3, 1, 2]\nxs.append(5)\nxs.extend([0])\nxs.sort()\nreturn str(xs)",
        "[0, 1, 2, 3, 5]",
    );
    check(
        "xs = [1, 2, 3, 4]\nreturn str(xs[1:3]) + str(xs[::-1]) + str(xs[-1])",
        "[2, 3][4, 3, 2, 1]4",
    );
    check(
        "d = {'a': 1}\nd['b'] = 2\nreturn str(sorted(d.keys())) + str(d.get('z', 0))",
        "['a', 'b']0",
    );
    check("return str({x % 3 for x in range(10)})", "{0, 1, 2}");
    check(
        "return str({k: v for k, v in [('a', 1), ('b', 2)]})",
        "{'a': 1, 'b': 2}",
    );
    check(
        "return str([x * y for x in range(3) for y in range(3) if x != y])",
        "[0, 0, 0, 2, 0, 2]",
    );
    check("return sum(x for x in range(5))", "10");
    check(
        "return str(any(x > 3 for x in range(5))) + str(all([]))",
        "TrueTrue",
    );
    check("a, (b, c) = 1, (2, 3)\nreturn a + b + c", "6");
    check(
        "xs = ['bb', 'a', 'ccc']\nreturn str(sorted(xs, key=len, reverse=True))",
        "['ccc', 'bb', 'a']",
    );
    check(
        "return str(max([3, 9, 2], key=lambda v: -v)) + str(min(4, 2, 8))",
        "22",
    );
    check(
        "return str(list(zip([1, 2], 'ab'))) + str(list(enumerate('xy', 1)))",
        "[(1, 'a'), (2, 'b')][(1, 'x'), (2, 'y')]",
    );
    check(
        "xs = [1, 2, 3]\nreturn str(xs.pop()) + str(xs.index(2)) + str(xs.count(1)) + str(len(xs))",
        "3112",
    );
    check(
        "t = (1,)\nreturn str(t) + str(isinstance(t, tuple)) + str(isinstance(1, (int, float)))",
        "(1,)TrueTrue",
    );
}

#[test]
fn strings() {
    check("return ' Hello '.strip().lower() + 'x'.upper()", "helloX");
    check("return '-'.join('a b  c'.split())", "a-b-c");
    check(
        "return str('abc'.startswith('ab')) + str('abc'.endswith('x')) + str('b' in 'abc')",
        "TrueFalseTrue",
    );
    check(
        "return 'a,b'.replace(',', ';') + '{} and {name}'.format(1, name='n')",
        "a;b1 and n",
    );
    check(
        "x = 3.14159\nreturn f'{x:.2f}|{7:>3}|{\"s\"!r}|{x}'",
        "3.14|  7|'s'|3.14159",
    );
    check("return 'n=%d %s' % (3, 'x')", "n=3 x");
    check("return 'abc'[1] + 'abcdef'[::2]", "bace");
}

#[test]
fn exceptions() {
    check(
        "try:\n    x = [1][5]\nexcept IndexError:\n    return 'caught'\nreturn 'no'",
        "caught",
    );
    check(
        "try:\n    {}['k']\nexcept LookupError as e:\n    return 'lookup ' + str(e)\nreturn 'no'",
        "lookup 'k'",
    );
    check(
        "try:\n    1 / 0\nexcept (ValueError, ZeroDivisionError):\n    return 'zero'\nreturn 'no'",
        "zero",
    );
    check("try:\n    raise ValueError('bad')\nexcept Exception as e:\n    return str(e)\nfinally:\n    pass", "bad");
    check("r = []\ntry:\n    r.append(1)\nexcept Exception:\n    r.append(2)\nelse:\n    r.append(3)\nfinally:\n    r.append(4)\nreturn str(r)", "[1, 3, 4]");
    check(
        "try:\n    int('x')\nexcept ValueError:\n    return 'v'",
        "v",
    );
    check("try:\n    try:\n        raise KeyError('a')\n    except KeyError:\n        raise\nexcept KeyError:\n    return 'reraised'", "reraised");
}

#[test]
fn uncaught_exception_has_a_traceback() {
    let src = "def helper(x):\n    return x[3]\n\ndef execute_command(image):\n    a = [1]\n    return helper(a)\n";
    let t = run(src);
    let e = t.error.expect("error");
    assert_eq!(e.kind, "python_error");
    assert_eq!(e.line, Some(2));
    assert!(
        e.message.starts_with("Traceback (most recent call last):"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("line 6, in execute_command"),
        "{}",
        e.message
    );
    assert!(e.message.contains("line 2, in helper"), "{}", e.message);
    assert!(
        e.message.ends_with("IndexError: list index out of range"),
        "{}",
        e.message
    );
    let pe = &t.meta["python_error"];
    assert_eq!(pe["exception"], "IndexError");
    assert_eq!(pe["column"], 12);
    assert!(t.answer.is_none());
}

#[test]
fn assert_statement() {
    let t = run(&prog("assert 1 == 2, 'math broke'\nreturn 1"));
    let e = t.error.expect("error");
    assert!(
        e.message.ends_with("AssertionError: math broke"),
        "{}",
        e.message
    );
}

#[test]
fn math_import_and_print() {
    let t = run("import math\nfrom math import sqrt\ndef execute_command(image):\n    print('hi', 2)\n    return math.floor(sqrt(17)) + math.ceil(0.2)\n");
    assert_eq!(t.answer.as_deref(), Some("5"));
    assert_eq!(t.meta["stdout"], "hi 2\n");
}
