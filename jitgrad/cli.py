"""The `jitgrad` command line: inspect and clear the on-disk cache (trace records and machine code), and
trace a function on example arguments.

    jitgrad cache list [--kernels] [--json]   one line per traced path (function, where it is defined,
                                              signature, guards, reusable in a new process, hits, size,
                                              last use), most recently used first; --kernels: one line
                                              per machine-code object instead
    jitgrad cache show ID [--why] [--llvm] [--asm] [--json]
                                              one path (ID: a prefix of its id, or a function name):
                                              guards with their source lines, environment assumptions,
                                              the code checked in a new process, loops, the trace; --why:
                                              only why it was traced and why it is (not) reusable;
                                              --llvm / --asm: its kernel's optimized LLVM IR / assembly,
                                              regenerated from the trace and checked against the key of
                                              the machine code stored (LLVM lines are not cut)
    jitgrad cache info [--json]               directory, entries, sizes, hit/miss statistics
    jitgrad cache verify [--json]             check every object (its hash) and trace record (its
                                              fields and hash); remove and report the damaged ones
    jitgrad cache clear [--older-than DAYS] [--function NAME]
    jitgrad trace MODULE:FUNCTION --args EXPR [--argnums N] [--json]
                                              trace a function on example arguments (EXPR: a Python
                                              expression of `np`, a tuple for several) and print its
                                              value, guards, environment, trace and timings

Also `python -m jitgrad ...`.  Plain output fits 100 columns (paths shortened, long cells cut with
`...`); --json gives every field in full.  A thin facade over jitgrad.jit.diskcache and
jitgrad.jit.tracestore (LLVM is loaded only by `trace` and `show --llvm/--asm`); bad usage exits with
code 2.
"""
import argparse
import json
import os
import re
import sys
import textwrap
import time

from .jit import diskcache, tracestore

WIDTH = 100
_LOCATION = re.compile(r"/[^\s:()'\"]+:\d+")


def _parser():
    parser = argparse.ArgumentParser(prog="jitgrad", description="jitgrad's on-disk trace and kernel cache")
    top = parser.add_subparsers(dest="command", metavar="{cache,trace}", required=True)
    trace = top.add_parser("trace", help="trace a function on example arguments and show the result")
    trace.add_argument("target", metavar="MODULE:FUNCTION", help="e.g. scipy.optimize:rosen")
    trace.add_argument("--args", required=True, metavar="EXPR", help="the arguments, e.g. 'np.ones(5)'")
    trace.add_argument("--argnums", type=int, default=0, help="the argument differentiated (default 0)")
    trace.add_argument("--json", action="store_true", help="JSON output (every field in full)")
    cache = top.add_parser("cache", help="inspect or clear the on-disk cache")
    actions = cache.add_subparsers(dest="action", metavar="{list,show,info,verify,clear}", required=True)
    listing = actions.add_parser("list", help="one line per traced path (or per kernel with --kernels)")
    listing.add_argument("--kernels", action="store_true", help="list the machine-code objects")
    show = actions.add_parser("show", help="one traced path in full")
    show.add_argument("id", metavar="ID", help="a prefix of the path's id, or a function name")
    show.add_argument("--why", action="store_true", help="why it was traced and whether it is reusable")
    show.add_argument("--llvm", action="store_true", help="its kernel's optimized LLVM IR (lines not cut)")
    show.add_argument("--asm", action="store_true", help="its kernel's assembly (lines not cut)")
    actions.add_parser("info", help="directory, size and statistics")
    actions.add_parser("verify", help="check every entry, remove the damaged ones")
    for sub in (listing, show, actions.choices["info"], actions.choices["verify"]):
        sub.add_argument("--json", action="store_true", help="JSON output (every field in full)")
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


def _cut(text, width):
    text = str(text)
    return text if len(text) <= width else text[:max(width - 3, 0)] + "..."


def _short_path(location):
    """`dir/file.py:12` for a long `file:line` (the last directory kept)."""
    if not location:
        return "-"
    parts = str(location).split(os.sep)
    return str(location) if len(parts) <= 2 else os.path.join(*parts[-2:])


def _write_json(value, out):
    json.dump(value, out, indent=1)
    out.write("\n")


def _table(rows, out, widths):
    """Rows of cells, each column cut to its width in `widths` (None: as wide as needed)."""
    rows = [[_cut(cell, w) if w else str(cell) for cell, w in zip(row, widths)] for row in rows]
    fitted = [max(len(row[i]) for row in rows) for i in range(len(widths))]
    for row in rows:
        out.write(_cut("  ".join(cell.ljust(w) for cell, w in zip(row, fitted)).rstrip(), WIDTH) + "\n")


def _list(args, out):
    if args.kernels:
        return _list_kernels(args, out)
    found = tracestore.records()
    if args.json:
        return _write_json([{k: v for k, v in r.items() if k != "trace"} for r in found], out)
    if not found:
        out.write(f"no traces in {diskcache.directory()}\n")
    else:
        now = time.time()
        rows = [("ID", "FUNCTION", "DEFINED AT", "SIGNATURE", "GUARDS", "REUSE", "HITS", "SIZE", "USED")]
        rows += [(r["path"][:8], _qualified(r), os.path.basename(r.get("location") or "-"),
                  r.get("signature") or "-", str(len(r["guards"])), "yes" if r["reusable"] else "no",
                  str(r.get("hits", 0)), _size(r["size"]).replace(" KiB", "K").replace(" MiB", "M"),
                  _age(now - diskcache.number(r.get("last_used")))) for r in found]
        _table(rows, out, (8, 14, 14, 20, 6, 5, 4, 6, 5))
    kernels = diskcache.entries()
    out.write(f"machine code: {len(kernels)} object(s), {_size(sum(e['size'] for e in kernels))} "
              "(jitgrad cache list --kernels)\n")


def _list_kernels(args, out):
    listed = sorted(diskcache.entries(), key=lambda e: e.get("last_used", 0), reverse=True)
    if args.json:
        return _write_json(listed, out)
    if not listed:
        out.write(f"no entries in {diskcache.directory()}\n")
        return
    now = time.time()
    rows = [("FUNCTION", "DEFINED AT", "SIGNATURE", "KIND", "SIZE", "LAST USED", "HITS")]
    rows += [(e.get("function") or "-", _short_path(e.get("location")), e.get("signature") or "-",
              e.get("kind") or "-", _size(e["size"]), f"{_age(now - e.get('last_used', e['created']))} ago",
              str(e["hits"])) for e in listed]
    _table(rows, out, (22, 20, 16, 12, 9, 8, 5))


def _qualified(record):
    module = record.get("module")
    return f"{module}.{record['function']}" if module and module != "__main__" else record["function"]


def _find(ident):
    """The records of function `ident` (qualname or name), else those whose id starts with `ident` (a
    function name wins: a short name such as `f` is also the prefix of some ids)."""
    found = tracestore.records()
    by_name = [r for r in found if ident in (r["function"], r["function"].rsplit(".", 1)[-1], _qualified(r))]
    return by_name or [r for r in found if r["path"].startswith(ident)]


def _show(args, out):
    found = _find(args.id)
    if not found:
        raise ValueError(f"no traced path with id or function {args.id!r} in {diskcache.directory()}")
    if args.llvm or args.asm:
        return _code(found, args, out)
    if args.json:
        return _write_json(found, out)
    for record in found:
        lines = _why(record) if args.why else _details(record)
        trace = [] if args.why else ["trace (value and gradient):"] + [
            _cut("  " + line, WIDTH) for line in record["trace"].splitlines()]
        out.write("\n".join([_wrap(line) for line in lines] + trace) + "\n")


def _wrap(line):
    """`line` with its paths shortened, wrapped to WIDTH columns (continuations indented)."""
    line = _LOCATION.sub(lambda m: _short_path(m.group()), line)
    indent = " " * (len(line) - len(line.lstrip()) + 4)
    return textwrap.fill(line, WIDTH, subsequent_indent=indent, break_long_words=True, break_on_hyphens=False)


def _why(record):
    lines = [f"path {record['path'][:8]} of {record['function']} ({record.get('signature')})",
             f"  traced because: {record.get('retrace_reason') or 'first call of this signature'}"]
    if record["reusable"]:
        lines.append("  reusable in a new process: yes, when every assumption below re-validates there")
    else:
        lines.append("  reusable in a new process: no, because")
        lines += [f"    - {why}" for why in record.get("why_not", [])]
    return lines


def _code(found, args, out):
    """The optimized LLVM IR and/or assembly of each record's kernel, regenerated from its trace (LLVM is
    loaded here only), with whether it is the machine code stored (its disk cache key)."""
    from .ir.parser import parse_trace
    from .jit import generated_code
    shown = []
    for record in found:
        stored = (record.get("kernel") or {}).get("key")
        item = {"path": record["path"], "function": record["function"], "signature": record.get("signature"),
                "stored_key": stored}
        try:
            item["key"], ir, asm = generated_code(parse_trace(record["trace"]))
        except Exception as e:         # (a trace that does not parse or lower: said, not raised)
            item["error"] = f"cannot regenerate its code: {type(e).__name__}: {e}"
        else:
            item.update({"llvm": ir} if args.llvm else {}, **({"asm": asm} if args.asm else {}))
        shown.append(item)
    if args.json:
        return _write_json(shown, out)
    for item in shown:
        stored, key = item["stored_key"], item.get("key")
        same = ("no machine code is recorded for it" if stored is None else
                "the machine code stored under this key" if stored == key else
                f"NOT the machine code stored ({stored[:16]}): another jitgrad, LLVM or CPU made that")
        head = f"path {item['path'][:8]} of {item['function']} ({item['signature']}): "
        if "error" in item:
            out.write(_wrap(head + item["error"]) + "\n")
            continue
        out.write(_wrap(f"{head}regenerated from the recorded trace, key {key[:16]}: {same}") + "\n")
        for part, title in (("llvm", "optimized LLVM IR"), ("asm", "assembly")):
            if part in item:
                out.write(f";; ----- {title} -----\n{item[part].rstrip()}\n")


def _details(record):
    times = record.get("times") or {}
    timing = ", ".join(f"{name[:-2]} {value:.3f} s" for name, value in times.items() if isinstance(value, float))
    lines = [f"path {record['path']}",
             f"  function   {record['function']} ({record.get('kind')}), defined at {record.get('location')}",
             f"  signature  {record.get('signature')}",
             f"  backend    {record.get('backend')}, {record.get('ops')} ops; {timing}",
             f"  hits       {record.get('hits', 0)}, {_size(record['size'])}, last used "
             f"{_age(time.time() - diskcache.number(record.get('last_used')))} ago"]
    lines += _why(record)[1:]
    lines.append(f"guards ({len(record['guards'])}, checked by the kernel on every call):")
    lines += [f"  {why} at {_short_path(loc)} (expected {expected})" for why, loc, expected in record["guards"]]
    lines.append(f"environment ({len(record['environment'])}, checked before every call):")
    lines += [f"  {e['describe']}" + ("" if "place" in e else f" [not portable: {e.get('unportable')}]")
              for e in record["environment"]]
    codes = [c for c in record["codes"] if c[0] == "code"]
    lines.append(f"code checked in a new process ({len(codes)} function(s) besides the traced one: those it "
                 "interpreted, methods of the classes it met):")
    lines += [f"  {c[1]}.{c[2]}" for c in codes]
    lines += ["loops:"] + [f"  {loop}" for loop in record.get("loops", [])] if record.get("loops") else []
    return lines


def _info(args, out):
    summary = diskcache.info()
    found = tracestore.records(summary["directory"])
    summary["traces"] = {"records": len(found), "bytes": sum(r["size"] for r in found),
                         "reusable": sum(r["reusable"] for r in found), "hits": sum(r.get("hits", 0) for r in found)}
    if args.json:
        return _write_json(summary, out)
    stats, traces = summary["stats"], summary["traces"]
    out.write(f"directory: {summary['directory']}{'' if summary['enabled'] else ' (disabled: JITGRAD_DISK_CACHE=0)'}\n"
              f"entries: {summary['entries']}, {_size(summary['total_bytes'])} "
              f"(limit {_size(summary['max_bytes'])})\n"
              + ", ".join(f"{name} {n}" for name, n in stats.items()) + "\n"
              f"traces: {traces['records']}, {_size(traces['bytes'])}, {traces['reusable']} reusable in a new "
              f"process, {traces['hits']} warm starts\n")


def _verify(args, out):
    objects, bad_objects = diskcache.verify()
    records, bad_records = tracestore.verify()
    if args.json:
        return _write_json({"objects": objects, "removed_objects": bad_objects, "traces": records,
                            "removed_traces": bad_records}, out)
    out.write(f"checked {objects} object(s) and {records} trace(s) in {diskcache.directory()}: removed "
              f"{len(bad_objects)} damaged object(s) and {len(bad_records)} damaged trace(s)\n")
    for item in bad_objects + bad_records:
        out.write(f"  removed {_short_path(item)}\n")


def _clear(args, out):
    removed = diskcache.clear(older_than_days=args.older_than, function=args.function)
    traces = tracestore.clear(older_than_days=args.older_than, function=args.function)
    out.write(f"removed {removed} entr{'y' if removed == 1 else 'ies'} and {traces} trace"
              f"{'' if traces == 1 else 's'} from {diskcache.directory()}\n")


def _trace(args, out):
    """Trace `args.target` on the arguments `args.args` evaluates to (jitgrad is imported only here)."""
    import importlib

    import numpy as np

    from . import value_and_grad
    module_name, _, name = args.target.partition(":")
    if not name:
        raise ValueError(f"expected MODULE:FUNCTION, got {args.target!r}")
    fn = importlib.import_module(module_name)
    for part in name.split("."):
        fn = getattr(fn, part)
    values = eval(args.args, {"np": np, "numpy": np})      # (the user's own expression, as in a REPL)
    values = values if isinstance(values, tuple) else (values,)
    g = value_and_grad(fn, argnums=args.argnums)
    started = time.perf_counter()
    value, grad = g(*values)
    elapsed = time.perf_counter() - started
    path = g.cache_info().paths[-1]
    result = {"function": args.target, "value": float(value), "gradient": np.asarray(grad).tolist(),
              "first_call_s": elapsed, "signature": path.signature, "backend": path.backend, "note": path.note,
              "guards": [list(g) for g in path.guards], "environment": path.environment, "trace": path.text}
    if args.json:
        return _write_json(result, out)
    lines = [f"{args.target} at {result['signature']}: value {float(value)!r}, first call {elapsed:.3f} s "
             f"({path.backend}{', ' + path.note if path.note else ''})",
             f"gradient: {np.array2string(np.asarray(grad), threshold=20)}",
             f"guards ({len(path.guards)}):"] + [f"  {why} at {loc} (expected {expected})"
                                                 for why, loc, expected in path.guards]
    lines += [f"environment ({len(path.environment)}):"] + [f"  {e}" for e in path.environment]
    out.write("\n".join(_wrap(line) for line in lines) + "\ntrace (value and gradient):\n")
    out.write("\n".join(_cut("  " + line, WIDTH) for line in path.text.splitlines()) + "\n")


def main(argv=None, out=None):
    """Run the command line on `argv` (default sys.argv[1:]); returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "trace":
            _trace(args, out or sys.stdout)
        else:
            {"list": _list, "show": _show, "info": _info, "verify": _verify, "clear": _clear}[args.action](
                args, out or sys.stdout)
    except BrokenPipeError:                      # `jitgrad cache list | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (ValueError, OSError) as e:
        parser.exit(2, f"jitgrad: error: {e}\n")
    return 0
