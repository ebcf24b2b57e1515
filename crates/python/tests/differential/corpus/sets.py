# Sets: operators, predicates, methods. (Sets of strings are avoided: their order varies
# between CPython runs.)
>>> {1, 2, 3}
>>> {3, 1, 2}
>>> set()
>>> set([3, 1, 2, 1])
>>> len({1, 1, 2})
>>> 2 in {1, 2}
>>> {1, 2} | {3}
>>> {1, 2} & {2, 3}
>>> {1, 2} - {2}
>>> {1, 2} ^ {2, 3}
>>> {1} <= {1, 2}
>>> {1, 2} <= {1, 2}
>>> {1} < {1}
>>> {1, 2} >= {2}
>>> {1, 2} == {2, 1}
>>> {1, 2}.issubset([1, 2, 3])
>>> {1, 2, 3}.issuperset({1})
>>> {1}.isdisjoint({2})
>>> {1, 2}.union([3], [4])
>>> {1, 2, 3}.intersection({2, 3}, [3])
>>> {1, 2, 3}.difference([1])
>>> {1, 2}.symmetric_difference([2, 3])
>>> sorted({'b', 'a', 'c'})
>>> sorted(set('hello'))
>>> len(set('hello'))
>>> {x % 3 for x in range(10)}
>>> {1, 2} == [1, 2]
>>> {(1, 2), (1, 2)}
>>> {[1]}
>>> frozenset([1, 2])
>>> bool(set())
>>> {1.0, 1}
>>> {10, 20, 30}
>>> {100, 5, 17}
>>> set(range(5))
>>> {-1, -2, 3}
#: add and discard
s = {1}
s.add(2)
s.add(1)
s.discard(5)
s.discard(1)
return s
#: remove missing
s = {1}
s.remove(2)
return s
#: update
s = {1}
s.update([2, 3], {4})
return s
#: pop
s = {5}
x = s.pop()
return x, s
#: pop empty
s = set()
return s.pop()
#: intersection update
s = {1, 2, 3}
s.intersection_update({2, 3, 4})
return s
#: difference update
s = {1, 2, 3}
s.difference_update([1])
return s
#: set grows during iteration
s = {1, 2}
for x in s:
    s.add(x + 10)
return s
#: in-place operators
s = {1, 2}
s |= {3}
s &= {1, 3}
s -= {1}
return s
#: dedupe preserving order
seen = set()
out = []
for x in [3, 1, 3, 2, 1]:
    if x not in seen:
        seen.add(x)
        out.append(x)
return out
#: set copy
a = {1}
b = a.copy()
b.add(2)
return a, b
#: list of set
return sorted(list({3, 1, 2}))
#: set clear
s = {1, 2}
s.clear()
return s
>>> frozenset()
>>> frozenset([3, 1, 2, 3])
>>> frozenset({5, 1}) | {2}
>>> {2} | frozenset({5, 1})
>>> frozenset([1, 2]) == {1, 2}
>>> {frozenset([1]): 'a'}[frozenset([1])]
>>> len({frozenset([1, 2]), frozenset([2, 1])})
>>> frozenset('ab') & frozenset('bc')
>>> frozenset([1]).add(2)
>>> isinstance(frozenset(), frozenset), isinstance(frozenset(), set)
>>> sorted(frozenset([3, 1, 2]))
>>> frozenset([1, 2]).issubset([1, 2, 3])
#: frozenset in-place rebinds
a = frozenset([1])
b = a
a |= {2}
return a, b
#: frozenset copy is itself
a = frozenset([1, 2])
return a.copy() is a, a.union([3])
