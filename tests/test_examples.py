"""The worked examples of examples/ run, on small problems, and their figures hold: the closed-loop solver agrees
with numpy after refinement, the Poisson discretization converges as h^2, the Kalman filter beats the raw
measurements exactly as numpy's does, the arm reaches its target."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(EXAMPLES))  # the examples import each other by bare name, as they do when run as scripts
poisson = importlib.import_module("poisson")
kalman = importlib.import_module("kalman")
inverse_kinematics = importlib.import_module("inverse_kinematics")


#: The examples run with a refinement target well below the 1e-6 asked of the error against numpy: the target
#: bounds the residual, and the error is up to the system's condition number times it.
TOL = ["--tol", "1e-9"]


def check_solve_figures(figures: dict[str, float]) -> None:
    """What every example's solver figures must satisfy: converged, numpy's solution to 1e-6, an energy equal to the
    sum of its breakdown, and the ratio the baseline over it."""
    assert figures["converged"]
    assert figures["residual"] <= 1e-9
    assert figures["error"] <= 1e-6
    assert figures["analog_solves"] >= 1
    assert figures["time_s"] > 0
    assert figures["energy_breakdown_pj"] == pytest.approx(figures["energy_pj"], rel=1e-9)
    assert figures["ratio"] == pytest.approx(figures["baseline_pj"] / figures["energy_pj"], rel=1e-9)


def test_poisson_discretization_error_is_second_order_and_far_above_the_solvers() -> None:
    coarse = poisson.main(["--grid", "7", *TOL])  # h = 1/8: 49 unknowns, one array
    fine = poisson.main(["--grid", "15", "--ideal", *TOL])  # h = 1/16: 225 unknowns, block inversion
    for figures in (coarse, fine):
        check_solve_figures(figures)
        assert figures["discretization_error"] == pytest.approx(figures["numpy_discretization_error"], rel=1e-4)
    assert fine["blocks"] > 1
    assert coarse["discretization_error"] / fine["discretization_error"] == pytest.approx(4, rel=0.05)
    assert coarse["error"] < coarse["discretization_error"] / 1000


def test_poisson_256_unknowns_by_block_inversion_with_device_effects() -> None:
    figures = poisson.main(["--grid", "16", *TOL])
    check_solve_figures(figures)
    assert figures["blocks"] == 4


def test_poisson_225_unknowns_with_device_effects_converge() -> None:
    """The grid whose block inversion once diverged with seed 0 (residual 3e16 after 50 iterations)."""
    figures = poisson.main(["--grid", "15", "--seed", "0", *TOL])
    check_solve_figures(figures)
    assert figures["blocks"] == 4 and figures["iterations"] <= 15


def test_poisson_ideal_circuit_needs_no_refinement() -> None:
    figures = poisson.main(["--grid", "4", "--ideal", *TOL])
    assert figures["first_step_error"] <= 1e-12
    assert figures["iterations"] == 0
    assert figures["analog_solves"] == 1  # one leaf, one right-hand side: nothing saturates in the ideal circuit


def test_kalman_filter_beats_the_measurements_as_numpys_does() -> None:
    figures = kalman.main(["--steps", "20", *TOL])  # 16 targets: a 32 x 32 system a step
    check_solve_figures(figures)
    assert figures["analog_solves"] >= 20  # at least one a step
    assert figures["rms_filtered_m"] < 0.8 * figures["rms_measured_m"]
    assert figures["rms_filtered_m"] == pytest.approx(figures["rms_numpy_m"], rel=1e-6)
    assert figures["track_difference"] <= 1e-6


def test_arm_reaches_the_target_as_with_numpy() -> None:
    figures = inverse_kinematics.main(TOL)  # 32 joints
    check_solve_figures(figures)
    assert figures["distance_m"] < inverse_kinematics.REACHED_M
    assert figures["arm_iterations"] == figures["numpy_arm_iterations"]
    assert figures["distance_m"] == pytest.approx(figures["numpy_distance_m"], rel=1e-3)


@pytest.mark.parametrize("damping", ["0.1", "0.2"])
def test_an_ill_conditioned_arm_is_refused_in_one_line(damping: str) -> None:
    """Small damping: the loop amplifies the op-amp offsets beyond the swing; the script stops with the chip's
    refusal, never with NaN."""
    with pytest.raises(
        SystemExit, match=r"^the chip refuses arm iteration \d+'s system: the op-amp offsets alone"
    ) as e:
        inverse_kinematics.main(["--damping", damping])
    assert "\n" not in str(e.value.code)


def test_a_loose_tolerance_still_reaches_the_target() -> None:
    figures = inverse_kinematics.main(["--joints", "8", "--tol", "1e-2"])
    assert figures["distance_m"] < inverse_kinematics.REACHED_M


def test_poisson_runs_as_a_script() -> None:
    done = subprocess.run(
        [sys.executable, "examples/poisson.py"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "error vs numpy" in done.stdout
