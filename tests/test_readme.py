"""The README's two set-up commands stay true: CI runs its test command; the main job exists."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^(python -m venv \.venv && .+)$", text, flags=re.MULTILINE)


def test_ci_runs_the_readme_test_command_verbatim():
    commands = _readme_commands()
    test_commands = [command for command in commands if command.endswith(".venv/bin/pytest")]
    assert len(test_commands) == 1, commands
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_commands[0] in ci_lines


def test_readme_main_job_uses_only_bundled_files():
    main_jobs = [command for command in _readme_commands() if "cytofactory" in command]
    assert len(main_jobs) == 1, _readme_commands()
    for token in main_jobs[0].split():
        if token.startswith(("datasets/", "workflows/", "priors/")):
            assert (ROOT / token).exists(), f"README main job names {token}, not in the repo"
        assert "shared/" not in token, "the README's main job must not need ../shared"


def test_every_top_level_folder_says_what_lives_there():
    for folder in ("bayes", "priors", "datasets", "workflows", "tests", "benchmarks"):
        assert (ROOT / folder).is_dir(), folder
        path = ROOT / folder
        described = (path / "README.md").exists() or (path / "__init__.py").exists()
        assert described, f"{folder}/ has no README.md (or package docstring)"
