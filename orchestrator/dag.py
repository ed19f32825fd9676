"""Dependency-graph checks and orderings for a workflow's steps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def find_cycle(deps: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Return one dependency cycle as a closed path (``[a, b, a]``), or None if the graph is a DAG.

    ``deps`` maps each node to the nodes it depends on; unknown names are ignored here.
    """
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(deps, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = grey
        stack.append(node)
        for parent in deps[node]:
            if parent not in colour:
                continue
            if colour[parent] == grey:
                start = stack.index(parent)
                return [*stack[start:], parent]
            if colour[parent] == white and (cycle := visit(parent)):
                return cycle
        stack.pop()
        colour[node] = black
        return None

    for node in deps:
        if colour[node] == white and (cycle := visit(node)):
            return cycle
    return None


def topological_order(deps: Mapping[str, Sequence[str]]) -> list[str]:
    """Nodes ordered so that every node comes after its dependencies (stable for ties)."""
    order: list[str] = []
    placed: set[str] = set()
    remaining = list(deps)
    while remaining:
        progressed = False
        for node in list(remaining):
            if all(p in placed for p in deps[node]):
                order.append(node)
                placed.add(node)
                remaining.remove(node)
                progressed = True
        if not progressed:
            raise ValueError(f"dependency cycle among {remaining}")
    return order


def blocked_by_failure(deps: Mapping[str, Sequence[str]], failed: set[str]) -> set[str]:
    """Nodes that can never run because a (transitive) dependency is in ``failed``."""
    blocked: set[str] = set()
    for node in topological_order(deps):
        if any(p in failed or p in blocked for p in deps[node]):
            blocked.add(node)
    return blocked
