"""Independent numpy re-implementation of ONE aihwkit 1.2.0 analog linear layer at inference.

Setting: ``InferenceRPUConfig()`` with its defaults (PCMLikeNoiseModel, SinglePairConductanceConverter(g_max=25,
g_min=0), GlobalDriftCompensation, forward IOParameters defaults, no weight scaling, digital bias), run on the CPU
(RPUCuda C++) tile. Every step cites the aihwkit 1.2.0 source it re-implements (paths relative to the sdist's
``src/``); ir/target/chips/aihwkit.toml maps each of aihwkit's parameters to cimc's.

Dependency-free apart from numpy. Nothing here imports aihwkit or cimc: it is meant as the independent reference
for the tests of cimc's ``aihwkit`` chip preset (tests/runtime/test_periphery.py).

Lifecycle of one layer (per seed), as aihwkit does it:
    tile = program(W, rng)                    # program_analog_weights(): programming noise, nu, drift baseline
    drift(tile, t_inference, rng)             # drift_analog_weights(t): drift + 1/f noise, alpha from read-out
    y = forward(tile, X, rng) + bias          # eval-mode forward: NM, DAC, MVM, out noise, ADC, BM, * alpha

The layer here is one physical tile (in_size <= 512 and out_size <= 512). Larger layers are split by aihwkit into
``ceil(n / 512)`` near-equal pieces per dimension (TileModuleArray.get_split_sizes), each piece its own tile with
its own programming scale, drift compensation alpha and noise management; the piece outputs are summed in digital.
``split_sizes`` gives those sizes; ``layer_forward`` applies the split.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# --- forward IOParameters defaults (aihwkit/simulator/parameters/io.py) -------------------------------------
INP_BOUND = 1.0  # io.py:46
INP_RES = 1.0 / (2**7 - 2)  # io.py:56, "resolution" relative to the range
OUT_BOUND = 12.0  # io.py:74
OUT_NOISE = 0.06  # io.py:77
OUT_RES = 1.0 / (2**9 - 2)  # io.py:105
MAX_BM_FACTOR = 1000  # io.py:222
MAX_BM_RES = 0.25  # io.py:228
# rpucuda/rpu_pulsed_meta_parameter.cpp:31-37,56-57: the C++ step is res * (2 * bound)
INP_STEP = INP_RES * 2.0 * INP_BOUND  # = 1/63: inputs on k/63, k = -63..63
OUT_STEP = OUT_RES * 2.0 * OUT_BOUND  # = 24/510 = 0.0470588: outputs on k*24/510, |k| <= 255
MAX_TILE = 512  # MappingParameter.max_input_size / max_output_size (simulator/parameters/mapping.py)

# --- PCMLikeNoiseModel defaults (aihwkit/inference/noise/pcm.py) ---------------------------------------------
G_MAX = 25.0  # SinglePairConductanceConverter g_max (inference/converter/conductance.py:37)
G_MIN = 0.0  # conductance.py:38
PROG_COEFF = (0.26348, 1.9650, -1.1731)  # pcm.py:89, in uS for g_max reference 25 uS (pcm.py:90)
PROG_COEFF_G_MAX_REF = 25.0
T_READ = 250.0e-9  # pcm.py:69
T_0 = 20.0  # pcm.py:70
ZERO_CLIP = 1e-7  # pcm.py:24 and conductance.py:19
DRIFT_READOUT_MIN = 1e-4  # GlobalDriftCompensation.readout clamp (inference/compensation/drift.py:30)


def _f32(a: np.ndarray | float) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


# ------------------------------------------------------------------------------------------------------------
# Conductance conversion and the PCM statistical model
# ------------------------------------------------------------------------------------------------------------
def to_conductances(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.float32]:
    """SinglePairConductanceConverter.convert_to_conductances (conductance.py:54-65).

    scale = (g_max - g_min) / max(max|W|, 1e-7); g+ = clip(W*scale, 0, g_max) + g_min, g- likewise for -W.
    """
    w = _f32(w)
    scale = np.float32(G_MAX - G_MIN) / np.float32(max(float(np.abs(w).max()), ZERO_CLIP))
    sw = w * scale
    return np.clip(sw, 0.0, G_MAX) + G_MIN, np.clip(-sw, 0.0, G_MAX) + G_MIN, scale


def from_conductances(gp: np.ndarray, gm: np.ndarray, scale: np.float32) -> np.ndarray:
    """SinglePairConductanceConverter.convert_back_to_weights (conductance.py:68-78)."""
    return _f32(((gp - G_MIN) - (gm - G_MIN)) / scale)


def programming_sigma(g_target: np.ndarray) -> np.ndarray:
    """Std of the programming noise in uS (pcm.py:108-114): (c0 + c1 g/gmax + c2 (g/gmax)^2) * gmax/25."""
    gr = g_target / G_MAX
    return (PROG_COEFF[0] + PROG_COEFF[1] * gr + PROG_COEFF[2] * gr * gr) * (G_MAX / PROG_COEFF_G_MAX_REF)


def drift_nu_mean_std(g_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread of the drift exponent before |.| (pcm.py:123-127)."""
    gr = np.clip(np.abs(g_target / G_MAX), ZERO_CLIP, None)
    mu = np.clip(-0.0155 * np.log(gr) + 0.0244, 0.049, 0.1)
    sig = np.clip(-0.0125 * np.log(gr) - 0.0059, 0.008, 0.045)
    return mu, sig


def read_noise_q(g_prog: np.ndarray) -> np.ndarray:
    """Relative 1/f noise amplitude q_s (pcm.py:148-150): min(0.2, 0.0088 / max(1e-3, (|g|/gmax)^0.65))."""
    return np.minimum(0.0088 / np.maximum((np.abs(g_prog) / G_MAX) ** 0.65, 1e-3), 0.2)


def read_noise_time_factor(t_inference: float) -> float:
    """sqrt(ln((t + t_read) / (2 t_read))) with t = t_inference + t_0 (pcm.py:138,151)."""
    t = t_inference + T_0
    return float(np.sqrt(np.log((t + T_READ) / (2 * T_READ))))


# ------------------------------------------------------------------------------------------------------------
# Analog MVM of the C++ tile (rpucuda/rpu_forward_backward_pass.cpp)
# ------------------------------------------------------------------------------------------------------------
def analog_mvm(w: np.ndarray, x: np.ndarray, rng: np.random.Generator, out_noise: float = OUT_NOISE) -> np.ndarray:
    """ForwardBackwardPassIOManaged::forwardVector for each row of ``x`` ([N, in]) with weights ``w`` ([out, in]).

    Per input vector (= per row, per tile):
      nm = max_j |x_j| (computeNoiseManagement AbsMax, :125-129); nm == 0 -> output exactly 0 (:924-933).
      BM loop (:943-983), reduction r = 1, 2, 4, ...:
        v_j  = clip(rint(x_j / (nm r) / INP_STEP) * INP_STEP, -1, 1)        prepareInput (:572-604)
        y_i  = sum_j w_ij v_j                                              gemv (:793-797)
        y_i += out_noise * N(0, 1)                                         finalizeOutput (:695-698)
        y_i  = rint(y_i / OUT_STEP) * OUT_STEP                             (:700)
        y_i  > OUT_BOUND -> OUT_BOUND, fail;  y_i < -OUT_BOUND -> -OUT_BOUND, fail   (:702-709)
        stop when no output failed, or r > MAX_BM_FACTOR, or r > MAX_BM_RES / INP_STEP (= 15.75)  (:975-979)
      so at most 5 passes (r = 1, 2, 4, 8, 16); every pass draws new output noise.
      result = y * nm * r  (:985-987)
    """
    w = _f32(w)
    x = _f32(np.atleast_2d(x))
    n = x.shape[0]
    y_out = np.zeros((n, w.shape[0]), dtype=np.float32)
    nm = np.abs(x).max(axis=1)
    todo = np.nonzero(nm > 0)[0]
    red = 1.0
    while todo.size:
        scale = (np.float32(1.0) / nm[todo]) / np.float32(red)  # scale /= nm; scale /= reduction (:961-968)
        v = np.rint((x[todo] * scale[:, None]) / np.float32(INP_STEP)) * np.float32(INP_STEP)
        v = np.clip(v, -INP_BOUND, INP_BOUND)
        y = v @ w.T
        if out_noise > 0:
            y = y + np.float32(out_noise) * rng.standard_normal(y.shape, dtype=np.float32)
        y = np.rint(y / np.float32(OUT_STEP)) * np.float32(OUT_STEP)
        failed = (y > OUT_BOUND).any(axis=1) | (y < -OUT_BOUND).any(axis=1)
        y = np.clip(y, -OUT_BOUND, OUT_BOUND)
        give_up = (int(red) > MAX_BM_FACTOR) or (red > MAX_BM_RES / INP_STEP)
        done = ~failed | give_up
        y_out[todo[done]] = y[done] / scale[done][:, None]  # scal(out_scale / scale) (:985-987)
        todo = todo[~done]
        red *= 2.0
    return y_out


# ------------------------------------------------------------------------------------------------------------
# One tile: program, drift, forward
# ------------------------------------------------------------------------------------------------------------
@dataclass
class Tile:
    """State of one InferenceTile (simulator/tiles/inference.py) after program_weights()."""

    w_ref: np.ndarray  # reference_combined_weights: the weights as converted (no weight scaling by default)
    w_prog: np.ndarray  # programmed_weights
    nu_pos: np.ndarray  # drift_noise_parameters[0]: nu of the g+ slice (drawn from the target g+)
    nu_neg: np.ndarray  # drift_noise_parameters[1]
    baseline: float  # drift_baseline: readout of the programmed tile
    w_now: np.ndarray = field(default=None)  # weights the tile reads with now
    alpha: float = 1.0  # drift compensation factor applied to every eval output


def readout(w: np.ndarray, rng: np.random.Generator, out_noise: float = OUT_NOISE) -> float:
    """GlobalDriftCompensation: forward of eye(in_size) through the NOISY tile, mean |y| over all in*out values,
    clamped at 1e-4 (compensation/drift.py:28-38, tiles/inference.py:105-159 with exact_reference=False)."""
    y = analog_mvm(w, np.eye(w.shape[1], dtype=np.float32), rng, out_noise)
    return max(float(np.abs(y).mean()), DRIFT_READOUT_MIN)


def program(w: np.ndarray, rng: np.random.Generator, out_noise: float = OUT_NOISE) -> Tile:
    """InferenceTile.program_weights (tiles/inference.py:162-216) with BaseNoiseModel.apply_programming_noise
    (noise/base.py:75-98) and PCMLikeNoiseModel (pcm.py:100-130).

    Both devices of the pair are programmed: g_prog = max(0, g_target + sigma(g_target) N(0,1)), so the 'off'
    device (g_target = 0) ends at max(0, 0.26348 uS * N). nu = |mu(g_target) + sig(g_target) N| per device.
    Then the drift baseline is read out through the noisy forward.
    """
    w = _f32(w)
    gp, gm, scale = to_conductances(w)
    prog = []
    for g in (gp, gm):
        prog.append(np.maximum(g + programming_sigma(g) * rng.standard_normal(g.shape), 0.0))
    nus = []
    for g in (gp, gm):
        mu, sig = drift_nu_mean_std(g)
        nus.append(np.clip(np.abs(mu + sig * rng.standard_normal(g.shape)), 0.0, None))
    w_prog = from_conductances(prog[0], prog[1], scale)
    baseline = readout(w_prog, rng, out_noise)
    return Tile(w_ref=w, w_prog=w_prog, nu_pos=_f32(nus[0]), nu_neg=_f32(nus[1]), baseline=baseline, w_now=w_prog)


def drift(tile: Tile, t_inference: float, rng: np.random.Generator, out_noise: float = OUT_NOISE) -> None:
    """InferenceTile.drift_weights (tiles/inference.py:219-266) with BaseNoiseModel.apply_drift_noise
    (noise/base.py:101-127) and PCMLikeNoiseModel.apply_drift_noise_to_conductance (pcm.py:133-158).

    Always starts from the programmed weights (not cumulative). The programmed weights are converted to
    conductances AGAIN (new scale g_max / max|W_prog|, one device of each pair exactly 0), then with t = t_inf + t0:
      g_drift = g (t / t0)^(-nu)                        if t > t0
      g_final = max(0, g_drift + |g_drift| q_s(g) sqrt(ln((t + t_read) / (2 t_read))) N(0,1))
    and back to weights with the new scale. alpha = baseline / readout(drifted tile).
    """
    gp, gm, scale = to_conductances(tile.w_prog)
    t = t_inference + T_0
    out = []
    for g, nu in ((gp, tile.nu_pos), (gm, tile.nu_neg)):
        g_drift = g * (t / T_0) ** (-nu) if t > T_0 else g
        if t > 0:
            sig = read_noise_q(g) * read_noise_time_factor(t_inference)
            g_final = g_drift + np.abs(g_drift) * sig * rng.standard_normal(g.shape)
        else:
            g_final = g
        out.append(np.maximum(g_final, 0.0))
    tile.w_now = from_conductances(out[0], out[1], scale)
    tile.alpha = tile.baseline / readout(tile.w_now, rng, out_noise)


def forward(tile: Tile, x: np.ndarray, rng: np.random.Generator, out_noise: float = OUT_NOISE) -> np.ndarray:
    """Eval-mode tile output: analog_mvm * alpha (InferenceTileWithPeriphery.post_forward, inference.py:268-282).
    The digital bias is added after this by the caller (InferenceTile.forward, inference.py:417-433)."""
    return analog_mvm(tile.w_now, x, rng, out_noise) * np.float32(tile.alpha)


# ------------------------------------------------------------------------------------------------------------
# Layer with tile splitting, and the statistics helper
# ------------------------------------------------------------------------------------------------------------
def split_sizes(size: int, max_size: int = MAX_TILE) -> list[int]:
    """TileModuleArray.get_split_sizes (simulator/tiles/array.py:82-97)."""
    if max_size <= 0:
        return [size]
    n = (size + max_size - 1) // max_size
    base, extra = divmod(size, n)
    return [base + (i < extra) for i in range(n)]


def layer_forward_samples(
    w: np.ndarray,
    bias: np.ndarray | None,
    x: np.ndarray,
    t_inference: float,
    rng: np.random.Generator,
    out_noise: float = OUT_NOISE,
) -> np.ndarray:
    """One seed: program every tile of the layer, drift it to ``t_inference``, and run ``x`` ([N, in]).

    Returns [N, out]. The bias is digital (MappingParameter.digital_bias = True) and is not compensated.
    """
    w = _f32(w)
    x = _f32(np.atleast_2d(x))
    out_size, in_size = w.shape
    y = np.zeros((x.shape[0], out_size), dtype=np.float32)
    i0 = 0
    for isz in split_sizes(in_size):
        o0 = 0
        for osz in split_sizes(out_size):
            tile = program(w[o0 : o0 + osz, i0 : i0 + isz], rng, out_noise)
            drift(tile, t_inference, rng, out_noise)
            y[:, o0 : o0 + osz] += forward(tile, x[:, i0 : i0 + isz], rng, out_noise)
            o0 += osz
        i0 += isz
    if bias is not None:
        y = y + _f32(bias)[None, :]
    return y


def output_stats(
    w: np.ndarray,
    x: np.ndarray,
    t_inference: float,
    n_seeds: int = 30,
    bias: np.ndarray | None = None,
    seed: int = 0,
    out_noise: float = OUT_NOISE,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (ddof=1) over ``n_seeds`` independent programmings of each output, for given W, x, t.

    Each seed programs the layer anew, drifts it to ``t_inference`` and runs ``x`` once.
    """
    rng = np.random.default_rng(seed)
    samples = np.stack([layer_forward_samples(w, bias, x, t_inference, rng, out_noise) for _ in range(n_seeds)])
    return samples.mean(axis=0), samples.std(axis=0, ddof=1)
