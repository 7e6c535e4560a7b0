"""The docs: the README is a front page, links between pages resolve, generated blocks are
current, and the commands the pages give work (dry runs; the real runs are in test_workflow)."""
import re
import shlex
import shutil
import subprocess
import sys

import pytest
import yaml

from helpers_workflow import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lowercase, punctuation but '-' and '_' dropped, spaces to '-'."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {_slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def test_readme_is_a_front_page():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 250, len(lines)
    heads = [h for h in lines if h.startswith("## ")]
    for want in ("## What it found", "## The pipeline", "## Quick start", "## Adding a target", "## Presets",
                 "## On a Slurm cluster", "## After a crash", "## Repository layout", "## Testing",
                 "## Citation and licence"):
        assert want in heads, want


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_links_between_pages_resolve(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    bad = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            bad.append(f"{target}: no heading with anchor #{anchor}")
    assert not bad, bad


def test_readme_rule_graph_is_current():
    from turbtl.rulegraph import current

    text = (REPO / "README.md").read_text()
    block = text.split("<!-- report:rulegraph:start -->\n", 1)[1].split("<!-- report:rulegraph:end -->", 1)[0]
    assert block == current(), "the README's rule graph is stale: run python -m turbtl.rulegraph"


def test_results_index_and_status_notes_are_current(tmp_path):
    """docs/results/index.md and each page's numerics note are what turbtl.results_pages writes
    today (a page added, or NUMERICS_CHANGES extended, without `python -m turbtl.report --index`
    fails here); every page has its provenance line."""
    from turbtl.results_pages import read_meta, write_index

    pages = tmp_path / "results"
    shutil.copytree(REPO / "docs" / "results", pages)
    write_index(pages)
    for f in sorted((REPO / "docs" / "results").glob("*.md")):
        assert (pages / f.name).read_text() == f.read_text(), f"{f.name} is stale: python -m turbtl.report --index"
        if f.name != "index.md":
            meta = read_meta(f)
            assert meta and {"name", "title", "command", "commit", "machine", "date"} <= set(meta), f


def _commands():
    """The `snakemake` and `python -m turbtl.config` commands in the README's and docs' shell blocks."""
    out = []
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
            text = block.replace("\\\n", " ")
            for line in text.splitlines():
                cmd = line.split("#", 1)[0].strip()
                for part in cmd.split("&&"):
                    part = part.strip()
                    if re.match(r"(snakemake|python -m turbtl\.config)\b", part) and not re.search(
                            r"--profile|--unlock|--report|<|FILE|NAME|RUN|\$", part) and all(
                            (REPO / f).exists() for f in re.findall(r"\S+\.ya?ml\b", part)):  # not a user's own file
                        out.append((str(page.relative_to(REPO)), part))
    return sorted(set(out))


@pytest.mark.slow
@pytest.mark.parametrize("page,command", _commands())
def test_commands_in_the_docs_work(page, command, tmp_path):
    """Every `snakemake ...` command of the pages plans its jobs (as a dry run, in a scratch
    directory), every `python -m turbtl.config ...` passes."""
    args = shlex.split(command)
    if args[0] == "snakemake":
        args = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory",
                str(tmp_path), *[a if not a.startswith("presets/") else str(REPO / a) for a in args[1:]], "-n"]
        args = [a for a in args if not re.fullmatch(r"--cores|\d+", a)] if "--cores" in args else args
    else:
        args = [sys.executable, *args[1:]]
    r = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (page, command, (r.stdout + r.stderr)[-3000:])
    assert not (tmp_path / "results").exists()


def test_adding_a_target_is_one_line():
    """The README's example of adding a target: one line under systems, its name in targets,
    valid with no warning, and its flow is beta's but for what the line says."""
    import copy

    from turbtl.config import load_configs, validate_config
    from turbtl.config_checks import config_warnings

    text = (REPO / "README.md").read_text().split("## Adding a target", 1)[1]
    block = yaml.safe_load(text.split("```yaml\n", 1)[1].split("```", 1)[0])
    cfg = copy.deepcopy(load_configs()[0])
    cfg["targets"] = block["targets"]
    cfg["systems"].update(block["systems"])
    (new,) = block["systems"]
    assert len(yaml.safe_dump(block["systems"], default_flow_style=None).splitlines()) == 1
    validate_config(cfg)
    assert config_warnings(cfg) == []
    beta = cfg["systems"][block["systems"][new]["like"]]
    assert {k: v for k, v in cfg["systems"][new].items() if k not in block["systems"][new]} == \
        {k: v for k, v in beta.items() if k not in block["systems"][new]}
