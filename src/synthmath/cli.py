"""Command line: look at generated data, and train/evaluate/query models outside Snakemake.

synthmath sample linalg op=eigenvalues dim=5 dist=laplace encoding=P1000 -n 3 --seed 0
synthmath generate linalg op=transpose dim=5 -n 10000 --seed 0 --out data/transpose
synthmath runs --config config.yaml
synthmath train --config config.yaml --study linalg_ops [--run RUN_ID]
synthmath evaluate results/linalg_ops/<run_id> [--test id]
synthmath predict results/linalg_ops/<run_id> -n 5
synthmath predict runs:/<mlflow run id> -n 5     (the model an MLflow run logged)
synthmath solve metabolic network.json [--json]
synthmath solve differential system.json [--json]
synthmath cas problem=prim_bwd,ode1,ode2 -n 500 --timeouts 5 10 30 60 --workers 2
synthmath predict results/metabolic_known/<run_id> network.json
synthmath known odebench [--id 56] [--json]     (benchmark ODE systems: odebench, strogatz)
synthmath baseline sindy odebench --noise 0,0.01 --subsample 0,0.5 [--out results.csv]
synthmath fit boolean table.csv [--run results/<study>/<run_id>] [--beam 10]
synthmath fit symreg points.csv --run results/<study>/<run_id> [--target y] [--plot fit.png]
synthmath fit odeformer trajectory.csv --run RUN [--time t] [--beam 10 | --sample 50 --temperature 0.1] [--plot fit.png]
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from synthmath.core.errors import CheckpointError, ConfigError, DataError, DecodeError


def parse_assignments(items: list[str]) -> dict:
    """``["op=add", "dim=5"]`` -> ``{"op": "add", "dim": 5}`` (values read as YAML scalars)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"{item!r}: expected key=value")
        key, value = item.split("=", 1)
        parsed = yaml.safe_load(value) if value else None
        out[key] = value if isinstance(parsed, dict | list) else parsed
    return out


def _task(args):
    from synthmath.tasks.registry import make_task

    return make_task(args.task, parse_assignments(args.params))


def describe_params(task_name: str) -> str:
    """The parameters of a task: name, type, default, allowed values, what it does, and
    whether it shapes the generated data (datasets are shared by runs that agree on those)."""
    from synthmath.tasks.registry import get_task_class

    cls = get_task_class(task_name)
    lines = [f"parameters of task {task_name!r} (key=value; * = shapes the generated data):"]
    for name, spec in cls.PARAMS.items():
        types = spec.type if isinstance(spec.type, tuple) else (spec.type,)
        kind = "/".join(t.__name__ for t in types if t is not object) or "any"
        head = f"  {'*' if spec.data else ' '} {name} ({kind}, default {spec.default!r})"
        lines.append(head)
        lines.append(f"      {spec.doc}")
        if spec.choices is not None:
            lines.append(f"      allowed: {', '.join(map(str, spec.choices))}")
    return "\n".join(lines) + "\n"


def cmd_sample(args) -> int:
    from synthmath.core.raw import take
    from synthmath.core.vocab import PAD

    if args.help_params:
        print(describe_params(args.task), end="")
        return 0
    task = _task(args)
    raw = task.sample(args.n, np.random.default_rng(args.seed))
    src, src_len = task.encode_src(raw)
    tgt, tgt_len = task.encode_tgt(raw)
    sv, tv = task.src_vocab(), task.tgt_vocab()
    for i in range(args.n):
        ex = task.to_json(take(raw, slice(i, i + 1)), 0)
        if src.ndim == 3:  # points inputs: one row of tokens per point
            points = src[i, : src_len[i]]
            ex["src"] = " | ".join(" ".join(sv.tokens[t] for t in p if t != PAD) for p in points)
        else:
            ex["src"] = " ".join(sv.tokens[t] for t in src[i, : src_len[i]])
        ex["tgt"] = " ".join(tv.tokens[t] for t in tgt[i, : tgt_len[i]])
        print(json.dumps(ex))
    return 0


def cmd_generate(args) -> int:
    from synthmath.runs.datasets import generate_dataset

    params = parse_assignments(args.params)
    _task(args)  # validate before writing anything
    paths = generate_dataset(args.task, params, args.n, args.seed, args.out, args.shards)
    print(f"wrote {args.n} examples in {len(paths)} shard(s) to {args.out}")
    return 0


def _plan(config_path: str):
    from synthmath.runs.config import load_plan

    return load_plan(config_path)


def cmd_runs(args) -> int:
    from synthmath.runs.artifacts import RunDir

    plan = _plan(args.config)
    for name, study in plan.studies.items():
        print(f"{name}  [{study.task}]  {study.description}")
        for run in study.runs:
            status = RunDir(run.dir).status()
            print(f"  {run.run_id:40s} {status:9s} {json.dumps(run.grid)}")
    tracking = plan.tracking_uri if plan.tracking_enabled else "off"
    print(f"{len(plan.runs)} runs, {len(plan.datasets)} datasets, tracking: {tracking}")
    return 0


def _select_runs(plan, study: str, run_id: str | None):
    if study not in plan.studies:
        raise ConfigError(f"--study: unknown study {study!r}; allowed: {', '.join(plan.studies)}")
    runs = plan.studies[study].runs
    if run_id:
        runs = [r for r in runs if r.run_id == run_id]
        if not runs:
            allowed = ", ".join(r.run_id for r in plan.studies[study].runs)
            raise ConfigError(f"--run: unknown run {run_id!r}; allowed: {allowed}")
    return runs


def cmd_train(args) -> int:
    """Train the selected runs; exit 75 (EX_TEMPFAIL) when a signal stopped training after a
    checkpoint, so a scheduler requeues the job and the same command resumes it."""
    from synthmath.core.errors import TrainingInterrupted
    from synthmath.jobs.train import train_run

    plan = _plan(args.config)
    for run in _select_runs(plan, args.study, args.run):
        print(f"training {run.study}/{run.run_id}", file=sys.stderr)
        try:
            summary = train_run(
                run,
                progress=not args.no_progress,
                threads=args.threads,
                system_metrics=plan.system_metrics,
            )
        except TrainingInterrupted as err:
            print(f"synthmath: {err}; rerun the same command to resume", file=sys.stderr)
            return err.exit_code
        print(
            json.dumps(
                {"run": str(run.dir), **{k: summary.get(k) for k in ("best_metric", "best_epoch")}}
            )
        )
    return 0


def cmd_evaluate(args) -> int:
    from synthmath.jobs.evaluate import evaluate_run
    from synthmath.runs.artifacts import RunDir

    run_dir = Path(args.run_dir)
    spec = RunDir(run_dir).read_spec()
    for test in args.test or list(spec.test_sets):
        summary = evaluate_run(run_dir, test, progress=not args.no_progress, threads=args.threads)
        metrics = ", ".join(
            f"{k}={'not finite' if v is None else f'{v:.3f}'}"
            for k, v in summary["metrics"].items()
        )
        print(f"{test}: n={summary['n']} {metrics}")
    return 0


def _require(task, capability: str, what: str) -> None:
    """A one-line error naming the tasks that can, when ``task`` does not declare ``capability``."""
    from synthmath.tasks.registry import task_names

    if capability not in type(task).capabilities:
        able = ", ".join(task_names(capability)) or "none"
        raise ConfigError(f"{what}: task {task.name!r} cannot; tasks that can: {able}")


def cmd_solve(args) -> int:
    from synthmath.tasks.registry import make_task

    task = make_task(args.task)
    _require(task, "solve_file", "solve")
    print(task.solve_file(args.file, as_json=args.json), end="")
    return 0


def cmd_known(args) -> int:
    from synthmath.tasks.regression.benchmarks import load_benchmark

    bench = load_benchmark(args.benchmark)
    systems = [bench.system(args.id)] if args.id is not None else bench.systems
    for s in systems:
        if args.json:
            equations = [
                {"infix": text, "prefix": " ".join(tree)}
                for text, tree in zip(s.infix, s.skeleton, strict=True)
            ]
            row = {"id": s.id, "name": s.name, "dim": s.dim, "equations": equations}
            row |= {"constants": list(s.constants), "chaotic": s.chaotic}
            row["initial_conditions"] = [list(y0) for y0 in s.initial_conditions]
            print(json.dumps(row, ensure_ascii=False, allow_nan=False))
            continue
        label = f"{s.key}: " if s.key else ""
        chaotic = " (chaotic)" if s.chaotic else ""
        print(f"{s.id:>3}  D={s.dim}  {label}{s.name}{chaotic}")
        print(f"     x' = {' | '.join(s.infix)}")
        constants = ", ".join(f"c_{k} = {v!r}" for k, v in enumerate(s.constants))
        print(
            f"     {constants or 'no constants'}; x(0) in {list(map(list, s.initial_conditions))}"
        )
    return 0


def _floats(text: str, option: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{option}: expected comma-separated numbers, got {text!r}") from None
    if not values or not all(0.0 <= v <= 1.0 for v in values):
        raise ConfigError(f"{option}: expected numbers in 0..1, got {text!r}")
    return values


def cmd_baseline(args) -> int:
    """A classic baseline on a benchmark: a table by noise x subsample, rows to CSV/JSON."""
    from synthmath.tasks.regression import evaluate_benchmarks as ev
    from synthmath.tasks.regression.baselines import MissingExtra

    noises, subsamples = _floats(args.noise, "--noise"), _floats(args.subsample, "--subsample")
    try:
        systems = [int(v) for v in args.systems.split(",")] if args.systems else None
    except ValueError:
        raise ConfigError(
            f"--systems: expected comma-separated ids, got {args.systems!r}"
        ) from None
    if args.max_time < 1:
        raise ConfigError(f"--max-time: expected at least 1 second, got {args.max_time}")
    if args.points is not None and args.points < 10:
        raise ConfigError(f"--points: expected at least 10, got {args.points}")
    start = time.perf_counter()

    def progress(row: dict) -> None:
        print(f"system {row['system']} noise {row['noise']} subsample "
              f"{row['subsample']}: R^2 {row['r2']:.4g} ({row['fit_time_s']:.2f} s)",
              file=sys.stderr)  # fmt: skip

    try:
        rows = ev.evaluate(
            args.method, args.benchmark, noises, subsamples, systems, args.seed,
            select=not args.fixed, n_points=args.points, max_time=args.max_time,
            progress=progress if args.progress else None,
        )  # fmt: skip
    except MissingExtra as err:
        raise ConfigError(str(err)) from None
    print(f"{args.method} on {args.benchmark}: {len(rows)} problems in "
          f"{time.perf_counter() - start:.1f} s (R^2 clipped at 0 in the means)")  # fmt: skip
    print(ev.format_table(ev.summarize(rows)))
    if args.out:
        paths = ev.write_results(rows, args.out)
        print(f"wrote {paths[0]} and {paths[1]}")
    return 0


def cmd_fit(args) -> int:
    """A formula for a table file: a trained model's (``--run``) or the task's exact solver."""
    from synthmath.tasks.registry import make_task

    if args.run is None:
        task = make_task(args.task)
        if "solve_file" not in type(task).capabilities and hasattr(task, "fit_file"):
            raise ConfigError(f"fit: task {task.name!r} needs a trained model: --run RUN_DIR")
        _require(task, "solve_file", "fit")
        print(task.solve_file(args.file, as_json=args.json), end="")
        return 0
    model, task, _ = _load_model(args.run)
    if task.name != args.task:
        raise ConfigError(f"fit: {args.run} is a model of task {task.name!r}, not {args.task!r}")
    _require(task, "predict_file", "fit")
    # task-specific options: (flag, value), keyed by the name fit_file takes
    extras = {
        "target": ("--target", args.target),
        "time_column": ("--time", args.time),
        "sampling": ("--sample", args.sample),
        "temperature": ("--temperature", args.temperature),
    }
    given = {key: value for key, (_, value) in extras.items() if value is not None}
    if not hasattr(task, "fit_file"):
        flags = [extras[key][0] for key in given] + (["--plot"] if args.plot else [])
        if flags:
            raise ConfigError(f"fit: {flags[0]} is not an option of task {task.name!r}")
        beam = 10 if args.beam is None else args.beam
        print(task.predict_file(model, args.file, beam_size=beam), end="")
        return 0
    accepted = inspect.signature(task.fit_file).parameters
    for key in given:
        if key not in accepted:
            raise ConfigError(f"fit: {extras[key][0]} is not an option of task {task.name!r}")
    if args.beam is not None:
        given["beam_size"] = args.beam
    fitted = task.fit_file(model, args.file, **given)
    print(fitted.text(), end="")
    if args.plot:
        from synthmath.report.fits import plot_file_fit

        plot_file_fit(fitted, args.plot)
        print(f"plot:       {args.plot}")
    return 0


def _load_model(where: str):
    """(model, task, run spec) of a run directory, or of the ``model/`` artifacts of an MLflow
    run (``runs:/<id>``), downloaded to a temporary folder and loaded the same way."""
    from synthmath.runs.artifacts import load_trained

    if not where.startswith("runs:/"):
        return load_trained(where)
    import tempfile

    from synthmath.track.mlflow import download_model

    with tempfile.TemporaryDirectory() as tmp:
        return load_trained(download_model(where, Path(tmp)))


def cmd_predict(args) -> int:
    from synthmath.core.raw import take
    from synthmath.eval.predict import predict_nbest
    from synthmath.tasks.registry import make_task
    from synthmath.train.batches import EncodedSet

    model, task, spec = _load_model(args.run_dir)
    first = args.params[0] if args.params else None
    if first is not None and ("=" not in first or Path(first).is_file()):  # predict RUN FILE
        _require(task, "predict_file", f"predict on a file ({args.params[0]})")
        if len(args.params) > 1:
            raise ConfigError(f"predict: a problem file takes no overrides, got {args.params[1:]}")
        print(task.predict_file(model, args.params[0], beam_size=args.beam), end="")
        return 0
    if args.params:
        task = make_task(spec.task, {**task.params, **parse_assignments(args.params)})
    raw = task.sample(args.n, np.random.default_rng(args.seed))
    nbest = predict_nbest(model, task, EncodedSet(task, raw), beam_size=args.beam)
    scores = task.score(raw, nbest)
    decodes = "decode_answer" in type(task).capabilities
    for i, hyps in enumerate(nbest):
        ex = task.to_json(take(raw, slice(i, i + 1)), 0)
        print(f"--- example {i}")
        print(f"problem:   {json.dumps(ex['problem'])}")
        print(f"exact:     {json.dumps(ex['answer'])}")
        for k, pred in enumerate(hyps):
            label = "predicted:" if k == 0 else f"beam {k + 1}:".ljust(10)
            print(f"{label} {_shown(task, pred) if decodes else ' '.join(pred)}")
            print("scores:    " + ", ".join(f"{m}={_fmt(v[i, k])}" for m, v in scores.items()))
    return 0


def _shown(task, pred) -> str:
    """A predicted answer as JSON, or why it does not decode."""
    try:
        return json.dumps(_plain(task.decode_answer(pred)), default=str)
    except DecodeError as err:
        return json.dumps(f"(does not decode: {err})")


def _plain(value):
    """Arrays (also inside dicts) as nested lists, for printing as JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _fmt(v) -> str:
    return str(bool(v)) if isinstance(v, np.bool_ | bool) else f"{float(v):.4g}"


def cmd_cas(args) -> int:
    """SymPy on symbolic test problems at several timeouts (the paper's Table 8 layout)."""
    from synthmath.core.files import write_json
    from synthmath.tasks.symbolic.cas import run_cas, table

    if args.data:
        from synthmath.runs.datasets import load_dataset_dir

        raw, meta = load_dataset_dir(args.data)
        if meta.get("task") != "symbolic":
            raise DataError(f"{args.data}: a dataset of task {meta.get('task')!r}, not symbolic")
        if args.n:
            raw = {k: v[: args.n] for k, v in raw.items()}
    else:
        params = {"problem": "prim_bwd,ode1,ode2", **parse_assignments(args.params)}
        from synthmath.tasks.registry import make_task

        task = make_task("symbolic", params)
        raw = task.sample(args.n or 20, np.random.default_rng(args.seed))
    result = run_cas(raw, args.timeouts, workers=args.workers)
    print(table(result))
    if args.out:
        write_json(args.out, result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="synthmath", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("sample", help="print generated examples as JSON lines")
    s.add_argument("task")
    s.add_argument("params", nargs="*", help="task parameters as key=value")
    s.add_argument("-n", type=int, default=5)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--help-params", action="store_true", help="list the task's parameters and exit")
    s.set_defaults(fn=cmd_sample)

    g = sub.add_parser("generate", help="write a dataset as the workflow's generate jobs do")
    g.add_argument("task")
    g.add_argument("params", nargs="*")
    g.add_argument("-n", type=int, required=True)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--shards", type=int, default=1)
    g.add_argument("--out", required=True)
    g.set_defaults(fn=cmd_generate)

    c = sub.add_parser("cas", help="SymPy on symbolic test problems at several timeouts")
    c.add_argument("params", nargs="*", help="symbolic task parameters as key=value")
    c.add_argument("-n", type=int, default=0, help="problems (default: 20, or all of --data)")
    c.add_argument("--seed", type=int, default=12345)
    c.add_argument("--data", help="a symbolic dataset folder (shard-*.npz) instead of sampling")
    c.add_argument("--timeouts", type=float, nargs="+", default=[5, 10, 30, 60])
    c.add_argument("--workers", type=int, default=1, help="solver processes")
    c.add_argument("--out", help="write the result as JSON")
    c.set_defaults(fn=cmd_cas)

    r = sub.add_parser("runs", help="list the studies and runs a config expands to")
    r.add_argument("--config", default="config.yaml")
    r.set_defaults(fn=cmd_runs)

    t = sub.add_parser(
        "train", help="train the runs of a study (no Snakemake; data made in memory)"
    )
    t.add_argument("--config", default="config.yaml")
    t.add_argument("--study", required=True)
    t.add_argument("--run", default=None, help="one run id (default: every run of the study)")
    t.add_argument("--threads", type=int, default=0)
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(fn=cmd_train)

    e = sub.add_parser("evaluate", help="evaluate a trained run on its test sets")
    e.add_argument("run_dir")
    e.add_argument("--test", action="append", help="test set name (repeatable; default all)")
    e.add_argument("--threads", type=int, default=0)
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(fn=cmd_evaluate)

    v = sub.add_parser(
        "solve",
        help="solve a problem file exactly (tasks that can: metabolic network JSON, "
        "differential system JSON)",
    )
    v.add_argument("task")
    v.add_argument("file")
    v.add_argument("--json", action="store_true", help="print the solution as one JSON object")
    v.set_defaults(fn=cmd_solve)

    k = sub.add_parser("known", help="list the benchmark ODE systems (odebench, strogatz)")
    k.add_argument("benchmark", help="odebench or strogatz")
    k.add_argument("--id", type=int, help="one system")
    k.add_argument("--json", action="store_true", help="one JSON object per system")
    k.set_defaults(fn=cmd_known)

    b = sub.add_parser(
        "baseline", help="a classic baseline (sindy, pysindy, operon) on a benchmark"
    )
    b.add_argument("method", help="sindy, pysindy (ODE systems) or operon (functions)")
    b.add_argument("benchmark", help="strogatz or odebench (operon: strogatz or feynman)")
    b.add_argument("--noise", default="0", help="noise levels g, comma-separated")
    b.add_argument("--subsample", default="0", help="fractions r of dropped points")
    b.add_argument(
        "--systems", help="system ids (operon: problem numbers 1..P), comma-separated (default all)"
    )
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--fixed", action="store_true", help="SINDy defaults, no grid search")
    b.add_argument("--points", type=int, help="most points per trajectory (the task's max_points)")
    b.add_argument("--max-time", type=int, default=10, help="operon: seconds per problem")
    b.add_argument("--out", help="write the rows as CSV and JSON (same stem)")
    b.add_argument("--progress", action="store_true", help="one line per problem on stderr")
    b.set_defaults(fn=cmd_baseline)

    q = sub.add_parser("predict", help="show a trained model's answers beside the exact ones")
    q.add_argument("run_dir", help="a run directory, or runs:/<id>: the model an MLflow run logged")
    q.add_argument(
        "params",
        nargs="*",
        help="task parameter overrides, e.g. dist=laplace; or one problem file (tasks that "
        "can: metabolic network .json)",
    )
    q.add_argument("-n", type=int, default=5)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--beam", type=int, default=1)
    q.set_defaults(fn=cmd_predict)

    f = sub.add_parser(
        "fit",
        help="a formula for a table file (tasks that can: boolean, a 0/1 CSV; symreg, a CSV "
        "of points with a header; odeformer, a CSV trajectory with a header)",
    )
    f.add_argument("task")
    f.add_argument("file")
    f.add_argument("--run", help="a trained run directory (or runs:/<id>); default: exact fit")
    f.add_argument(
        "--beam", type=int, help="beam size (default 10; odeformer: 50 samples unless given)"
    )
    f.add_argument("--json", action="store_true", help="exact fit: print one JSON object")
    f.add_argument("--target", help="symreg: the output column (default: y, else the last)")
    f.add_argument("--time", help="odeformer: the time column (default: t, else the first)")
    f.add_argument("--sample", type=int, help="odeformer: decode N samples (default 50)")
    f.add_argument("--temperature", type=float, help="odeformer: sampling temperature (0.1)")
    f.add_argument(
        "--plot",
        help="symreg: predicted vs observed (and y(x) in 1-D); odeformer: the data and the "
        "fitted trajectory per component; written here",
    )
    f.set_defaults(fn=cmd_fit)
    return p


def main(argv: list[str] | None = None) -> int:
    from synthmath.core.logs import setup_logging

    args = build_parser().parse_args(argv)
    setup_logging()
    try:
        return args.fn(args)
    except (ConfigError, DataError, CheckpointError, FileNotFoundError, KeyError) as err:
        logging.getLogger("synthmath").debug("error", exc_info=True)
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"synthmath: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
