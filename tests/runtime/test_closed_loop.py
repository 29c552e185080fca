"""The closed-loop solver: ideal circuits equal numpy, block inversion extends them to 256x256, one analog step's
error follows the conditioning, refinement reaches the tolerance, unstable loops are refused with their remedies,
least squares and several right-hand sides, determinism, and a 64x64 solve's settling time and energy computed by
hand from the chip's constants."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cimc.compiler.chip import load_chip
from cimc.runtime import SolveConfig, UnstableMatrixError, solve
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


@pytest.mark.parametrize("n", [2, 16, 64])
def test_ideal_equals_numpy(n: int) -> None:
    a, b = spd(n), rhs(n)
    x, stats = solve(a, b, ideal=True)
    assert relative(x, np.linalg.solve(a, b)) <= 1e-6
    assert stats.error <= 1e-6 and stats.converged and stats.iterations == 0 and stats.blocks == 1


def test_block_inversion_extends_the_ideal_solve_to_256() -> None:
    a, b = spd(256), rhs(256)
    x, stats = solve(a, b, ideal=True)
    assert relative(x, np.linalg.solve(a, b)) <= 1e-6
    # 256 -> two 128 blocks (A11, S), each two 64 leaves; the one-pair chip reprograms at every step
    assert stats.blocks == 4 and stats.analog_mvms > 0 and stats.programmings > stats.blocks


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
    assert not stats.converged and stats.iterations == 1 and stats.residual > 1e-6


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
    macs = 2 / 3 * n**3 + 2 * n**2
    baseline = {
        "multiply": macs * FP32_BASELINE["multiply"].pj,
        "add": macs * FP32_BASELINE["add"].pj,
        "dram": 4 * n * n * BASELINE["dram_byte"].pj,
    }
    assert stats.baseline_pj == pytest.approx(baseline, rel=1e-12)
    assert stats.ratio == pytest.approx(sum(baseline.values()) / sum(energy.values()), rel=1e-12)
    assert (FP32_BASELINE["multiply"].pj, FP32_BASELINE["add"].pj) == (3.7, 0.9)


def test_stats_are_json_able() -> None:
    import json

    _, stats = solve(spd(8), rhs(8))
    data = json.loads(json.dumps(stats.to_dict()))
    assert data["iterations"] == stats.iterations and set(data["energy_pj"]) == set(stats.energy_pj)
