"""What the in-agent filter can decide by itself (pure: the agent imports it inside lldb).

The agent evaluates a predicate at each first-chance stop only when it can gather all the predicate
needs (docs/linux.md, "the in-agent filter"); from the type alone when every node of the spec allows.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, Set

# Predicate nodes the agent can decide from the type alone (no SOS command per throw).
TYPE_ONLY_OPS = frozenset({"exception_type", "first_chance", "second_chance", "not", "all", "any"})
# Nodes the agent can decide from the type, the message and the HResult read from the object itself
# (exception_fields.py: no SOS command per throw once its reads agree with pe).
FIELD_READ_OPS = TYPE_ONLY_OPS | {"message_matches", "hresult"}
# Nodes the agent can decide from those and the throw site, which the stub's question names by its chain
# of return addresses once a stop has shown it (.NET 8: throw_sites.py).
SITE_READ_OPS = FIELD_READ_OPS | {"thrown_in"}
# What the agent can gather for a predicate at a stop (the inner-exception chain it cannot).
AGENT_CAN_FETCH = frozenset({"stack", "type_chain"})


def _nodes(spec: Any) -> Iterator[Dict[str, Any]]:
    """Every node (a dict) of a predicate spec tree, depth first."""
    if isinstance(spec, dict):
        yield spec
        for value in spec.values():
            yield from _nodes(value)
    elif isinstance(spec, list):
        for value in spec:
            yield from _nodes(value)


def named_types(spec: Any) -> Set[str]:
    """The type names of every ``exception_type`` node in a predicate spec tree."""
    return {
        node["name"]
        for node in _nodes(spec)
        if node.get("op") == "exception_type" and isinstance(node.get("name"), str)
    }


def spec_ops(spec: Any) -> Set[str]:
    """Every "op" in a predicate spec tree."""
    return {node["op"] for node in _nodes(spec) if "op" in node}
