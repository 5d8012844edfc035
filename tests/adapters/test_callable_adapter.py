"""Callable projects (``module:function``), inline and in a subprocess."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters import ProjectAdapter, adapt_project
from adapters.callable import CallableAdapter
from adapters.capture import LOG_LIMIT
from core.models import ExperimentStatus
from core.project import ProjectSpec

RETURNS = """
import dataclasses
from typing import NamedTuple

import pydantic


@dataclasses.dataclass
class DC:
    fidelity: float
    shots: int


class PM(pydantic.BaseModel):
    fidelity: float
    inner: dict


class NT(NamedTuple):
    fidelity: float
    energy: float


class Plain:
    def __init__(self, fidelity):
        self.fidelity = fidelity
        self._hidden = 5.0


def number(x):
    return x * 2


def mapping(x):
    return {"fidelity": x, "nested": {"energy": -x, "label": "text"}, "samples": [1, 2, 3]}


def dataclass_(x):
    return DC(x, 100)


def pydantic_(x):
    return PM(fidelity=x, inner={"cost": 0.5})


def namedtuple_(x):
    return NT(x, -x)


def plain(x):
    return Plain(x)


def with_params(params):
    return {"total": sum(params.values())}


def with_kwargs(**kw):
    return {"n": len(kw)}
"""


@pytest.fixture
def returns(make_project: Callable[..., Path]) -> Path:
    return make_project("returns", {"returns.py": RETURNS})


@pytest.mark.parametrize(
    "func, expected",
    [
        ("number", {"value": 1.0}),
        ("mapping", {"fidelity": 0.5, "nested.energy": -0.5}),
        ("dataclass_", {"fidelity": 0.5, "shots": 100.0}),
        ("pydantic_", {"fidelity": 0.5, "inner.cost": 0.5}),
        ("namedtuple_", {"fidelity": 0.5, "energy": -0.5}),
        ("plain", {"fidelity": 0.5}),
    ],
)
@pytest.mark.parametrize("isolation", ["inline", "subprocess"])
def test_every_return_shape_becomes_metrics(
    returns: Path, adapter_for: Callable[..., ProjectAdapter], func: str, expected: dict, isolation: str
) -> None:
    result = adapter_for(returns, entry=f"returns:{func}", isolation=isolation).execute_with_parameters(
        {"x": 0.5}
    )
    assert result.status == ExperimentStatus.COMPLETED, result.error_message
    assert result.metrics == expected
    assert result.project_name == "returns" and result.parameters == {"x": 0.5}


def test_kind_is_detected_as_callable(returns: Path, adapter_for: Callable[..., ProjectAdapter]) -> None:
    assert isinstance(adapter_for(returns, entry="returns:number"), CallableAdapter)


def test_metric_mapping_picks_and_renames_dotted_paths(
    returns: Path, adapter_for: Callable[..., ProjectAdapter]
) -> None:
    adapter = adapter_for(
        returns,
        entry="returns:mapping",
        metrics={"F": "fidelity", "E": "nested.energy", "last": "samples.-1"},
    )
    assert adapter.execute_with_parameters({"x": 0.25}).metrics == {"F": 0.25, "E": -0.25, "last": 3.0}


def test_params_dict_and_kwargs_signatures(returns: Path, adapter_for: Callable[..., ProjectAdapter]) -> None:
    r = adapter_for(returns, entry="returns:with_params", fixed={"c": 10}).execute_with_parameters(
        {"a": 1, "b": 2}
    )
    assert r.metrics == {"total": 13.0}
    r = adapter_for(returns, entry="returns:with_kwargs").execute_with_parameters({"a": 1, "b": 2})
    assert r.metrics == {"n": 2.0}


def test_fixed_parameters_are_merged_but_not_recorded(
    returns: Path, adapter_for: Callable[..., ProjectAdapter]
) -> None:
    result = adapter_for(returns, entry="returns:number", fixed={"x": 3}).execute_with_parameters({})
    assert result.metrics == {"value": 6.0} and result.parameters == {}


def test_non_numeric_metric_and_nan_are_classified(
    make_project: Callable[..., Path], adapter_for: Callable[..., ProjectAdapter]
) -> None:
    root = make_project(
        "odd", {"odd.py": "def text(): return {'f': 'high'}\ndef nan(): return float('nan')\n"}
    )
    r = adapter_for(root, entry="odd:text", metrics={"f": "f"}).execute_with_parameters({})
    assert r.error_class == "configuration" and "not a number" in r.error_message
    r = adapter_for(root, entry="odd:nan").execute_with_parameters({})
    assert r.error_class == "scientific" and "nan" in r.error_message
    r = adapter_for(root, entry="odd:nan", isolation="subprocess").execute_with_parameters({})
    assert r.error_class == "scientific" and "nan" in r.error_message


LOGGING = """
import logging
import sys

log = logging.getLogger("chatty")


def run(lines):
    for i in range(lines):
        print(f"line {i}")
    print("to stderr", file=sys.stderr)
    log.warning("a warning from the project")
    return 1.0
"""


@pytest.mark.parametrize("isolation", ["inline", "subprocess"])
def test_stdout_stderr_and_logging_are_captured_per_run(
    make_project: Callable[..., Path], adapter_for: Callable[..., ProjectAdapter], isolation: str
) -> None:
    root = make_project("chatty", {"chatty.py": LOGGING})
    result = adapter_for(root, entry="chatty:run", isolation=isolation).execute_with_parameters({"lines": 3})
    assert "line 2" in result.log and "to stderr" in result.log
    assert "a warning from the project" in result.log


def test_captured_log_is_bounded(
    make_project: Callable[..., Path], adapter_for: Callable[..., ProjectAdapter]
) -> None:
    root = make_project("chatty", {"chatty.py": LOGGING})
    result = adapter_for(root, entry="chatty:run").execute_with_parameters({"lines": 5000})
    assert len(result.log) < LOG_LIMIT + 100
    assert "line 4999" in result.log and "earlier characters dropped" in result.log


def test_project_logging_configuration_is_left_alone(
    make_project: Callable[..., Path], adapter_for: Callable[..., ProjectAdapter]
) -> None:
    import logging

    root_logger = logging.getLogger()
    before = (list(root_logger.handlers), root_logger.level)
    adapter_for(make_project("chatty", {"chatty.py": LOGGING}), entry="chatty:run").execute_with_parameters(
        {"lines": 1}
    )
    assert (list(root_logger.handlers), root_logger.level) == before
    assert sys.stdout is sys.__stdout__ or sys.stdout is not None


def test_two_projects_with_the_same_module_names_do_not_collide(make_project: Callable[..., Path]) -> None:
    one = make_project(
        "one",
        {
            "run.py": "from helpers import k\ndef main(): return {'k': k()}\n",
            "helpers.py": "def k(): return 1\n",
        },
    )
    two = make_project(
        "two",
        {
            "run.py": "from helpers import k\ndef main(): return {'k': k()}\n",
            "helpers.py": "def k(): return 2\n",
        },
    )
    a = adapt_project(one, ProjectSpec(name="one", path=one, entry="run:main"))
    b = adapt_project(two, ProjectSpec(name="two", path=two, entry="run:main"))
    for _ in range(2):  # interleaved, in one long-lived process
        assert a.execute_with_parameters({}).metrics == {"k": 1.0}
        assert b.execute_with_parameters({}).metrics == {"k": 2.0}
    assert "run" not in sys.modules and "helpers" not in sys.modules


def test_changed_sources_are_imported_afresh(
    make_project: Callable[..., Path], adapter_for: Callable[..., ProjectAdapter]
) -> None:
    import os
    import time

    from adapters import loading

    root = make_project("live", {"live.py": "def f(): return 1\n"})
    assert adapter_for(root, entry="live:f").execute_with_parameters({}).metrics == {"value": 1.0}
    (root / "live.py").write_text("def f(): return 2\n")
    os.utime(root / "live.py", ns=(1, 10**18))  # a different mtime even on coarse clocks
    time.sleep(loading.RESCAN_SECONDS)  # a scan is reused that long
    assert adapter_for(root, entry="live:f").execute_with_parameters({}).metrics == {"value": 2.0}


def test_timeout_runs_in_a_subprocess_and_kills_it(
    make_project: Callable[..., Path], adapter_for: Callable[..., ProjectAdapter]
) -> None:
    root = make_project("slow", {"slow.py": "import time\ndef run(s):\n    time.sleep(s)\n    return 1\n"})
    adapter = adapter_for(root, entry="slow:run", timeout=1)
    assert adapter.execute_with_parameters({"s": 0}).status == ExperimentStatus.COMPLETED
    result = adapter.execute_with_parameters({"s": 60})
    assert result.status == ExperimentStatus.FAILED and result.error_class == "scientific"
    assert "timeout of 1 s" in result.error_message and result.execution_time < 30


def test_the_worker_process_state_is_restored(
    returns: Path, adapter_for: Callable[..., ProjectAdapter]
) -> None:
    import os

    cwd, path = os.getcwd(), list(sys.path)
    adapter_for(returns, entry="returns:number").execute_with_parameters({"x": 1})
    assert os.getcwd() == cwd and sys.path == path


CLASSES = """
class Experiment:
    def __init__(self, size, seed=0):
        self.size, self.seed = size, seed

    def run(self, angle):
        return {"value": self.size * angle + self.seed}

    def evaluate(self, angle, **extra):
        return {"value": -angle, "extra": len(extra)}


class Static:
    @staticmethod
    def run(angle):
        return angle
"""


@pytest.fixture
def classes(make_project: Callable[..., Path]) -> Path:
    return make_project("classes", {"experiment.py": CLASSES})


@pytest.mark.parametrize("isolation", ["inline", "subprocess"])
def test_class_parameters_split_by_signature(
    classes: Path, adapter_for: Callable[..., ProjectAdapter], isolation: str
) -> None:
    adapter = adapter_for(classes, entry="experiment:Experiment", isolation=isolation)
    assert adapter.kind == "class"  # detected from the source, without importing it
    result = adapter.execute_with_parameters({"size": 3, "seed": 1, "angle": 2})
    assert result.metrics == {"value": 7.0}, result.error_message


def test_class_constructor_list_and_method_are_configurable(
    classes: Path, adapter_for: Callable[..., ProjectAdapter]
) -> None:
    adapter = adapter_for(
        classes, entry="experiment:Experiment", **{"class": {"method": "evaluate", "constructor": ["size"]}}
    )
    result = adapter.execute_with_parameters({"size": 3, "angle": 2, "seed": 9})
    assert result.metrics == {"value": -2.0, "extra": 1.0}  # seed went to the method's **extra


def test_static_method_and_missing_method(classes: Path, adapter_for: Callable[..., ProjectAdapter]) -> None:
    assert adapter_for(classes, entry="experiment:Static").execute_with_parameters({"angle": 4}).metrics == {
        "value": 4.0
    }
    result = adapter_for(
        classes, entry="experiment:Experiment", **{"class": {"method": "fit"}}
    ).execute_with_parameters({"size": 1, "angle": 1})
    assert result.error_class == "configuration"
    assert "has no method 'fit'" in result.error_message and "set class.method" in result.error_message


def test_class_signature_mismatch_is_a_configuration_error(
    classes: Path, adapter_for: Callable[..., ProjectAdapter]
) -> None:
    result = adapter_for(classes, entry="experiment:Experiment").execute_with_parameters(
        {"angle": 1, "bogus": 2}
    )
    assert result.error_class == "configuration"
    assert "missing size" in result.error_message and "'classes'" in result.error_message


REPORTING = (
    "import time\n"
    "def run(x, report=None):\n"
    "    for step in range(1, 11):\n"
    "        time.sleep(0.05)\n"
    "        try:\n"
    "            report({'loss': x / step, 'step': step})\n"
    "        except Exception:\n"
    "            pass  # a broad handler in the project must not swallow a stop\n"
    "    return {'loss': x / 10}\n"
)


@pytest.mark.parametrize("isolation", ["inline", "subprocess"])
def test_a_project_reports_intermediate_values_through_report(
    isolation: str, make_project: Callable[..., Path], adapter_for: Callable[..., ProjectAdapter]
) -> None:
    from adapters.contract import Progress

    adapter = adapter_for(make_project("rep", {"rep.py": REPORTING}), entry="rep:run", isolation=isolation)
    assert adapter.signature().mismatch(["x"]) == ([], [])
    done = adapter.execute_with_parameters({"x": 2.0}, Progress("loss"))
    assert done.status == ExperimentStatus.COMPLETED and done.metrics == {"loss": 0.2}
    assert done.extra["intermediate"] == pytest.approx([2.0 / s for s in range(1, 11)])

    stopped = adapter.execute_with_parameters({"x": 2.0}, Progress("loss", should_stop=lambda c: len(c) >= 4))
    assert stopped.status == ExperimentStatus.EARLY_STOPPED
    curve = stopped.extra["intermediate"]
    # inline, the 4th report raises; a subprocess learns of the stop at its next report after the
    # worker has read the 4th value (it polls the progress file every 0.2 s)
    assert len(curve) == 4 if isolation == "inline" else 4 <= len(curve) < 10
    assert curve == pytest.approx([2.0 / s for s in range(1, len(curve) + 1)])
    assert stopped.metrics == {"loss": curve[-1], "step": float(len(curve))}, (
        "the partial row keeps the last report"
    )
    assert f"stopped early after {len(curve)}" in stopped.error_message
