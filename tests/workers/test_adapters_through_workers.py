"""Every adapter kind through a real worker process, results checked in Parquet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from core.config import load_sweep
from core.errors import InputError
from orchestrator import Orchestrator
from tests.conftest import FIXTURES, ROOT, cli

EXAMPLES = ROOT / "examples" / "sweeps"


def test_each_adapter_kind_lands_correct_metrics(workdir: Path, redis_url: str, start_worker) -> None:
    start_worker("kinds", concurrency=2)
    sweeps = {
        "callable": "quickstart",
        "class": "vqe_h2",
        "command": "repetition_code",
        "circuit": "qaoa_maxcut",
    }
    with Orchestrator(redis_url) as orch:
        ids = {kind: orch.submit(EXAMPLES / f"{name}.yaml").execution_id for kind, name in sweeps.items()}
        finals = {kind: orch.wait(sid, timeout=400) for kind, sid in ids.items()}
        frames = {kind: orch.results(sid) for kind, sid in ids.items()}
    for kind, final in finals.items():
        assert final.state == "completed", kind
        assert (frames[kind]["status"] == "completed").all(), frames[kind][["status", "error_message"]]

    bell = frames["callable"]
    assert (
        bell.loc[bell["param.noise"] == 0.0, "metric.p_correlated"].eq(1.0).all()
    )  # no noise, perfect pairs
    noisy = bell.groupby("param.noise")["metric.p_correlated"].mean()
    assert noisy.iloc[-1] < noisy.iloc[0] - 0.1

    vqe = frames["class"]
    assert {"metric.energy", "metric.abs_error"} <= set(vqe.columns)
    best = vqe[vqe["param.bond_length"] == 0.75]["metric.abs_error"].min()
    assert best < 0.05  # the ansatz reaches near the exact H2 energy at equilibrium
    built = [json.loads(e).get("environment_built", False) for e in vqe["extra"]]
    assert sum(built) == 1, "the project's virtualenv is built once, not per experiment"
    assert len(list((workdir / ".orchestrator" / "envs").glob("*"))) >= 1

    rep = frames["command"]
    fid = rep["metric.logical_fidelity"]
    assert fid.between(0, 1).all()
    assert len(rep) == 12

    qaoa = frames["circuit"]
    assert qaoa["metric.approx_ratio"].between(0, 1).all() and len(qaoa) == 24
    assert (qaoa["device"].fillna("local:sv") == "local:sv").all()


def test_broken_projects_fail_with_classified_errors_and_the_rest_complete(
    workdir: Path, redis_url: str, start_worker
) -> None:
    start_worker("broken", concurrency=2)
    expected = yaml.safe_load((FIXTURES / "broken_projects" / "expected.yaml").read_text())
    with Orchestrator(redis_url) as orch:
        # validation refuses this sweep (missing module, wrong function, signature): schedule it
        # past validation, as if the projects broke after submit, to test the workers' own answer
        with pytest.raises(InputError, match="missing_module"):
            orch.submit(FIXTURES / "broken_projects" / "sweep.yaml")
        config = load_sweep(FIXTURES / "broken_projects" / "sweep.yaml")
        sid = orch.scheduler.schedule_sweep(config).execution_id
        final = orch.wait(sid, timeout=300)
        frame = orch.results(sid)
    assert final.state == "completed" and len(frame) == 16
    for row in frame.to_dict("records"):
        want = expected[row["project_name"]][row["param.x"]]
        if want == "completed":
            assert row["status"] == "completed", (row["project_name"], row["error_message"])
        else:
            assert row["status"] == "failed" and row["error_class"] == want, (
                row["project_name"],
                row["error_class"],
            )
            assert row["project_name"] in row["error_message"]
            assert expected[row["project_name"]]["fix"] in row["error_message"]


@pytest.mark.parametrize("example", ["quickstart", "vqe_h2", "repetition_code", "qaoa_maxcut", "ghz_noise"])
def test_check_passes_on_examples(example: str, workdir: Path) -> None:
    proc = cli("check", str(EXAMPLES / f"{example}.yaml"), workdir=workdir, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout.upper()


@pytest.mark.parametrize(
    "broken",
    [
        "missing_module",
        "wrong_function",
        "signature_mismatch",
        "non_json_output",
        "missing_metric",
        "hanging_command",
    ],
)
def test_check_fails_on_broken_projects(broken: str, workdir: Path) -> None:
    proc = cli("check", str(FIXTURES / "broken_projects" / broken), workdir=workdir, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL" in proc.stdout.upper()
