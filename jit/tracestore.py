"""The on-disk trace records: what jitgrad traced, stored next to the machine code (jit/diskcache.py).

A record is one JSON file per function, signature and branch path, `<dir>/traces/<lookup>/<path>.json`:
`lookup` hashes everything a new process must match before it may even consider the record (the
function's code, the transform's parameters, the argument signature, the versions of Python, NumPy,
SciPy, llvmlite, jitgrad's own sources and the CPU: jitgrad/persist.py computes it), `path` the trace
text.  The record holds the guards with their source lines, the environment assumptions (each with the
portable place it was read from and its expected value, or why it cannot be re-validated in another
process), the inlined code objects with their hashes, the trace text, loops, retrace reasons, times,
hits and sizes.  jitgrad/persist.py builds and re-validates records; this module only stores them, with
diskcache's atomic writes and lock.  A record that does not parse, or lacks the fields it must have,
is deleted and counted as corrupt, never used; so is one whose content no longer matches the SHA-256
written with it (damage that still parses).  Records count towards JITGRAD_CACHE_MAX_MB: the least
recently used go first.
"""
import contextlib
import hashlib
import json
import os
import shutil
import time

from . import diskcache

FORMAT = 1
REQUIRED = {"format": int, "lookup": str, "path": str, "function": str, "trace": str, "environment": list,
            "codes": list, "guards": list, "reusable": bool}
SUBDIR = "traces"
USAGE = "usage.json"      # {"bytes": total size of the records}, kept up to date by store (the lock held)


def _root(root=None):
    return os.path.join(root or diskcache.directory(), SUBDIR)


def _valid(record):
    """Whether `record` has every required field, of its type, and its content hash matches (the hits
    and last use, updated in place, are not hashed)."""
    return (type(record) is dict and record.get("format") == FORMAT
            and all(type(record.get(name)) is kind for name, kind in REQUIRED.items())
            and record.get("sha256") == _digest(record))


_UNHASHED = ("sha256", "hits", "last_used", "created")


def _digest(record):
    content = {k: v for k, v in record.items() if k not in _UNHASHED}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def store(record):
    """Write `record` (a dict with the REQUIRED fields) under its lookup and path; keep its hits and
    first creation time when it replaces an equal path's record; then evict down to the size bound."""
    if not diskcache.enabled():
        return
    base = diskcache.directory()
    folder = os.path.join(_root(base), record["lookup"])
    path = os.path.join(folder, record["path"] + ".json")
    now = time.time()
    with diskcache._locked(base):
        os.makedirs(folder, exist_ok=True)
        old = diskcache._read_json(path)
        if old is not None and _valid(old):
            record = dict(record, created=old.get("created", now), hits=int(old.get("hits", 0)))
        record = dict(record, created=record.get("created", now), last_used=now, hits=record.get("hits", 0),
                      sha256=_digest(record))
        data = json.dumps(record).encode()
        replaced = os.path.getsize(path) if old is not None else 0
        usage = _usage(base) + len(data) - replaced
        diskcache._write_atomic(path, data)
        if usage > diskcache.max_bytes() // 4:
            usage = _evict(base, diskcache.max_bytes() // 4, keep=path)
        diskcache._write_atomic(os.path.join(_root(base), USAGE), json.dumps({"bytes": usage}).encode())


def candidates(lookup):
    """The valid records under `lookup`, most recently used first (damaged ones are deleted)."""
    if not diskcache.enabled():
        return []
    base = diskcache.directory()
    folder = os.path.join(_root(base), lookup)
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    found = []
    for name in names:
        if not name.endswith(".json"):
            continue
        record = diskcache._read_json(os.path.join(folder, name))
        if record is None or not _valid(record) or record["lookup"] != lookup or record["path"] + ".json" != name:
            with diskcache._locked(base):
                _remove_file(os.path.join(folder, name))
                diskcache._bump(base, {"corrupt": 1})
            continue
        found.append(record)
    return sorted(found, key=lambda r: -float(r.get("last_used", 0) or 0))


def note_hit(record):
    """Count a warm start from `record` (its hits and last use; written in the background)."""
    diskcache.later(_note_hit, diskcache.directory(), record)


def _note_hit(base, record):
    path = os.path.join(_root(base), record["lookup"], record["path"] + ".json")
    with diskcache._locked(base):
        current = diskcache._read_json(path)
        if current is None or not _valid(current):
            return
        current["hits"] = int(current.get("hits", 0)) + 1
        current["last_used"] = time.time()
        diskcache._write_atomic(path, json.dumps(current).encode())


def _files(base):
    """Paths of the record files under `base` (not the usage note, not temp files)."""
    for dirpath, _, names in os.walk(_root(base)):
        for name in names:
            if name.endswith(".json") and dirpath != _root(base):
                yield os.path.join(dirpath, name)


def records(root=None):
    """Every valid record (with `file` and `size` added), most recently used first."""
    found = []
    for path in _files(root):
        record = diskcache._read_json(path)
        if record is None or not _valid(record):
            continue
        with contextlib.suppress(OSError):
            found.append(dict(record, file=path, size=os.path.getsize(path)))
    return sorted(found, key=lambda r: -float(r.get("last_used", 0) or 0))


def damaged(root=None):
    """Paths of the record files that do not parse or lack required fields."""
    return [path for path in _files(root) if not _valid(diskcache._read_json(path))]


def clear(older_than_days=None, function=None, root=None):
    """Delete the records last used more than `older_than_days` ago and/or of function `function`
    (qualname or its last component), and damaged ones; all when neither is given.  Returns how many."""
    base = root or diskcache.directory()
    folder = _root(base)
    if not os.path.isdir(folder):
        return 0
    if older_than_days is None and function is None:
        with diskcache._locked(base):
            count = sum(len([n for n in names if n.endswith(".json")]) for _, _, names in os.walk(folder))
            shutil.rmtree(folder, ignore_errors=True)
        return count
    cutoff = None if older_than_days is None else time.time() - older_than_days * 86400
    removed = 0
    with diskcache._locked(base):
        for path in damaged(base):
            removed += _remove_file(path)
        for r in records(base):
            if cutoff is not None and float(r.get("last_used", 0) or 0) >= cutoff:
                continue
            if function is not None and function not in (r["function"], r["function"].rsplit(".", 1)[-1]):
                continue
            removed += _remove_file(r["file"])
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(folder, USAGE))      # (walked afresh by the next store)
    return removed


def _remove_file(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        return 0
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(path))          # (only when it was the last record of its lookup)
    return 1


def _usage(base):
    """The records' total size as last noted (walked afresh when the note is missing or damaged)."""
    noted = diskcache._read_json(os.path.join(_root(base), USAGE)) or {}
    size = noted.get("bytes")
    return size if type(size) is int and size >= 0 else _evict(base, None, keep=None)


def _evict(base, limit, keep):
    """Delete least-recently-used records (never `keep`) until their total size is at most `limit`
    (None: delete none); returns the total size left."""
    sizes = []
    for path in _files(base):
        with contextlib.suppress(OSError):
            sizes.append((os.path.getmtime(path), os.path.getsize(path), path))
    total = sum(size for _, size, _ in sizes)
    evicted = 0
    for _, size, path in sorted(sizes):
        if limit is None or total <= limit:
            break
        if path != keep:
            total -= size
            evicted += _remove_file(path)
    if evicted:
        diskcache._bump(base, {"evicted": evicted})
    return total
