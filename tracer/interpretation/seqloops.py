"""Rolling `for` loops over traced arrays, `enumerate` and `zip`: the iterator is an IndexedIterator,
whose k-th item is made by indexing its sources with k, so the loop is watched as a `for` over a
`range` is (rolling.py), its element an indexed read with the counter (`obs[t]`).

While loops are watched (rolling on), `iter()` of a traced array with at least one axis, and
`enumerate`/`zip` of traced arrays and ranges (no other iterables; `zip(strict=True)` stays native) make
an IndexedIterator instead of the native iterator.  Its items are what the native one gives: `x[k]`
(a row of a 2-D array, a view), `(start + k, x[k])`, `(x[k], y[k], ...)`, taken when FOR_ITER asks
for them (writes into `x` in earlier iterations are seen, as NumPy's iterator sees them); its length
is fixed when it is made (zip: the shortest source).  Native consumers (`list(zip(x, y))`) call its
`__next__`.  A SequenceWatch counts the items taken instead of reading a range iterator's state.
"""
import operator

import numpy as np

from .rolling import RANGE_ITERATOR, LoopWatch
from ..arrays.loopindex import LoopIndex
from ..arrays.values import TracedArray, shadowed


class IndexedIterator:
    """Items `pack([source[k] for source in sources])` for k in [index, length): a source is a
    TracedArray (indexed) or a range (its k-th value); `offset` not None puts `offset + k` first
    (enumerate); `single` yields the one source's item itself (iter)."""

    __slots__ = ("sources", "offset", "single", "index", "length")

    def __init__(self, sources, offset=None, single=False):
        self.sources, self.offset, self.single = sources, offset, single
        self.index = 0
        self.length = min(len(s) for s in sources)

    def __iter__(self):
        return self

    def __next__(self):
        return self.item(self.take(), operator.getitem)

    def __length_hint__(self):
        return self.length - self.index

    def take(self):
        """The position of the next item (StopIteration at the end), the iterator moved past it."""
        k = self.index
        if k >= self.length:
            raise StopIteration
        self.index = k + 1
        return k

    def item(self, k, get):
        """The item at position `k` (an int, or a LoopIndex of the watched loop), read by `get(source,
        key)`."""
        values = [get(s, k) if type(s) is TracedArray else _range_item(s, k) for s in self.sources]
        if self.single:
            return values[0]
        if self.offset is not None:
            values.insert(0, _shifted(k, self.offset))
        return tuple(values)


def _range_item(r, k):
    if type(k) is LoopIndex:
        return LoopIndex(k.watch, k.base, k.a * r.step, k.b * r.step + r.start)
    return r[k]


def _shifted(k, offset):
    """`offset + k` (k an int or a LoopIndex)."""
    return LoopIndex(k.watch, k.base, k.a, k.b + offset) if type(k) is LoopIndex else offset + k


def _source(x):
    x = shadowed(x)
    if type(x) is TracedArray and np.ndim(x.value) >= 1 or type(x) is range:
        return x
    return None


def indexed_iter(iterable):
    """The IndexedIterator of `iter(iterable)` for a traced array with an axis, or None."""
    source = _source(iterable)
    return None if type(source) is not TracedArray else IndexedIterator([source], single=True)


def indexed_enumerate(args, kwargs):
    """The IndexedIterator of `enumerate(*args, **kwargs)` over a traced array, or None."""
    if len(args) + len(kwargs) > 2 or set(kwargs) - {"start"} or not args:
        return None
    start = args[1] if len(args) > 1 else kwargs.get("start", 0)
    source = _source(args[0])
    if type(start) is not int or type(source) is not TracedArray:
        return None
    return IndexedIterator([source], offset=start)


def indexed_zip(args, kwargs):
    """The IndexedIterator of `zip(*args)` over traced arrays and ranges (one array at least), or None."""
    sources = [_source(a) for a in args]
    if kwargs or not sources or None in sources or all(type(s) is range for s in sources):
        return None
    return IndexedIterator(sources)


class SequenceWatch(LoopWatch):
    """A loop over an IndexedIterator: its counter is the position of the item."""

    def state(self):
        return self.iterator.index, 1

    def remaining(self):
        return self.iterator.length - self.iterator.index

    def advance(self, n):
        self.iterator.index += n

    def next_value(self):
        return self.iterator.take()

    def item(self, value, interpreter):
        return self.iterator.item(value, interpreter.get_item)


# The iterators whose FOR_ITER is watched for rolling, with the watch of their loops.
WATCHED_ITERATORS = {RANGE_ITERATOR: LoopWatch, IndexedIterator: SequenceWatch}
