"""Minimal pytrees for the bench: nested tuples/lists of array leaves (what the workloads use)."""


def flatten(tree):
    """Leaves of `tree` in order (tuples and lists are containers, everything else a leaf)."""
    if isinstance(tree, (tuple, list)):
        return [leaf for item in tree for leaf in flatten(item)]
    return [tree]


def map_leaves(fn, tree):
    """`tree` with every leaf replaced by fn(leaf); containers keep their type."""
    if isinstance(tree, (tuple, list)):
        return type(tree)(map_leaves(fn, item) for item in tree)
    return fn(tree)


def unflatten(like, leaves):
    """Rebuild the structure of `like` from the leaves in order."""
    iterator = iter(leaves)
    return map_leaves(lambda _leaf: next(iterator), like)
