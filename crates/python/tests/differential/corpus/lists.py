# Lists: methods, slicing, live iteration, sorting.
>>> [1, 2, 3] + [4]
>>> [0] * 3
>>> [1, 2, 3][::-1]
>>> [1, 2, 3, 4, 5][1:4]
>>> [1, 2, 3][-1]
>>> [1, 2, 3][5]
>>> [1, 2, 3][1:100]
>>> [1, 2, 3, 4][::2]
>>> list(range(5))
>>> list(range(2, 10, 3))
>>> list(range(10, 0, -2))
>>> range(10)[2:5]
>>> list(range(10)[::3])
>>> range(5)[-1]
>>> len(range(0, 10, 3))
>>> 3 in range(5)
>>> range(3)
>>> sorted([3, 1, 2])
>>> sorted([3, 1, 2], reverse=True)
>>> sorted(['b', 'A', 'c'])
>>> sorted(['b', 'A', 'c'], key=str.lower)
>>> sorted([(2, 'a'), (1, 'b'), (2, 'A')])
>>> sorted([1, 'a'])
>>> sorted([3, 1, 2], key=lambda x: -x)
>>> max([1, 5, 3])
>>> min([4, 2, 8])
>>> max([], default=0)
>>> max([])
>>> max(['apple', 'fig', 'banana'], key=len)
>>> min(3, 1, 2)
>>> sum([1, 2, 3])
>>> sum([[1], [2]], [])
>>> [1, 2] == [1, 2]
>>> [1, 2] < [1, 3]
>>> [1, [2, 3]] == [1, [2, 3]]
>>> [1, 2, 3].index(2)
>>> [1, 2, 3].index(5)
>>> [1, 1, 2].count(1)
>>> list('abc')
>>> list(reversed([1, 2, 3]))
>>> [x for x in [3, 1, 2] if x > 1]
>>> list(zip([1, 2], ['a', 'b']))
>>> list(zip([1, 2, 3], 'ab'))
>>> list(enumerate('ab'))
>>> list(enumerate('ab', 1))
>>> list(map(str, [1, 2]))
>>> list(map(lambda a, b: a + b, [1, 2], [10, 20]))
>>> list(filter(None, [0, 1, '', 'a']))
>>> list(filter(lambda x: x % 2, range(6)))
>>> any([0, 0, 1])
>>> all([])
>>> any([])
>>> all([1, 0])
>>> [] == []
>>> bool([])
>>> [1, 2, 3][1:2] == [2]
#: append while iterating
xs = [1, 2, 3]
for x in xs:
    if x < 3:
        xs.append(x + 10)
return xs
#: remove while iterating
xs = [1, 2, 2, 3]
for x in xs:
    if x == 2:
        xs.remove(x)
return xs
#: pop and insert
xs = [1, 2, 3]
xs.insert(0, 0)
xs.insert(100, 9)
y = xs.pop()
z = xs.pop(0)
return xs, y, z
#: extend and reverse
xs = [1]
xs.extend([2, 3])
xs.extend('ab')
xs.reverse()
return xs
#: sort in place
xs = [3, 1, 2]
r = xs.sort()
return xs, r
#: sort by key
xs = ['ccc', 'a', 'bb']
xs.sort(key=len, reverse=True)
return xs
#: slice assignment
xs = [1, 2, 3, 4, 5]
xs[1:3] = ['a', 'b', 'c']
return xs
#: slice delete
xs = [1, 2, 3, 4, 5]
del xs[1:3]
return xs
#: step slice delete
xs = list(range(10))
del xs[::2]
return xs
#: negative index assign
xs = [1, 2, 3]
xs[-1] = 9
return xs
#: list copy independence
a = [1, 2]
b = a.copy()
b.append(3)
return a, b
#: alias mutation
a = [1, 2]
b = a
b.append(3)
return a
#: clear
a = [1, 2]
a.clear()
return a
#: augmented add
a = [1]
b = a
a += [2]
return b
#: nested list
grid = [[0] * 3 for _ in range(2)]
grid[0][1] = 5
return grid
#: list multiply aliasing
grid = [[0] * 2] * 2
grid[0][0] = 1
return grid
#: remove missing
xs = [1]
xs.remove(5)
return xs
#: pop empty
xs = []
return xs.pop()
#: unpack
a, b = [1, 2]
return a + b
#: unpack wrong count
a, b = [1, 2, 3]
return a
#: starred unpack
first, *rest = [1, 2, 3]
return first, rest
#: starred middle
a, *mid, z = range(6)
return a, mid, z
#: star in list display
a = [1, 2]
b = [3]
return [*a, *b, 4]
#: zip star transpose
rows = [[1, 2, 3], [4, 5, 6]]
return list(zip(*rows))
#: index assignment out of range
xs = [1]
xs[3] = 2
return xs
#: enumerate unpack loop
out = []
for i, c in enumerate('xyz'):
    out.append(f'{i}{c}')
return out
#: while pop
xs = [1, 2, 3]
total = 0
while xs:
    total += xs.pop()
return total
#: for else
for i in range(3):
    if i == 5:
        break
else:
    return 'no break'
return 'broke'
#: list of tuples sort key
pairs = [('b', 2), ('a', 2), ('c', 1)]
return sorted(pairs, key=lambda p: (p[1], p[0]))
#: min max key tuples
pts = [(1, 5), (3, 2), (2, 8)]
return min(pts, key=lambda p: p[1]), max(pts)
#: list equality nan
nan = float('nan')
return [nan] == [nan], nan in [nan]
#: self referencing list
a = [1]
a.append(a)
return str(a)
>>> [1, 2, 3].copy()
>>> list((1, 2))
>>> [i * i for i in range(5)]
>>> [1, 2] * 2
>>> len([1, [2, 3]])
>>> [3, 1, 2].sort()
>>> sorted('bca')
>>> sorted({3: 'a', 1: 'b'})
>>> list(reversed(range(3)))
>>> [1, 2, 3][-2:]
>>> [1, 2, 3][:-1]
>>> [][0]
>>> [1, 2, 3][True]
