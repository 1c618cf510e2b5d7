"""jitgrad's logs through Python's `logging`: one logger per topic, `jitgrad.<topic>`.

Topics: `recompiles` (each retrace: the failed guard or changed environment entry, its old and new
value, the user's source line; each new signature), `guards` (the guards and environment assumptions
of each new trace), `trace` (each new trace's text and times), `llvm` (each compiled module's
optimized IR and assembly; each object loaded from the disk cache).

`JITGRAD_LOG=recompiles,guards` (comma-separated topics, `all` for every one) turns topics on: their
loggers get level INFO and a handler writing to stderr, or to the file JITGRAD_LOG_FILE names
(appended), and do not propagate (no second copy through the root logger's handlers).  An application
may instead turn a topic on through `logging` alone, without JITGRAD_LOG:
`logging.getLogger("jitgrad.recompiles").setLevel(logging.INFO)` with its own handlers.  Messages
are only built when their topic is on (`wanted`), so the logs cost nothing otherwise.
"""
import linecache
import logging
import os
import sys

TOPICS = ("recompiles", "guards", "trace", "llvm")
_configured = set()


def _from_environment():
    named = {t.strip().lower() for t in os.environ.get("JITGRAD_LOG", "").split(",") if t.strip()}
    return set(TOPICS) if "all" in named else named & set(TOPICS)


class _EnvironmentHandler(logging.Handler):
    """Writes each record to the file JITGRAD_LOG_FILE names at that moment (appended), else stderr."""

    def emit(self, record):
        try:
            text = self.format(record) + "\n"
            path = os.environ.get("JITGRAD_LOG_FILE")
            if path:
                with open(path, "a") as out:
                    out.write(text)
            else:
                sys.stderr.write(text)
        except Exception:
            self.handleError(record)


_handler = _EnvironmentHandler()
_handler.setFormatter(logging.Formatter("[%(name)s] %(message)s"))


def wanted(topic):
    """Whether messages of `topic` are logged (JITGRAD_LOG names it, or its logger is set to INFO)."""
    logger = logging.getLogger(f"jitgrad.{topic}")
    on = topic in _from_environment()
    if on and topic not in _configured:
        _configured.add(topic)
        logger.setLevel(logging.INFO)
        logger.addHandler(_handler)
        logger.propagate = False
    elif not on and topic in _configured:     # (JITGRAD_LOG changed since: the logger is the application's again)
        _configured.discard(topic)
        logger.setLevel(logging.NOTSET)
        logger.removeHandler(_handler)
        logger.propagate = True
    return on or logger.isEnabledFor(logging.INFO)


def log(topic, message, *args):
    """Log `message % args` under `jitgrad.<topic>` (callers check `wanted(topic)` first)."""
    logging.getLogger(f"jitgrad.{topic}").info(message, *args)


def source_line(loc):
    """`file:line` followed by that line of source (stripped), when it can be read."""
    path, _, line = str(loc).rpartition(":")
    text = linecache.getline(path, int(line)).strip() if line.isdigit() else ""
    return f"{loc}: {text}" if text else str(loc)
