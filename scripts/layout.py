"""Print the shape of the code: the largest module and function (lines), and a module tree
with the first line of each module's docstring. Run before and after a restructuring."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("common", "services", "testing")


def python_files() -> list[Path]:
    return sorted(
        p for pkg in PACKAGES if (REPO / pkg).is_dir() for p in (REPO / pkg).rglob("*.py")
    )


def first_line(tree: ast.Module) -> str:
    doc = ast.get_docstring(tree) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def main() -> None:
    files = python_files()
    sizes: list[tuple[int, str]] = []
    functions: list[tuple[int, str]] = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(REPO))
        sizes.append((len(text.splitlines()), name))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                end = node.end_lineno or node.lineno
                kind = "class" if isinstance(node, ast.ClassDef) else "def"
                functions.append((end - node.lineno + 1, f"{name}:{kind} {node.name}"))
    sizes.sort(reverse=True)
    classes = sorted((f for f in functions if ":class " in f[1]), reverse=True)
    defs = sorted((f for f in functions if ":def " in f[1]), reverse=True)
    print(f"modules: {len(files)}, lines: {sum(s for s, _ in sizes)}")
    print("largest modules:", ", ".join(f"{n} ({s})" for s, n in sizes[:5]))
    print("largest functions:", ", ".join(f"{n} ({s})" for s, n in defs[:3]))
    print("largest classes:", ", ".join(f"{n} ({s})" for s, n in classes[:3]))
    if "--tree" in sys.argv:
        print()
        for path in files:
            tree = ast.parse(path.read_text(encoding="utf-8"))
            lines = len(path.read_text(encoding="utf-8").splitlines())
            print(f"{path.relative_to(REPO)!s:45} {lines:4}  {first_line(tree)[:90]}")


if __name__ == "__main__":
    main()
