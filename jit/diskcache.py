"""The on-disk cache of compiled machine code: object files keyed on everything that determines them.

An entry is `<key>.o` (the object file MCJIT produced) plus `<key>.json` (its sidecar: the object's
SHA-256 and size, function qualname, `file:line`, argument signature, kind, trace op count, created,
last used, hits).  The key (engine.py computes it) hashes the exact LLVM module text together with the
stamp of jit/'s sources, llvmlite and LLVM versions, target triple, CPU name and features and the optimisation
settings.  Only LLVM's work is skipped on a hit: tracing, guards and lowering run in every process.

Soundness rules: a module whose text embeds a literal address (`inttoptr (i64 <n>`) is never stored
or loaded (`has_addresses`; counted as `uncacheable`); an object is used only if its bytes match the
sidecar's hash (a corrupt or truncated entry is deleted and recompiled).  Writes go to a temp file and
`os.replace`; mutations of the directory take an `flock` on `<dir>/lock`, so concurrent processes are
safe.  The size is bounded by JITGRAD_CACHE_MAX_MB (default 512), evicting least-recently-used entries.
Bookkeeping of a hit (the sidecar's hits and last use, stats.json) is written by a background thread
(`later`), off the caller's path; process exit waits for it (a second at most).

Environment: JITGRAD_CACHE_DIR (default `$XDG_CACHE_HOME/jitgrad`, else `~/.cache/jitgrad`),
JITGRAD_DISK_CACHE=0 disables the cache, JITGRAD_CACHE_MAX_MB bounds it.  No llvmlite import here:
the command line (jitgrad/cli.py) reads the cache without loading LLVM.
"""
import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile
import threading
import time

DEFAULT_MAX_MB = 512
_ADDRESS = re.compile(r"inttoptr\s*\(?\s*i\d+\s+-?\d+")
_STAT_NAMES = ("hits", "misses", "stores", "uncacheable", "corrupt", "evicted")
session = dict.fromkeys(_STAT_NAMES, 0)      # this process's counters (the persistent ones: stats.json)


def directory():
    """The cache directory (not created)."""
    explicit = os.environ.get("JITGRAD_CACHE_DIR")
    if explicit:
        return os.path.abspath(os.path.expanduser(explicit))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jitgrad")


def enabled():
    """False when JITGRAD_DISK_CACHE is 0/false/off/no."""
    return os.environ.get("JITGRAD_DISK_CACHE", "1").strip().lower() not in ("0", "false", "off", "no")


def max_bytes():
    """The size bound in bytes (JITGRAD_CACHE_MAX_MB, default 512)."""
    raw = os.environ.get("JITGRAD_CACHE_MAX_MB", "")
    try:
        return int(float(raw) * 2**20) if raw else DEFAULT_MAX_MB * 2**20
    except ValueError:
        raise ValueError(f"JITGRAD_CACHE_MAX_MB must be a number of megabytes, got {raw!r}") from None


def sources_stamp(root, packages):
    """A digest of the Python sources of `packages` (folders under `root`) as found now: each file's path,
    size and modification time (no file is read: cheap enough for every process start)."""
    h = hashlib.sha256()
    for package in packages:
        for dirpath, dirnames, names in os.walk(os.path.join(root, package)):
            dirnames.sort()
            for name in sorted(n for n in names if n.endswith(".py")):
                path = os.path.join(dirpath, name)
                stat = os.stat(path)
                h.update(f"{path[len(root):]}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return h.hexdigest()


def has_addresses(text):
    """True if LLVM module `text` embeds a literal address: such modules never go to disk."""
    return _ADDRESS.search(text) is not None


def make_key(text, settings):
    """The hex key of module `text` compiled under `settings` (a JSON-able dict)."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    h.update(b"\0")
    h.update(text.encode())
    return h.hexdigest()


def _paths(key, root=None):
    base = os.path.join(root or directory(), key)
    return base + ".o", base + ".json"


@contextlib.contextmanager
def _locked(root):
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_atomic(path, data):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_json(path):
    try:
        with open(path, "rb") as f:
            value = json.loads(f.read())
        return value if isinstance(value, dict) else None
    except (OSError, ValueError):
        return None


def _bump(root, increments, counted=False):
    """Add `increments` to this process's (unless already `counted`) and the persistent counters (the
    lock is held)."""
    for name, n in increments.items():
        session[name] += 0 if counted else n
    stats_path = os.path.join(root, "stats.json")
    stats = _read_json(stats_path) or {}
    for name, n in increments.items():
        stats[name] = int(stats.get(name, 0)) + n
    _write_atomic(stats_path, json.dumps(stats).encode())


def note_uncacheable():
    """Count a module kept off the disk (it embeds an address)."""
    if enabled():
        root = directory()
        with _locked(root):
            _bump(root, {"uncacheable": 1})


def load(key):
    """The object bytes stored under `key` if present and intact (hash checked), else None.

    A corrupt entry (bad sidecar, truncated or altered object) is deleted and counted."""
    if not enabled():
        return None
    root = directory()
    obj_path, meta_path = _paths(key, root)
    with _locked(root):
        meta = _read_json(meta_path)
        try:
            with open(obj_path, "rb") as f:
                data = f.read()
        except OSError:
            data = None
        if data is None and meta is None:
            _bump(root, {"misses": 1})
            return None
        if data is None or meta is None or meta.get("sha256") != hashlib.sha256(data).hexdigest():
            _remove(root, key)
            _bump(root, {"misses": 1, "corrupt": 1})
            return None
    session["hits"] += 1
    later(_note_hit, root, key)
    return data


def _note_hit(root, key):
    """The sidecar's hits and last use, and the persistent hit count, after a hit on `key`."""
    with _locked(root):
        meta_path = _paths(key, root)[1]
        meta = _read_json(meta_path)
        if meta is not None:
            meta["last_used"] = time.time()
            meta["hits"] = int(meta.get("hits", 0)) + 1
            _write_atomic(meta_path, json.dumps(meta).encode())
        _bump(root, {"hits": 1}, counted=True)


_pending = []


def later(action, *args):
    """Run bookkeeping `action(*args)` in a background thread (errors ignored: it is only bookkeeping)."""
    def run():
        with contextlib.suppress(OSError):
            action(*args)
    thread = threading.Thread(target=run, daemon=True, name="jitgrad-cache-bookkeeping")
    thread.start()
    _pending[:] = [t for t in _pending if t.is_alive()] + [thread]


@atexit.register
def wait_for_bookkeeping(timeout=1.0):
    """Wait (at most `timeout` seconds in all) for the bookkeeping started by `later`."""
    deadline = time.monotonic() + timeout
    for thread in list(_pending):
        thread.join(max(deadline - time.monotonic(), 0))


def store(key, data, about):
    """Store object bytes `data` under `key` with sidecar fields `about`, then evict down to the bound."""
    if not enabled():
        return
    root = directory()
    obj_path, meta_path = _paths(key, root)
    now = time.time()
    meta = dict(about, key=key, sha256=hashlib.sha256(data).hexdigest(), size=len(data), created=now,
                last_used=now, hits=0)
    with _locked(root):
        _write_atomic(obj_path, data)
        _write_atomic(meta_path, json.dumps(meta).encode())
        _bump(root, {"stores": 1, "evicted": _evict(root, max_bytes(), keep=key)})


def _remove(root, key):
    for path in _paths(key, root):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _evict(root, limit, keep):
    """Delete least-recently-used entries (never `keep`) until the total size is at most `limit`."""
    with os.scandir(root) as found:
        total = sum(e.stat().st_size for e in found if e.name.endswith(".o"))
    if total <= limit:
        return 0                                 # the common case reads no sidecar
    evicted = 0
    for e in entries(root):
        if total <= limit:
            break
        if e["key"] != keep:
            _remove(root, e["key"])
            total -= e["size"]
            evicted += 1
    return evicted


def entries(root=None):
    """The sidecars of every entry (dicts; `size` is the object's size on disk), oldest use first."""
    root = root or directory()
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        if not name.endswith(".json") or name == "stats.json":
            continue
        key = name[:-len(".json")]
        obj_path, meta_path = _paths(key, root)
        meta = _read_json(meta_path)
        try:
            size = os.path.getsize(obj_path)
        except OSError:
            continue
        if meta is None:
            meta = {}
        meta.update(key=key, size=size, last_used=float(meta.get("last_used", 0)),
                    created=float(meta.get("created", 0)), hits=int(meta.get("hits", 0)))
        found.append(meta)
    return sorted(found, key=lambda e: e["last_used"])


def info(root=None):
    """Directory, whether enabled, entry count, total size, the size bound and the persistent stats."""
    root = root or directory()
    listed = entries(root)
    stats = _read_json(os.path.join(root, "stats.json")) or {}
    return {"directory": root, "enabled": enabled(), "entries": len(listed),
            "total_bytes": sum(e["size"] for e in listed), "max_bytes": max_bytes(),
            "stats": {name: int(stats.get(name, 0)) for name in _STAT_NAMES}}


def clear(older_than_days=None, function=None, root=None):
    """Delete the entries last used more than `older_than_days` ago and/or whose function qualname (or
    its last component) is `function`; all entries when neither is given.  Returns how many."""
    root = root or directory()
    if not os.path.isdir(root):
        return 0
    cutoff = None if older_than_days is None else time.time() - older_than_days * 86400
    removed = 0
    with _locked(root):
        for e in entries(root):
            if cutoff is not None and e["last_used"] >= cutoff:
                continue
            qualname = str(e.get("function", ""))
            if function is not None and function not in (qualname, qualname.rsplit(".", 1)[-1]):
                continue
            _remove(root, e["key"])
            removed += 1
        for name in os.listdir(root):           # temp files of writers that died
            if name.startswith(".tmp-") and (cutoff is None or os.path.getmtime(os.path.join(root, name)) < cutoff):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(root, name))
    return removed
