"""Write order: dependencies first, ties by name, cycles broken without crashing."""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Iterable, Mapping, TypeVar

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparison

K = TypeVar("K", bound="SupportsRichComparison")


def topological(nodes: Iterable[K], depends_on: Mapping[K, Iterable[K]]) -> tuple[list[K], list[K]]:
    """``nodes`` with every node after the nodes it depends on (among ``nodes``), ties sorted.

    Returns (order, cycle): when a dependency cycle blocks progress, the smallest node of what
    is left goes next and is reported in ``cycle``, so the order stays stable.
    """
    pending = sorted(set(nodes))
    members = set(pending)
    waiting = {n: {d for d in depends_on.get(n, ()) if d in members and d != n} for n in pending}
    users: dict[K, list[K]] = {n: [] for n in pending}
    for node, deps in waiting.items():
        for dep in deps:
            users[dep].append(node)
    ready = [n for n in pending if not waiting[n]]
    heapq.heapify(ready)
    order: list[K] = []
    cycle: list[K] = []
    done: set[K] = set()
    while len(order) < len(pending):
        if ready:
            node = heapq.heappop(ready)
        else:
            node = min(n for n in pending if n not in done)
            cycle.append(node)
        if node in done:
            continue
        done.add(node)
        order.append(node)
        for user in users[node]:
            waiting[user].discard(node)
            if not waiting[user] and user not in done:
                heapq.heappush(ready, user)
    return order, cycle
