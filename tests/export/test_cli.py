"""`imaging-hub export` and `imaging-hub cohort` on a copy of the small real-IDC index."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from hub.cli import app

runner = CliRunner()
SM = '{"=": {"modality": "SM"}}'


def test_export_writes_the_file_and_reports(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "sm.s5cmd"
    args = ["export", SM, "--format", "s5cmd", "-o", str(out), "--data-dir", str(data_dir)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert len(lines) > 1000 and all(x.startswith("cp s3://") for x in lines)
    assert f"{len(lines):,} series written" in result.output
    assert not out.with_name("sm.s5cmd.partial").exists()


def test_export_to_stdout_with_a_limit(data_dir: Path) -> None:
    args = ["export", SM, "--limit", "3", "--data-dir", str(data_dir)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0
    records = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    assert len(records) == 3 and {r["modality"] for r in records} == {"SM"}


def test_export_errors_are_one_line_and_exit_2(data_dir: Path, tmp_path: Path) -> None:
    cases = [
        (["export", "{", "--data-dir", str(data_dir)], "filter is not valid JSON"),
        (["export", '{"=": {"x": 1}}', "--data-dir", str(data_dir)], "unknown field 'x'"),
        (["export", "--format", "zip", "--data-dir", str(data_dir)], "unknown export format"),
        (["export", "--format", "gen3", "--data-dir", str(data_dir)], "none is configured"),
        (["export", "--cohort", "nothex", "--data-dir", str(data_dir)], "32 lower-case hex"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in " ".join(result.output.split()), result.output
        assert "Traceback" not in result.output
    missing = tmp_path / "no" / "such" / "dir" / "x.csv"
    result = runner.invoke(app, ["export", SM, "-o", str(missing), "--data-dir", str(data_dir)])
    assert result.exit_code == 1 and "cannot write" in result.output


def test_cohort_save_show_rerun_and_export(data_dir: Path, tmp_path: Path) -> None:
    saved = runner.invoke(app, ["cohort", "save", SM, "--data-dir", str(data_dir)])
    assert saved.exit_code == 0
    cohort_id = saved.stdout.strip().splitlines()[0]
    assert len(cohort_id) == 32
    shown = json.loads(
        runner.invoke(app, ["cohort", "show", cohort_id, "--data-dir", str(data_dir)]).stdout
    )
    assert shown["filter"] == {"=": {"modality": "SM"}}
    rerun = runner.invoke(app, ["cohort", "rerun", cohort_id, "--data-dir", str(data_dir)])
    assert json.loads(rerun.stdout)["data_changed"] is False
    out = tmp_path / "again.csv"
    exported = runner.invoke(
        app,
        ["export", "--cohort", cohort_id, "-f", "csv", "-o", str(out), "--data-dir", str(data_dir)],
    )
    assert exported.exit_code == 0
    assert len(out.read_text().splitlines()) == shown["counts"]["series"] + 1
    unknown = runner.invoke(app, ["cohort", "show", "a" * 32, "--data-dir", str(data_dir)])
    assert unknown.exit_code == 2 and "no saved cohort" in unknown.output
