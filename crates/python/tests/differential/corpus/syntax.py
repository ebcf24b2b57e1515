# Syntax that models write: conditionals, loops, unpacking, augmented assignment, chains.
#: if elif else
x = 5
if x > 10:
    r = 'big'
elif x > 3:
    r = 'mid'
else:
    r = 'small'
return r
#: while with break continue
i = 0
out = []
while True:
    i += 1
    if i % 2:
        continue
    if i > 8:
        break
    out.append(i)
return out
#: nested loops break
for i in range(3):
    for j in range(3):
        if i * j == 2:
            break
    else:
        continue
    break
return i, j
#: tuple swap
a, b = 1, 2
a, b = b, a
return a, b
#: nested unpack
(a, b), c = (1, 2), 3
return a + b + c
#: unpack in for
total = 0
for a, (b, c) in [(1, (2, 3)), (4, (5, 6))]:
    total += a * b * c
return total
#: chained assignment
a = b = [1]
b.append(2)
return a
#: augmented operators
x = 10
x += 5
x -= 3
x *= 2
x //= 5
x **= 2
x %= 7
return x
#: augmented string
s = 'a'
s += 'b'
s *= 2
return s
#: ternary
x = 3
return 'odd' if x % 2 else 'even'
#: conditional expression nested
x = 0
return 'neg' if x < 0 else 'zero' if x == 0 else 'pos'
#: pass statement
if True:
    pass
return 'done'
#: del variable
x = 1
del x
try:
    x
except NameError:
    return 'deleted'
#: annotated assignment
x: int = 5
return x
#: string concatenation implicit
return 'abc' 'def'
#: multiline expression
total = (1 +
         2 +
         3)
return total
#: global constant function
def f():
    return CONST
CONST = 7
return f()
#: while else
n = 3
while n > 0:
    n -= 1
else:
    return 'finished'
#: comparison chain
x = 5
return 1 < x < 10, 1 < x > 10, x == 5 == 5.0
#: identity checks
a = None
return a is None, a is not None
#: membership
return 3 in [1, 2, 3], 'k' not in {'k': 1}
#: boolean short circuit returns operand
return [] or [0], 0 and 1 / 0
#: walrus in if
xs = [1, 2, 3]
if (n := len(xs)) > 2:
    return n
return 0
#: lambda immediate
return (lambda x: x * 2)(21)
#: nested functions and loops
def count_vowels(s):
    return sum(1 for c in s if c in 'aeiou')
return [count_vowels(w) for w in ['apple', 'sky']]
#: early return in loop
def find(xs, t):
    for i, x in enumerate(xs):
        if x == t:
            return i
    return -1
return find([5, 6, 7], 7), find([], 1)
#: tuple comparison sort
return sorted([(1, 'b'), (1, 'a'), (0, 'z')])
#: star expression tuple
t = (1, 2)
return (*t, 3)
#: f-string in loop
return ', '.join(f'{k}={v}' for k, v in [('a', 1), ('b', 2)])
#: string multiplication table
return '\n'.join(' '.join(str(i * j) for j in range(1, 4)) for i in range(1, 4))
#: integer division loop digits
n = 12345
digits = []
while n:
    n, d = divmod(n, 10)
    digits.append(d)
return digits
#: global statement
g = 1
def f():
    global g
    g = 2
f()
return g
#: class definition
class A:
    pass
return 1
#: with statement
with open('x') as f:
    return 1
#: generator function
def gen():
    yield 1
return list(gen())
#: try except pass
try:
    1 / 0
except:
    pass
return 'swallowed'
#: assert with tuple
assert (1, 2)
return 'ok'
#: slicing with variables
s = 'abcdef'
i, j = 1, 4
return s[i:j], s[:i], s[j:]
#: enumerate start
return [(i, c) for i, c in enumerate('ab', start=5)]
#: zip strict mismatch silent
return list(zip('abc', [1, 2]))
#: long if chain with and or
a, b, c = 1, 0, 1
return (a and not b) or c, a and b or c
