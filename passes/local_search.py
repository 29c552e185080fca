"""Placement's local search in numba: layer rebuilds (a whole layer, or two consecutive ones, taken off the chip and
put back around their best reduction point), simulated annealing and a descent to a local optimum over moves (a
group to a tile with room) and swaps (two groups whose tiles stay within capacity), each costed incrementally from
the flows that touch the groups it moves, never by recomputing the whole objective.

The state is arrays: ``at[g]`` the tile (an index into the usable tiles) of group ``g``; each tile's load and its
groups (``members[t, :count[t]]``, with ``slot[g]`` the position of ``g`` there, so a move is O(1)); the flows
between groups as a symmetric adjacency in CSR form (``start``, ``partner``, ``weight``: bytes); the flows to fixed
tiles as a cost per group and tile (``fixed[anchored[g]]``, -1 for none). Costs are integers (bytes x hops), so
the search is exact and its result a function of its inputs and its seed only.

Work is counted, never timed: the annealing takes ``iterations`` proposals; the rebuilds pass over every layer and
the descent sweeps every group over every tile (a move where the tile has room, else a swap with each group on
it), each stopping after a pass that finds no improving step, or after a given number of passes. Random numbers
come from a xorshift64* generator seeded with ``seed`` (so the stream is this module's, not numba's or numpy's).

Compiled with ``cache=True``: the first run on a machine compiles (seconds) and stores the machine code beside
this file; later processes load it.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

#: How often the annealing proposes a tile near a flow partner rather than near the group itself.
NEAR_PARTNER = 0.7
#: The annealing's temperature starts at this share of the median uphill change (it polishes a placement the layer
#: rebuilds made: hotter undoes their work) ...
INITIAL_TEMPERATURE = 0.2
#: ... and falls geometrically to this share of where it started.
FINAL_TEMPERATURE = 0.03
#: Proposals drawn to measure the median uphill change: this many per group, at most ``TEMPERATURE_SAMPLES``.
SAMPLES_PER_GROUP = 20
TEMPERATURE_SAMPLES = 400

_XORSHIFT_MULTIPLIER = np.uint64(2685821657736338717)


@nb.njit(cache=True)
def _seed_state(seed: int) -> np.ndarray:
    """A xorshift64* state from ``seed`` (splitmix64's finalizer, so nearby seeds give unrelated streams)."""
    z = np.uint64(seed) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    state = np.empty(1, dtype=np.uint64)
    state[0] = z if z != np.uint64(0) else np.uint64(1)
    return state


@nb.njit(cache=True, inline="always")
def _next(state: np.ndarray) -> np.uint64:
    """The next 53 random bits of the xorshift64* generator in ``state``."""
    x = state[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    state[0] = x
    return (x * _XORSHIFT_MULTIPLIER) >> np.uint64(11)


@nb.njit(cache=True, inline="always")
def _uniform(state: np.ndarray) -> float:
    """A float in [0, 1)."""
    return float(_next(state)) * (1.0 / 9007199254740992.0)  # 2^-53


@nb.njit(cache=True, inline="always")
def _below(state: np.ndarray, n: int) -> int:
    """An integer in [0, n) (the modulo bias of 53 bits over n is negligible)."""
    return int(_next(state) % np.uint64(n))


@nb.njit(cache=True, inline="always")
def _move_change(g, tile, here, at, hops, start, partner, weight, anchored, fixed):
    """Bytes x hops of group ``g``'s flows were it on ``tile`` less were it on ``here``, the other groups where they
    are: one pass over its flows."""
    total = 0
    to, off = hops[tile], hops[here]
    for k in range(start[g], start[g + 1]):
        other = at[partner[k]]
        total += weight[k] * (to[other] - off[other])
    if anchored[g] >= 0:
        total += fixed[anchored[g], tile] - fixed[anchored[g], here]
    return total


@nb.njit(cache=True, inline="always")
def _cost_row(g, at, hops, start, partner, weight, anchored, fixed, row):
    """Bytes x hops of group ``g``'s flows were it on each tile (the other groups where they are), into ``row``: a
    pass over each flow partner's row of hops (contiguous, so it vectorizes; hops are symmetric)."""
    if anchored[g] >= 0:
        row[:] = fixed[anchored[g]]
    else:
        row[:] = 0
    for k in range(start[g], start[g + 1]):
        w, other = weight[k], hops[at[partner[k]]]
        for t in range(len(row)):
            row[t] += w * other[t]


@nb.njit(cache=True, inline="always")
def _link(g, h, start, partner, weight):
    """The bytes between groups ``g`` and ``h``."""
    for k in range(start[g], start[g + 1]):
        if partner[k] == h:
            return weight[k]
    return 0


@nb.njit(cache=True, inline="always")
def _remove(g, at, sizes, load, members, count, slot):
    """Take group ``g`` off its tile (``at[g]`` keeps the tile until ``_add`` sets it)."""
    old = at[g]
    last = members[old, count[old] - 1]  # the old tile's last member takes g's slot
    members[old, slot[g]] = last
    slot[last] = slot[g]
    count[old] -= 1
    load[old] -= sizes[g]


@nb.njit(cache=True, inline="always")
def _add(g, tile, at, sizes, load, members, count, slot):
    """Put group ``g``, off any tile, on ``tile``."""
    members[tile, count[tile]] = g
    slot[g] = count[tile]
    count[tile] += 1
    load[tile] += sizes[g]
    at[g] = tile


@nb.njit(cache=True, inline="always")
def _relocate(g, tile, at, sizes, load, members, count, slot):
    """Move group ``g`` to ``tile``."""
    _remove(g, at, sizes, load, members, count, slot)
    _add(g, tile, at, sizes, load, members, count, slot)


@nb.njit(cache=True)
def _members(at, sizes, tiles, capacity):
    """Each tile's load, groups, group count, and each group's slot among its tile's groups."""
    load = np.zeros(tiles, dtype=np.int64)
    members = np.empty((tiles, capacity), dtype=np.int64)
    count = np.zeros(tiles, dtype=np.int64)
    slot = np.empty(len(at), dtype=np.int64)
    for g in range(len(at)):
        t = at[g]
        members[t, count[t]] = g
        slot[g] = count[t]
        count[t] += 1
        load[t] += sizes[g]
    return load, members, count, slot


@nb.njit(cache=True)
def _step(g, tile, at, sizes, capacity, load, members, count, hops, start, partner, weight, anchored, fixed, state):
    """A random step of ``g`` to ``tile``: a move where it has room, else a swap with one of its groups at random
    (where both tiles stay within capacity): the cost change and the group swapped (-1 for a move, -2 when
    neither fits)."""
    here = at[g]
    if load[tile] + sizes[g] <= capacity:
        return _move_change(g, tile, here, at, hops, start, partner, weight, anchored, fixed), -1
    h = members[tile, _below(state, count[tile])]
    if load[here] - sizes[g] + sizes[h] > capacity or load[tile] - sizes[h] + sizes[g] > capacity:
        return 0, -2
    return _swap_change(g, h, at, hops, start, partner, weight, anchored, fixed), h


@nb.njit(cache=True, inline="always")
def _swap_change(g, h, at, hops, start, partner, weight, anchored, fixed):
    """The cost change of swapping the tiles of groups ``g`` and ``h``."""
    here, there = at[g], at[h]
    change = _move_change(g, there, here, at, hops, start, partner, weight, anchored, fixed) + _move_change(
        h, here, there, at, hops, start, partner, weight, anchored, fixed
    )
    # each change above saw the other group where it was: their own flow keeps its length
    return change + 2 * _link(g, h, start, partner, weight) * hops[here, there]


@nb.njit(cache=True)
def anneal(
    at, sizes, capacity, hops, start, partner, weight, cumulative, anchored, fixed, near_start, near, iterations, seed
):
    """Simulated annealing from the placement ``at`` for ``iterations`` proposals: a group at random to a tile
    within two hops (``near``, CSR by tile) of a flow partner (``NEAR_PARTNER`` of the time, the partner drawn by
    bytes: ``cumulative`` is each group's running sum of its flows' bytes) or of its own tile; a move or a swap
    (``_step``), taken when it does not cost more, else with the Metropolis probability; the temperature falling
    geometrically from the median uphill change to ``FINAL_TEMPERATURE`` of it. Returns the best placement seen
    and its cost change from ``at``."""
    n, tiles = len(at), len(hops)
    at = at.copy()
    load, members, count, slot = _members(at, sizes, tiles, capacity)
    state = _seed_state(seed)
    best_at = at.copy()
    if n < 2 or iterations <= 0:
        return best_at, 0

    samples = min(TEMPERATURE_SAMPLES, SAMPLES_PER_GROUP * n)
    uphill = np.empty(samples, dtype=np.float64)
    found = 0
    for _ in range(samples):
        g = _below(state, n)
        tile = _propose(g, at, start, partner, cumulative, near_start, near, state)
        if tile == at[g]:
            continue
        delta, h = _step(
            g, tile, at, sizes, capacity, load, members, count, hops, start, partner, weight, anchored, fixed, state
        )
        if h != -2 and delta > 0:
            uphill[found] = delta
            found += 1
    temperature = INITIAL_TEMPERATURE * (np.median(uphill[:found]) if found else 1.0)
    cool = FINAL_TEMPERATURE ** (1.0 / iterations)

    current, best = 0, 0
    for _ in range(iterations):
        temperature *= cool
        g = _below(state, n)
        tile = _propose(g, at, start, partner, cumulative, near_start, near, state)
        here = at[g]
        if tile == here:
            continue
        delta, h = _step(
            g, tile, at, sizes, capacity, load, members, count, hops, start, partner, weight, anchored, fixed, state
        )
        if h == -2 or (delta > 0 and _uniform(state) >= math.exp(-delta / temperature)):
            continue
        _relocate(g, tile, at, sizes, load, members, count, slot)
        if h >= 0:
            _relocate(h, here, at, sizes, load, members, count, slot)
        current += delta
        if current < best:
            best = current
            best_at[:] = at
    return best_at, best


@nb.njit(cache=True, inline="always")
def _propose(g, at, start, partner, cumulative, near_start, near, state):
    """A tile within two hops of a flow partner of ``g`` (drawn by bytes) or of ``g``'s own tile."""
    first, end = start[g], start[g + 1]
    if end > first and _uniform(state) < NEAR_PARTNER:
        pick = np.searchsorted(cumulative[first:end], _uniform(state) * cumulative[end - 1], side="right")
        base = at[partner[first + min(pick, end - first - 1)]]
    else:
        base = at[g]
    return near[near_start[base] + _below(state, near_start[base + 1] - near_start[base])]


@nb.njit(cache=True)
def descend(at, sizes, capacity, hops, start, partner, weight, anchored, fixed, sweeps):
    """Steepest steps from the placement ``at``: each group in turn takes the best improving step over every tile
    (a move where the tile has room, else a swap with whichever of its groups gains most and fits), until a sweep
    over every group improves nothing or ``sweeps`` sweeps have run. Returns the placement and its cost change."""
    n, tiles = len(at), len(hops)
    at = at.copy()
    load, members, count, slot = _members(at, sizes, tiles, capacity)
    row = np.empty(tiles, dtype=np.int64)  # g's cost on every tile, the others where they are
    total = 0
    for _ in range(sweeps):
        improved = False
        for g in range(n):
            here = at[g]
            _cost_row(g, at, hops, start, partner, weight, anchored, fixed, row)
            stay = row[here]
            best, best_tile, best_h = 0, -1, -1
            for tile in range(tiles):
                if tile == here:
                    continue
                if load[tile] + sizes[g] <= capacity:
                    delta = row[tile] - stay
                    if delta < best:
                        best, best_tile, best_h = delta, tile, -1
                    continue
                for k in range(count[tile]):
                    h = members[tile, k]
                    if load[here] - sizes[g] + sizes[h] > capacity or load[tile] - sizes[h] + sizes[g] > capacity:
                        continue
                    # as _swap_change, g's side read off its row
                    delta = (
                        row[tile]
                        - stay
                        + _move_change(h, here, tile, at, hops, start, partner, weight, anchored, fixed)
                        + 2 * _link(g, h, start, partner, weight) * hops[here, tile]
                    )
                    if delta < best:
                        best, best_tile, best_h = delta, tile, h
            if best_tile < 0:
                continue
            _relocate(g, best_tile, at, sizes, load, members, count, slot)
            if best_h >= 0:
                _relocate(best_h, here, at, sizes, load, members, count, slot)
            total += best
            improved = True
        if not improved:
            break
    return at, total


@nb.njit(cache=True)
def _layer_cost(groups, tiles_of, at, hops, start, partner, weight, anchored, fixed, in_layer):
    """Bytes x hops of the flows of a layer's ``groups`` were they on ``tiles_of`` (the others where they are),
    each flow counted once."""
    total = 0
    for k in range(len(groups)):
        g, tile = groups[k], tiles_of[k]
        for j in range(start[g], start[g + 1]):
            p = partner[j]
            if in_layer[p] >= 0:
                if p > g:
                    total += weight[j] * hops[tile, tiles_of[in_layer[p]]]
            else:
                total += weight[j] * hops[tile, at[p]]
        if anchored[g] >= 0:
            total += fixed[anchored[g], tile]
    return total


@nb.njit(cache=True, inline="always")
def _spoke_cost(g, tile, placed, trial, at, hops, start, partner, weight, anchored, fixed, in_layer):
    """Bytes x hops of group ``g``'s flows on ``tile`` to the groups outside its layer and to its layer's first
    ``placed`` groups (on ``trial``)."""
    total = 0
    row = hops[tile]
    for j in range(start[g], start[g + 1]):
        p = partner[j]
        if in_layer[p] < 0:
            total += weight[j] * row[at[p]]
        elif in_layer[p] < placed:
            total += weight[j] * row[trial[in_layer[p]]]
    if anchored[g] >= 0:
        total += fixed[anchored[g], tile]
    return total


@nb.njit(cache=True)
def rebuild_layers(
    at, sizes, capacity, hops, nearest, start, partner, weight, anchored, fixed, layer_start, layer_groups, passes, span
):
    """Large steps: each run of ``span`` consecutive layers in turn taken off the chip and put back around the best
    tile for the first layer's first group (its reduction point): that group there; then in ``layer_groups`` order
    each other group on the nearest tile with room (``nearest[t]``: the tiles by hops from ``t``) to its layer's
    first group (a later layer's first group: to the run's first tile), the cheapest for its flows among those as
    near; kept where the run's flows cost less. Passes over every run until one improves nothing or ``passes``
    have run. Returns the placement and its cost change."""
    n, tiles = len(at), len(hops)
    at = at.copy()
    load, members, count, slot = _members(at, sizes, tiles, capacity)
    in_layer = np.full(n, -1, dtype=np.int64)
    total = 0
    trial = np.empty(n, dtype=np.int64)
    best_tiles = np.empty(n, dtype=np.int64)
    lead = np.empty(n, dtype=np.int64)
    for _ in range(passes):
        improved = False
        layers = len(layer_start) - 1
        for layer in range(layers - span + 1):
            groups = layer_groups[layer_start[layer] : layer_start[layer + span]]
            if len(groups) < 2:
                continue
            k = len(groups)
            for i in range(k):
                in_layer[groups[i]] = i
                trial[i] = at[groups[i]]
            for j in range(layer, layer + span):  # each group's layer's first group
                first = layer_start[j] - layer_start[layer]
                lead[first : layer_start[j + 1] - layer_start[layer]] = first
            current = _layer_cost(groups, trial[:k], at, hops, start, partner, weight, anchored, fixed, in_layer)
            for i in range(k):  # the layer off the chip
                load[at[groups[i]]] -= sizes[groups[i]]
            best = current
            found = False
            for center in range(tiles):
                if load[center] + sizes[groups[0]] > capacity:
                    continue
                fits = True
                cost = 0  # the spoke costs so far: they sum to the run's flows (each counted at its later end)
                for i in range(k):
                    g = groups[i]
                    base = center if lead[i] == i else trial[lead[i]]
                    placed, placed_cost = -1, 0
                    for tile in nearest[base]:
                        if load[tile] + sizes[g] > capacity:
                            continue
                        if placed >= 0 and hops[base, tile] > hops[base, placed]:
                            break
                        spoke = _spoke_cost(
                            g, tile, i, trial, at, hops, start, partner, weight, anchored, fixed, in_layer
                        )
                        if placed < 0 or spoke < placed_cost:
                            placed, placed_cost = tile, spoke
                    if placed >= 0:
                        trial[i] = placed
                        load[placed] += sizes[g]
                        cost += placed_cost
                    if placed < 0 or cost >= best:  # no room, or no better than the best: the next center
                        fits = False
                        for j in range(i + (placed >= 0)):
                            load[trial[j]] -= sizes[groups[j]]
                        break
                if not fits:
                    continue
                for i in range(k):
                    load[trial[i]] -= sizes[groups[i]]
                if cost < best:
                    best, found = cost, True
                    best_tiles[:k] = trial[:k]
            for i in range(k):  # back on the chip, where they were
                load[at[groups[i]]] += sizes[groups[i]]
            if found:
                for i in range(k):
                    _remove(groups[i], at, sizes, load, members, count, slot)
                for i in range(k):
                    _add(groups[i], best_tiles[i], at, sizes, load, members, count, slot)
                total += best - current
                improved = True
            for i in range(k):
                in_layer[groups[i]] = -1
        if not improved:
            break
    return at, total
