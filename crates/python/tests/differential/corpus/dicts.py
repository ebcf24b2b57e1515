# Dicts: methods, views, ordering, mutation during iteration.
>>> {'a': 1, 'b': 2}
>>> {'a': 1}['a']
>>> {'a': 1}['z']
>>> {'a': 1}.get('z')
>>> {'a': 1}.get('z', 0)
>>> list({'a': 1, 'b': 2}.keys())
>>> list({'a': 1, 'b': 2}.values())
>>> list({'a': 1, 'b': 2}.items())
>>> str({'a': 1}.keys())
>>> str({'a': 1}.values())
>>> str({'a': 1}.items())
>>> {'a': 1}.keys()
>>> len({'a': 1, 'b': 2})
>>> 'a' in {'a': 1}
>>> 1 in {'a': 1}
>>> dict(a=1, b=2)
>>> dict([('a', 1), ('b', 2)])
>>> dict(zip('ab', [1, 2]))
>>> dict.fromkeys('ab', 0)
>>> dict.fromkeys([1, 2])
>>> {'a': 1} | {'b': 2}
>>> {'a': 1, 'b': 2} | {'a': 3}
>>> {1: 'a', 1.0: 'b'}
>>> {True: 'x', 1: 'y'}
>>> {(1, 2): 'pair'}[(1, 2)]
>>> {[1]: 2}
>>> {'a': 1} == {'a': 1}
>>> {'a': 1, 'b': 2} == {'b': 2, 'a': 1}
>>> sorted({'b': 1, 'a': 2}.items())
>>> max({'a': 3, 'b': 5}, key=lambda k: {'a': 3, 'b': 5}[k])
>>> {k: v for k, v in [('x', 1), ('y', 2)]}
>>> {i: i * i for i in range(4)}
>>> list({'z': 1, 'a': 2})
>>> dict()
>>> {}
>>> bool({})
#: setdefault and update
d = {}
d.setdefault('a', []).append(1)
d.setdefault('a', []).append(2)
d.update({'b': 3})
d.update(c=4)
return d
#: pop with default
d = {'a': 1}
return d.pop('a'), d.pop('a', 'none'), d
#: pop missing
d = {}
return d.pop('x')
#: popitem
d = {'a': 1, 'b': 2}
k = d.popitem()
return k, d
#: popitem empty
d = {}
return d.popitem()
#: delete key
d = {'a': 1, 'b': 2}
del d['a']
return d
#: delete missing key
d = {'a': 1}
del d['b']
return d
#: counting words
counts = {}
for w in 'a b a c b a'.split():
    counts[w] = counts.get(w, 0) + 1
return counts
#: insertion order after delete
d = {'a': 1, 'b': 2, 'c': 3}
del d['b']
d['b'] = 4
return list(d)
#: overwrite keeps position
d = {'a': 1, 'b': 2}
d['a'] = 9
return d
#: grow during iteration
d = {'a': 1}
for k in d:
    d[k + 'x'] = 1
return d
#: delete during iteration
d = {'a': 1, 'b': 2}
for k in d:
    del d[k]
return d
#: mutate values during iteration
d = {'a': 1, 'b': 2}
for k in d:
    d[k] += 10
return d
#: view is live
d = {'a': 1}
ks = d.keys()
d['b'] = 2
return list(ks)
#: items unpack loop
d = {'x': 1, 'y': 2}
out = []
for k, v in d.items():
    out.append(k * v)
return out
#: nested dict
d = {'a': {'b': {'c': 1}}}
d['a']['b']['d'] = 2
return d
#: dict copy
a = {'k': [1]}
b = a.copy()
b['k'].append(2)
b['z'] = 0
return a, b
#: dict of lists group
groups = {}
for n in range(6):
    groups.setdefault(n % 3, []).append(n)
return groups
#: sorted by value
d = {'a': 3, 'b': 1, 'c': 2}
return sorted(d, key=d.get)
#: dict clear
d = {'a': 1}
d.clear()
return d
#: dict in operator values
d = {'a': 1}
return 1 in d.values(), ('a', 1) in d.items()
#: keys set ops
a = {'x': 1, 'y': 2}
b = {'y': 3, 'z': 4}
return sorted(a.keys() & b.keys())
#: star star merge
a = {'x': 1}
b = {'y': 2}
return {**a, **b, 'z': 3}
#: dict comprehension filter
return {k: v for k, v in {'a': 1, 'b': 2, 'c': 3}.items() if v % 2}
#: len of keys
return len({'a': 1, 'b': 2}.keys())
#: get with list key
return {}.get([1])
#: values sum
return sum({'a': 1.5, 'b': 2.5}.values())
