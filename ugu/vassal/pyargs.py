"""Arguments as uWSGI's C functions in its `uwsgi` module parse them
(CPython's PyArg_ParseTuple), with the same errors, for the cache,
sharedarea, queue and RPC functions: by position only, each converted as
its C type takes it.

Codes, as PyArg_ParseTuple's: i (C int), l (long), L (long long),
b (unsigned char, checked), B (unsigned char, masked), I (unsigned int,
masked), y (s#: a str's UTF-8, or a read-only buffer), s (a str),
O (anything); a "|" starts the optional ones.
"""

import operator

_INT = 1 << 31
_LONG = 1 << 63


def parse(function, args, kwargs, form, defaults=()):
    """The values of `args` for `form`, the optional ones left out taken
    from `defaults`."""
    if kwargs:
        raise TypeError(f"{function}() takes no keyword arguments")
    needed, _, optional = form.partition("|")
    least, most = len(needed), len(needed) + len(optional)
    if not least <= len(args) <= most:
        _count_error(function, least, most, len(args))
    values = [_convert(function, position, code, value)
              for position, (code, value)
              in enumerate(zip(needed + optional, args), 1)]
    return values + list(defaults[len(values) - least:])


def _count_error(function, least, most, given):
    if least == most:
        bound, limit = "exactly", least
    elif given < least:
        bound, limit = "at least", least
    else:
        bound, limit = "at most", most
    raise TypeError(f"{function}() takes {bound} {limit} argument"
                    f"{'' if limit == 1 else 's'} ({given} given)")


def _convert(function, position, code, value):
    if code == "O":
        return value
    if code == "y":
        return buffer(function, position, value)
    if code == "s":
        return text(function, position, value)
    number = operator.index(value)
    if code == "i" and not -_INT <= number < _INT:
        raise OverflowError("signed integer is "
                            + ("less than minimum" if number < 0
                               else "greater than maximum"))
    if code == "l" and not -_LONG <= number < _LONG:
        raise OverflowError("Python int too large to convert to C long")
    if code == "L" and not -_LONG <= number < _LONG:
        raise OverflowError("int too big to convert")
    if code == "b" and not 0 <= number <= 255:
        raise OverflowError("unsigned byte integer is "
                            + ("less than minimum" if number < 0
                               else "greater than maximum"))
    if code == "B":
        return number & 0xFF
    if code == "I":
        return number & 0xFFFFFFFF
    return number


def buffer(function, position, value):
    """s#: a str as its UTF-8, a read-only bytes-like object as its
    bytes."""
    if isinstance(value, str):
        return value.encode()
    try:
        view = memoryview(value)
    except TypeError:
        raise TypeError(f"a bytes-like object is required, not "
                        f"'{type(value).__name__}'") from None
    if not view.readonly:
        raise TypeError(f"{function}() argument {position} must be "
                        f"read-only bytes-like object, not "
                        f"{type(value).__name__}")
    return view.tobytes()


def text(function, position, value):
    if not isinstance(value, str):
        raise TypeError(f"{function}() argument {position} must be str, not "
                        f"{type(value).__name__}")
    if "\0" in value:
        raise ValueError("embedded null character")
    return value
