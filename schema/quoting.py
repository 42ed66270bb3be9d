"""The one way a message quotes what a caller sent: field names, operators, values, ids.

A caller's string may hold anything JSON can carry: a lone UTF-16 surrogate (`"\\ud800"`),
NUL and other control characters, bidi overrides, a megabyte. Quoted raw, such a string
makes a message that no UTF-8 encoder can write (the answer fails with a 500) or that
reads differently from what it says. `quote` gives a bounded repr, with every
non-printable character escaped, so a message is always short, plain and encodable;
`step` names one key of a JSON path the same way.
"""

from __future__ import annotations

import reprlib

MAX_QUOTED = 80
"""Characters of a caller's string a message repeats, at most (then `...`)."""


class _Quoter(reprlib.Repr):
    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 256:  # repr raises past 4,300 digits; no one reads 78 anyway
            return f"<a {x.bit_length()}-bit integer>"
        return super().repr_int(x, level)


_SHOW = _Quoter()
_SHOW.maxlevel = 3  # a plain repr of a 10,000-deep list raises RecursionError
_SHOW.maxstring = MAX_QUOTED
_SHOW.maxother = MAX_QUOTED


def quote(value: object) -> str:
    """`value` as a message shows it: a bounded repr, non-printable characters escaped
    (str.__repr__ escapes surrogates, controls and format characters)."""
    return _SHOW.repr(value)


def step(key: object) -> str:
    """One step of a JSON path after its parent: `.name` for a short printable key (as
    the caller wrote it, so the path reads like the filter), `[<quoted>]` for anything
    else (control characters, surrogates, bidi overrides, a key longer than a quote)."""
    if isinstance(key, str) and key.isprintable() and len(key) <= MAX_QUOTED:
        return f".{key}"
    return f"[{quote(key)}]"
