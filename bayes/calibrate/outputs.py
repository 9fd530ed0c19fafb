"""Write a calibration's tables, figures and ``summary.md`` to its output folder."""

from __future__ import annotations

from pathlib import Path

from bayes.calibrate.run import CalibrationResult, write_tables
from bayes.calibrate.summary import summary_markdown
from bayes.workflow.folder import atomic_write_text


def write_outputs(result: CalibrationResult, out: Path, command: str) -> list[Path]:
    """Write every output file (atomically) and return their paths."""
    from bayes.report.calibration_figures import write_calibration_figures

    out = Path(out)
    paths = write_tables(result, out)
    statistics = result.statistics
    population = statistics[statistics["family"] == "population"]
    if not population.empty:
        title = f"{Path(result.settings.workflow).stem}: {result.settings.mode}, all fits"
        paths += write_calibration_figures(
            population, result.settings.rank_draws, out / "figures", title
        )
    paths.append(atomic_write_text(out / "summary.md", summary_markdown(result, command)))
    return paths
