# Strings and their methods.
>>> 'abc'.upper()
>>> 'ABC'.lower()
>>> 'hello world'.title()
>>> 'hello'.capitalize()
>>> 'Hello'.swapcase()
>>> 'Straße'.casefold()
>>> '  x  '.strip()
>>> 'xxhixx'.strip('x')
>>> '  x  '.lstrip()
>>> '  x  '.rstrip()
>>> 'a,b,c'.split(',')
>>> 'a b  c'.split()
>>> 'a,b,c'.split(',', 1)
>>> 'a,b,c'.rsplit(',', 1)
>>> 'a b c'.split(maxsplit=1)
>>> 'a b c'.rsplit(None, 1)
>>> 'a\nb\r\nc'.splitlines()
>>> 'a\nb\n'.splitlines(True)
>>> ''.split(',')
>>> ''.split()
>>> ','.join(['a', 'b'])
>>> ''.join(reversed('abc'))
>>> '-'.join(str(i) for i in range(4))
>>> ','.join([1, 2])
>>> 'hello'.replace('l', 'L')
>>> 'hello'.replace('l', 'L', 1)
>>> 'hello'.find('l')
>>> 'hello'.find('l', 3)
>>> 'hello'.find('z')
>>> 'hello'.rfind('l')
>>> 'hello'.index('e')
>>> 'hello'.index('z')
>>> 'hello'.rindex('l')
>>> 'hello'.count('l')
>>> 'hello'.startswith('he')
>>> 'hello'.endswith(('lo', 'x'))
>>> 'hello'.startswith('l', 2)
>>> 'a=b=c'.partition('=')
>>> 'a=b=c'.rpartition('=')
>>> 'abc'.partition('x')
>>> '42'.zfill(5)
>>> '-42'.zfill(5)
>>> 'ab'.center(6, '*')
>>> 'ab'.ljust(5, '.')
>>> 'ab'.rjust(5)
>>> 'abc'.center(6)
>>> '123'.isdigit()
>>> 'abc'.isalpha()
>>> 'abc1'.isalnum()
>>> '   '.isspace()
>>> 'abc'.islower()
>>> 'ABC'.isupper()
>>> 'Hello World'.istitle()
>>> '12.5'.isdigit()
>>> '½'.isnumeric()
>>> '²'.isdigit()
>>> '١٢'.isdecimal()
>>> 'prefix_name'.removeprefix('prefix_')
>>> 'name.txt'.removesuffix('.txt')
>>> 'abc'[1]
>>> 'abc'[-1]
>>> 'abcdef'[1:4]
>>> 'abcdef'[::-1]
>>> 'abcdef'[::2]
>>> 'abc'[5]
>>> 'abc'[1:100]
>>> 'ab' * 3
>>> 3 * 'ab'
>>> 'ab' + 'cd'
>>> 'a' in 'abc'
>>> 'abc' < 'abd'
>>> 'B' < 'a'
>>> len('héllo')
>>> 'héllo'.upper()
>>> 'tab\there'
>>> 'quote\'s'
>>> "dq\"s"
>>> 'both \' and "'
>>> 'new\nline'
>>> 'back\\slash'
>>> '\x00\x7f'
>>> 'é'
>>> 'ab' == 'ab'
>>> str(123)
>>> str(1.5)
>>> str(None)
>>> str(True)
>>> str([1, 'a'])
>>> str((1,))
>>> repr('x')
>>> repr("it's")
>>> 'abc'.isascii()
>>> 'a-b_c d'.title()
>>> "they're bill's".title()
>>> 'hello world'.capitalize()
>>> 'ﬁ'.upper()
>>> 'ß'.upper()
>>> 'İ'.lower()
>>> 'x'.join('abc')
>>> 'aaa'.count('aa')
>>> 'abc'.count('')
>>> 'a b'.split(' ')
>>> ' a  b '.split(' ')
>>> 'mississippi'.split('ss')
>>> '1,2,,3'.split(',')
>>> 'hello'.strip('ho')
>>> 'abc'.upper().lower()
>>> ord('a')
>>> chr(97)
>>> ord('€')
>>> ord('ab')
>>> 'abc'.index('c', 0, 2)
>>> 'a' * 0
>>> 'a' * -1
>>> 'hello'[10:]
>>> 'x'.isidentifier()
>>> 'Hello'.lower().startswith('h')
>>> '%'.join(['a', 'b'])
>>> 'tab\tsep'.expandtabs(4)
