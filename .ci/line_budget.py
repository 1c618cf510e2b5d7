"""The line budget of the library code (DESIGN.md's style): every module of jitgrad/, tracer/, ir/ and
jit/ stays under FILE_LINES lines and every function under FUNCTION_LINES; prints the totals and exits
non-zero naming each file or function over budget.  Run by .ci/run before the tests."""
import ast
import pathlib
import sys

FILE_LINES = 650
FUNCTION_LINES = 80
PACKAGES = ("jitgrad", "tracer", "ir", "jit")


def over_budget(root):
    """(total lines, files, list of messages) for the library modules under `root`."""
    problems, total, files = [], 0, 0
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            text = path.read_text()
            lines = text.count("\n") + 1
            total, files = total + lines, files + 1
            name = path.relative_to(root)
            if lines > FILE_LINES:
                problems.append(f"{name}: {lines} lines (budget {FILE_LINES}: split it by concern)")
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    if length > FUNCTION_LINES:
                        problems.append(f"{name}:{node.lineno}: {node.name} is {length} lines "
                                        f"(budget {FUNCTION_LINES})")
    return total, files, problems


def main():
    root = pathlib.Path(__file__).resolve().parent.parent
    total, files, problems = over_budget(root)
    print(f"line budget: {files} library modules, {total} lines; largest allowed {FILE_LINES} per module, "
          f"{FUNCTION_LINES} per function")
    for message in problems:
        print("  over budget: " + message)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
