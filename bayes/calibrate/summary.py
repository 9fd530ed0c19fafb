"""Verdicts and ``summary.md`` of a calibration run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayes.calibrate.replicate import STATUS_OK
from bayes.calibrate.run import CalibrationResult


@dataclass(frozen=True)
class Verdict:
    """What the calibration says about the population parameters (all fits with draws)."""

    uniformity_flagged: list[str]
    coverage_flagged: list[str]
    subject_flagged: int
    subject_tested: int

    @property
    def miscalibrated(self) -> bool:
        """True when any population parameter fails rank uniformity or interval coverage."""
        return bool(self.uniformity_flagged or self.coverage_flagged)

    def headline(self, mode: str) -> str:
        """One line for the terminal and the summary."""
        if mode == "recovery":
            return "parameter recovery (fixed values): see the recovery table"
        if not self.miscalibrated:
            return "no miscalibration detected in the population parameters"
        names = sorted(set(self.uniformity_flagged) | set(self.coverage_flagged))
        return f"MISCALIBRATION flagged for: {', '.join(names)}"


def verdict(result: CalibrationResult, fits: str = "all") -> Verdict:
    """Return the verdict from the uniformity and coverage tables of subset ``fits``."""
    uniformity = _subset(result.uniformity, fits)
    coverage = _subset(result.coverage, fits)
    population = uniformity[uniformity.get("family", pd.Series(dtype=str)) == "population"]
    subject = uniformity[uniformity.get("family", pd.Series(dtype=str)) == "subject"]
    return Verdict(
        uniformity_flagged=list(population.loc[population["flagged"], "parameter"])
        if not population.empty
        else [],
        coverage_flagged=sorted(set(coverage.loc[coverage["flagged"], "parameter"]))
        if not coverage.empty
        else [],
        subject_flagged=int(subject["flagged"].sum()) if not subject.empty else 0,
        subject_tested=len(subject),
    )


def _subset(table: pd.DataFrame, fits: str) -> pd.DataFrame:
    if table.empty or "fits" not in table:
        return pd.DataFrame()
    return table[table["fits"] == fits]


def _shown_path(path: str) -> str:
    """Return ``path`` relative to the working directory when it lies below it."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)


def fit_counts(result: CalibrationResult) -> dict[str, int]:
    """Return the number of replicates per status."""
    return {str(k): int(v) for k, v in result.replicates["status"].value_counts().items()}


def summary_markdown(result: CalibrationResult, command: str) -> str:
    """Return ``summary.md``: settings, fits, verdicts, coverage, uniformity, recovery, timing."""
    s = result.settings
    all_fits, passing = verdict(result, "all"), verdict(result, "passing")
    lines = [
        f"# Calibration of `{_shown_path(s.workflow)}`",
        "",
        f"Command: `{command}`",
        "",
        f"**Verdict (all {_n_with_draws(result)} fits with draws): {all_fits.headline(s.mode)}.**",
        f"Fits that passed the convergence gate only: {passing.headline(s.mode)}.",
        "",
        *_settings_lines(result),
        "",
        "## Fits",
        "",
        *_fit_lines(result),
        "",
    ]
    if s.mode == "sbc":
        lines += _uniformity_lines(result, all_fits)
    lines += _coverage_lines(result)
    lines += _recovery_lines(result)
    lines += _timing_lines(result)
    return "\n".join(lines) + "\n"


def _n_with_draws(result: CalibrationResult) -> int:
    return int(result.statistics["replicate"].nunique()) if not result.statistics.empty else 0


def _settings_lines(result: CalibrationResult) -> list[str]:
    s = result.settings
    mode = (
        "simulation-based calibration (every free parameter drawn from the prior)"
        if s.mode == "sbc"
        else f"parameter recovery: {', '.join(s.fixed)} fixed by `{s.fixed_file}`, the rest "
        "drawn from the prior"
    )
    overrides = ", ".join(f"{k}={v}" for k, v in s.overrides.items()) or "none"
    lines = [
        f"- mode: {mode}",
        f"- replicates: {result.n_sims}, master seed {s.seed} (replicate i: "
        "`SeedSequence(seed, spawn_key=(i,))`)",
        f"- sampler per fit: nutpie, {s.chains} chain(s) x {s.draws} draws after {s.tune} "
        f"tuning steps, target_accept {s.target_accept} (command-line overrides: {overrides})",
        f"- ranks among L = {s.rank_draws} posterior draws spread evenly over the chains",
        f"- a fit fails the gate with split R-hat > {s.max_rhat}, more than {s.max_divergences} "
        f"divergences or E-BFMI < {s.min_bfmi}; its ranks are kept in the `all` rows",
        f"- flags: family-wise false-alarm rate {s.alpha} (Bonferroni)",
    ]
    if s.simulation_priors:
        lines.append(
            f"- data simulated from **other priors** (`{s.simulation_priors}`) than the fit's: "
            "a deliberately miscalibrated set-up"
        )
    return lines


def _fit_lines(result: CalibrationResult) -> list[str]:
    table = result.replicates
    counts = fit_counts(result)
    lines = [f"- {status}: {n}" for status, n in sorted(counts.items())]
    failed = table[table["status"] != STATUS_OK]
    if not failed.empty:
        reasons = failed["message"].fillna("").str.split(";").explode().str.strip()
        for reason, n in reasons[reasons != ""].map(_reason).value_counts().items():
            lines.append(f"  - {n} x {reason}")
    ess = table["min_ess_bulk"].astype(float)
    if ess.notna().any():
        median = float(np.nanmedian(ess))
        lines.append(f"- median of the smallest bulk ESS per fit: {median:.0f}")
        if median < result.settings.rank_draws:
            lines.append(
                f"  - below L = {result.settings.rank_draws}: the thinned draws are "
                "autocorrelated, which by itself makes rank histograms non-uniform "
                "(Talts et al. 2018, section 5); use more draws or a smaller --rank-draws"
            )
    return lines


def _reason(message: str) -> str:
    """Group a gate or error message by its kind (numbers differ from fit to fit)."""
    s = ""
    if message.startswith("R-hat"):
        s = f"split R-hat above the gate ({message.split('worst: ')[-1].rstrip(')')} worst)"
    elif "divergent" in message:
        s = "divergent transitions"
    elif message.startswith("E-BFMI"):
        s = "E-BFMI below the gate"
    return s or message


def _uniformity_lines(result: CalibrationResult, all_fits: Verdict) -> list[str]:
    table = _subset(result.uniformity, "all")
    lines = ["## Rank uniformity (population parameters, all fits)", ""]
    population = table[table["family"] == "population"] if not table.empty else table
    if population.empty:
        return [*lines, "No fits with draws.", ""]
    lines += _markdown(
        population[["parameter", "n", "bins", "p_chi2", "p_pot_c", "mean_rank_fraction", "flagged"]]
    )
    lines += [
        "",
        f"Per-subject deviations: {all_fits.subject_flagged} of {all_fits.subject_tested} "
        "flagged. Figures: `figures/rank_histograms.png`, `figures/ecdf_difference.png`.",
        "",
    ]
    return lines


def _coverage_lines(result: CalibrationResult) -> list[str]:
    table = _subset(result.coverage, "all")
    lines = ["## Central-interval coverage (population parameters, all fits)", ""]
    if table.empty:
        return [*lines, "No fits with draws.", ""]
    wide = table.pivot(index="parameter", columns="level", values="coverage")
    wide.columns = [f"{c:.0%}" for c in wide.columns]
    flagged = table.groupby("parameter", sort=False)["flagged"].any()
    wide["flagged"] = flagged.reindex(wide.index)
    lines += _markdown(wide.reset_index())
    n = int(table["n"].max())
    lines += [
        "",
        f"n = {n} fits; a cell is flagged when its nominal level is outside the "
        f"Clopper-Pearson interval at {table['confidence'].iloc[0]:.4f} confidence.",
        "",
    ]
    return lines


def _recovery_lines(result: CalibrationResult) -> list[str]:
    table = _subset(result.recovery, "all")
    lines = ["## Recovery (population parameters, all fits)", ""]
    if table.empty:
        return [*lines, "No fits with draws.", ""]
    lines += _markdown(table.drop(columns=["fits"]))
    lines += [
        "",
        "width_ratio: median posterior 90% interval width over the prior's (log scale for "
        "positive parameters); < 0.5 estimable, 0.5-0.9 weakly informed, >= 0.9 "
        "prior-dominated.",
        "",
    ]
    return lines


def _timing_lines(result: CalibrationResult) -> list[str]:
    table = result.replicates
    fit_seconds = float(table["seconds"].astype(float).sum())
    build = float(table["worker_build_seconds"].astype(float).fillna(0).sum())
    if result.new_replicates:
        per_hour = result.new_replicates / max(result.wall_seconds, 1e-9) * 3600
        this_run = (
            f"- this run: {result.new_replicates} new replicates in {result.wall_seconds:.0f} s "
            f"wall time ({per_hour:.0f} replicates/hour, including worker start-up and "
            "compilation)"
        )
    else:
        this_run = (
            f"- this run: no new fits; all {len(table)} replicates were loaded from checkpoints"
        )
    return [
        "## Time",
        "",
        this_run,
        f"- all replicates: {fit_seconds:.0f} s of simulation and fitting in total "
        f"({fit_seconds / max(len(table), 1):.1f} s per replicate); worker model build and "
        f"compilation {build:.0f} s",
        "",
    ]


def _markdown(table: pd.DataFrame) -> list[str]:
    def cell(value) -> str:
        if isinstance(value, float | np.floating):
            return f"{value:.3g}"
        return str(value)

    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return [header, rule, *rows]
