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


class NamespaceGetter:
    """Whether the names a trace looked up in the module namespace `namespace` still resolve as they did
    then: those found among the builtins (`absent`) are still absent from it (a global `abs` defined
    later shadows the builtin), those bound to modules (`modules`: name -> module) are bound to the same
    modules (`np = other_module`).  One check of all the names at once, by C-level set operations
    (`get` is that check, made once)."""
    __slots__ = ("namespace", "absent", "modules", "get")

    def __init__(self, namespace, absent, modules):
        self.namespace, self.absent, self.modules = namespace, frozenset(absent), dict(modules)
        keys, items, absent = namespace.keys(), namespace.items(), self.absent
        pairs = frozenset(self.modules.items())
        if len(absent) + len(pairs) == 1:          # one name: a dict lookup is cheaper than set operations
            name, module = next(iter(pairs)) if pairs else (next(iter(absent)), None)
            get = namespace.get
            self.get = (lambda: get(name) is module) if pairs else (lambda: name not in namespace)
        elif not pairs:
            self.get = lambda: keys.isdisjoint(absent)
        elif not absent:
            self.get = lambda: items >= pairs
        else:
            self.get = lambda: keys.isdisjoint(absent) and items >= pairs

    def describe(self):
        changed = sorted(name for name in self.absent if name in self.namespace) + sorted(
            name for name, module in self.modules.items() if self.namespace.get(name) is not module)
        return (f"names of module {self.namespace.get('__name__')!r} (builtins not shadowed, modules not "
                f"rebound{': ' + ', '.join(changed) + ' changed' if changed else ''})")
