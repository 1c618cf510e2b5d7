"""Environment getters for what a trace assumes about code and names, rather than data: the code object
a Python function runs (`CodeGetter`), and how the global names a trace looked up in a module resolve
(`NamespaceGetter`: builtins not shadowed, modules not rebound).  The TraceContext records them
(context.py) and the dispatcher checks them on every cached call."""


class CodeGetter:
    """The code object Python function `func` runs (a notebook's autoreload replaces it in place)."""
    __slots__ = ("func",)

    def __init__(self, func):
        self.func = func

    def get(self):
        return self.func.__code__

    def is_place(self):
        return True

    def describe(self):
        return f"code of {self.func.__qualname__}"


MISSING = object()    # what `namespace.get(name, MISSING)` gives for a name the namespace does not hold


class NamespaceGetter:
    """Whether the names a trace looked up in the module namespace `namespace` still resolve as they did
    then: those found among the builtins (`absent`) are still absent from it (a global `abs` defined
    later shadows the builtin), those bound to modules (`modules`: name -> module) are bound to the same
    modules (`np = other_module`).  `get()` checks all the names at once, by C-level set operations.
    A few names are cheaper to check one by one: then `lookups` lists them as (namespace.get, name,
    expected), each holding while `get(name, MISSING) is expected` (the dispatcher's fast path runs
    those inline, without a call of `get`); for more names `lookups` is empty."""
    __slots__ = ("namespace", "absent", "modules", "get", "lookups")

    max_lookups = 4       # measured (callgrind): one dict.get per name beats the set operations up to here

    def __init__(self, namespace, absent, modules):
        self.namespace, self.absent, self.modules = namespace, frozenset(absent), dict(modules)
        keys, items, absent = namespace.keys(), namespace.items(), self.absent
        pairs = frozenset(self.modules.items())
        if not pairs:
            self.get = lambda: keys.isdisjoint(absent)
        elif not absent:
            self.get = lambda: items >= pairs
        else:
            self.get = lambda: keys.isdisjoint(absent) and items >= pairs
        expected = [*((name, MISSING) for name in sorted(absent)), *sorted(self.modules.items())]
        self.lookups = (tuple((namespace.get, name, value) for name, value in expected)
                        if len(expected) <= self.max_lookups else ())

    def describe(self):
        changed = sorted(name for name in self.absent if name in self.namespace) + sorted(
            name for name, module in self.modules.items() if self.namespace.get(name) is not module)
        return (f"names of module {self.namespace.get('__name__')!r} (builtins not shadowed, modules not "
                f"rebound{': ' + ', '.join(changed) + ' changed' if changed else ''})")
