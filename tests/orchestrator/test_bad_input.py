"""Bad input: exit code 2, a message naming the file, the field and the fix, and nothing written."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import redis
import yaml

from core.errors import InputError, OrchestratorError
from core.settings import load_settings
from orchestrator import Orchestrator
from orchestrator.validation import validate
from tests.conftest import FIXTURES, ROOT, cli, executions, write_sweep

COUNTER = FIXTURES / "projects" / "counter"
GOOD = f"""name: bad
projects:
  - name: counter
    path: {COUNTER}
    entry: counter:run
parameters:
  x: {{kind: int, start: 0, stop: 3}}
adaptive_sampling: false
"""

CASES = {
    "malformed_yaml": (GOOD.replace("parameters:", "parameters: [oops"), ["malformed YAML", "line"]),
    "unknown_key": (GOOD + "budget_limt: 3\n", ["budget_limt", "unknown key", "line 9"]),
    "wrong_type": (
        GOOD.replace("adaptive_sampling: false", "adaptive_sampling: maybe"),
        ["adaptive_sampling", "line 8", "fix the value"],
    ),
    "value_listed_twice": (
        GOOD.replace("{kind: int, start: 0, stop: 3}", "[1, 2, 1]"),
        ["parameters.x", "listed more than once", "repeats: N"],
    ),
    "choice_listed_twice": (
        GOOD.replace("{kind: int, start: 0, stop: 3}", "{choices: [ring, star, ring]}"),
        ["parameters.x", "listed more than once"],
    ),
    "empty_range": (
        GOOD.replace("{kind: int, start: 0, stop: 3}", "{values: []}"),
        ["parameters.x", "at least one"],
    ),
    "constraint_filters_all": (
        GOOD + "constraints:\n  parameters: ['x > 10']\n",
        ["constraints.parameters", "filter out every point"],
    ),
    "unknown_project_path": (
        GOOD.replace(str(COUNTER), "/no/such/project"),
        ["projects[0].path", "does not exist"],
    ),
    "constraint_unknown_name": (GOOD + "constraints:\n  parameters: ['y > 1']\n", ["unknown parameter", "y"]),
    "max_experiments_zero": (
        GOOD + "max_experiments: 0\n",
        ["max_experiments", "line 9", "greater than or equal to 1"],
    ),
    "max_experiments_below_startup": (
        GOOD.replace("x: {kind: int, start: 0, stop: 3}", "x: {kind: int, start: 0, stop: 30}").replace(
            "adaptive_sampling: false", "adaptive_sampling: true\nobjectives: [y]\nmax_experiments: 6"
        ),
        ["max_experiments", "startup_points=6", "raise max_experiments above 6"],
    ),
    "validation_theory_unknown_parameter": (
        GOOD + "validation:\n  y: {theory: '2 * z'}\n",
        ["validation.y.theory", "line 10", "['z']", "not parameters of the sweep"],
    ),
    "validation_unknown_metric": (
        GOOD.replace("    entry: counter:run\n", "    entry: counter:run\n    metrics: {y: y}\n")
        + "validation:\n  yy: {bounds: [0, 1]}\n",
        ["validation.yy", "unknown metric 'yy'", "['y']"],
    ),
    "validation_empty_bounds": (
        GOOD + "validation:\n  y: {bounds: [1, 0]}\n",
        ["validation.y", "are empty", "lower bound first"],
    ),
    "validation_unknown_key": (
        GOOD + "validation:\n  y: {tolerence: 3}\n",
        ["validation.y.tolerence", "unknown key"],
    ),
    "unsafe_constraint": (
        GOOD + 'constraints:\n  parameters: [\'__import__("os").system("true")\']\n',
        ["constraints.parameters", "not allowed"],
    ),
}


# Projects of the cases below, written next to the sweep file (PROJ in a case is their folder).
PROJECT_FILES = {
    "m.py": (
        "def run(x, sleep=0.0):\n"
        "    return {'y': x}\n\n"
        "def cfg_run(cfg):\n"
        "    return {'y': cfg['x']}\n\n"
        "class Exp:\n"
        "    def __init__(self, x):\n"
        "        self.x = x\n\n"
        "    def run(self):\n"
        "        return {'y': self.x}\n"
    ),
    "tool.py": "import json, sys\nprint(json.dumps({'y': float(sys.argv[1])}))\n",
}


def _project(entry: str, extra: str = "") -> str:
    return GOOD.replace(
        f"path: {COUNTER}\n    entry: counter:run", f"path: PROJ\n    entry: {entry!r}{extra}"
    )


def _constraint(text: str) -> str:
    return GOOD + f"constraints:\n  parameters: [{text!r}]\n"


# Each class of bad input found by the fault-and-input campaign (issue 12), with siblings.
CASES.update(
    {
        # entries that would fail every experiment
        "entry_module_missing": (
            _project("nosuch:run"),
            ["projects[0].entry", "no module 'nosuch'", "fix 'entry'"],
        ),
        "entry_function_missing": (
            _project("m:runn"),
            ["projects[0].entry", "has no 'runn'", "did you mean run"],
        ),
        "entry_method_missing": (
            _project("m:Exp", "\n    class: {method: go}"),
            ["projects[0].class.method", "has no method 'go'", "set class.method"],
        ),
        "entry_unknown_keyword": (
            _project("m:run", "\n    fixed: {shots: 10}"),
            ["projects[0].entry", "unexpected shots", "drop or rename"],
        ),
        "entry_missing_parameter": (
            _project("m:Exp").replace("x: {kind: int, start: 0, stop: 3}", "y: [1]"),
            ["projects[0].entry", "missing x", "unexpected y"],
        ),
        "entry_takes_a_mapping_unannotated": (
            _project("m:cfg_run"),
            ["projects[0].entry", "missing cfg", "config_arg: cfg"],
        ),
        "config_arg_not_a_parameter": (
            _project("m:cfg_run", "\n    config_arg: config"),
            ["projects[0].config_arg", "no parameter 'config'"],
        ),
        # command templates
        "command_unknown_placeholder": (
            _project("python tool.py {x} {gamma}"),
            ["projects[0].entry", "{gamma}", "neither a parameter", "{run_dir}"],
        ),
        "command_positional_placeholder": (_project("python tool.py {}"), ["projects[0].entry", "{}"]),
        "command_unbalanced_brace": (
            _project("python tool.py {x"),
            ["projects[0].entry", "not a valid template", "{{"],
        ),
        "command_output_file_placeholder": (
            _project("python tool.py {x}", "\n    command: {output_file: '{run_dir}/{name}.json'}"),
            ["projects[0].command.output_file", "{name}"],
        ),
        "command_reserved_parameter": (
            _project("python tool.py {x}").replace("  x: {kind: int", "  run_dir: [a]\n  x: {kind: int"),
            ["projects[0].entry", "'run_dir'", "reserved"],
        ),
        "command_unbalanced_quote": (_project("python tool.py '{x}"), ["projects[0].entry", "quotes"]),
        "command_not_found": (_project("nosuchtool {x}"), ["projects[0].entry", "not found"]),
        # durations
        "max_duration_negative": (GOOD + "max_duration: -5\n", ["max_duration", "must be positive"]),
        "max_duration_zero": (GOOD + "max_duration: 0s\n", ["max_duration", "must be positive"]),
        "max_duration_iso_negative": (GOOD + "max_duration: -PT5S\n", ["max_duration"]),
        # fixed values shadowing swept ones, and keys YAML would drop
        "fixed_shadows_parameter": (
            GOOD.replace("entry: counter:run", "entry: counter:run\n    fixed: {x: 1}"),
            ["projects[0].fixed.x", "both swept", "line 6", "remove 'x'"],
        ),
        "repeated_parameter": (
            GOOD.replace("adaptive_sampling", "  x: [1]\nadaptive_sampling"),
            ["parameters.x", "appears twice", "line 8"],
        ),
        "repeated_top_level_key": (
            GOOD + "adaptive_sampling: true\n",
            ["adaptive_sampling", "appears twice"],
        ),
        # expressions that would hang or blow up the loader
        "constraint_tower_of_powers": (
            _constraint("9 ** 9 ** 9 ** 9 > x"),
            ["constraints.parameters", "too large"],
        ),
        "constraint_big_power": (
            _constraint("3999999 ** 3999999 > x"),
            ["constraints.parameters", "too large"],
        ),
        "constraint_string_repeat": (
            _constraint("'a' * 10 ** 9 == 'b'"),
            ["constraints.parameters", "too large"],
        ),
        "constraint_too_long": (
            _constraint("x + " * 300 + "x > 0"),
            ["constraints.parameters", "too long"],
        ),
        "constraint_division_by_zero": (
            _constraint("x > 1 / 0"),
            ["constraints.parameters", "cannot be computed"],
        ),
        "constraint_type_mismatch": (
            _constraint("x < 'a'"),
            ["constraints.parameters[0]", "cannot be evaluated"],
        ),
        "metric_constraint_tower": (
            GOOD + "constraints:\n  metrics: ['y > 9 ** 9 ** 9']\n",
            ["constraints.metrics", "too large"],
        ),
        # sizes
        "range_too_many_values": (
            GOOD.replace("stop: 3}", "stop: 1000000000000}"),
            ["parameters.x", "more than 10,000,000"],
        ),
        "linear_tiny_step": (
            GOOD.replace("{kind: int, start: 0, stop: 3}", "{start: 0, stop: 1, step: 1.0e-12}"),
            ["parameters.x", "more than 10,000,000"],
        ),
        "range_infinite": (
            GOOD.replace("{kind: int, start: 0, stop: 3}", "{start: 0, stop: .inf, num: 3}"),
            ["parameters.x", "finite"],
        ),
        "grid_too_large": (
            GOOD.replace(
                "  x: {kind: int, start: 0, stop: 3}",
                "\n".join(f"  {n}: {{kind: int, start: 0, stop: 9999}}" for n in "xabcd"),
            ),
            ["parameters", "points"],
        ),
        "int_range_beyond_64_bits": (
            GOOD.replace(
                "{kind: int, start: 0, stop: 3}",
                "{kind: int, start: 99999999999999999990, stop: 99999999999999999999}",
            ),
            ["parameters.x", "2**62"],
        ),
        # non-finite numbers, in every numeric field (issue 20): refused before anything is written
        "budget_infinite": (GOOD + "budget_limit: .inf\n", ["budget_limit", "line 9", "not a finite number"]),
        "budget_nan": (GOOD + "budget_limit: .nan\n", ["budget_limit", "not a finite number"]),
        "max_duration_infinite": (GOOD + "max_duration: .inf\n", ["max_duration", "not a finite number"]),
        "value_list_nan": (
            GOOD.replace("{kind: int, start: 0, stop: 3}", "[1, .nan]"),
            ["parameters.x[1]", "nan is not a finite number", "give a finite number"],
        ),
        "choices_infinite": (
            GOOD.replace("{kind: int, start: 0, stop: 3}", "{choices: [a, -.inf]}"),
            ["parameters.x.choices[1]", "-inf is not a finite number"],
        ),
        "fixed_nan": (
            _project("m:run", "\n    fixed: {sleep: .nan}"),
            ["projects[0].fixed.sleep", "not a finite number"],
        ),
        "objective_weight_infinite": (
            GOOD + "objectives: [{metric: y, weight: .inf}]\n",
            ["objectives[0].weight", "not a finite number"],
        ),
        "validation_bound_nan": (
            GOOD + "validation:\n  y: {bounds: [.nan, 1]}\n",
            ["validation.y.bounds[0]", "not a finite number"],
        ),
        # path fields of the wrong kind
        "project_path_is_a_file": (
            GOOD.replace(str(COUNTER), str(COUNTER / "counter.py")),
            ["projects[0].path", "is a file, not a folder", "give the project's folder"],
        ),
        "python_is_a_folder": (
            _project("m:run", "\n    python: .\n    isolation: subprocess"),
            ["projects[0].python", "is a folder, not a file"],
        ),
        "requirements_is_a_folder": (
            _project("m:run", "\n    requirements: ."),
            ["projects[0].requirements", "is a folder, not a file"],
        ),
        # names close to the entry's arguments, and rename
        "parameter_near_an_argument": (
            _project("m:run").replace("adaptive_sampling", "  slep: [1]\nadaptive_sampling"),
            [
                "unexpected slep",
                "the sweep's 'slep' is close to the entry's 'sleep'",
                "rename: {slep: sleep}",
            ],
        ),
        "placeholder_near_a_parameter": (
            _project("python tool.py {gamma}").replace("  x: {kind: int", "  gama: {kind: int"),
            ["{gamma}", "the sweep's 'gama' is close to the entry's 'gamma'", "rename: {gama: gamma}"],
        ),
        "rename_unknown_parameter": (
            _project("m:run", "\n    rename: {xs: x}"),
            ["projects[0].rename.xs", "not a parameter of the sweep", "did you mean 'x'"],
        ),
        "rename_onto_a_fixed_value": (
            _project("m:run", "\n    fixed: {sleep: 1}\n    rename: {x: sleep}"),
            ["projects[0].rename.x", "already receives"],
        ),
        # paid device that no worker of its resource can reach
        "managed_device_on_local_cpu": (
            GOOD.replace(
                f"path: {COUNTER}\n    entry: counter:run",
                f"path: {ROOT / 'examples' / 'projects' / 'qaoa_maxcut'}\n"
                "    device: arn:aws:braket:::device/quantum-simulator/amazon/sv1",
            ),
            ["projects[0].resource", "braket_sim"],
        ),
    }
)


def _write_case(case: str, workdir: Path) -> Path:
    text, _ = CASES[case]
    for name, source in PROJECT_FILES.items():
        (workdir / "proj").mkdir(exist_ok=True)
        (workdir / "proj" / name).write_text(source)
    sweep = workdir / "sweep.yaml"
    sweep.write_text(text.replace("PROJ", str(workdir / "proj")))
    return sweep


def _assert_refused(
    proc: subprocess.CompletedProcess,
    expected: list[str],
    workdir: Path,
    redis_url: str,
    source: str = "sweep.yaml",
) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = " ".join(proc.stderr.split())
    assert source in "".join(proc.stderr.split())  # the terminal may wrap a long path
    for fragment in expected:
        assert fragment in message, message
    assert "Traceback" not in proc.stderr
    assert redis.Redis.from_url(redis_url).dbsize() == 0, "no Redis keys"
    assert not (workdir / "results").exists(), "no result files"


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_sweep_file(case: str, workdir: Path, redis_url: str) -> None:
    sweep = _write_case(case, workdir)
    proc = cli("run", str(sweep), "--broker", redis_url, workdir=workdir, timeout=60)
    _assert_refused(proc, CASES[case][1], workdir, redis_url)


@pytest.mark.parametrize("command", ["run", "submit", "check", "estimate"])
def test_every_command_answers_alike(command: str, workdir: Path, redis_url: str) -> None:
    sweep = _write_case("entry_function_missing", workdir)
    broker = ["--broker", redis_url] if command in ("run", "submit") else []
    proc = cli(command, str(sweep), *broker, workdir=workdir)
    _assert_refused(proc, ["field 'projects[0].entry'", "has no 'runn'"], workdir, redis_url)
    assert not (workdir / ".orchestrator").exists(), "no embedded Redis started for bad input"


def test_non_utf8_sweep_file(workdir: Path, redis_url: str) -> None:
    sweep = workdir / "sweep.yaml"
    sweep.write_bytes(GOOD.replace("name: bad", "name: bad\n# caf\xe9").encode("latin-1"))
    proc = cli("run", str(sweep), "--broker", redis_url, workdir=workdir)
    _assert_refused(proc, ["not UTF-8", "byte 0xe9", "line 2", "save it as UTF-8"], workdir, redis_url)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"entry: caf\xe9:run\n", ["not UTF-8"]),
        (b"entry: [oops\n", ["malformed YAML"]),
        (b"- just\n- a list\n", ["must be a mapping"]),
    ],
    ids=["non-utf8", "malformed", "not-a-mapping"],
)
def test_bad_project_settings_file(
    content: bytes, expected: list[str], workdir: Path, redis_url: str
) -> None:
    sweep = _write_case("entry_function_missing", workdir)
    sweep.write_text(sweep.read_text().replace("    entry: 'm:runn'\n", ""))
    (workdir / "proj" / "orchestrator-project.yaml").write_bytes(content)
    proc = cli("run", str(sweep), "--broker", redis_url, workdir=workdir)
    _assert_refused(proc, expected, workdir, redis_url, source="orchestrator-project.yaml")


def test_python_api_raises_a_typed_error_and_writes_nothing(workdir: Path, redis_url: str) -> None:
    sweep = yaml.safe_load(_write_case("command_unknown_placeholder", workdir).read_text())
    with Orchestrator(redis_url, coordinate=False) as orch, pytest.raises(InputError) as caught:
        orch.submit(sweep)
    err = caught.value
    assert isinstance(err, OrchestratorError)
    body = err.to_dict()  # what a REST API answers with 422
    assert body["field"] == "projects[0].entry" and body["source"] == "<sweep>"
    assert "{gamma}" in body["message"] and "{run_dir}" in body["fix"]
    assert json.loads(json.dumps(body)) == body
    assert redis.Redis.from_url(redis_url).dbsize() == 0
    assert not (workdir / "results").exists()


def test_validation_runs_no_experiment(workdir: Path, redis_url: str) -> None:
    # an adaptive sweep with an objective: validation inspects the entry, it never calls it
    sweep = write_sweep(workdir, points=20, adaptive_sampling=True, objectives=["y"], max_experiments=15)
    validated = validate(sweep, load_settings())
    assert validated.config.objectives[0].metric == "y"
    assert executions(workdir) == {}, "the counter project ran during validation"


def test_unreachable_broker(workdir: Path) -> None:
    sweep = workdir / "sweep.yaml"
    sweep.write_text(GOOD)
    proc = cli("run", str(sweep), "--broker", "redis://user:hunter2@127.0.0.1:1/0", workdir=workdir)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = " ".join(proc.stderr.split())
    assert "broker_url" in message and "cannot reach" in message
    assert "hunter2" not in proc.stdout + proc.stderr, "no credentials in messages"
    assert not (workdir / "results").exists()


def test_bad_broker_scheme(workdir: Path) -> None:
    sweep = workdir / "sweep.yaml"
    sweep.write_text(GOOD)
    proc = cli("run", str(sweep), "--broker", "amqp://localhost", workdir=workdir)
    assert proc.returncode == 2
    assert "broker_url" in proc.stderr and "redis://" in proc.stderr


def test_worker_rejects_unknown_queue(workdir: Path, redis_url: str) -> None:
    proc = cli("worker", "--queues", "local_cpu,gpu", "--broker", redis_url, workdir=workdir)
    assert proc.returncode == 2 and "gpu" in proc.stderr and "local_cpu" in proc.stderr
