"""Index specs: the static description of a NumPy basic/advanced index used by index ops.

A spec is a tuple of entries: ('slice', start, length, step), ('int', k), ('newaxis',) or
('array', j), where j numbers the integer index-array operands.  Missing trailing axes are whole.
"""


def inverse_permutation(perm):
    """The permutation undoing `perm` (a transpose's axes), as a tuple of Python ints."""
    return tuple(sorted(range(len(perm)), key=perm.__getitem__))


def index_tuple(spec, arrays):
    """The NumPy index equivalent to `spec`, with `arrays` substituted for the ('array', j) entries."""
    out = []
    for entry in spec:
        kind = entry[0]
        if kind == "slice":
            _, start, length, step = entry
            stop = start + length * step
            out.append(slice(start, stop if stop >= 0 else None, step))
        elif kind == "int":
            out.append(entry[1])
        elif kind == "newaxis":
            out.append(None)
        elif kind == "array":
            out.append(arrays[entry[1]])
        else:
            raise ValueError(f"bad index spec entry {entry!r}")
    return tuple(out)


def normalize_slice(s, dim):
    """The ('slice', start, length, step) entry for Python slice `s` on an axis of length `dim`."""
    start, stop, step = s.indices(dim)
    return ("slice", start, len(range(start, stop, step)), step)
