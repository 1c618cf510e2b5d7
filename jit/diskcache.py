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
The cache holds code that is executed: the directory is created private (0700) and every file 0600,
whatever the umask, and a file not owned by this user or writable by group or others is refused (one
warning), as is a directory that is so, unless JITGRAD_CACHE_SHARED=1 says the cache is shared on
purpose.  A hit reads without the lock (files are replaced whole).  Bookkeeping of a hit (the sidecar's
hits and last use, stats.json) is held (`later`) and written at process exit (a second at most for the
lock), or by a background thread once it has waited a second: never on the call that loaded the code.

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
import sys
import tempfile
import threading
import time
import warnings

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


def max_bytes(strict=True):
    """The size bound in bytes (JITGRAD_CACHE_MAX_MB, default 512).  A setting that is not a finite
    non-negative number raises ValueError, or (strict=False: when storing) warns once and gives the
    default."""
    raw = os.environ.get("JITGRAD_CACHE_MAX_MB", "")
    try:
        value = float(raw) if raw else DEFAULT_MAX_MB
        if not 0 <= value < 2**40:
            raise ValueError
        return int(value * 2**20)
    except ValueError:
        message = f"JITGRAD_CACHE_MAX_MB must be a number of megabytes, got {raw!r}"
        if strict:
            raise ValueError(message) from None
        if "bound" not in _warned:
            _warned.add("bound")
            warnings.warn(f"jitgrad: {message}; using {DEFAULT_MAX_MB}", RuntimeWarning, stacklevel=3)
        return DEFAULT_MAX_MB * 2**20


def number(value, default=0):
    """`value` as a finite float if it is a number (fields of files that may be damaged), else `default`."""
    return float(value) if type(value) in (int, float) and value == value and abs(value) != float("inf") else default


_stamps = {}          # (root, package) -> digest of its sources, computed once per process
SOURCES = "sources.json"      # per-file SHA-256 of jitgrad's sources, keyed by the file's stat


def sources_stamp(root, packages):
    """A digest of the Python sources of `packages` (folders under `root`, __pycache__ left out): each
    file's path and the SHA-256 of its content, computed once per process and package.  The hashes are
    kept per file in the cache's sources.json, keyed by size, modification and change times and inode (a
    file copied with its times kept has a new inode and change time), so a process start reads only the
    sources that changed."""
    missing = [p for p in packages if (root, p) not in _stamps]
    if missing:
        known = _known_hashes()
        fresh = {}
        for package in missing:
            h = hashlib.sha256()
            for path, stat in _source_files(os.path.join(root, package)):
                mark = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
                digest = known.get(path, [None])[1:] == [mark] and known[path][0]
                if not digest:
                    with open(path, "rb") as source:
                        digest = hashlib.sha256(source.read()).hexdigest()
                    fresh[path] = [digest, mark]
                h.update(f"{path[len(root):]}\0{digest}\0".encode())
            _stamps[root, package] = h.hexdigest()
        if fresh:
            with contextlib.suppress(OSError):
                _note_hashes(fresh)
    return hashlib.sha256("\0".join(_stamps[root, p] for p in packages).encode()).hexdigest()


def _source_files(folder):
    for dirpath, dirnames, names in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(n for n in names if n.endswith(".py")):
            path = os.path.join(dirpath, name)
            yield path, os.stat(path)


def _known_hashes():
    """{path: [sha256, stat mark]} as sources.json holds them (empty when missing, refused or damaged)."""
    if not enabled() or not usable(directory()):
        return {}
    known = _read_json(os.path.join(directory(), SOURCES)) or {}
    return {k: v for k, v in known.items() if type(v) is list and len(v) == 2 and type(v[0]) is str}


def _note_hashes(fresh):
    if not enabled() or not usable(directory()):
        return
    root = directory()
    with _locked(root):
        path = os.path.join(root, SOURCES)
        known = _read_json(path) or {}
        known.update(fresh)
        _write_atomic(path, json.dumps(known).encode())


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


def _trusted(st):
    """Whether a file or directory with stat `st` is this user's and writable by nobody else."""
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _refuse(path):
    if "refused" not in _warned:
        _warned.add("refused")
        warnings.warn(f"jitgrad: ignoring {path} in the disk cache: it is not owned by you or is writable by "
                      "others (set JITGRAD_CACHE_SHARED=1 for a cache shared on purpose)", RuntimeWarning,
                      stacklevel=3)


_warned = set()


def usable(root):
    """Whether directory `root` may be used: missing (it will be created private), or this user's and
    writable by nobody else, or shared on purpose (JITGRAD_CACHE_SHARED=1).  Warns once otherwise."""
    try:
        st = os.stat(root)
    except FileNotFoundError:
        return True
    if _trusted(st) or os.environ.get("JITGRAD_CACHE_SHARED", "") == "1":
        return True
    _refuse(root)
    return False


def _read_trusted(path):
    """The bytes of `path` (None when missing or refused: not this user's, or writable by others)."""
    try:
        with open(path, "rb") as f:
            if not _trusted(os.fstat(f.fileno())) and os.environ.get("JITGRAD_CACHE_SHARED", "") != "1":
                _refuse(path)
                return None
            return f.read()
    except OSError:
        return None


@contextlib.contextmanager
def _locked(root):
    """Hold the cache's lock.  It times out after JITGRAD_CACHE_LOCK_TIMEOUT seconds (default 10; a stuck
    process never blocks the others: OSError, which callers turn into a warning); a cache that cannot be
    written (read-only) is read without it (every file is replaced atomically)."""
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(root, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        if not os.path.isdir(root):
            raise
        yield
        return
    with os.fdopen(fd, "r+") as handle:
        deadline = time.monotonic() + number(_float_setting("JITGRAD_CACHE_LOCK_TIMEOUT"), 10.0)
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if getattr(_no_wait, "active", False):
                    raise                       # (wait_for_bookkeeping retries until its deadline)
                if time.monotonic() > deadline:
                    raise OSError(f"the lock {os.path.join(root, 'lock')} is held by a stuck process") from None
                time.sleep(0.005)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _float_setting(name):
    try:
        return float(os.environ.get(name, ""))
    except ValueError:
        return None


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
    data = _read_trusted(path)
    try:
        value = json.loads(data) if data is not None else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _bump(root, increments, counted=False):
    """Add `increments` to this process's (unless already `counted`) and the persistent counters (the
    lock is held)."""
    for name, n in increments.items():
        session[name] += 0 if counted else n
    stats_path = os.path.join(root, "stats.json")
    stats = _read_json(stats_path) or {}
    for name, n in increments.items():
        stats[name] = int(number(stats.get(name))) + n
    _write_atomic(stats_path, json.dumps(stats).encode())


def note_uncacheable():
    """Count a module kept off the disk (it embeds an address)."""
    if enabled():
        root = directory()
        with _locked(root):
            _bump(root, {"uncacheable": 1})


def load(key):
    """The object bytes stored under `key` if present and intact (hash checked), else None.

    Read without the lock (every file is replaced whole), so a warm start takes no lock; a miss or a
    corrupt entry (bad sidecar, truncated or altered object) is read again under the lock, then counted,
    and a corrupt one deleted."""
    if not enabled():
        return None
    root = directory()
    if not usable(root):
        return None
    meta, data = _read_entry(root, key)
    if not _intact(key, meta, data):
        with _locked(root):
            meta, data = _read_entry(root, key)      # (a writer may have just finished)
            if not _intact(key, meta, data):
                damaged = data is not None or meta is not None
                if damaged:
                    _remove(root, key)
                _bump(root, {"misses": 1, "corrupt": int(damaged)})
                return None
    session["hits"] += 1
    later(_note_hit, root, key)
    return data


def _read_entry(root, key):
    obj_path, meta_path = _paths(key, root)
    return _read_json(meta_path), _read_trusted(obj_path)


def _intact(key, meta, data):
    """Whether sidecar `meta` names `key` (not an entry copied under another key) and the hash of `data`."""
    return (data is not None and meta is not None and meta.get("key") == key
            and meta.get("sha256") == hashlib.sha256(data).hexdigest())


def _note_hit(root, key):
    """The sidecar's hits and last use, and the persistent hit count, after a hit on `key`."""
    with _locked(root):
        meta_path = _paths(key, root)[1]
        meta = _read_json(meta_path)
        if meta is not None:
            meta["last_used"] = time.time()
            meta["hits"] = int(number(meta.get("hits"))) + 1
            _write_atomic(meta_path, json.dumps(meta).encode())
        _bump(root, {"hits": 1}, counted=True)


FLUSH_AFTER_S = 1.0
_work = {"pending": [], "since": None, "flusher": None, "finalizer": False, "lock": threading.Lock()}
_no_wait = threading.local()     # active: a lock held by another process is not waited for (BlockingIOError)


def later(action, *args):
    """Bookkeeping `action(*args)`, done off the call that needs it: held until the process exits (or
    `wait_for_bookkeeping`), or written by a background thread once a later call finds it waiting for
    FLUSH_AFTER_S seconds.  A warm start neither writes files nor starts a thread for it (on a loaded
    machine either cost the first call tens of milliseconds).  OSErrors are ignored (it is only
    bookkeeping); any other error is reported once."""
    with _work["lock"]:
        _work["pending"].append((action, args))
        now = time.monotonic()
        since = _work["since"] = now if _work["since"] is None else _work["since"]
        flusher = _work["flusher"]
        start = now - since >= FLUSH_AFTER_S and (flusher is None or not flusher.is_alive())
        if start:
            flusher = _work["flusher"] = threading.Thread(target=_flush, daemon=True, name="jitgrad-bookkeeping")
        first, _work["finalizer"] = not _work["finalizer"], True
    if start:
        flusher.start()
    if first and "multiprocessing.util" in sys.modules:     # (its workers end without running atexit)
        sys.modules["multiprocessing.util"].Finalize(None, wait_for_bookkeeping, exitpriority=0)


def _take():
    with _work["lock"]:
        pending, _work["pending"], _work["since"] = _work["pending"], [], None
    return pending


def _flush():
    for action, args in _take():
        _run(action, args)


def _run(action, args):
    try:
        action(*args)
    except BlockingIOError:
        raise
    except OSError:
        pass
    except Exception as e:                  # (a bug in bookkeeping must not stop the next ones)
        if "bookkeeping" not in _warned:
            _warned.add("bookkeeping")
            warnings.warn(f"jitgrad: disk cache bookkeeping failed ({e!r}); please report this",
                          RuntimeWarning, stacklevel=1)


def _forget_work():
    """In a forked child: the bookkeeping held is the parent's, and so are its thread and lock."""
    _work.update(pending=[], since=None, flusher=None, finalizer=False, lock=threading.Lock())


os.register_at_fork(after_in_child=_forget_work)


@atexit.register
def wait_for_bookkeeping(timeout=1.0):
    """Write the bookkeeping `later` holds, in this thread; what still finds the lock held by another
    process after `timeout` seconds is dropped (a stuck process never holds up an exit)."""
    deadline = time.monotonic() + timeout
    flusher = _work["flusher"]
    if flusher is not None and flusher is not threading.current_thread():
        flusher.join(timeout)
    for action, args in _take():
        while True:
            _no_wait.active = True
            try:
                _run(action, args)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.005)
            finally:
                _no_wait.active = False


def store(key, data, about):
    """Store object bytes `data` under `key` with sidecar fields `about`, then evict down to the bound."""
    if not enabled():
        return
    root = directory()
    if not usable(root):
        return
    obj_path, meta_path = _paths(key, root)
    now = time.time()
    meta = dict(about, key=key, sha256=hashlib.sha256(data).hexdigest(), size=len(data), created=now,
                last_used=now, hits=0)
    with _locked(root):
        _write_atomic(obj_path, data)
        _write_atomic(meta_path, json.dumps(meta).encode())
        _bump(root, {"stores": 1, "evicted": _evict(root, max_bytes(strict=False), keep=key)})


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
        if not name.endswith(".json") or name in ("stats.json", SOURCES):
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
        meta.update(key=key, size=size, last_used=number(meta.get("last_used")),
                    created=number(meta.get("created")), hits=int(number(meta.get("hits"))))
        found.append(meta)
    return sorted(found, key=lambda e: e["last_used"])


def info(root=None):
    """Directory, whether enabled, entry count, total size, the size bound and the persistent stats."""
    root = root or directory()
    listed = entries(root)
    stats = _read_json(os.path.join(root, "stats.json")) or {}
    return {"directory": root, "enabled": enabled(), "entries": len(listed),
            "total_bytes": sum(e["size"] for e in listed), "max_bytes": max_bytes(),
            "stats": {name: int(number(stats.get(name))) for name in _STAT_NAMES}}


def verify(root=None):
    """Check every entry: a sidecar that parses and an object whose SHA-256 it matches; delete the others
    (counted as corrupt).  Returns (entries checked, keys removed)."""
    root = root or directory()
    if not os.path.isdir(root):
        return 0, []
    removed = []
    with _locked(root):
        names = os.listdir(root)
        keys = {n[:-2] for n in names if n.endswith(".o")} | {
            n[:-5] for n in names if n.endswith(".json") and n not in ("stats.json", SOURCES)}
        for key in sorted(keys):
            meta, data = _read_entry(root, key)
            if not _intact(key, meta, data):
                _remove(root, key)
                removed.append(key)
        if removed:
            _bump(root, {"corrupt": len(removed)})
    return len(keys), removed


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
