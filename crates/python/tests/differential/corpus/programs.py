# Small programs of the kind models write for visual questions, without the image API.
#: count and format
boxes = [(10, 20, 50, 80), (30, 40, 60, 90), (5, 5, 15, 15)]
areas = [(r - l) * (u - d) for l, d, r, u in boxes]
return f'{len(areas)} boxes, mean area {sum(areas) / len(areas):.1f}'
#: nearest by distance
pts = {'cup': (3, 4), 'plate': (1, 1), 'fork': (6, 8)}
best = min(pts, key=lambda k: (pts[k][0] ** 2 + pts[k][1] ** 2) ** 0.5)
return best
#: answer normalisation
ans = '  The Red Car. '
return ans.strip().lower().rstrip('.').replace('the ', '')
#: yes no mapping
def yesno(b):
    return 'yes' if b else 'no'
return [yesno(x > 2) for x in [1, 3]]
#: percentages
counts = {'cat': 3, 'dog': 1}
total = sum(counts.values())
return {k: round(100 * v / total, 1) for k, v in counts.items()}
#: sort by two keys
items = [('b', 2.5), ('a', 2.5), ('c', 1.0)]
return [n for n, _ in sorted(items, key=lambda t: (-t[1], t[0]))]
#: histogram string
data = [1, 3, 2]
return '\n'.join(f'{i}: ' + '#' * n for i, n in enumerate(data))
#: average with empty guard
xs = []
return sum(xs) / len(xs) if xs else None
#: integer division of coordinates
x0, x1 = 13, 28
return (x0 + x1) // 2, (x0 + x1) / 2
#: centre rounding
return round((13 + 28) / 2), round(20.5), round(21.5)
#: word counts
text = 'the cat and the hat and the bat'
words = text.split()
freq = {}
for w in words:
    freq[w] = freq.get(w, 0) + 1
return sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))[:2]
#: max by value then key
scores = {'a': 0.9, 'b': 0.95, 'c': 0.95}
return max(scores, key=scores.get)
#: string number parsing
vals = ['3', '4.5', 'x', '-2']
out = []
for v in vals:
    try:
        out.append(float(v))
    except ValueError:
        out.append(None)
return out
#: numeric answer formatting
n = 3.0
return str(int(n)) if n == int(n) else str(n)
#: ratio formatting
return f'{2 / 3:.2%}', f'{1 / 8:.3f}', f'{1e-3:.1e}'
#: list of dicts
objs = [{'name': 'cup', 'score': 0.8}, {'name': 'mug', 'score': 0.6}]
keep = [o['name'] for o in objs if o['score'] > 0.7]
return keep, len(objs)
#: enumerate pairs
xs = ['a', 'b', 'c']
return [(i, j) for i in range(len(xs)) for j in range(i + 1, len(xs))]
#: zip longest manual
a, b = [1, 2, 3], ['x']
return [(a[i], b[i] if i < len(b) else None) for i in range(len(a))]
#: string join numbers
return ', '.join(map(str, [1.0, 2.5, 3]))
#: nested ternary answer
h = 120
return 'tall' if h > 100 else 'medium' if h > 50 else 'short'
#: overlap check
def overlap(a, b):
    return not (a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1])
return overlap((0, 0, 10, 10), (5, 5, 15, 15)), overlap((0, 0, 1, 1), (2, 2, 3, 3))
#: iou
def iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union
return round(iou((0, 0, 10, 10), (5, 5, 15, 15)), 4)
#: sorted strings case
return sorted(['banana', 'Apple', 'cherry']), sorted(['banana', 'Apple', 'cherry'], key=str.lower)
#: unique preserving order dict
xs = [3, 1, 3, 2, 1]
return list(dict.fromkeys(xs))
#: set of colours sorted
cols = ['red', 'blue', 'red']
return sorted(set(cols)), len(set(cols))
#: count with list count
xs = ['a', 'b', 'a']
return {x: xs.count(x) for x in sorted(set(xs))}
#: string padding table
rows = [('cup', 2), ('plate', 10)]
return '\n'.join(f'{n:<8}{c:>3}' for n, c in rows)
#: multiple return values
def stats(xs):
    return min(xs), max(xs), sum(xs) / len(xs)
lo, hi, mean = stats([4, 8, 6])
return lo, hi, mean
#: float sums
return sum([0.1, 0.2, 0.3]), 0.1 + 0.2 + 0.3, round(sum([0.1, 0.2, 0.3]), 2)
#: integer parse answers
answers = ['2', 'two', '3 cups']
def to_int(s):
    digits = ''.join(c for c in s if c.isdigit())
    return int(digits) if digits else None
return [to_int(a) for a in answers]
#: check all positive
return all(x > 0 for x in [1, 2, 3]), any(x < 0 for x in [1, 2, 3])
#: dictionary default list
groups = {}
for name, kind in [('a', 'x'), ('b', 'y'), ('c', 'x')]:
    groups.setdefault(kind, []).append(name)
return groups
#: reversed sorted slice
xs = [5, 3, 9, 1]
return sorted(xs, reverse=True)[:2], xs[::-1][1:3]
#: str methods chain
s = 'A photo of a DOG'
return s.lower().split()[-1].capitalize()
#: while with counter
n, steps = 27, 0
while n != 1:
    n = n // 2 if n % 2 == 0 else 3 * n + 1
    steps += 1
return steps
#: big counts
return 2 ** 40 * 3, 10 ** 18 + 1, (10 ** 18 + 1) * 10
#: divmod time
secs = 3725
h, rem = divmod(secs, 3600)
m, s = divmod(rem, 60)
return f'{h:02d}:{m:02d}:{s:02d}'
#: bool arithmetic
flags = [True, False, True]
return sum(flags), flags.count(True), True + True
#: min of empty with default
return min([], default='none'), max([2, 7], default=0)
#: tuple unpack swap sort
a, b = 5, 2
if a > b:
    a, b = b, a
return a, b
#: exception fallback
try:
    v = [1, 2][5]
except IndexError:
    v = -1
return v
#: format with width from variable
w = 6
return f'[{"x":^{w}}]', f'[{3.14159:>{w}.2f}]'
#: string startswith options
s = 'left side'
return s.startswith(('left', 'right')), s.endswith('side')
#: replace and count
s = 'a,b,,c'
return s.replace(',,', ','), s.count(','), s.split(',')
#: json-like repr
d = {'a': [1, 2.0, None], 'b': {'c': True}}
return str(d)
#: escape repr
return repr('line\nnext'), str('tab\tstop')
#: round half even list
return [round(x) for x in [0.5, 1.5, 2.5, -0.5, -1.5]]
#: round to tenths
return [round(x, 1) for x in [0.05, 0.15, 0.25, 0.35, 1.45]]
#: float formatting g
return [f'{x:g}' for x in [100000.0, 1000000.0, 0.0001, 0.00001, 1.5e-10]]
#: str of floats
return [str(x) for x in [1e15, 1e16, 123456789.123456789, 0.1 + 0.7, 1 / 7]]
#: int float compare
return 1 == 1.0, 2 ** 60 == 2.0 ** 60, 2 ** 60 + 1 == 2.0 ** 60 + 1
#: sorted mixed numbers
return sorted([3, 1.5, 2, -0.5, True])
#: nested list comprehension matrix
m = [[1, 2, 3], [4, 5, 6]]
return [[row[i] for row in m] for i in range(3)]
#: dict sorted by key reverse
d = {'b': 1, 'c': 2, 'a': 3}
return dict(sorted(d.items(), reverse=True))
#: list index of max
xs = [3, 9, 2, 9]
return xs.index(max(xs))
#: string find all
s = 'abcabc'
idx = []
i = s.find('b')
while i != -1:
    idx.append(i)
    i = s.find('b', i + 1)
return idx
#: strip punctuation
s = 'Hello, world!'
return ''.join(c for c in s if c.isalnum() or c == ' ')
#: title and capitalize
return 'the red car'.title(), 'the red car'.capitalize()
#: split lines strip
text = ' a \n b\n\n c '
return [l.strip() for l in text.splitlines() if l.strip()]
#: percent with rounding
return '%.1f%%' % 45.25, '%.1f%%' % 45.35, '%d%%' % 45.9
#: abs and sign
xs = [-3, 0, 2.5]
return [abs(x) for x in xs], [(x > 0) - (x < 0) for x in xs]
#: chained string formatting
name, n = 'cup', 3
return 'There %s %d %s%s.' % ('is' if n == 1 else 'are', n, name, '' if n == 1 else 's')
#: sets of numbers ops
a = {1, 2, 3, 4}
b = {3, 4, 5}
return a & b, a | b, a - b, sorted(a ^ b)
#: list remove all occurrences
xs = [1, 2, 1, 3, 1]
while 1 in xs:
    xs.remove(1)
return xs
#: closure accumulate
def make():
    total = []
    def add(x):
        total.append(x)
        return sum(total)
    return add
f = make()
f(2)
return f(3)
#: recursion flatten
def flat(x):
    if isinstance(x, list):
        out = []
        for y in x:
            out.extend(flat(y))
        return out
    return [x]
return flat([1, [2, [3, [4]]], 5])
#: memo dict fib
memo = {0: 0, 1: 1}
def fib(n):
    if n not in memo:
        memo[n] = fib(n - 1) + fib(n - 2)
    return memo[n]
return fib(100)
#: power of floats
return 2 ** 0.5, 10 ** -2, 9 ** 0.5, (-2) ** 2, (-2.0) ** 3
#: float to int conversions
return int(2.999), int(-2.999), round(2.999), int('7'), float('7')
#: exception message from int
try:
    int('3.5')
except ValueError as e:
    return str(e)
#: division results
return 7 / 7, 0 / 5, -7 / 2, 7 // -2, -7 % 2
