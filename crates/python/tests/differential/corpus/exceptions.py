# Exceptions: raise, catch, hierarchy, messages, finally.
#: catch value error
try:
    int('x')
except ValueError:
    return 'caught'
#: exception message
try:
    int('x')
except ValueError as e:
    return str(e)
#: key error str
try:
    {}['k']
except KeyError as e:
    return str(e)
#: key error args
try:
    raise KeyError('k')
except KeyError as e:
    return e.args
#: multiple args
try:
    raise ValueError('a', 1)
except ValueError as e:
    return e.args, str(e)
#: empty exception repr
return repr(ValueError())
#: exception repr
return repr(ValueError('x'))
#: exception str empty
return str(ValueError())
#: zero division message
try:
    1 / 0
except ZeroDivisionError as e:
    return str(e)
#: index error message
try:
    [][0]
except IndexError as e:
    return str(e)
#: type error caught
try:
    1 + 'a'
except TypeError:
    return 'type'
#: type error message
try:
    1 + 'a'
except TypeError as e:
    return str(e)
#: lookup catches key error
try:
    {}['x']
except LookupError:
    return 'lookup'
#: arithmetic catches zero div
try:
    1 // 0
except ArithmeticError:
    return 'arith'
#: tuple of types
try:
    [][1]
except (KeyError, IndexError) as e:
    return 'tuple'
#: finally runs
out = []
try:
    out.append(1)
finally:
    out.append(2)
return out
#: finally after return
def f():
    try:
        return 'try'
    finally:
        pass
return f()
#: finally overrides return
def f():
    try:
        return 'try'
    finally:
        return 'finally'
return f()
#: else clause
try:
    x = 1
except ValueError:
    x = 2
else:
    x = 3
return x
#: reraise
try:
    try:
        raise ValueError('inner')
    except ValueError:
        raise
except ValueError as e:
    return str(e)
#: raise from
try:
    try:
        1 / 0
    except ZeroDivisionError as e:
        raise ValueError('wrapped') from e
except ValueError as e:
    return str(e)
#: raise from none
try:
    try:
        1 / 0
    except ZeroDivisionError:
        raise ValueError('clean') from None
except ValueError as e:
    return str(e)
#: uncaught value error
raise ValueError('boom')
#: uncaught key error
d = {}
return d['missing']
#: assert fails
assert 1 == 2, 'math broke'
#: assert message
try:
    assert False, 'msg'
except AssertionError as e:
    return str(e)
#: assert passes
assert True
return 'ok'
#: raise class
try:
    raise IndexError
except IndexError as e:
    return repr(e)
#: custom message formatting
try:
    raise RuntimeError(f'bad {1 + 1}')
except RuntimeError as e:
    return str(e)
#: exception in function propagates
def f():
    raise ValueError('deep')
try:
    f()
except ValueError as e:
    return str(e)
#: except exception catches all ordinary
try:
    [].pop()
except Exception as e:
    return str(e)
#: base exception
try:
    raise KeyboardInterrupt
except BaseException:
    return 'base'
#: system exit not exception
try:
    try:
        raise SystemExit(2)
    except Exception:
        return 'wrong'
except SystemExit as e:
    return 'exit'
#: not implemented
try:
    raise NotImplementedError('todo')
except RuntimeError as e:
    return str(e)
#: stop iteration
try:
    next(iter([]))
except StopIteration:
    return 'stop'
#: attribute error
try:
    (1).foo
except AttributeError:
    return 'attr'
#: name error
try:
    undefined_name
except NameError as e:
    return str(e)
#: overflow float
try:
    2.0 ** 5000
except OverflowError:
    return 'overflow'
#: isinstance exception
e = ValueError('x')
return isinstance(e, Exception), isinstance(e, KeyError)
#: exception variable cleared
try:
    raise ValueError('x')
except ValueError as e:
    pass
return 'ok'
#: nested try finally order
out = []
try:
    try:
        raise ValueError('v')
    finally:
        out.append('inner')
except ValueError:
    out.append('outer')
return out
#: raise non exception
raise 5
#: except non matching propagates
try:
    raise ValueError('x')
except KeyError:
    return 'wrong'
#: recursion error
def f(n):
    return f(n + 1)
try:
    f(0)
except RecursionError:
    return 'recursion'
#: error in except handler
try:
    try:
        raise ValueError('a')
    except ValueError:
        raise KeyError('b')
except KeyError as e:
    return str(e)
#: unicode error message
try:
    int('٣x')
except ValueError as e:
    return 'bad'
#: key error args hold the key
try:
    {'a': 1}['b']
except KeyError as e:
    return e.args[0], e.args, str(e), repr(e)
#: key error from pop holds the key
try:
    {}.pop((1, 2))
except KeyError as e:
    return e.args[0]
#: key error from set remove
try:
    {1}.remove(5)
except KeyError as e:
    return e.args[0] + 1
#: value error args
try:
    int('x')
except ValueError as e:
    return e.args
#: format missing name
try:
    '{a}'.format(b=1)
except KeyError as e:
    return e.args
