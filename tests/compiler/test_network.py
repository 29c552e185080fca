"""XY routes and link loads on meshes and tori, against hand-worked routes and closed-form counts."""

from __future__ import annotations

import itertools

import pytest

from cimc.ir.target.chip import Mesh
from cimc.ir.target.network import link_loads, mesh_links, route


def test_xy_route_goes_along_the_row_then_the_column() -> None:
    mesh = Mesh(rows=3, cols=4)
    assert route(mesh, (2, 0), (0, 3)) == [
        ((2, 0), (2, 1)),
        ((2, 1), (2, 2)),
        ((2, 2), (2, 3)),
        ((2, 3), (1, 3)),
        ((1, 3), (0, 3)),
    ]
    assert route(mesh, (1, 1), (1, 1)) == []


def test_mesh_hops_are_manhattan_distances() -> None:
    mesh = Mesh(rows=3, cols=5)
    for a, b in itertools.product(itertools.product(range(3), range(5)), repeat=2):
        assert len(route(mesh, a, b)) == abs(a[0] - b[0]) + abs(a[1] - b[1])


def test_torus_takes_the_shorter_way_round() -> None:
    torus = Mesh(rows=4, cols=5, torus=True)
    assert route(torus, (0, 0), (0, 4)) == [((0, 0), (0, 4))]  # one hop back round, not four forward
    assert route(torus, (0, 1), (3, 1)) == [((0, 1), (3, 1))]
    assert route(torus, (0, 0), (2, 0)) == [((0, 0), (1, 0)), ((1, 0), (2, 0))]  # a tie: the increasing way
    for a, b in itertools.product(itertools.product(range(4), range(5)), repeat=2):
        dr, dc = abs(a[0] - b[0]), abs(a[1] - b[1])
        assert len(route(torus, a, b)) == min(dr, 4 - dr) + min(dc, 5 - dc)


@pytest.mark.parametrize(("rows", "cols", "torus", "links"), [(3, 4, False, 2 * (3 * 3 + 4 * 2)), (3, 4, True, 48)])
def test_link_counts(rows: int, cols: int, torus: bool, links: int) -> None:
    """A mesh has 2 (rows (cols - 1) + cols (rows - 1)) directed links; a torus of sides >= 3 has 4 per tile."""
    assert len(mesh_links(Mesh(rows=rows, cols=cols, torus=torus))) == links


def test_link_loads_add_up_flows_on_shared_links() -> None:
    mesh = Mesh(rows=2, cols=3)
    loads = link_loads(mesh, [((0, 0), (1, 2), 100), ((0, 1), (0, 2), 10), ((1, 2), (1, 2), 7)])
    assert loads.loads == {((0, 0), (0, 1)): 100, ((0, 1), (0, 2)): 110, ((0, 2), (1, 2)): 100}
    assert (loads.total, loads.max, loads.busiest) == (310, 110, ((0, 1), (0, 2)))
    assert loads.mean == pytest.approx(310 / 14)
