"""The README's picture of the pipeline: Snakemake's rule graph as a Mermaid flowchart.

    python -m turbtl.rulegraph          # rewrite the README's block from `snakemake --rulegraph`

The graph is that of the default config (config.yaml), without the target rule ``all``
(every rule feeds it) and without edges that a longer path already implies, so that each
arrow reads "is made from".  A test checks that the README's block is the one this writes.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from .cli import one_line_errors

__all__ = ["edges_from_dot", "mermaid", "current", "main"]

REPO = Path(__file__).resolve().parent.parent
BLOCK = "rulegraph"


def edges_from_dot(dot: str) -> list[tuple[str, str]]:
    """(upstream rule, downstream rule) pairs of ``snakemake --rulegraph dot`` output, ``all`` left out."""
    names = dict(re.findall(r'^\s*(\d+)\[label = "(\w+)"', dot, re.M))
    edges = [(names[a], names[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, re.M)]
    return [(a, b) for a, b in edges if "all" not in (a, b)]


def _reduce(edges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The transitive reduction of an acyclic graph: drop a -> c where a -> ... -> c is longer."""
    succ: dict[str, set[str]] = {}
    for a, b in edges:
        succ.setdefault(a, set()).add(b)

    def reach(a, skip):
        seen, todo = set(), [n for n in succ.get(a, ()) if (a, n) != skip]
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo += succ.get(n, ())
        return seen

    return [(a, b) for a, b in edges if b not in reach(a, (a, b))]


def mermaid(dot: str) -> str:
    """The Mermaid flowchart (a fenced block) of a rule graph in dot."""
    edges = sorted(set(_reduce(edges_from_dot(dot))))
    return "```mermaid\nflowchart LR\n" + "".join(f"  {a} --> {b}\n" for a, b in edges) + "```\n"


def current() -> str:
    """The block for the default config, from Snakemake itself."""
    r = subprocess.run([sys.executable, "-m", "snakemake", "--rulegraph", "dot", "--quiet", "all"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"snakemake --rulegraph failed: {r.stderr[-2000:]}")
    return mermaid(r.stdout)


@one_line_errors("python -m turbtl.rulegraph")
def main() -> None:
    from .report import replace_block

    readme = REPO / "README.md"
    readme.write_text(replace_block(readme.read_text(), BLOCK, current()))
    print(current())


if __name__ == "__main__":
    main()
