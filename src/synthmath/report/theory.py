"""Figures of the theory toys: the random-features phase space (log10 test loss over
(N/D, P/D) with the lines N = D and N = P), the p-spin Langevin curves, direct feedback
alignment's align-then-memorise curves and its degeneracy breaking (random restarts), and the
ConViT / T-CNN digits studies (:mod:`synthmath.report.convit`, with their markdown report)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synthmath.report.convit import CONVIT_OUTPUTS, write_convit
from synthmath.report.figures import save_figure
from synthmath.theory.pspin import Trajectory, beta_sweep, first_step_below, make_pspin
from synthmath.theory.random_features import Activation, activation, phase_space, simulate
from synthmath.train.dfa_toy import Restart, ToyCurves, align_then_memorise, degeneracy_breaking

# The paper's Fig. 3 (d'Ascoli, Sagun, Biroli 2020): delta = 0, 0.5, 5 titled SNR inf, 2, 0.2
DELTAS = (0.0, 0.5, 5.0)
LAMBDAS = (1e-1, 1e-3)
RATIOS = np.logspace(-1.5, 2.5, 20)
#: what :func:`write_theory_figures` writes (the workflow's ``theory`` rule lists them): the
#: figures, then the ConViT / T-CNN report ``convit.md`` (results/README.md includes it)
FIGURE_NAMES = (
    "rf_phase_space_tanh.png",
    "rf_phase_space_relu.png",
    "pspin_energy.png",
    "pspin_spike.png",
    "dfa_memorisation.png",
    "dfa_degeneracy.png",
    *CONVIT_OUTPUTS,
)
REPORT_NAME = CONVIT_OUTPUTS[-1]
#: the figures alone (results/README.md links them with their captions)
FIGURE_PNGS = tuple(name for name in FIGURE_NAMES if name.endswith(".png"))

#: per figure: (what it shows, what the paper predicts), for results/README.md
CAPTIONS = {
    "rf_phase_space_tanh.png": (
        "Random-features ridge regression, tanh features: analytic log10 test loss over "
        "(N/D, P/D) for lambda 0.1, 0.001 and SNR inf, 2, 0.2, with the lines N = D and N = P; "
        "circles: simulated normal-equations solutions at D = 100 on the same colour scale.",
        "d'Ascoli, Sagun, Biroli 2020 (Triple descent): a nonlinear peak at N = P that survives "
        "without noise and is suppressed by regularisation, and a linear peak at N = D from "
        "overfitting label noise, salient only at high noise (SNR 0.2); the circles should "
        "match the colours around them.",
    ),
    "rf_phase_space_relu.png": (
        "The same phase space with relu features.",
        "The same two peaks; the activation's linear and nonlinear parts (mu1, mu*) set their "
        "relative sizes.",
    ),
    "pspin_energy.png": (
        "Spherical 3-spin Langevin dynamics without signal, eta = eta0 t^-beta: energy per "
        "spin against the step (log x) per beta, and the first step reaching energy -1 "
        "against beta.",
        "d'Ascoli, Refinetti, Biroli 2022: in a rough landscape without signal, speeding up "
        "without getting stuck in saddles needs beta < 1 (beta = 1, generally optimal in "
        "convex problems, decays too fast here).",
    ),
    "pspin_spike.png": (
        "The same with a planted spike: |overlap with the spike| against the step per beta, "
        "and the first step reaching overlap 0.9 against beta.",
        "With a signal: an exploration phase, then convergence once the signal is detected; "
        "keep a large rate while exploring, then decay with beta = 1.",
    ),
    "dfa_memorisation.png": (
        "Direct feedback alignment against backprop on the memorisation task (9-64-64-2 tanh "
        "net, 1000 random targets): training loss, and the DFA run's gradient and weight "
        "alignment per layer, against the epoch (log x).",
        "Refinetti, d'Ascoli, Ohana, Goldt 2021: align, then memorise: the alignment rises "
        "while the loss is still on its plateau, then the loss falls.",
    ),
    "dfa_degeneracy.png": (
        "Degeneracy breaking: final weight alignment cos(W_2, B) and gradient alignment "
        "against the final training loss, one point per random restart of a 10-32-2 student "
        "on a random teacher, DFA and backprop (one feedback matrix B for all).",
        "Refinetti et al. 2021: among the many low-loss solutions DFA converges to ones "
        "maximising the alignment (high, small spread over restarts); backprop's solutions "
        "are uncorrelated with B (alignment about 0).",
    ),
    "convit_digits.png": (
        "Sample efficiency on scikit-learn's 8x8 digits: test accuracy against the fraction of "
        "the training pool, a tiny ViT (2x2 patches) and the same network with gated positional "
        "self-attention (GPSA, convolution-like at initialisation) in its first layer; mean "
        "over seeds, range shaded.",
        "d'Ascoli et al. 2021 (ConViT): the soft convolutional inductive bias helps most when "
        "data are scarce; the gap narrows as the training set grows (ImageNet figures are out "
        "of scope on a CPU: see convit.md).",
    ),
    "tcnn_digits.png": (
        "T-CNN: a small CNN whose second convolution is converted into a GPSA layer that "
        "computes the same function (identical outputs at conversion), then fine-tuned; test "
        "accuracy against the fine-tuning step, beside the CNN fine-tuned alone.",
        "d'Ascoli et al. 2022 (Transformed CNNs): the converted hybrid starts where the CNN is "
        "and fine-tuning it can improve on the CNN; at this scale neither gains.",
    ),
}

DEGENERACY_N = 256  # teacher-student points of the degeneracy-breaking study

Overlay = Mapping[tuple[float, float], Sequence[tuple[float, float, float]]]


def _snr(delta: float) -> str:
    return "inf" if delta == 0 else f"{1 / delta:g}"


def phase_space_figure(
    act: Activation,
    lambdas: Sequence[float] = LAMBDAS,
    deltas: Sequence[float] = DELTAS,
    ratios: np.ndarray = RATIOS,
    numerical: Overlay | None = None,
):
    """One heatmap per (lambda, delta) of the analytic log10 test loss, rows lambda, columns
    delta; dashed lines N = D and N = P. ``numerical[(lam, delta)]`` lists simulated points
    (N/D, P/D, test loss), drawn as circles coloured on the same scale. The caller closes it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grids = {
        (lam, delta): np.log10(phase_space(ratios, lam, delta, act)[2])
        for lam in lambdas
        for delta in deltas
    }
    vmin = min(float(np.nanmin(g)) for g in grids.values())
    vmax = max(float(np.nanmax(g)) for g in grids.values())
    fig, axes = plt.subplots(
        len(lambdas),
        len(deltas),
        figsize=(4 * len(deltas) + 1, 3.6 * len(lambdas)),
        squeeze=False,
        layout="constrained",
    )
    edges = np.log10(ratios)
    step = edges[1] - edges[0] if len(edges) > 1 else 1.0
    extent = (edges[0] - step / 2, edges[-1] + step / 2) * 2
    for i, lam in enumerate(lambdas):
        for j, delta in enumerate(deltas):
            ax = axes[i][j]
            im = ax.imshow(
                grids[lam, delta],
                origin="lower",
                extent=extent,
                vmin=vmin,
                vmax=vmax,
                cmap="magma",
                aspect="auto",
            )
            ax.axvline(0.0, color="white", ls="--", lw=1, label="N = D")
            ax.plot(extent[:2], extent[:2], color="cyan", ls=":", lw=1.2, label="N = P")
            for n_ratio, p_ratio, loss in (numerical or {}).get((lam, delta), ()):
                color = im.cmap(im.norm(np.log10(loss)))
                ax.scatter(np.log10(n_ratio), np.log10(p_ratio), c=[color], edgecolors="white")
            ax.set_xlim(extent[:2])
            ax.set_ylim(extent[2:])
            ax.set_title(f"{act.name}, SNR {_snr(delta)}, lambda {lam:g}", fontsize=10)
            ax.set_xlabel("log10 N/D")
            ax.set_ylabel("log10 P/D")
    axes[0][0].legend(fontsize="small", loc="lower left")
    fig.colorbar(im, ax=axes, label="log10 test loss", shrink=0.8)
    return fig


def plot_phase_space(path: str | os.PathLike, act: Activation, **kwargs) -> None:
    """Write :func:`phase_space_figure` as an image (format from the suffix)."""
    import matplotlib.pyplot as plt

    fig = phase_space_figure(act, **kwargs)
    save_figure(fig, path)
    plt.close(fig)


def pspin_figure(
    sweep: Mapping[float, Trajectory], threshold: float, of: str = "energy", title: str = ""
):
    """Left: energy per spin (``of="overlap"``: |overlap|) against the step, log x, one curve
    per beta; right: the first step reaching ``threshold`` against beta (missing where never
    reached). The caller closes it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for beta, traj in sorted(sweep.items()):
        values = traj.energy if of == "energy" else np.abs(traj.overlap)
        left.plot(traj.steps, values, label=f"beta {beta:g}")
    left.axhline(threshold, color="grey", ls=":", lw=1, label="threshold")
    left.set_xscale("log")
    left.set_xlabel("step t (eta = eta0 t^-beta)")
    left.set_ylabel("energy per spin" if of == "energy" else "|overlap with the spike|")
    left.legend(fontsize="small")
    left.grid(alpha=0.3)
    betas = sorted(sweep)
    hits = [first_step_below(sweep[b], threshold, of=of) for b in betas]
    right.plot(betas, [h if np.isfinite(h) else np.nan for h in hits], marker="o")
    right.set_yscale("log")
    right.set_xlabel("beta")
    right.set_ylabel(f"first step reaching {threshold:g}")
    right.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def plot_pspin(path: str | os.PathLike, sweep: Mapping[float, Trajectory], **kwargs) -> None:
    """Write :func:`pspin_figure` as an image (format from the suffix)."""
    import matplotlib.pyplot as plt

    fig = pspin_figure(sweep, **kwargs)
    save_figure(fig, path)
    plt.close(fig)


def dfa_figure(curves: Mapping[str, ToyCurves], title: str = ""):
    """Left: training loss against the epoch (log x) for each rule; middle: the gradient
    alignment of each hidden layer (and all together) of the DFA run, cosine with the
    backprop gradient; right: its weight alignment. The caller closes it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, mid, right) = plt.subplots(1, 3, figsize=(14, 4), layout="constrained")
    for rule, c in curves.items():
        left.plot(np.maximum(c.epochs, 0.5), c.loss, marker=".", label=rule)
    dfa = curves["dfa"]
    epochs = np.maximum(dfa.epochs, 0.5)  # epoch 0 (before training) shown at 0.5
    for name, values in dfa.grad_alignment.items():
        mid.plot(epochs, values, marker=".", label=name)
    for name, values in dfa.weight_alignment.items():
        right.plot(epochs, values, marker=".", label=name)
    for ax, label in (
        (left, "training loss (mean 0.5 |y_hat - y|^2)"),
        (mid, "gradient alignment (cos DFA signal, BP gradient)"),
        (right, "weight alignment (cos W_l, B_l^T B_(l-1))"),
    ):
        ax.set_xscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def plot_dfa(path: str | os.PathLike, curves: Mapping[str, ToyCurves], **kwargs) -> None:
    """Write :func:`dfa_figure` as an image (format from the suffix)."""
    import matplotlib.pyplot as plt

    fig = dfa_figure(curves, **kwargs)
    save_figure(fig, path)
    plt.close(fig)


def degeneracy_figure(restarts: Sequence[Restart], title: str = ""):
    """Final alignment against final training loss (log x), one point per restart, DFA and
    backprop in two colours: left the weight alignment cos(W_2, B), right the gradient
    alignment. The caller closes it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True, layout="constrained")
    for ax, key, label in (
        (axes[0], "weight_alignment", "final weight alignment cos(W_2, B)"),
        (axes[1], "grad_alignment", "final gradient alignment (cos DFA signal, BP gradient)"),
    ):
        for rule, marker in (("dfa", "o"), ("bp", "s")):
            runs = [r for r in restarts if r.rule == rule]
            ax.scatter(
                [r.loss for r in runs],
                [getattr(r, key) for r in runs],
                marker=marker,
                label=f"{rule} ({len(runs)} restarts)",
            )
        ax.axhline(0.0, color="grey", lw=1, ls=":")
        ax.set_xscale("log")
        ax.set_xlabel("final training loss (mean 0.5 |y_hat - y|^2)")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("alignment (cosine)")
    axes[0].set_ylim(-1.05, 1.05)
    axes[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def numerical_overlay(
    act: Activation, d: int, seed: int = 0, ratios: Sequence[float] = (0.1, 0.3, 1.0, 3.0, 10.0)
) -> dict[tuple[float, float], list[tuple[float, float, float]]]:
    """Simulated test losses (normal equations, input dimension ``d``) on ``ratios`` x
    ``ratios`` for every (lambda, delta) of the phase-space figure."""
    rng = np.random.default_rng(seed)
    out: dict[tuple[float, float], list[tuple[float, float, float]]] = {}
    for lam in LAMBDAS:
        for delta in DELTAS:
            points = out.setdefault((lam, delta), [])
            for n_ratio in ratios:
                for p_ratio in ratios:
                    n, p = max(round(n_ratio * d), 1), max(round(p_ratio * d), 1)
                    loss, _ = simulate(n, p, d, lam, delta, act, rng)
                    points.append((n / d, p / d, loss))
    return out


def write_theory_figures(
    out_dir: str | os.PathLike,
    d: int = 100,
    pspin_n: int = 150,
    steps: int = 3000,
    grid: int = len(RATIOS),
    dfa_epochs: int = 400,
    dfa_restarts: int = 8,
    convit: Mapping[str, Any] | None = None,
) -> list[Path]:
    """The theory toys' figures: the random-features phase space (tanh, relu; analytic with
    numerical points at input dimension ``d``) and the p-spin schedules at size ``pspin_n``
    over ``steps`` steps; ``grid`` points per phase-space axis (no signal: energy; a planted matrix spike, order 2, in the 3-spin
    noise: overlap, which a random start detects at this size, unlike a tensor spike), DFA
    against backprop on the memorisation task over ``dfa_epochs`` epochs, degeneracy
    breaking: ``dfa_restarts`` restarts of each rule on a random teacher, ``dfa_epochs``
    epochs each; the ConViT / T-CNN digits studies with the settings ``convit``
    (``theory.convit``; None: the defaults)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("tanh", "relu"):
        act = activation(name)
        path = out / f"rf_phase_space_{name}.png"
        ratios = np.logspace(-1.5, 2.5, grid)
        plot_phase_space(path, act, ratios=ratios, numerical=numerical_overlay(act, d))
        written.append(path)
    betas = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
    title = f"spherical 3-spin, N = {pspin_n}, T = 0.05, eta = 0.2 t^-beta"
    for name, snr, of, threshold in (
        ("energy", 0.0, "energy", -1.0),
        ("spike", 1.5, "overlap", 0.9),
    ):
        model = make_pspin(pspin_n, np.random.default_rng(0), snr=snr, spike_order=2)
        sweep = beta_sweep(model, betas, steps, seed=1, eta0=0.2, temperature=0.05)
        path = out / f"pspin_{name}.png"
        suffix = f", matrix spike snr {snr:g}" if snr else ""
        plot_pspin(path, sweep, threshold=threshold, of=of, title=title + suffix)
        written.append(path)
    path = out / "dfa_memorisation.png"
    title = (
        "Align, then memorise: 9-64-64-2 tanh net, 1000 random Gaussian targets, "
        "SGD lr 1e-3, batch 32"
    )
    plot_dfa(path, align_then_memorise(dfa_epochs), title=title)
    written.append(path)
    path = out / "dfa_degeneracy.png"
    restarts = degeneracy_breaking(dfa_restarts, dfa_epochs, n=DEGENERACY_N)
    title = (
        f"Degeneracy breaking: 10-32-2 tanh student, random 10-4-2 teacher, {DEGENERACY_N} "
        f"points, SGD lr 5e-3, batch 32, {dfa_epochs} epochs; one B for every restart"
    )
    _save(degeneracy_figure(restarts, title=title), path)
    written.append(path)
    written += write_convit(out, **(convit or {}))
    return written


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    save_figure(fig, path)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m synthmath.report.theory OUT_DIR [--d D] [--pspin-n N] [--steps S] [--grid G]
    [--dfa-epochs E] [--dfa-restarts R] [--convit-seeds K] [--convit-steps S]
    [--convit-fractions F ..] [--tcnn-steps PRE FINE]``."""
    import argparse

    parser = argparse.ArgumentParser(description=write_theory_figures.__doc__)
    parser.add_argument("out_dir")
    parser.add_argument("--d", type=int, default=100, help="random features: input dimension")
    parser.add_argument("--pspin-n", type=int, default=150, help="p-spin: number of spins")
    parser.add_argument("--steps", type=int, default=3000, help="p-spin: Langevin steps")
    parser.add_argument(
        "--grid", type=int, default=len(RATIOS), help="phase space: points per axis"
    )
    parser.add_argument("--dfa-epochs", type=int, default=400, help="DFA toys: epochs")
    parser.add_argument(
        "--dfa-restarts", type=int, default=8, help="DFA degeneracy breaking: restarts per rule"
    )
    parser.add_argument("--convit-seeds", type=int, default=3, help="ConViT: seeds")
    parser.add_argument("--convit-steps", type=int, default=500, help="ConViT: steps per run")
    parser.add_argument(
        "--convit-fractions",
        type=float,
        nargs="+",
        default=[0.05, 0.1, 0.25, 0.5, 1.0],
        help="ConViT: fractions of the training pool",
    )
    parser.add_argument(
        "--tcnn-steps",
        type=int,
        nargs=2,
        default=[1500, 600],
        metavar=("PRETRAIN", "FINETUNE"),
        help="T-CNN: CNN training and fine-tuning steps",
    )
    args = parser.parse_args(argv)
    convit = {
        "fractions": args.convit_fractions,
        "seeds": args.convit_seeds,
        "steps": args.convit_steps,
        "tcnn_pretrain_steps": args.tcnn_steps[0],
        "tcnn_finetune_steps": args.tcnn_steps[1],
    }
    paths = write_theory_figures(
        args.out_dir,
        args.d,
        args.pspin_n,
        args.steps,
        args.grid,
        args.dfa_epochs,
        args.dfa_restarts,
        convit,
    )
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
