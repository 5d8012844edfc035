"""Command-line projects: parameters in, metrics out, and every way a command can fail."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters import ProjectAdapter
from adapters.command import CommandAdapter
from core.models import ExperimentStatus

SCRIPT = """
import csv, json, os, sys

args = dict(a.split("=", 1) for a in sys.argv[1:])
mode = args.get("mode", "json")
x = float(args.get("x", os.environ.get("P_X", "nan")))
if "params" in args:
    with open(args["params"]) as fh:
        text = fh.read()
    import yaml
    x = float(yaml.safe_load(text)["x"])
print("progress: step 1")
print("progress: step 2", file=sys.stderr)
result = {"y": 2 * x, "deep": {"z": x + 1}}
if mode == "json":
    print(json.dumps(result))
elif mode == "text":
    print(f"energy = {-x:.4f} Ha")
    print(f"energy = {-2 * x:.4f} Ha")
elif mode == "csv":
    with open(args["out"], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["step", "y", "note"])
        w.writerow([1, 0.0, "warmup"])
        w.writerow([2, 2 * x, "final"])
elif mode in ("jsonfile", "yamlfile"):
    with open(args["out"], "w") as fh:
        fh.write(json.dumps(result))
"""


@pytest.fixture
def script(make_project: Callable[..., Path]) -> Path:
    return make_project("cmd", {"script.py": SCRIPT})


def run(adapter: ProjectAdapter, **params: object):
    result = adapter.execute_with_parameters(params)
    return result


def test_template_and_json_stdout_after_progress_lines(
    script: Path, adapter_for: Callable[..., ProjectAdapter]
) -> None:
    adapter = adapter_for(script, entry="python script.py x={x}")
    assert isinstance(adapter, CommandAdapter)
    result = run(adapter, x=1.5)
    assert result.status == ExperimentStatus.COMPLETED, result.error_message
    assert result.metrics == {"y": 3.0, "deep.z": 2.5}
    assert "progress: step 1" in result.log and "progress: step 2" in result.log
    assert result.extra["returncode"] == 0


def test_parameters_as_environment_variables(
    script: Path, adapter_for: Callable[..., ProjectAdapter]
) -> None:
    adapter = adapter_for(script, entry="python script.py", command={"env": True, "env_prefix": "P_"})
    assert run(adapter, x=2).metrics["y"] == 4.0


@pytest.mark.parametrize("name", ["params.json", "params.yaml"])
def test_parameters_as_a_file(script: Path, adapter_for: Callable[..., ProjectAdapter], name: str) -> None:
    adapter = adapter_for(
        script, entry="python script.py params={params_file}", command={"params_file": name}
    )
    assert run(adapter, x=3).metrics["y"] == 6.0


def test_regex_over_stdout_takes_the_last_match(
    script: Path, adapter_for: Callable[..., ProjectAdapter]
) -> None:
    adapter = adapter_for(
        script,
        entry="python script.py x={x} mode=text",
        command={"regex": {"energy": r"energy = (-?[\d.]+) Ha"}},
    )
    assert run(adapter, x=0.5).metrics == {"energy": -1.0}


@pytest.mark.parametrize(
    "mode, out, fmt",
    [("csv", "out.csv", None), ("jsonfile", "out.json", None), ("yamlfile", "out.dat", "yaml")],
)
def test_output_files_in_the_run_folder(
    script: Path, adapter_for: Callable[..., ProjectAdapter], mode: str, out: str, fmt: str | None
) -> None:
    command = {"output_file": f"{{run_dir}}/{out}", **({"output_format": fmt} if fmt else {})}
    adapter = adapter_for(
        script, entry=f"python script.py x={{x}} mode={mode} out={{run_dir}}/{out}", command=command
    )
    result = run(adapter, x=2)
    assert result.status == ExperimentStatus.COMPLETED, result.error_message
    assert result.metrics["y"] == 4.0
    if mode == "csv":
        assert result.metrics == {"step": 2.0, "y": 4.0}  # the last row, numeric columns only
    assert not list(script.glob("out*"))  # nothing written into the project folder


def test_shell_mode_quotes_values(
    make_project: Callable[..., Path], adapter_for: Callable[..., ProjectAdapter]
) -> None:
    root = make_project("sh", {"echo.py": "import json,sys\nprint(json.dumps({'n': len(sys.argv[1])}))\n"})
    adapter = adapter_for(root, entry="python echo.py {label} | cat", command={"shell": True})
    label = "a b; echo injected"
    assert run(adapter, label=label).metrics == {"n": float(len(label))}


def test_python_is_the_project_interpreter(
    make_project: Callable[..., Path], adapter_for: Callable[..., ProjectAdapter]
) -> None:
    import sys

    root = make_project(
        "which", {"which.py": "import json,sys\nprint(json.dumps({'same': sys.executable == sys.argv[1]}))\n"}
    )
    assert run(adapter_for(root, entry="python which.py {expected}"), expected=sys.executable).metrics == {
        "same": 1.0
    }


def test_non_json_stdout_is_a_configuration_error(
    make_project: Callable[..., Path], adapter_for: Callable[..., ProjectAdapter]
) -> None:
    root = make_project("txt", {"t.py": "print('hello')\n"})
    result = run(adapter_for(root, entry="python t.py"))
    assert result.status == ExperimentStatus.FAILED and result.error_class == "configuration"
    assert "'txt'" in result.error_message and "stdout is not JSON" in result.error_message


@pytest.mark.parametrize(
    "body, error_class, phrase",
    [
        ("raise ValueError('energy diverged')", "scientific", "ValueError: energy diverged"),
        ("import not_installed_anywhere", "configuration", "ModuleNotFoundError"),
        (
            "import sys; print('bad input file', file=sys.stderr); sys.exit(3)",
            "scientific",
            "code 3 (bad input file)",
        ),
    ],
)
def test_nonzero_exit_is_classified_with_the_stderr_tail(
    make_project: Callable[..., Path],
    adapter_for: Callable[..., ProjectAdapter],
    body: str,
    error_class: str,
    phrase: str,
) -> None:
    root = make_project("fails", {"f.py": body + "\n"})
    result = run(adapter_for(root, entry="python f.py"))
    assert result.error_class == error_class and phrase in result.error_message
    assert "--- stderr ---" in result.log


def test_missing_executable_and_placeholder(
    make_project: Callable[..., Path], adapter_for: Callable[..., ProjectAdapter]
) -> None:
    root = make_project("none", {"a.py": ""})
    result = run(adapter_for(root, entry="definitely-not-a-command-xyz --flag", kind="command"))
    assert result.error_class == "configuration"
    result = run(adapter_for(root, entry="python a.py {gamma}"), beta=1)
    assert result.error_class == "configuration" and "{gamma}" in result.error_message


def test_timeout_kills_the_whole_process_group(
    make_project: Callable[..., Path], adapter_for: Callable[..., ProjectAdapter], tmp_path: Path
) -> None:
    pidfile = tmp_path / "child.pid"
    root = make_project(
        "hang",
        {
            "hang.py": f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        open({str(pidfile)!r}, "w").write(str(child.pid))
        time.sleep(3600)
    """
        },
    )
    started = time.monotonic()
    result = run(adapter_for(root, entry="python hang.py", timeout=1))
    assert time.monotonic() - started < 20
    assert result.error_class == "scientific" and "timeout of 1 s" in result.error_message
    pid = int(pidfile.read_text())
    for _ in range(50):  # the grandchild must be gone too (reaped by init)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            break
        time.sleep(0.1)
    else:
        pytest.fail("the command's child process survived the timeout")


def test_signature_lists_placeholders(script: Path, adapter_for: Callable[..., ProjectAdapter]) -> None:
    sig = adapter_for(script, entry="python script.py x={x} out={run_dir}/o").signature()
    assert sig.accepts == ["x"] and not sig.open
    assert adapter_for(script, entry="python script.py", command={"env": True}).signature().open


def test_a_bare_script_runs_with_the_project_interpreter(
    script: Path, adapter_for: Callable[..., ProjectAdapter]
) -> None:
    adapter = adapter_for(script, entry="script.py x={x}")
    assert adapter.kind == "command" and run(adapter, x=1).metrics["y"] == 2.0
