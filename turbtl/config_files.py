"""Reading config files: YAML syntax errors with file, line and fix (Snakemake's own message
names neither), duplicate keys (which plain YAML silently merges), and the merge of several
files the way Snakemake merges ``--configfile`` files.  The checks of the merged config are
in :mod:`turbtl.config`.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from . import ConfigError

__all__ = ["check_yaml_file", "merge"]


class _DupLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(
                f"duplicate key {key!r} (line {key_node.start_mark.line + 1} and line {seen[key]}) in "
                f"{node.start_mark.name}; fix: give each flow (and each setting) one unique name")
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_DupLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _yaml_fix(err, text: str) -> str:
    """The likely fix for a YAML syntax error, from pyyaml's problem and context."""
    problem, context = err.problem or "", err.context or ""
    ctx_line = err.context_mark.line + 1 if err.context_mark else None
    line = err.problem_mark.line if err.problem_mark else 0
    # an unclosed quote swallows the lines after it, so the parser fails far below it
    try:
        for tok in yaml.scan(text):
            if tok.start_mark.line >= line:
                break
            if isinstance(tok, yaml.ScalarToken) and tok.style in ("'", '"') and tok.end_mark.line > tok.start_mark.line:
                return (f"close the quote ({tok.style}) opened at line {tok.start_mark.line + 1}, column "
                        f"{tok.start_mark.column + 1}: its value runs on to line {tok.end_mark.line + 1}")
    except yaml.YAMLError:
        pass
    if "\\t" in problem or "tab character" in problem:  # pyyaml writes a tab as the two characters \t
        return "indent with spaces; YAML does not allow tabs"
    if "quoted scalar" in context:
        return f"close the quote opened at line {ctx_line}"
    if "flow sequence" in context:
        return f"close the '[' of line {ctx_line} with ']' and separate its items with ', '"
    if "flow mapping" in context:
        return f"close the '{{' of line {ctx_line} with '}}' and separate its items with ', '"
    if "mapping values are not allowed" in problem or "block end" in problem:
        return ("indent this key exactly like the other keys of its section (spaces only), "
                "and quote a value that contains ': '")
    return ("correct the YAML at this line or just above it: indentation with spaces, closed brackets "
            "and quotes, a space after each ':'")


def _yaml_error(path, err, text: str) -> ConfigError:
    if not isinstance(err, yaml.MarkedYAMLError) or err.problem_mark is None:
        return ConfigError(f"config file {path} is not valid YAML ({err}); fix: correct its syntax")
    m = err.problem_mark
    where = f"YAML syntax error in config file {path}, line {m.line + 1}, column {m.column + 1}: {err.problem}"
    if err.context and err.context_mark is not None and err.context_mark.line != m.line:
        c = err.context_mark
        where += f" ({err.context} that starts at line {c.line + 1}, column {c.column + 1})"
    return ConfigError(f"{where}; fix: {_yaml_fix(err, text)}")


def check_yaml_file(path) -> dict:
    """Fail with file, line and fix on a YAML syntax error (Snakemake's own message names neither),
    on a file that is not a mapping of keys, and on duplicate keys (e.g. two flows with one name),
    which plain YAML silently merges.  Returns the parsed config.
    """
    try:
        with open(path, encoding="utf-8") as fh:  # a stream, so that the marks carry the file name
            data = yaml.load(fh, Loader=_DupLoader)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found (full path {Path(path).absolute()}); fix: run snakemake "
                          "in the directory that holds it or give the right path with --configfile") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {path} is not UTF-8 text ({e}); fix: save it as UTF-8") from None
    except OSError as e:  # a directory, no permission
        raise ConfigError(f"config file {path} cannot be read ({e.strerror or e}); fix: give the path of a YAML "
                          "file you can read") from None
    except yaml.YAMLError as e:
        text = Path(path).read_text(encoding="utf-8")
        try:  # Snakemake reads a config as JSON first: valid JSON is fine
            data = json.loads(text)
        except ValueError:
            raise _yaml_error(path, e, text) from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} holds {'nothing' if data is None else 'a ' + type(data).__name__}, "
                          "not a mapping of keys; fix: write it like config.yaml (`key: value` lines at the top level)")
    return data


def merge(into: dict, new: dict) -> dict:
    """Merge nested dicts the way Snakemake merges several --configfile files."""
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            merge(into[k], v)
        else:
            into[k] = v
    return into
