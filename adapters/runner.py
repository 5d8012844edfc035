"""Import a project's entry and call it with parameters: shared by both ways of running a project.

In the worker's own interpreter the adapters import these functions. In a project's own
interpreter this file runs as a script (it uses the standard library only, because that
interpreter has neither pydantic nor this package): it reads a JSON request on stdin and writes a
JSON reply to the file the request names, so the project's own prints never corrupt the reply::

    {"root": ".../project", "entry": "module:attr", "params": {...}, "method": "run",
     "constructor": null, "action": "call" | "describe", "reply": "/tmp/.../reply.json"}
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import inspect
import json
import os
import re
import sys
import traceback
import typing
from collections.abc import Mapping
from typing import Any


class EntryError(Exception):
    """The entry cannot be loaded or called as configured (never an error of the project's code).

    Args:
        stage: ``import`` (module not found), ``dependency`` (the module's own import failed),
            ``lookup`` (no such attribute) or ``signature`` (parameters do not fit).
        message: what is wrong and how to fix it.
    """

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


#: the keyword a project declares to report intermediate values: ``def run(x, report=None)``
REPORT = "report"
#: the run's seed, passed as ``seed`` to an entry that declares it (unless ``seed`` is swept)
SEED = "seed"
#: names the orchestrator supplies itself when an entry declares them: never "missing"
SUPPLIED = (REPORT, SEED)


def split_entry(entry: str) -> tuple[str, str]:
    """``"pkg.module:attr"`` -> ``("pkg.module", "attr")``."""
    module, sep, attr = entry.partition(":")
    if not sep or not module or not attr:
        raise EntryError(
            "lookup", f"entry '{entry}' must look like module:function or module:Class; fix 'entry'"
        )
    return module, attr


def load_entry(entry: str) -> Any:
    """Import ``module:attr`` (the project folder must already be on ``sys.path``)."""
    module_name, attr = split_entry(entry)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == module_name or module_name.startswith(missing + "."):
            raise EntryError(
                "import",
                f"no module '{module_name}' in the project folder; fix 'entry' (module:function) or 'path'",
            ) from exc
        raise EntryError(
            "dependency",
            f"module '{module_name}' imports '{missing}', which is not installed "
            f"for this interpreter; list it in the project's requirements.txt "
            f"or set 'python' to an interpreter that has it",
        ) from exc
    except SyntaxError as exc:
        where = f"{os.path.basename(exc.filename or '?')}:{exc.lineno}"
        raise EntryError(
            "import",
            f"module '{module_name}' has a syntax error at {where} ({exc.msg}); fix the "
            f"project's code, or point 'python' at the interpreter it was written "
            f"for",
        ) from exc
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            names = [n for n in dir(target) if not n.startswith("_") and callable(getattr(target, n))]
            close = difflib.get_close_matches(part, names, n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise EntryError(
                "lookup",
                f"module '{module_name}' has no '{attr}'; {hint}fix 'entry' "
                f"(it defines: {', '.join(names[:12]) or 'nothing callable'})",
            )
        target = getattr(target, part)
    return target


# -- signatures -------------------------------------------------------------------------------------


def _params_of(func: Any, drop_first: bool = False) -> list[inspect.Parameter]:
    params = _signature(func)
    return params[1:] if drop_first else params


@functools.lru_cache(maxsize=1024)
def _signature_of(func: Any) -> list[inspect.Parameter]:
    return list(inspect.signature(func).parameters.values())


def _signature(func: Any) -> list[inspect.Parameter]:
    """A function's parameters, read once per function object (not once per run)."""
    try:
        return list(_signature_of(func))
    except TypeError:  # unhashable callable
        return list(inspect.signature(func).parameters.values())


_MAPPING_NAMES = re.compile(
    r"^(typing\.|t\.|collections\.abc\.|abc\.)?(dict|Dict|Mapping|MutableMapping)(\[.*\])?$"
)


def _is_mapping_annotation(annotation: Any) -> bool:
    """``dict``, ``Mapping``, ``dict[str, Any]`` ... also as a string (``from __future__ import annotations``)."""
    if annotation is inspect.Parameter.empty:
        return False
    if isinstance(annotation, str):
        return bool(_MAPPING_NAMES.match(annotation.replace(" ", "")))
    origin = typing.get_origin(annotation) or annotation
    return isinstance(origin, type) and issubclass(origin, Mapping)


def _named(params: list[inspect.Parameter]) -> list[inspect.Parameter]:
    return [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def mapping_param(params: list[inspect.Parameter], config_arg: str | None = None) -> str | None:
    """The parameter that receives all parameters as one mapping, if any.

    ``config_arg`` names it explicitly; otherwise it is the only parameter (``report`` aside) when
    it is called ``params`` or annotated as a mapping (``dict``, ``Mapping``, ``dict[str, Any]``).
    """
    named = _named(params)
    if config_arg is not None:
        return config_arg if any(p.name == config_arg for p in named) else None
    own = [p for p in named if p.name not in SUPPLIED]
    if len(own) != 1 or own[0].kind is inspect.Parameter.KEYWORD_ONLY:
        return None
    if own[0].name == "params" or _is_mapping_annotation(own[0].annotation):
        return own[0].name
    return None


def _method_of(cls: type, method: str) -> tuple[Any, list[inspect.Parameter]]:
    if not hasattr(cls, method):
        names = [n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n))]
        raise EntryError(
            "lookup",
            f"class '{cls.__name__}' has no method '{method}'; set class.method "
            f"(it has: {', '.join(names) or 'no public methods'})",
        )
    static = isinstance(inspect.getattr_static(cls, method), (staticmethod, classmethod))
    return getattr(cls, method), _params_of(getattr(cls, method), drop_first=not static)


def _summary(params: list[inspect.Parameter], config_arg: str | None = None) -> dict[str, Any]:
    return _summary_with(params, mapping_param(params, config_arg))


def _summary_with(params: list[inspect.Parameter], mapping: str | None) -> dict[str, Any]:
    named = [p for p in _named(params) if p.name != mapping]
    return {
        "accepts": [p.name for p in named],
        "required": [p.name for p in named if p.default is p.empty],
        "open": mapping is not None or any(p.kind is p.VAR_KEYWORD for p in params),
        "mapping": mapping,
    }


def _config_side(
    cls: type,
    ctor: list[inspect.Parameter],
    meth: list[inspect.Parameter],
    method: str,
    config_arg: str | None,
) -> tuple[str | None, str | None]:
    """``config_arg`` for (the constructor, the method): whichever declares it."""
    if config_arg is None:
        return None, None
    if any(p.name == config_arg for p in _named(ctor)):
        return config_arg, None
    if any(p.name == config_arg for p in _named(meth)):
        return None, config_arg
    raise EntryError(
        "signature",
        f"neither {cls.__name__}() nor {cls.__name__}.{method}() has a parameter '{config_arg}'; "
        f"set config_arg to the name of the parameter that takes the configuration mapping",
    )


def describe(target: Any, method: str = "run", config_arg: str | None = None) -> dict[str, Any]:
    """Which parameters ``target`` accepts and requires; ``open`` when it takes any name.

    ``mapping`` names the parameter that receives them all as one mapping (see :func:`mapping_param`).
    """
    if inspect.isclass(target):
        ctor_params, (_, meth_params) = _params_of(target), _method_of(target, method)
        ctor_arg, meth_arg = _config_side(target, ctor_params, meth_params, method, config_arg)
        ctor, meth = _summary(ctor_params, ctor_arg), _summary(meth_params, meth_arg)
        return {
            "kind": "class",
            "accepts": ctor["accepts"] + meth["accepts"],
            "required": ctor["required"] + meth["required"],
            "open": ctor["open"] or meth["open"],
            "mapping": ctor["mapping"] or meth["mapping"],
        }
    if not callable(target):
        raise EntryError("lookup", f"'{target!r}' is not callable; point 'entry' at a function or class")
    return describe_function(_params_of(target), getattr(target, "__name__", str(target)), config_arg)


def describe_function(
    params: list[inspect.Parameter], name: str, config_arg: str | None = None
) -> dict[str, Any]:
    """:func:`describe` for a function given its parameters (read from its source or imported)."""
    summary = _summary(params, config_arg)
    if config_arg is not None and summary["mapping"] is None:
        raise EntryError(
            "signature",
            f"{name}() has no parameter '{config_arg}'; set config_arg "
            f"to the name of the parameter that takes the configuration mapping",
        )
    return {"kind": "callable", **summary}


def config_hint(accepts: list[str], required: list[str], given: Any, kind: str = "callable") -> str:
    """How to adapt an entry whose only parameter cannot take the sweep's names: ``config_arg``."""
    given = set(given)
    if len(accepts) == 1 and accepts == required and accepts[0] not in given and given:
        name = accepts[0]
        option = f"class: {{config_arg: {name}}}" if kind == "class" else f"config_arg: {name}"
        return f"; if '{name}' takes the whole configuration as one mapping, set {option} (or annotate it as dict)"
    return ""


def _bind(
    what: str, params: list[inspect.Parameter], values: dict[str, Any], config_arg: str | None = None
) -> tuple[tuple, dict]:
    mapping = mapping_param(params, config_arg)
    if mapping is not None:
        extra = {k: values[k] for k in SUPPLIED if k in values and k != mapping and _declares(params, k)}
        config = {k: v for k, v in values.items() if k not in extra}
        param = next(p for p in params if p.name == mapping)
        if param.kind is param.POSITIONAL_ONLY:
            return (config,), extra
        return (), {mapping: config, **extra}
    # without config_arg, the search above was the summary's own: not made twice per run
    summary = _summary_with(params, None) if config_arg is None else _summary(params)
    missing = [n for n in summary["required"] if n not in values]
    unexpected = [] if summary["open"] else [n for n in values if n not in summary["accepts"]]
    if missing or unexpected:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unexpected {', '.join(unexpected)}"] if unexpected else []
        )
        untaken = missing or [n for n in summary["accepts"] if n not in values]
        near = {n: c[0] for n in unexpected if (c := difflib.get_close_matches(n, untaken, n=1, cutoff=0.75))}
        raise EntryError(
            "signature",
            f"{what} does not fit the parameters ({'; '.join(parts)}); "
            + "".join(
                f"the sweep's '{n}' is close to the entry's '{a}': did you mean it? (or map it with the "
                f"project's rename: {{{n}: {a}}}); "
                for n, a in near.items()
            )
            + "add the missing ones to the sweep's 'parameters' or the project's "
            "'fixed', and drop or rename the unexpected ones"
            + config_hint(summary["accepts"], summary["required"], [v for v in values if v not in SUPPLIED]),
        )
    return (), values


def call_entry(
    target: Any,
    params: dict[str, Any],
    *,
    method: str = "run",
    constructor: list[str] | None = None,
    report: Any = None,
    config_arg: str | None = None,
    seed: int | None = None,
) -> Any:
    """Call a function with ``params`` (keywords, or one mapping), or build a class and call its method.

    The parameters go as one mapping to the parameter ``config_arg`` names (of the function, the
    constructor or the method), or to the only parameter when it is a mapping (see
    :func:`mapping_param`). ``report`` is passed as the keyword ``report`` when the function (or
    method) declares it: how a project hands over intermediate values without importing the
    orchestrator. ``seed`` goes alike to a declared ``seed`` (a swept or fixed ``seed`` wins).
    Exceptions raised by the project's code propagate unchanged; misfits raise
    ``EntryError``.
    """
    if not inspect.isclass(target):
        own = _params_of(target)
        if config_arg is not None:
            describe(target, method, config_arg)  # explains a config_arg the function lacks
        args, kwargs = _bind(
            f"{getattr(target, '__name__', target)}()", own, _supplied(own, params, report, seed), config_arg
        )
        return target(*args, **kwargs)
    func, meth_params = _method_of(target, method)
    ctor_params = _params_of(target)
    ctor_arg, meth_arg = _config_side(target, ctor_params, meth_params, method, config_arg)
    if config_arg is None:
        _explain_unadapted(target, _summary(ctor_params), _summary(meth_params), params)
    if ctor_arg is not None:
        ctor_values = dict(params)
    elif meth_arg is not None:
        ctor_values = {}
    elif constructor is not None:
        ctor_values = {k: v for k, v in params.items() if k in constructor}
    else:
        meth, ctor = _summary(meth_params), _summary(ctor_params)
        ctor_values = {
            k: v
            for k, v in params.items()
            if k not in meth["accepts"] and (k in ctor["accepts"] or (ctor["open"] and not meth["open"]))
        }
    if (
        seed is not None
        and SEED not in params
        and _declares(ctor_params, SEED)
        and not _declares(meth_params, SEED)
    ):
        ctor_values = {**ctor_values, SEED: seed}  # the constructor takes it: give it there
        seed = None
    meth_values = _supplied(
        meth_params, {k: v for k, v in params.items() if k not in ctor_values}, report, seed
    )
    args, kwargs = _bind(f"{target.__name__}()", ctor_params, ctor_values, ctor_arg)
    instance = target(*args, **kwargs)
    args, kwargs = _bind(f"{target.__name__}.{method}()", meth_params, meth_values, meth_arg)
    return getattr(instance, method)(*args, **kwargs)


def _explain_unadapted(cls: type, ctor: dict[str, Any], meth: dict[str, Any], params: dict[str, Any]) -> None:
    """A class whose one parameter (constructor or method) may take a mapping: say which option."""
    if ctor["open"] or meth["open"]:
        return
    accepts = [n for n in ctor["accepts"] + meth["accepts"] if n not in SUPPLIED]
    required = [n for n in ctor["required"] + meth["required"] if n not in SUPPLIED]
    given = [k for k in params if k not in SUPPLIED]
    hint = config_hint(accepts, required, given, "class")
    if hint:
        raise EntryError(
            "signature",
            f"{cls.__name__} does not fit the parameters (missing {accepts[0]}; unexpected "
            f"{', '.join(given)}){hint}",
        )


def _declares(params: list[inspect.Parameter], name: str) -> bool:
    return any(p.name == name and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params)


def _supplied(
    params: list[inspect.Parameter], values: dict[str, Any], report: Any, seed: int | None
) -> dict[str, Any]:
    """``values`` plus ``report`` and ``seed`` where the entry declares them and nothing else set them."""
    extra = {name: value for name, value in ((REPORT, report), (SEED, seed)) if value is not None}
    return {**values, **{k: v for k, v in extra.items() if k not in values and _declares(params, k)}}


# -- results ----------------------------------------------------------------------------------------


def to_jsonable(value: Any, depth: int = 0) -> Any:
    """Numbers, dicts, dataclasses, pydantic models, NamedTuples, numpy values and plain objects as JSON data."""
    if depth > 32:
        return None  # a cycle, or nesting no metric path would reach
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    elif callable(getattr(value, "model_dump", None)):
        value = value.model_dump()
    elif callable(getattr(value, "_asdict", None)):
        value = value._asdict()
    elif getattr(value, "shape", None) == () and callable(getattr(value, "item", None)):
        return to_jsonable(value.item(), depth + 1)  # numpy scalar
    elif callable(getattr(value, "tolist", None)):
        value = value.tolist()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v, depth + 1) for v in value]
    if hasattr(value, "__dict__"):
        return {k: to_jsonable(v, depth + 1) for k, v in vars(value).items() if not k.startswith("_")}
    return str(value)


def failure_record(exc: BaseException) -> dict[str, Any]:
    """A JSON description of an exception, enough for the worker to classify and explain it."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return {
        "ok": False,
        "stage": getattr(exc, "stage", "call"),
        "type": type(exc).__name__,
        "mro": [c.__name__ for c in type(exc).__mro__],
        "message": str(exc),
        "where": where,
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-3000:],
    }


class _Stopped(BaseException):
    """The worker asked this run to stop (its ``stop`` file exists): see :func:`_file_report`."""


def _file_report(progress: str, stop: str) -> Any:
    """``report`` in a subprocess: values go to the ``progress`` file, one JSON line each, which
    the worker reads; the worker creates the ``stop`` file when the run is to end early."""

    def report(value: Any) -> None:
        with open(progress, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(to_jsonable(value)) + "\n")
        if os.path.exists(stop):
            raise _Stopped

    return report


def main() -> None:
    request = json.load(sys.stdin)
    # As a script, sys.path[0] is this package's folder: replace it so that a project module
    # named like one of ours (spec.py, metrics.py) is found in the project, not here.
    sys.path[0] = request["root"]
    try:
        target = load_entry(request["entry"])
        if request.get("action") == "describe":
            reply: dict[str, Any] = {
                "ok": True,
                "value": describe(target, request.get("method", "run"), request.get("config_arg")),
            }
        else:
            report = _file_report(request["progress"], request["stop"]) if request.get("progress") else None
            raw = call_entry(
                target,
                request["params"],
                method=request.get("method", "run"),
                constructor=request.get("constructor"),
                report=report,
                config_arg=request.get("config_arg"),
                seed=request.get("seed"),
            )
            reply = {"ok": True, "value": to_jsonable(raw)}  # json writes and reads NaN/Infinity
    except _Stopped:
        reply = {"ok": False, "stage": "stopped"}
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - reported to the worker, which classifies it
        reply = failure_record(exc)
        traceback.print_exc()
    sys.stdout.flush()
    with open(request["reply"], "w", encoding="utf-8") as fh:
        json.dump(reply, fh)


if __name__ == "__main__":
    main()
