"""The closed-loop solver: ideal circuits equal numpy in one analog step a right-hand side, block inversion extends
them to 256x256 and, with device effects, converges on the 225-unknown Poisson system that once diverged, one
analog step's error follows the conditioning, refinement reaches the tolerance or stops as diverged with its reason,
unstable loops and loops saturated by the op-amp offsets are refused, zero right-hand sides cost no analog step,
least squares and several right-hand sides, determinism, and a 64x64 solve's settling time, energy and per-solve
cost computed by hand from the chip's constants."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cimc.ir.dialects.cim_solve import top_level
from cimc.ir.target.chip import load_chip
from cimc.runtime import SolveConfig, UnstableMatrixError, solve
from cimc.runtime.closed_loop import SaturatedOutputError, SolveError, condition_number, solve_cost
from cimc.runtime.closed_loop_refine import DIVERGENCE_STEPS, leaf_loops
from cimc.runtime.devices import device
from cimc.runtime.energy import BASELINE, FP32_BASELINE


def spd(n: int, cond: float = 10.0, seed: int = 0) -> np.ndarray:
    """A symmetric positive definite matrix with eigenvalues from 1 to ``cond``, geometrically spaced."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return q @ np.diag(np.geomspace(1.0, cond, n)) @ q.T


def rhs(n: int, k: int | None = None, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n if k is None else (n, k))


def relative(x: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(x - reference) / np.linalg.norm(reference))


def poisson(side: int) -> np.ndarray:
    """The 5-point -Laplace on a side x side grid (4 on the diagonal, -1 for each neighbour)."""
    second_difference = 2 * np.eye(side) - np.eye(side, k=1) - np.eye(side, k=-1)
    return np.kron(np.eye(side), second_difference) + np.kron(second_difference, np.eye(side))


@pytest.mark.parametrize("n", [2, 16, 64])
def test_ideal_equals_numpy(n: int) -> None:
    a, b = spd(n), rhs(n)
    x, stats = solve(a, b, ideal=True)
    assert relative(x, np.linalg.solve(a, b)) <= 1e-6
    assert stats.error <= 1e-6 and stats.converged and stats.iterations == 0 and stats.blocks == 1


@pytest.mark.parametrize("k", [1, 3])
def test_an_ideal_leaf_takes_one_analog_solve_a_right_hand_side(k: int) -> None:
    """The ideal circuit has no offsets and an unbounded swing: nothing saturates, so no input is halved and solved
    again, even where a real circuit's outputs pass the swing (here 0.8 V, 0.5 V on the chip)."""
    a = poisson(3)
    b = np.ones((9, k)) + 0.1 * rhs(9, k)
    x, stats = solve(a, b, ideal=True)
    assert relative(x, np.linalg.solve(a, b)) <= 1e-12
    assert (stats.analog_solves, stats.iterations, stats.analog_mvms) == (k, 0, 0)
    _, real = solve(a, b, max_iterations=0)
    assert real.analog_solves > k  # the real swing clips: halved inputs, solved again


def test_block_inversion_extends_the_ideal_solve_to_256() -> None:
    a, b = spd(256), rhs(256)
    x, stats = solve(a, b, ideal=True)
    assert relative(x, np.linalg.solve(a, b)) <= 1e-6
    # 256 -> two 128 blocks (A11, S), each two 64 leaves; the one-pair chip reprograms at every step
    assert stats.blocks == 4 and stats.analog_mvms > 0 and stats.programmings > stats.blocks


def test_block_inversion_converges_on_the_225_unknown_poisson_system() -> None:
    """With seed 0 this system once diverged (residual 3e16 after 50 iterations): its Schur complement was built from
    unrefined analog solves, and each zero column of A12 gave the op-amp offsets' output instead of 0, so the
    programmed S lost S's small eigenvalues. Built from refined solves it converges in a few iterations."""
    a = poisson(15)
    b = rhs(225)
    x, stats = solve(a, b)
    assert stats.blocks == 4 and stats.converged and not stats.diverged and stats.reason is None
    assert stats.first_step_error < 0.5 and stats.iterations <= 12
    assert relative(x, np.linalg.solve(a, b)) <= 1e-5


def second_difference(n: int) -> np.ndarray:
    """The 1-D -Laplace on n interior points: 2 on the diagonal, -1 off it."""
    return 2 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)


def test_integer_ratios_are_programmed_exactly() -> None:
    """1-D Poisson at 8 bits (Q = 127): the full scale rounds -1 to -63.5 -> -64 (half to even), rows summing to
    127 - 128 < 0, an indefinite matrix; 2 : -1 at 126 : -63 is exact. 2-D Poisson (4 : -1) at 124 : -31. A 4-bit
    [[3, -1]] (Q = 7): 7 : -2.33 rounds off by 0.048 (in units of max|A|), 6 : -2 is exact. A random matrix keeps
    the full scale: no level below halves its rounding error."""
    a = second_difference(64)
    assert np.linalg.eigvalsh(np.rint(a / 2 * 127))[0] < 0 < np.linalg.eigvalsh(a)[0]
    assert top_level(a, 127) == 126 and top_level(poisson(4), 127) == 124
    assert top_level(np.array([[3.0, -1.0]]), 7) == 6 and top_level(np.array([[3.0, -1.0]]), 1) == 1
    assert top_level(spd(32), 127) == 127 and top_level(spd(32), 2**23 - 1) == 2**23 - 1


@pytest.mark.parametrize(
    ("name", "a", "blocks"),
    [
        ("1-D, 64", second_difference(64), 1),
        ("1-D, 128", second_difference(128), 2),
        ("1-D, 256", second_difference(256), 4),
        ("2-D, 16 x 16", poisson(16), 4),
    ],
)
def test_poisson_systems_solve_to_the_tolerance(name: str, a: np.ndarray, blocks: int) -> None:
    """Programmed exactly (above), the Poisson matrices settle: the 1-D ones' smallest eigenvalue, 4 sin^2(pi / (2
    (n + 1))), is 1.5e-4 at 256, where the full scale's rounding made it -0.013 to -0.016. The op-amps' finite gain
    (the loop solves A + D / (k A0), D / (k A0) about 6e-4) slows refinement to about 0.8 an iteration at 256, which
    still reaches 1e-6 within the default 100 iterations."""
    b = rhs(a.shape[0])
    x, stats = solve(a, b)
    assert stats.converged and stats.residual <= 1e-6 and stats.min_eigenvalue > 0 and stats.blocks == blocks
    assert relative(x, np.linalg.solve(a, b)) <= 1e-5


def test_uncalibrated_offsets_make_the_256_unknown_poisson_system_diverge() -> None:
    """Without the zero-input calibration read, the offsets' output (near the swing in this system's leaves) stays
    in every reading and grows with every halving of the input: the first step is off by more than the solution's
    norm, and refinement diverges."""
    a, b = second_difference(256), rhs(256)
    _, stats = solve(a, b, calibrate_offsets=False)
    assert stats.diverged and stats.first_step_error > 1
    _, calibrated = solve(a, b)
    assert calibrated.converged and calibrated.first_step_error < 1


def test_a_diverging_refinement_stops_early_with_its_reason() -> None:
    """A 4-bit matrix: the analog step's error is too large for refinement to contract. It stops when the residual
    has grown DIVERGENCE_STEPS iterations in a row, returns the iterate of the smallest residual and says why."""
    a, b = spd(16), rhs(16)
    x, stats = solve(a, b, matrix_bits=4)
    assert stats.diverged and not stats.converged
    assert DIVERGENCE_STEPS <= stats.iterations < 50
    assert stats.residual == pytest.approx(np.linalg.norm(b - a @ x) / np.linalg.norm(b), rel=1e-12)
    assert np.all(np.isfinite(x)) and stats.residual < 1
    reason = stats.reason
    assert reason is not None and "\n" not in reason
    assert reason.startswith("refinement diverged: the residual grew from ")
    assert f"(the first step's: {stats.first_step_error:.3g})" in reason and "more than 4 matrix bits" in reason
    _, longer = solve(a, b, matrix_bits=4, max_iterations=stats.iterations + 20)  # the cap was not what stopped it
    assert longer.iterations == stats.iterations and longer.diverged


def test_offsets_that_saturate_the_outputs_are_refused() -> None:
    """Condition number 300 on 8 unknowns: the loop amplifies the 1 mV offsets beyond the 0.5 V swing whatever the
    input, which the solver once halved 60 times and returned as infinity and NaN."""
    a, b = spd(8, 300.0), rhs(8)
    with pytest.raises(
        SaturatedOutputError, match=r"^the op-amp offsets alone saturate the outputs: .* 8x8 block"
    ) as e:
        solve(a, b)
    assert "\n" not in str(e.value) and "beyond the +-0.5 V swing" in str(e.value)
    x, stats = solve(a, b, ideal=True)  # no offsets
    assert relative(x, np.linalg.solve(a, b)) <= 1e-9 and stats.analog_solves == 1


def test_a_zero_right_hand_side_takes_no_analog_step() -> None:
    """The digital side knows a zero vector: its solution is 0, not the offsets' output, and costs no analog solve
    beyond the leaf's offset calibration, the one zero-input read made when it is set up."""
    a = spd(16)
    b = np.column_stack([np.zeros(16), rhs(16)])
    x, stats = solve(a, b, max_iterations=0)
    _, alone = solve(a, b[:, 1], max_iterations=0)
    assert np.array_equal(x[:, 0], np.zeros(16)) and stats.analog_solves == alone.analog_solves
    zero, stats = solve(a, np.zeros(16))
    assert np.array_equal(zero, np.zeros(16)) and stats.analog_solves == 1 and stats.converged
    _, uncalibrated = solve(a, np.zeros(16), calibrate_offsets=False)
    assert uncalibrated.analog_solves == 0


def test_first_step_error_follows_the_conditioning() -> None:
    """The first-order bound ||dx|| / ||x|| <= c cond(A) (||dA|| / ||A|| + ||db|| / ||b|| + output error): the
    matrix, DAC and ADC quantization and the op-amp offset relative to the read voltage, c = 2; the error grows with
    the condition number."""
    chip = load_chip("milan-closed-loop")
    assert chip.opamp is not None
    levels = 2**7 - 1
    eps = 0.5 / levels + 0.5 / (2 ** (chip.tile.dac_bits - 1) - 1) + 1 / (2 ** (chip.tile.adc_bits - 1) - 1)
    eps += chip.opamp.offset_mv * 1e-3 / chip.opamp.v_read
    errors = []
    for cond in (2.0, 8.0, 32.0, 128.0):
        first = [
            solve(spd(16, cond, s), rhs(16, seed=s), max_iterations=0, seed=s)[1].first_step_error for s in range(3)
        ]
        assert max(first) <= 2 * cond * eps
        errors.append(float(np.mean(first)))
    assert errors[-1] > 4 * errors[0]
    assert errors == sorted(errors)


@pytest.mark.parametrize("name", ["sram", "pcm", "rram"])
def test_refinement_reaches_the_tolerance(name: str) -> None:
    a, b = spd(32, 4.0), rhs(32)
    x, stats = solve(a, b, device=name)
    assert stats.converged and stats.residual <= 1e-6 and relative(x, np.linalg.solve(a, b)) <= 1e-5
    assert stats.first_step_error > 1e-3  # the analog step alone is far from it
    assert 1 <= stats.iterations < 50 and stats.analog_solves >= stats.iterations + 1


def test_a_capped_refinement_reports_not_converged() -> None:
    _, stats = solve(spd(16), rhs(16), max_iterations=1)
    assert not stats.converged and stats.iterations == 1 and stats.residual > 1e-6 and not stats.diverged
    assert stats.reason == f"max_iterations (1) reached at a residual of {stats.residual:.3g}, above tol 1e-06"


def test_a_negative_definite_matrix_is_refused_with_the_remedies() -> None:
    a, b = -spd(16), rhs(16)
    with pytest.raises(UnstableMatrixError) as error:
        solve(a, b)
    message = str(error.value)
    assert "smallest real part" in message and "\n" not in message
    assert all(f"remedy='{r}'" in message for r in ("negate", "shift", "normal"))
    x, stats = solve(a, b, remedy="negate")
    assert stats.converged and relative(x, np.linalg.solve(a, b)) <= 1e-5 and stats.min_eigenvalue > 0


def test_negate_refuses_an_indefinite_matrix() -> None:
    q, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((8, 8)))
    a = q @ np.diag([-2.0, -1.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]) @ q.T
    with pytest.raises(UnstableMatrixError, match="negating cannot help"):
        solve(a, rhs(8), remedy="negate")
    with pytest.raises(UnstableMatrixError, match="remedy 'shift' cannot converge"):
        solve(a, rhs(8), remedy="shift")
    x, stats = solve(a, rhs(8), remedy="normal")  # A^T A is positive definite
    assert stats.converged and relative(x, np.linalg.solve(a, rhs(8))) <= 1e-5


def test_shift_solves_a_matrix_with_eigenvalues_left_of_the_axis() -> None:
    """Rotation-dominated blocks: eigenvalues -0.1 +- i w, unstable in the loop; A + s I is stable and refinement
    with A contracts by max |s / (lambda + s)| < 1."""
    blocks = np.zeros((8, 8))
    for i in range(0, 8, 2):
        blocks[i : i + 2, i : i + 2] = [[-0.1, 3.0 + i], [-(3.0 + i), -0.1]]
    q, _ = np.linalg.qr(np.random.default_rng(4).standard_normal((8, 8)))
    a, b = q @ blocks @ q.T, rhs(8)
    with pytest.raises(UnstableMatrixError):
        solve(a, b)
    x, stats = solve(a, b, remedy="shift")
    assert stats.shift > 0.1 and stats.converged and relative(x, np.linalg.solve(a, b)) <= 1e-5
    assert stats.digital_ops >= 10 * 8**3  # the eigenvalue analysis is charged


def test_several_right_hand_sides() -> None:
    a, b = spd(32), rhs(32, 3)
    x, stats = solve(a, b)
    assert x.shape == (32, 3) and relative(x, np.linalg.solve(a, b)) <= 1e-5
    single = [solve(a, b[:, j])[1] for j in range(3)]
    assert stats.baseline_total_pj < sum(s.baseline_total_pj for s in single)  # one LU, three substitutions


def test_least_squares_matches_lstsq() -> None:
    a = np.random.default_rng(5).standard_normal((40, 12))
    b = rhs(40)
    reference = np.linalg.lstsq(a, b, rcond=None)[0]
    x, stats = solve(a, b, remedy="normal")
    assert stats.converged and relative(x, reference) <= 1e-6
    assert stats.residual == pytest.approx(np.linalg.norm(b - a @ x) / np.linalg.norm(b), rel=1e-12)
    ideal, _ = solve(a, b, remedy="normal", ideal=True)
    assert relative(ideal, reference) <= 1e-6
    with pytest.raises(ValueError, match="not square: least squares .* remedy='normal'"):
        solve(a, b)
    with pytest.raises(ValueError, match="full column rank"):
        solve(np.ones((6, 3)), rhs(6), remedy="normal")


def test_the_seed_decides_the_noise() -> None:
    a, b = spd(16), rhs(16)
    config = SolveConfig(device=device("pcm"), max_iterations=0)
    x1, s1 = solve(a, b, config=config)
    x2, s2 = solve(a, b, config=config)
    x3, _ = solve(a, b, config=config, seed=1)
    assert np.array_equal(x1, x2) and s1 == s2 and not np.array_equal(x1, x3)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.eye(3), np.ones(4)), r"b must be \[3\] or \[3, k\]"),
        ((np.array([[1.0, np.nan], [0, 1]]), np.ones(2)), "finite"),
        ((np.ones(3), np.ones(3)), "non-empty 2-D"),
    ],
)
def test_bad_inputs_are_one_line_errors(args: tuple[np.ndarray, np.ndarray], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        solve(*args)


def test_a_chip_without_opamps_is_refused() -> None:
    with pytest.raises(ValueError, match="chip 'default' has no \\[opamp\\] section.*'milan-closed-loop'"):
        solve(np.eye(2), np.ones(2), chip="default")


def test_64x64_settling_time_and_energy_by_hand() -> None:
    """A = 3 I on the milan chip, ideal: 8-bit signed magnitudes (127) in 7 one-bit slices of weights 1..64 per
    array of the pair, so every row holds 2 x 64 x 127 cells' worth of g_min and the diagonal's 127 delta; the input
    conductance is 127 delta. The loop matrix is diagonal: lambda = 127 delta / D."""
    chip = load_chip("milan-closed-loop")
    op, tile, pj, clock = chip.opamp, chip.tile, chip.energy, chip.network.clock_hz
    assert op is not None
    sram = device("sram")
    n = 64
    delta = sram.g_max_us - sram.g_min_us
    row = 2 * n * 127 * sram.g_min_us + 127 * delta  # physical conductance of a row, both arrays
    d = row + 127 * delta
    lam = 127 * delta / d
    settle = math.log(2**9) / (2 * math.pi * op.gbw_hz * lam)
    b = rhs(n)
    x, stats = solve(3 * np.eye(n), b, ideal=True)
    assert np.allclose(x, b / 3, rtol=1e-12)
    assert stats.min_eigenvalue == pytest.approx(lam, rel=1e-12)
    assert stats.settling_time_s == pytest.approx(settle, rel=1e-12)
    assert (stats.analog_solves, stats.iterations, stats.digital_ops) == (1, 0, 2 * n * n)
    energy = {
        "opamps": n * op.power_uw * settle * 1e6,
        "dacs": n * pj.dac_pj,
        "adcs": n * pj.adc_pj,
        "arrays": n * row * op.v_read**2 * settle * 1e6,
        "digital": 2 * n * n * pj.digital_op_pj,
        "programming": 2 * 7 * n * n * pj.cell_program_pj,
    }
    assert stats.energy_pj == pytest.approx(energy, rel=1e-12)
    time_s = n * sram.write_pulse_s + 1 / clock + settle + n * tile.adc_cycles / clock + 2 * n * n / clock
    assert stats.time_s == pytest.approx(time_s, rel=1e-12)
    macs = n**3 / 3 + n**2  # LU: 2/3 n^3 flops, n^3 / 3 multiply-adds; substitution: 2 n^2 flops
    baseline = {
        "multiply": macs * FP32_BASELINE["multiply"].pj,
        "add": macs * FP32_BASELINE["add"].pj,
        "dram": 4 * n * n * BASELINE["dram_byte"].pj,
    }
    assert stats.baseline_pj == pytest.approx(baseline, rel=1e-12)
    assert stats.ratio == pytest.approx(sum(baseline.values()) / sum(energy.values()), rel=1e-12)
    assert (FP32_BASELINE["multiply"].pj, FP32_BASELINE["add"].pj) == (3.7, 0.9)

    # one more right-hand side, the matrix already programmed: no programming, substitution alone for the baseline
    cost = solve_cost(3 * np.eye(n), ideal=True)
    assert cost.time_s == pytest.approx(time_s - n * sram.write_pulse_s, rel=1e-12)
    assert cost.energy_pj == pytest.approx(energy | {"programming": 0.0}, rel=1e-12, abs=1e-9)
    assert (cost.analog_solves, cost.analog_mvms, cost.iterations, cost.converged) == (1, 0, 0, True)
    assert cost.baseline_pj == pytest.approx(
        {"multiply": n * n * 3.7, "add": n * n * 0.9, "dram": 4 * n * n * BASELINE["dram_byte"].pj}, rel=1e-12
    )


def test_stats_are_json_able() -> None:
    import json

    _, stats = solve(spd(8), rhs(8))
    data = json.loads(json.dumps(stats.to_dict()))
    assert data["iterations"] == stats.iterations and set(data["energy_pj"]) == set(stats.energy_pj)


def test_singular_matrices_are_refused_by_their_condition_number() -> None:
    hilbert = 1 / (np.arange(14)[:, None] + np.arange(14)[None, :] + 1)
    assert condition_number(np.zeros((3, 3))) == math.inf
    assert condition_number(np.array([[1.0, 2.0], [2.0, 4.0]])) == math.inf
    assert condition_number(np.eye(4) * 1e-300) == pytest.approx(1.0)  # scaled first: no overflow
    assert condition_number(hilbert) > 1 / np.finfo(np.float64).eps
    with pytest.raises(SolveError, match=r"^A is singular \(its condition number is inf"):
        solve(np.array([[1.0, 2.0], [2.0, 4.0]]), np.ones(2))
    with pytest.raises(SolveError, match=r"^A is singular to working precision \(its condition number is"):
        solve(hilbert, np.ones(14))


def test_progress_counts_every_leaf_loop_once() -> None:
    calls: list[tuple[int, int]] = []
    _, stats = solve(spd(150), rhs(150), progress=lambda done, total: calls.append((done, total)))
    assert leaf_loops(150, 64) == stats.blocks == 4  # 150 -> 75 + 75 -> (38 + 37) x 2
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_a_solution_near_the_float64_range_has_finite_errors() -> None:
    x, stats = solve(np.eye(2) * 1e-300, np.ones(2))  # x = 1e300: its norm alone overflows
    assert np.allclose(x, 1e300, rtol=1e-5) and stats.error is not None and stats.error < 1e-5
    assert math.isfinite(stats.first_step_error) and stats.converged
