# Builtins, types and conversions.
>>> len([1, 2, 3])
>>> len('abc')
>>> len(5)
>>> bool(0), bool(''), bool('a'), bool([0])
>>> isinstance(1, int)
>>> isinstance(True, int)
>>> isinstance(1.0, (int, float))
>>> isinstance('a', str)
>>> isinstance([], list)
>>> isinstance({}, dict)
>>> str(3) + str(4.0)
>>> tuple([1, 2])
>>> tuple('ab')
>>> list({'a': 1})
>>> set('aab') == {'a', 'b'}
>>> abs(-5)
>>> min('bca')
>>> max('a', 'b')
>>> max([1, 2], [1, 3])
>>> sum([])
>>> sum([1.5, 2])
>>> sum(range(5), 10)
>>> sorted([2, 1]) == [1, 2]
>>> repr([1, 'a', None, True, 1.5])
>>> repr((1, 'a'))
>>> repr({'a': [1]})
>>> repr(())
>>> repr((1,))
>>> None is None
>>> [] is []
>>> 1 if [] else 2
>>> 0 or 'default'
>>> '' and 'x'
>>> 1 and 2
>>> not []
>>> None == 0
>>> list(range(0))
>>> str(range(1, 5, 2))
>>> ...
>>> Ellipsis
>>> int
>>> str
>>> str.upper('abc')
>>> list(map(str.strip, [' a ', 'b ']))
>>> ''.join(map(chr, [104, 105]))
>>> list(map(int, '123'))
>>> list(zip())
>>> list(zip([1], [2], [3]))
>>> type(1).__name__
>>> divmod(10, 3)
>>> format(1.0)
>>> round(5.5)
>>> round(-1.5)
>>> int(True)
>>> float(True)
>>> str(-0.0)
>>> hash
>>> 10 ** 5
>>> chr(0x1F600)
>>> max(3, 7, 5)
>>> min([(2, 'b'), (1, 'z')])
>>> any(x == 3 for x in range(5))
>>> sorted([0.5, -1, 2])
>>> sum([True, True, False])
>>> list(enumerate([]))
>>> dict.fromkeys(range(3), 'x')
>>> isinstance(None, type(None))
>>> print('hello')
>>> list(reversed('abc'))
>>> next(iter('xyz'))
>>> list(iter([1, 2]))
>>> callable(print)
#: print returns none
r = print('x', 1, sep='-', end='!')
return r
#: iter over dict items sorted
d = {'b': 2, 'a': 1}
return [k for k, _ in sorted(d.items())]
#: math module
import math
return math.sqrt(16), math.floor(2.7), math.ceil(2.1), math.pi
#: math functions
import math
return math.log(100, 10), math.exp(0), math.fabs(-2), math.hypot(3, 4)
#: math isclose
import math
return math.isclose(0.1 + 0.2, 0.3)
#: from math import
from math import sqrt, floor
return sqrt(2), floor(-1.5)
#: math domain error
import math
return math.sqrt(-1)
#: math floor big
import math
return math.floor(1e20)
#: math gcd
import math
return math.gcd(12, 18)
#: math inf
import math
return math.inf > 10 ** 100
#: math trunc
import math
return math.trunc(-2.7)
#: math factorial
import math
return math.factorial(25)
#: math log2
import math
return math.log2(8), math.log10(1000)
#: math prod
import math
return math.prod([1, 2, 3, 4])
#: math degrees
import math
return math.degrees(math.pi), math.radians(180)
#: import forbidden
import os
return os.sep
#: eval forbidden
return eval('1 + 1')
