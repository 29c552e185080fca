"""The on-chip network: XY dimension-order routes between tiles and the load they put on every link.

A 2D mesh (optionally a torus) of tiles, each with a router linked to its four neighbours. XY routing sends a
packet along its row first (changing column), then along its column (changing row); it is deadlock-free on a mesh
and is what most CIM chips' networks do (ISAAC, PUMA, HERMES). On a torus each dimension goes the shorter way
round (ties: the increasing direction). A link is directed: ``(from_tile, to_tile)`` between neighbours.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cimc.ir.target.chip import Mesh

#: A tile's position on the mesh: ``(row, col)``.
Tile = tuple[int, int]
#: A directed link between neighbouring routers: ``(from_tile, to_tile)``.
Link = tuple[Tile, Tile]

#: The router the I/O port (the host interface) is attached to: model inputs enter and outputs leave the mesh there.
PORT_ROUTER: Tile = (0, 0)


def mesh_links(mesh: Mesh) -> list[Link]:
    """Every directed link of the grid, in a fixed order."""
    links = set()
    for r in range(mesh.rows):
        for c in range(mesh.cols):
            for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                nr, nc = r + dr, c + dc
                if mesh.torus:
                    nr, nc = nr % mesh.rows, nc % mesh.cols
                if 0 <= nr < mesh.rows and 0 <= nc < mesh.cols and (nr, nc) != (r, c):
                    links.add(((r, c), (nr, nc)))
    return sorted(links)


def _steps(start: int, end: int, size: int, torus: bool) -> list[int]:
    """The coordinates visited after ``start`` on the way to ``end`` along one dimension of ``size``."""
    if start == end:
        return []
    forward = (end - start) % size
    if torus and forward > size - forward:  # the other way round is shorter
        return [(start - i) % size for i in range(1, size - forward + 1)]
    if torus:
        return [(start + i) % size for i in range(1, forward + 1)]
    step = 1 if end > start else -1
    return list(range(start + step, end + step, step))


def hops(mesh: Mesh, src: Tile, dst: Tile) -> int:
    """Links on the XY route from ``src`` to ``dst`` (``len(route(...))``, in closed form: per dimension the
    distance, on a torus the shorter way round)."""
    return _axis_hops(src[0], dst[0], mesh.rows, mesh.torus) + _axis_hops(src[1], dst[1], mesh.cols, mesh.torus)


def _axis_hops(a: int, b: int, size: int, torus: bool) -> int:
    d = abs(a - b)
    return min(d, size - d) if torus else d


def route(mesh: Mesh, src: Tile, dst: Tile) -> list[Link]:
    """The XY route from ``src`` to ``dst``: along the row to the destination column, then along the column."""
    links: list[Link] = []
    here = src
    for col in _steps(src[1], dst[1], mesh.cols, mesh.torus):
        links.append((here, (here[0], col)))
        here = (here[0], col)
    for row in _steps(src[0], dst[0], mesh.rows, mesh.torus):
        links.append((here, (row, here[1])))
        here = (row, here[1])
    return links


@dataclass(frozen=True)
class LinkLoads:
    """Bytes per inference on every link, and the figures a report gives of them."""

    loads: dict[Link, int]
    links: int  # links in the mesh

    @property
    def total(self) -> int:
        """Byte-hops: every byte counted once per link it crosses."""
        return sum(self.loads.values())

    @property
    def max(self) -> int:
        return max(self.loads.values(), default=0)

    @property
    def mean(self) -> float:
        """Mean over every link of the mesh, idle ones included."""
        return self.total / self.links if self.links else 0.0

    @property
    def busiest(self) -> Link | None:
        """The most loaded link (the first in link order on a tie), None when nothing moves."""
        if not self.loads:
            return None
        return min(self.loads, key=lambda link: (-self.loads[link], link))


def flow_route(mesh: Mesh, src: Tile | None, dst: Tile | None) -> list[Link]:
    """The mesh links a flow from ``src`` to ``dst`` crosses, None standing for the I/O port (its traffic enters and
    leaves the mesh at ``PORT_ROUTER``): the one route model under placement's report, timing and energy."""
    return route(mesh, PORT_ROUTER if src is None else src, PORT_ROUTER if dst is None else dst)


def link_loads(mesh: Mesh, flows: Iterable[tuple[Tile | None, Tile | None, int]]) -> LinkLoads:
    """The load of every link when each flow ``(src, dst, bytes)`` follows its route (``flow_route``: None is the
    I/O port)."""
    loads: dict[Link, int] = {}
    for src, dst, size in flows:
        for link in flow_route(mesh, src, dst):
            loads[link] = loads.get(link, 0) + size
    return LinkLoads(dict(sorted(loads.items())), len(mesh_links(mesh)))
