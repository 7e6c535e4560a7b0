"""Flows that inherit: ``flow_defaults`` and ``like:``.

A flow under ``systems:`` states only what differs.  Its parameters are merged in a fixed
order, each layer overriding the one before:

1. the schema's defaults of a flow (``workflow/schemas/config.schema.yaml``);
2. ``flow_defaults:``, what the flows of a config share;
3. the flow named by its ``like:`` key, resolved the same way (so a chain of ``like:`` works);
4. the flow's own keys.

The schema's ``required`` keys are checked on the merged flows, after this.  The merged flows
replace ``systems:`` in the config that the rules read, with their keys in the schema's order
(a job's params are compared as text), and without ``like``.
``python -m turbtl.config --resolved`` prints them.
"""
from __future__ import annotations

import copy

__all__ = ["resolve_flows", "flow_schema"]


def flow_schema(schema: dict) -> dict:
    """The schema of one flow (``systems.<name>``)."""
    return schema["properties"]["systems"]["additionalProperties"]


def _layer(value) -> dict:
    return value if isinstance(value, dict) else {}


def resolve_flows(cfg: dict, schema: dict) -> list[str]:
    """Merge every flow of ``cfg["systems"]`` in place (module docstring).  Returns the problems
    the merge itself finds (an unknown or circular ``like:``, ``like`` in ``flow_defaults``);
    entries that are not mappings are left as they are, for the schema's messages."""
    systems = cfg.get("systems")
    if not isinstance(systems, dict):
        return []
    props = flow_schema(schema)["properties"]
    order = list(props)
    problems = []
    defaults = _layer(cfg.get("flow_defaults"))
    if "like" in defaults:
        problems.append(f"flow_defaults.like = {defaults['like']!r}: flow_defaults is what every flow starts from, it "
                        "cannot be like a flow; fix: remove `like` from flow_defaults and give it to the flows that "
                        "start from that flow")
    start = {k: copy.deepcopy(v["default"]) for k, v in props.items() if "default" in v}
    start.update({k: copy.deepcopy(v) for k, v in defaults.items() if k != "like"})
    resolved: dict = {}

    def resolve(name, chain):
        if name in resolved:
            return resolved[name]
        own = systems[name]
        parent = own.get("like")
        merged = dict(start)
        if parent is not None:
            if not isinstance(parent, str) or parent not in systems:
                known = ", ".join(sorted(map(str, systems)))
                problems.append(f"systems.{name}.like = {parent!r} is not a flow under `systems:`; fix: name one of "
                                f"{known}, or remove `like`")
            elif parent in chain or parent == name:
                loop = " -> ".join(map(str, [*chain, name, parent]))
                problems.append(f"systems.{name}.like = {parent!r} makes a circle of flows ({loop}); fix: let one "
                                "of them state its parameters instead of `like`")
            elif not isinstance(systems[parent], dict):
                pass  # the parent itself is reported by the schema
            else:
                merged = dict(resolve(parent, [*chain, name]))
        merged.update({k: copy.deepcopy(v) for k, v in own.items() if k != "like"})
        resolved[name] = {k: merged[k] for k in order if k in merged} | {k: v for k, v in merged.items() if k not in props}
        return resolved[name]

    for name, own in systems.items():
        if isinstance(own, dict):
            resolve(name, [])
    for name in resolved:
        systems[name] = resolved[name]
    return list(dict.fromkeys(problems))
