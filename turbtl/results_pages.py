"""The generated results pages, ``docs/results/<name>.md``, and their index.

:mod:`turbtl.report` (one run) and :mod:`turbtl.replicates` (runs pooled) write a page from
the ``results/`` of runs, never by hand.  Each page starts with one machine-readable line,

    <!-- turbtl-page {"name": ..., "title": ..., "command": ..., "commit": ..., "machine": ..., "date": ...} -->

then its title, the line that says where its numbers come from, and a note that this module
keeps current: whether the page's numerics are the ones the code computes today.  A page is
*current* when every commit of :data:`NUMERICS_CHANGES` is an ancestor of the commit it was
written from (``git merge-base --is-ancestor``); otherwise its note names the changes it
predates.  ``docs/results/index.md`` lists every page with its commit, machine, date and that
status (:func:`write_index`; ``python -m turbtl.report --index`` rewrites it alone).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import subprocess
from pathlib import Path

__all__ = ["NUMERICS_CHANGES", "PAGES", "git", "commit_of", "machine", "wall_time", "page_text", "write_page",
           "read_meta", "stale_changes", "write_index"]

REPO = Path(__file__).resolve().parent.parent
#: where the pages live
PAGES = REPO / "docs" / "results"

#: Commits after which a run computes other numbers for the same config, oldest first: (commit,
#: what changed).  A page written from a run of an earlier commit is not current (its note and
#: the index say which change it predates).  Add a line here when a change alters what a
#: finished run's tables would show, then run ``python -m turbtl.report --index``.
NUMERICS_CHANGES = (
    ("fb697db", "the spectral, marginal and framework predictors' data weights come from the small set and the base's "
                "training members (before: from whole-flow spectra that include the target's test members)"),
    ("45a35f2", "the predictors' and the sweep's timers no longer include the first optimiser's 1-2 s import "
                "(before: the probe's cost fraction erred high)"),
    ("c763840", "the DNS computes the advection term in Basdevant's form (dns.nonlinear: basdevant): the same "
                "equation to round-off, hence another trajectory of the same flows, as another machine gives; "
                "`--config 'dns={nonlinear: advective}'` repeats the older runs"),
)

_META = re.compile(r"^<!-- turbtl-page (\{.*\}) -->$", re.M)
_STALE = re.compile(r"<!-- turbtl-status:start -->.*?<!-- turbtl-status:end -->", re.S)


def git(*args, root=REPO) -> str:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def commit_of(root=REPO) -> str:
    """The short commit of the checkout, with ``+`` where it has uncommitted changes to tracked files."""
    commit = git("rev-parse", "--short", "HEAD", root=root) or "unknown"
    return commit + ("+" if git("status", "--porcelain", "--untracked-files=no", root=root) else "")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import torch

        tv = torch.__version__
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except Exception:  # pragma: no cover - torch is a dependency
        tv, gpu = "?", "?"
    return f"{os.cpu_count()} cores ({cpu}), {gpu}, Python {platform.python_version()}, torch {tv}"


def wall_time(run_dir, needs: str | None = None) -> tuple[float | None, str]:
    """Wall time of the newest complete Snakemake log of the run in ``run_dir`` (``results/<run>``),
    and its name.  Snakemake keeps its logs in ``.snakemake/log`` of the directory it ran in
    (two levels above the run's folder), one per invocation of any run; the run's are those that
    name its folder.  Its name holds the start time, its last change the end.  With ``needs``,
    the newest complete log whose text holds it (``"rule transfer_layer"``: the invocation that
    made the sweep, not a later partial rerun of a few jobs)."""
    run_dir = Path(run_dir).absolute()
    mark = f"{run_dir.parent.name}/{run_dir.name}/"
    logs = sorted((run_dir.parents[1] / ".snakemake" / "log").glob("*.snakemake.log"))
    mine = [log for log in logs if mark in log.read_text(errors="replace")]
    for log in reversed(mine):
        text = log.read_text(errors="replace")
        if "(100%) done" not in text or "Nothing to be done" in text or (needs and needs not in text):
            continue
        m = re.match(r"(\d{4}-\d\d-\d\dT\d{6})", log.name)
        if not m:
            continue
        start = dt.datetime.strptime(m.group(1), "%Y-%m-%dT%H%M%S")
        end = dt.datetime.fromtimestamp(log.stat().st_mtime)
        resumed = "" if log == mine[0] else " (the last of several invocations)"
        return (end - start).total_seconds(), log.name + resumed
    return None, "no complete Snakemake log of this run"


def page_text(meta: dict, body: str) -> str:
    """A page: the metadata line, the title, where its numbers come from, the status note, ``body``."""
    line = (f"_Written by `{meta['command']}` from {meta['source']}, on commit `{meta['commit']}`; machine: "
            f"{meta['machine']}; {meta['date']}._")
    return (f"<!-- turbtl-page {json.dumps(meta)} -->\n# {meta['title']}\n\n{line}\n\n"
            "<!-- turbtl-status:start --><!-- turbtl-status:end -->\n\n" + body.strip() + "\n")


def write_page(name: str, title: str, command: str, source: str, body: str, pages=PAGES) -> Path:
    """Write ``docs/results/<name>.md`` (metadata from this checkout and machine) and the index."""
    from .io import atomic_path

    meta = {"name": name, "title": title, "command": command, "source": source, "commit": commit_of(),
            "machine": machine(), "date": dt.date.today().isoformat()}
    path = Path(pages) / f"{name}.md"
    with atomic_path(path) as tmp:
        Path(tmp).write_text(page_text(meta, body))
    write_index(pages)
    return path


def read_meta(path) -> dict | None:
    m = _META.search(Path(path).read_text())
    return json.loads(m.group(1)) if m else None


def stale_changes(commit: str, root=REPO) -> list[tuple[str, str]] | None:
    """The changes of :data:`NUMERICS_CHANGES` that ``commit`` predates ([] when current), or None
    where git cannot tell (no repository, an unknown commit)."""
    commit = commit.rstrip("+")
    if not git("rev-parse", "--verify", "-q", f"{commit}^{{commit}}", root=root):
        return None
    out = []
    for change, what in NUMERICS_CHANGES:
        r = subprocess.run(["git", "merge-base", "--is-ancestor", change, commit], cwd=root, capture_output=True)
        if r.returncode == 1:
            out.append((change, what))
        elif r.returncode != 0:
            return None
    return out


def _status_note(stale) -> str:
    if stale is None:
        return "_Numerics: unknown (git cannot place this page's commit)._"
    if not stale:
        return "_Numerics: current (the code computes these numbers today for the same config and machine)._"
    items = "\n".join(f"> - `{c}`: {what}" for c, what in stale)
    return ("> **Not the current numerics.** This page's run predates these changes; a rerun of today's code "
            "would give other numbers:\n" + items)


def write_index(pages=PAGES) -> Path:
    """``index.md``: every page with its commit, machine, date and numerics status; each page's
    status note rewritten to match."""
    from .io import atomic_path

    pages = Path(pages)
    rows = []
    for path in sorted(pages.glob("*.md")):
        meta = read_meta(path) if path.name != "index.md" else None
        if meta is None:
            continue
        stale = stale_changes(meta["commit"])
        note = "<!-- turbtl-status:start -->\n" + _status_note(stale) + "\n<!-- turbtl-status:end -->"
        text = path.read_text()
        new = _STALE.sub(lambda _: note, text, count=1)
        if new != text:
            with atomic_path(path) as tmp:
                Path(tmp).write_text(new)
        status = "unknown" if stale is None else ("yes" if not stale else
                                                  "no: predates " + ", ".join(f"`{c}`" for c, _ in stale))
        rows.append(f"| [{meta['name']}]({path.name}) | {meta['title']} | `{meta['commit']}` | {meta['machine']} | "
                    f"{meta['date']} | {status} |")
    text = ("# Generated results\n\nEvery page here is written by a script from the `results/` of runs "
            "(`python -m turbtl.report`, `python -m turbtl.replicates`), never by hand; "
            "[docs/development.md](../development.md#results-pages) says how. \"Current numerics\": whether "
            "today's code computes the same numbers for the same config on the same machine "
            "(`turbtl.results_pages.NUMERICS_CHANGES` lists the changes that altered them).\n\n"
            "| page | what | commit | machine | date | current numerics |\n|---|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n")
    out = pages / "index.md"
    with atomic_path(out) as tmp:
        Path(tmp).write_text(text)
    return out
