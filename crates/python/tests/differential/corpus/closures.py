# Functions, closures, defaults, *args/**kwargs, recursion, nonlocal.
#: simple closure
def make_adder(n):
    def add(x):
        return x + n
    return add
return make_adder(3)(4)
#: counter with nonlocal
def counter():
    c = 0
    def inc():
        nonlocal c
        c += 1
        return c
    return inc
f = counter()
f()
f()
return f()
#: closure over loop variable
fs = []
for i in range(3):
    fs.append(lambda: i)
return [f() for f in fs]
#: default arguments
def f(a, b=2, c=3):
    return a + b * c
return f(1), f(1, c=10), f(1, 2, 3)
#: mutable default
def f(x, acc=[]):
    acc.append(x)
    return acc
f(1)
return f(2)
#: keyword arguments
def f(a, b):
    return a - b
return f(b=1, a=5)
#: missing argument
def f(a, b):
    return a
return f(1)
#: too many arguments
def f(a):
    return a
return f(1, 2)
#: unexpected keyword
def f(a):
    return a
return f(b=1)
#: varargs
def f(*args):
    return sum(args), len(args)
return f(1, 2, 3)
#: kwargs
def f(**kw):
    return sorted(kw.items())
return f(b=2, a=1)
#: args and kwargs
def f(a, *rest, k=0, **kw):
    return a, rest, k, kw
return f(1, 2, 3, k=4, z=5)
#: star call
def f(a, b, c):
    return a * 100 + b * 10 + c
xs = [1, 2, 3]
return f(*xs)
#: double star call
def f(a, b):
    return a - b
return f(**{'a': 10, 'b': 3})
#: keyword only
def f(a, *, b):
    return a + b
return f(1, b=2)
#: recursion factorial
def fact(n):
    return 1 if n <= 1 else n * fact(n - 1)
return fact(20)
#: recursion big factorial
def fact(n):
    return 1 if n <= 1 else n * fact(n - 1)
return fact(30)
#: recursion fibonacci memo
memo = {}
def fib(n):
    if n < 2:
        return n
    if n not in memo:
        memo[n] = fib(n - 1) + fib(n - 2)
    return memo[n]
return fib(90)
#: recursion depth 500
def depth(n):
    return 0 if n == 0 else 1 + depth(n - 1)
return depth(500)
#: recursion depth 900
def depth(n):
    return 0 if n == 0 else 1 + depth(n - 1)
return depth(900)
#: recursion too deep
def depth(n):
    return 0 if n == 0 else 1 + depth(n - 1)
return depth(5000)
#: mutual recursion
def even(n):
    return True if n == 0 else odd(n - 1)
def odd(n):
    return False if n == 0 else even(n - 1)
return even(100), odd(7)
#: lambda sort key
people = [('bob', 30), ('al', 25)]
return sorted(people, key=lambda p: p[1])
#: higher order
def apply(f, x):
    return f(f(x))
return apply(lambda v: v * 3, 2)
#: function as value
def g():
    return 'g'
h = g
return h()
#: nested function uses outer var later assigned
def outer():
    def inner():
        return v
    v = 42
    return inner()
return outer()
#: unbound local
def f():
    x = x + 1
    return x
return f()
#: global read
def f():
    return len([1, 2])
return f()
#: recursion with accumulator list
def walk(n, acc):
    if n == 0:
        return acc
    acc.append(n)
    return walk(n - 1, acc)
return walk(4, [])
#: closure counter dict
def make():
    state = {'n': 0}
    def inc():
        state['n'] += 1
        return state['n']
    return inc
f = make()
f()
return f()
#: return none
def f():
    pass
return f()
#: map with named function
def double(x):
    return 2 * x
return list(map(double, [1, 2]))
#: callable check
return callable(len), callable(3), callable(lambda: 1)
#: lambda with default
f = lambda x, y=10: x + y
return f(1), f(1, 2)
#: decorator-free wrapper
def twice(f):
    def w(x):
        return f(f(x))
    return w
inc = lambda x: x + 1
return twice(inc)(0)
#: nonlocal in nested twice
def outer():
    x = 1
    def mid():
        nonlocal x
        x += 1
        def inner():
            nonlocal x
            x *= 10
        inner()
    mid()
    return x
return outer()
#: sorted with key function name
def by_len(s):
    return len(s)
return sorted(['ccc', 'a', 'bb'], key=by_len)
