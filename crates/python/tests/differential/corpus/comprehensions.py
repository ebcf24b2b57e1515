# Comprehensions and generator expressions.
>>> [x * 2 for x in range(5)]
>>> [x for x in range(10) if x % 3 == 0]
>>> [(x, y) for x in range(3) for y in range(x)]
>>> [[y for y in range(x)] for x in range(4)]
>>> {x: x ** 2 for x in range(3)}
>>> {x % 2 for x in range(5)}
>>> sum(x for x in range(10))
>>> max(len(w) for w in ['a', 'abc', 'ab'])
>>> any(x > 3 for x in [1, 5])
>>> all(x > 0 for x in [1, 2])
>>> list(x for x in 'ab')
>>> [c.upper() for c in 'abc']
>>> [x if x % 2 else -x for x in range(5)]
>>> [i for i, c in enumerate('abcabc') if c == 'b']
>>> [a + b for a, b in zip([1, 2], [3, 4])]
>>> sorted((x for x in [3, 1, 2]), reverse=True)
>>> ''.join(c for c in 'a1b2' if c.isalpha())
>>> [x for x in [] if x]
>>> [[0] * 2 for _ in range(2)]
>>> [w for w in 'the quick brown'.split() if len(w) > 3]
>>> {k: len(k) for k in ['ab', 'c']}
>>> [n for n in range(20) if all(n % d for d in range(2, n)) and n > 1]
>>> tuple(x * x for x in range(3))
>>> set(x // 2 for x in range(6))
>>> min((abs(x - 5), x) for x in [1, 4, 7, 6])
#: comprehension scope does not leak
x = 'outer'
ys = [x for x in range(3)]
return x, ys
#: comprehension sees enclosing
k = 10
return [k + i for i in range(3)]
#: nested comprehension flatten
m = [[1, 2], [3, 4]]
return [v for row in m for v in row]
#: comprehension with function
def sq(v):
    return v * v
return [sq(i) for i in range(4)]
#: generator consumed by next
g = (x * 2 for x in range(3))
return next(g), next(g)
#: next default
g = iter([])
return next(g, 'done')
#: iter next stop
it = iter([1])
next(it)
return next(it)
#: any short circuits
calls = []
def f(x):
    calls.append(x)
    return x > 1
r = any(f(x) for x in [1, 2, 3])
return r, calls
#: walrus in comprehension
data = [1, 5, 2, 8]
return [y for x in data if (y := x * 2) > 4]
#: walrus in while
xs = [1, 2, 3]
out = []
while (n := len(xs)) > 1:
    out.append(n)
    xs.pop()
return out
#: dict comprehension from zip
keys = ['a', 'b']
vals = [1, 2]
return {k: v for k, v in zip(keys, vals)}
#: conditional dict comp
return {i: ('even' if i % 2 == 0 else 'odd') for i in range(3)}
#: sum of squares gen
return sum(i * i for i in range(1, 4))
#: lambda in comprehension late binding
fs = [lambda: i for i in range(3)]
return [f() for f in fs]
#: default arg binding
fs = [lambda i=i: i for i in range(3)]
return [f() for f in fs]
