"""Which interpreted frame is the user's, and the chain of calls from it that an error names.

The user's frame is the innermost one outside library files (numpy, scipy, the standard library,
installed packages); generated code (`<string>`: a dataclass's `__init__`, a namedtuple's `__new__`)
counts only when no frame of a real file called it.
"""
import os
import sys


def user_frame(frames, is_library_file):
    """The innermost frame of user code among `frames` (outermost first), or None."""
    generated = None
    for f in reversed(frames):
        name = f.code.co_filename
        if not is_library_file(name):
            if name != "<string>":
                return f
            generated = generated or f
    return generated


def call_chain(frames, is_library_file, library_dirs):
    """`file:line` of the user's frame and of every frame it led to (library files relative to their
    package directory: `scipy/stats/_entropy.py:154`)."""
    user = user_frame(frames, is_library_file)
    start = next(i for i, f in enumerate(frames) if f is user) if user is not None else 0
    roots = tuple(library_dirs) + tuple(p for p in sys.path if p.endswith("site-packages"))
    return [f"{_short_path(f.code.co_filename, roots)}:{f.lineno}" for f in frames[start:]]


def _short_path(filename, roots):
    for root in roots:
        if filename.startswith(root + os.sep):
            return filename[len(root) + 1:]
    return filename
