"""The `jitgrad` command line: inspect and clear the on-disk cache of compiled kernels.

    jitgrad cache list [--json]       one line per entry, most recently used first: function, file:line,
                                      signature, kind, size, last use, hits
    jitgrad cache info [--json]       directory, entries, total size, hit/miss statistics
    jitgrad cache clear [--older-than DAYS] [--function NAME]

Also `python -m jitgrad ...`.  A thin facade over jitgrad.jit.diskcache; bad usage exits with code 2.
"""
import argparse
import json
import os
import sys
import time

from .jit import diskcache


def _parser():
    parser = argparse.ArgumentParser(prog="jitgrad", description="jitgrad's on-disk kernel cache")
    top = parser.add_subparsers(dest="command", metavar="cache", required=True)
    cache = top.add_parser("cache", help="inspect or clear the on-disk cache of compiled kernels")
    actions = cache.add_subparsers(dest="action", metavar="{list,info,clear}", required=True)
    for name, text in (("list", "one line per cached kernel"), ("info", "directory, size and statistics")):
        actions.add_parser(name, help=text).add_argument("--json", action="store_true", help="JSON output")
    clear = actions.add_parser("clear", help="delete entries (all, unless filtered)")
    clear.add_argument("--older-than", type=_days, metavar="DAYS", help="only entries unused for DAYS days")
    clear.add_argument("--function", metavar="NAME", help="only entries of this function (qualname or name)")
    return parser


def _days(text):
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of days, got {text!r}") from None
    if not days >= 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number of days, got {text!r}")
    return days


def _size(nbytes):
    for unit in ("B", "KiB", "MiB"):
        if nbytes < 1024 or unit == "MiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024


def _age(seconds):
    for unit, span in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= span:
            return f"{seconds / span:.0f}{unit}"
    return f"{seconds:.0f}s"


def _write_json(value, out):
    json.dump(value, out, indent=1)
    out.write("\n")


def _list(args, out):
    listed = sorted(diskcache.entries(), key=lambda e: e.get("last_used", 0), reverse=True)
    if args.json:
        return _write_json(listed, out)
    if not listed:
        out.write(f"no entries in {diskcache.directory()}\n")
        return
    now = time.time()
    rows = [("FUNCTION", "DEFINED AT", "SIGNATURE", "KIND", "SIZE", "LAST USED", "HITS")]
    rows += [(e.get("function") or "-", e.get("location") or "-", e.get("signature") or "-",
              e.get("kind") or "-", _size(e["size"]), f"{_age(now - e.get('last_used', e['created']))} ago",
              str(e["hits"])) for e in listed]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] + "\n")


def _info(args, out):
    summary = diskcache.info()
    if args.json:
        return _write_json(summary, out)
    stats = summary["stats"]
    out.write(f"directory: {summary['directory']}{'' if summary['enabled'] else ' (disabled: JITGRAD_DISK_CACHE=0)'}\n"
              f"entries: {summary['entries']}, {_size(summary['total_bytes'])} "
              f"(limit {_size(summary['max_bytes'])})\n"
              + ", ".join(f"{name} {n}" for name, n in stats.items()) + "\n")


def _clear(args, out):
    removed = diskcache.clear(older_than_days=args.older_than, function=args.function)
    out.write(f"removed {removed} entr{'y' if removed == 1 else 'ies'} from {diskcache.directory()}\n")


def main(argv=None, out=None):
    """Run the command line on `argv` (default sys.argv[1:]); returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        {"list": _list, "info": _info, "clear": _clear}[args.action](args, out or sys.stdout)
    except BrokenPipeError:                      # `jitgrad cache list | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (ValueError, OSError) as e:
        parser.exit(2, f"jitgrad: error: {e}\n")
    return 0
