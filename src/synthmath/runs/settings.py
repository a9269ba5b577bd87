"""Every setting of a config file, declared once (type, default, allowed values, doc).

The model and training settings live in their own layers (:class:`ModelSettings` in
:mod:`synthmath.nn.config`, :class:`TrainConfig` in :mod:`synthmath.train.config`); this module
adds the data, evaluation, report, tracking, study, CAS-baseline and baseline settings and composes them into the
config file's shape. ``workflow/schemas/config.schema.yaml`` is generated from these classes
(tests check that the committed file is up to date):

    python -m synthmath.runs.settings --schema > workflow/schemas/config.schema.yaml

Task parameters (``params``, ``test_sets``) are declared by each task (``Task.PARAMS``).
"""

from __future__ import annotations

import argparse
import copy
import functools
import sys
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, TypeAdapter

from synthmath.core.settings import settings_class
from synthmath.eval.precision import EVAL_PRECISIONS
from synthmath.nn.config import ModelSettings
from synthmath.train.config import TrainConfig

#: where every output goes unless the config's ``results:`` says otherwise
DEFAULT_RESULTS = "results"


#: sections of a study (and of ``defaults``) that hold settings, in run-spec order
SECTIONS = ("model", "training", "data", "eval")

_SECTION_KEY = r"(params|model|training|data)\.[A-Za-z0-9_]+"
GRID_KEY = rf"^{_SECTION_KEY}$"
WHEN_KEY = rf"^({_SECTION_KEY}|variant)$"


def _keys(pattern: str) -> dict:
    """Schema of a mapping whose keys match ``pattern`` (pydantic does not emit it)."""
    return {"propertyNames": {"pattern": pattern}}


Dotted = Annotated[
    dict[Annotated[str, Field(pattern=GRID_KEY)], Any],
    Field(
        description="Dotted keys into the run spec (params.X, model.X, ...) -> value.",
        json_schema_extra=_keys(GRID_KEY),
    ),
]


def _doc(text: str, **constraints) -> Any:
    return Field(description=text, **constraints)


@settings_class
class DataSettings:
    """Generated data (``data:``)."""

    train_size: Annotated[int, _doc("Stored training examples.", ge=1)] = 100_000
    shards: Annotated[int, _doc("Generation jobs per dataset.", ge=1)] = 1
    valid_size: Annotated[int, _doc("Fixed, seeded validation set.", ge=1)] = 500
    seed: Annotated[int, _doc("Training data seed (validation: seed + 1, priming: seed + 2).")] = 0
    online: Annotated[
        bool, _doc("Draw training batches from the generator instead of a stored set.")
    ] = False
    dedupe: Annotated[
        bool,
        _doc(
            "Drop repeated training examples (same encoded input and answer), keeping the first; "
            "the symbolic papers deduplicate their training files. The training log counts "
            "them. Needs online: false.",
        ),
    ] = False
    prime_size: Annotated[
        int,
        _doc(
            "Train set priming (Jelassi et al. 2023): this many extra examples drawn with the "
            "run's task parameters overridden by prime_params, mixed into the stored training "
            "set. 0 = no priming. Needs online: false.",
            ge=0,
        ),
    ] = 0
    prime_params: Annotated[
        dict[str, Any],
        _doc("Generator parameter overrides of the priming examples, e.g. {min_digits: 35}."),
    ] = Field(default_factory=dict)


#: the default of ``eval.precision``; a run spec leaves it out (spec files, and so the train
#: jobs' params, as before the setting)
DEFAULT_EVAL_PRECISION = "fp32"


@settings_class
class EvalSettings:
    """Evaluation on the test sets (``eval:``)."""

    size: Annotated[int, _doc("Examples per test set.", ge=1)] = 1000
    seed: Annotated[int, _doc("Test set seed (shared by all runs).")] = 12345
    batch_size: Annotated[int, _doc("Examples decoded together.", ge=1)] = 256
    beam_size: Annotated[int, _doc("Beam width; 1 = greedy.", ge=1)] = 1
    beam_sizes: Annotated[
        list[Annotated[int, Field(ge=1)]],
        _doc(
            "More beam widths, each decoding the test set again: adds <metric>_beam<b> (solved "
            "if any of the b hypotheses is right) and rank_<main metric>_beam<b>."
        ),
    ] = Field(default_factory=list)
    drop_train_overlap: Annotated[
        bool,
        _doc(
            "Drop the test examples whose input also occurs in the training set (the symbolic "
            "papers' protocol; the summary counts them)."
        ),
    ] = False
    precision: Annotated[
        Literal[EVAL_PRECISIONS],
        _doc(
            "Weights the test sets are decoded with (a bf16 copy of the trained model; "
            "log-probabilities and argmax stay fp32). auto: bf16 on CUDA and on CPUs with "
            "native bf16 (AVX512-BF16, AMX), else fp32. fp32 results are bit-identical and "
            "portable across CPUs; bf16 may change some answers (mostly in a last digit), "
            "rarely whether they are right (README, Studies and configs)."
        ),
    ] = DEFAULT_EVAL_PRECISION


@settings_class
class ReportLabels:
    """Axis names in the figure, for what they show (default: the key's last part, underscores
    as spaces)."""

    rows: Annotated[
        str | None, _doc("lines: the legend; bars, threshold: the x-axis; heatmap: the y-axis.")
    ] = None
    cols: Annotated[
        str | None, _doc("lines, heatmap: the x-axis; bars: the legend; threshold: the y-axis.")
    ] = None
    metric: Annotated[str | None, _doc('The value axis, e.g. "exact-match accuracy (%)".')] = None


@settings_class
class ReportSettings:
    """The study's table and figure (``report:``). rows/cols are grid keys, ``variant``,
    ``test_set`` or a breakdown of the task (``size``; metabolic also ``network``, ``family``).
    kind threshold: per row, the smallest numeric cols value whose metric on ``test_set``
    reaches ``threshold``. kind curves: the table as for a heatmap, the figure the runs' main
    validation metric against the training step (one line per rows value, one panel per cols
    value). kind robustness: rows, cols and panels are task parameters of the test sets (e.g.
    subsample, noise, benchmark), the baselines (``baselines:``) drawn beside the model. A
    study with baselines may use ``method`` as an axis; otherwise its table shows the model
    and table.md adds each baseline's tables and the inference times."""

    kind: Annotated[
        Literal["bars", "heatmap", "lines", "threshold", "curves", "robustness"],
        _doc(
            "bars, heatmap, lines (x = cols), threshold, curves (validation metric vs step), "
            "robustness (metric vs the test-set parameter cols, one line per value of the "
            "parameter rows, one panel per value of panels, per method: model and baselines)."
        ),
    ] = "bars"
    rows: Annotated[str | None, _doc("Table rows; null: the first grid key.")] = None
    cols: Annotated[str, _doc("Table columns.")] = "test_set"
    metric: Annotated[
        str | None,
        _doc(
            "null: the task's main metric (e.g. acc_tol5, acc); also a training milestone: "
            "steps_to_acc90, steps_to_acc99 (first step whose main validation metric reaches "
            "the level; 'not reached' otherwise), final_loss (last epoch's training loss)."
        ),
    ] = None
    more_metrics: Annotated[
        list[str],
        _doc("Further metrics, one more table each in table.md (same rows, cols, seeds)."),
    ] = Field(default_factory=list)
    seeds: Annotated[
        str | None, _doc("Grid key aggregated in every cell (median, [min, max] range).")
    ] = None
    panels: Annotated[
        str | None, _doc("robustness: the test-set parameter of the panels (null: benchmark).")
    ] = None
    logx: Annotated[bool, _doc("lines: numeric columns on a log x-axis.")] = False
    test_set: Annotated[str | None, _doc("threshold: the test set the metric is read on.")] = None
    threshold: Annotated[float, _doc("threshold: the accuracy to reach.", ge=0, le=1)] = 0.9
    title: Annotated[str | None, _doc("Figure title (wrapped to the figure width).")] = None
    labels: Annotated[ReportLabels | None, _doc("Axis names in the figure.")] = None
    paper: Annotated[str | None, _doc("What the paper reports for this study (README).")] = None
    name: Annotated[
        str | None,
        _doc(
            "In a list of reports, every report after the first: its files are "
            "table-<name>.csv/.md and figure-<name>.png (the first writes table.md, figure.png).",
            pattern=r"^[A-Za-z0-9_-]+$",
        ),
    ] = None


@settings_class
class TrackingSettings:
    """MLflow tracking (``tracking:``)."""

    uri: Annotated[
        str | None,
        _doc("null: $MLFLOW_TRACKING_URI if set, else sqlite:///<results>/mlflow.db."),
    ] = None
    enabled: Annotated[
        bool, _doc("Log runs to MLflow (the workflow's JSON files are written either way).")
    ] = True
    system_metrics: Annotated[
        bool,
        _doc(
            "Log CPU, memory and GPU use while training as system/* metrics (MLflow's monitor; "
            "every $MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL s, default 10)."
        ),
    ] = False


@settings_class
class InitFrom:
    """Start each run from the trained model of a run of another study."""

    study: Annotated[str, _doc("The other study.")]
    match: Annotated[dict[str, Any], _doc("Grid values selecting its run.")] = Field(
        default_factory=dict
    )


@settings_class
class Override:
    """For runs whose grid values match ``when`` (a value or a list per key), apply ``set``."""

    when: Annotated[
        dict[Annotated[str, Field(pattern=WHEN_KEY)], Any],
        _doc("Grid key or 'variant' -> value or list.", json_schema_extra=_keys(WHEN_KEY)),
    ]
    set: Dotted


@settings_class
class Sections:
    """Settings applied to every study; a study's own settings override them key by key."""

    model: ModelSettings = Field(default_factory=ModelSettings)
    training: TrainConfig = Field(default_factory=TrainConfig)
    data: DataSettings = Field(default_factory=DataSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)


@settings_class
class Study(Sections):
    """A task, fixed parameters and a grid of varied values: every combination is one run."""

    task: Annotated[str, _doc("Registered task name (linalg, ...).", min_length=1)]
    description: Annotated[str, _doc("One line shown in reports and in MLflow.")] = ""
    enabled: Annotated[bool, _doc("false keeps a study in the file without running it.")] = True
    params: Annotated[dict[str, Any], _doc("Fixed task parameters (checked by the task).")] = Field(
        default_factory=dict
    )
    grid: Annotated[
        dict[
            Annotated[str, Field(pattern=GRID_KEY)],
            Annotated[list[Any], Field(min_length=1, json_schema_extra={"uniqueItems": True})],
        ],
        _doc(
            "Varied values: dotted key (params.X, model.X, training.X, data.X) -> values.",
            json_schema_extra=_keys(GRID_KEY),
        ),
    ] = Field(default_factory=dict)
    variants: Annotated[
        dict[str, Dotted],
        _doc(
            "Named settings that do not fit a product grid; runs are grid x variants.",
            json_schema_extra=_keys(r"^[A-Za-z0-9_.+-]+$"),
        ),
    ] = Field(default_factory=dict)
    overrides: Annotated[list[Override], _doc("Conditional settings.")] = Field(
        default_factory=list
    )
    test_sets: Annotated[
        dict[str, dict[str, Any]],
        _doc(
            "Test set name -> task parameter overrides ({} = in distribution).",
            json_schema_extra=_keys(r"^[A-Za-z0-9_-]+$"),
        ),
    ] = Field(default_factory=lambda: {"id": {}})
    init_from: Annotated[InitFrom | None, _doc("Start from a run of another study.")] = None
    report: Annotated[
        ReportSettings | list[ReportSettings],
        _doc(
            "The study's table and figure, or a list of reports of the same evaluations: the "
            "first is the study's table.md / figure.png, each further one has a name."
        ),
    ] = Field(default_factory=ReportSettings)


#: the problems the CAS baseline may solve (prim_fwd too, though SymPy built it)
CAS_PROBLEMS = ("prim_fwd", "prim_bwd", "prim_ibp", "ode1", "ode2")


@settings_class
class CasSettings:
    """The computer-algebra baseline (``cas:``): SymPy solves the test problems of one symbolic
    study at several timeouts (the paper's Tables 3 and 8), beside the model's accuracies."""

    study: Annotated[
        str, _doc("A symbolic study: the CAS reads its test sets (no new data).", min_length=1)
    ]
    test_set: Annotated[str, _doc("The study's test set the CAS solves.", min_length=1)] = "id"
    size: Annotated[
        int, _doc("Problems of each type solved: the first `size` of each test set.", ge=1)
    ] = 500
    timeouts: Annotated[
        list[Annotated[float, Field(gt=0)]],
        _doc(
            "Seconds per problem; one SymPy run at the largest gives every column.",
            min_length=1,
            json_schema_extra={"uniqueItems": True},
        ),
    ] = Field(default_factory=lambda: [5.0, 10.0, 30.0, 60.0])
    workers: Annotated[int, _doc("SymPy worker processes (the job's threads).", ge=1)] = 1
    problems: Annotated[
        list[Literal[CAS_PROBLEMS]],
        _doc(
            "Test sets solved, by their params.problem (the study's runs without one are "
            "skipped). prim_fwd is left out by default: SymPy built it.",
            min_length=1,
            json_schema_extra={"uniqueItems": True},
        ),
    ] = Field(default_factory=lambda: ["prim_bwd", "ode1", "ode2"])


#: the classic baselines a study may run (task: sindy, pysindy -> odeformer; operon -> symreg)
BASELINE_METHODS = ("sindy", "pysindy", "operon")


@settings_class
class BaselineSettings:
    """Classic baselines of one study (``baselines: {<study>: ...}``): each method answers the
    study's test sets (the very shards its evaluate jobs read) and the task scores it as it
    scores the model; the study report shows them beside the model."""

    methods: Annotated[
        list[Literal[BASELINE_METHODS]],
        _doc(
            "sindy, pysindy (task odeformer), operon (task symreg); pysindy and operon need "
            "the extra `baselines`.",
            min_length=1,
            json_schema_extra={"uniqueItems": True},
        ),
    ]
    test_sets: Annotated[
        Literal["all"] | list[str],
        _doc("The study's test sets answered: all, or a list of their names."),
    ] = "all"
    size: Annotated[
        int | None,
        _doc("Answer only the first `size` examples of each test set (null: all).", ge=1),
    ] = None
    max_time: Annotated[int, _doc("operon: seconds per problem (a wall cap).", ge=1)] = 10
    seed: Annotated[int, _doc("operon's random seed.", ge=0)] = 0
    select: Annotated[
        bool, _doc("sindy, pysindy: choose the hyperparameters on the last 30% of the points.")
    ] = True


@settings_class
class ConvitSettings:
    """ConViT and T-CNN on scikit-learn's 8 x 8 digits (``theory.convit``; spec dynamics.md
    section 4): a tiny ViT against ConViT (GPSA in its first layers) on fractions of the
    training pool, and a small CNN's second convolution turned into attention, fine-tuned."""

    fractions: Annotated[
        list[Annotated[float, Field(gt=0, le=1)]],
        _doc(
            "Fractions of the training pool (1,198 images; nested subsets per seed).",
            min_length=1,
            json_schema_extra={"uniqueItems": True},
        ),
    ] = Field(default_factory=lambda: [0.05, 0.1, 0.25, 0.5, 1.0])
    seeds: Annotated[int, _doc("Seeds per (model, fraction).", ge=1)] = 3
    steps: Annotated[
        int, _doc("Training steps (batches of 32) of each ViT/ConViT run, any fraction.", ge=1)
    ] = 500
    gpsa_layers: Annotated[
        int, _doc("ConViT: GPSA in the first gpsa_layers of the 2 encoder layers.", ge=1, le=2)
    ] = 1
    tcnn_fraction: Annotated[
        float, _doc("T-CNN: fraction of the pool the CNN and the hybrids train on.", gt=0, le=1)
    ] = 0.25
    tcnn_pretrain_steps: Annotated[int, _doc("T-CNN: CNN training steps.", ge=1)] = 1500
    tcnn_finetune_steps: Annotated[
        int, _doc("T-CNN: fine-tuning steps of the CNN and of each hybrid.", ge=1)
    ] = 600
    tcnn_gates: Annotated[
        list[float],
        _doc(
            "T-CNN: gate logits lambda of the hybrids, one hybrid each (20: sigmoid = 1 in "
            "float32, the exact conversion; smaller ones let content attention in).",
            min_length=1,
            json_schema_extra={"uniqueItems": True},
        ),
    ] = Field(default_factory=lambda: [20.0, 3.0])


@settings_class
class TheorySettings:
    """The theory toys' figures (``theory:``, spec dynamics.md): the random-features phase
    space, the p-spin learning-rate schedules, the DFA align-then-memorise curves and
    degeneracy breaking, and the ConViT / T-CNN digits studies, written to
    ``<results>/theory/`` (no workflow runs)."""

    d: Annotated[int, _doc("Random features: input dimension of the simulated points.", ge=2)] = 100
    grid: Annotated[int, _doc("Random features: analytic points per axis.", ge=2)] = 20
    pspin_n: Annotated[int, _doc("p-spin: number of spins (N^3 couplings).", ge=2, le=400)] = 150
    steps: Annotated[int, _doc("p-spin: Langevin steps per schedule.", ge=1)] = 3000
    dfa_epochs: Annotated[
        int, _doc("DFA toys (align, then memorise; degeneracy breaking): epochs of each run.", ge=1)
    ] = 400
    dfa_restarts: Annotated[
        int, _doc("DFA degeneracy breaking: random restarts of each rule.", ge=1)
    ] = 8
    convit: ConvitSettings = Field(default_factory=ConvitSettings)


@settings_class
class Config:
    """A config file: studies to run, shared defaults, tracking and where results go."""

    studies: Annotated[
        dict[str, Study],
        _doc(
            "Study name -> study. Names are letters, digits and underscores.",
            min_length=1,
            json_schema_extra=_keys(r"^[A-Za-z][A-Za-z0-9_]*$"),
        ),
    ]
    results: Annotated[
        str,
        _doc("Folder of every output, relative to the directory Snakemake runs in.", min_length=1),
    ] = DEFAULT_RESULTS
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    defaults: Sections = Field(default_factory=Sections)
    cas: Annotated[
        CasSettings | None,
        _doc(
            "The SymPy baseline of a symbolic study (absent or null: none).",
            # no schema default: a validator filling defaults would fill null's object branch
            json_schema_extra=lambda schema: schema.pop("default", None),
        ),
    ] = None
    baselines: Annotated[
        dict[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")], BaselineSettings] | None,
        _doc(
            "Study name -> its classic baselines (absent or null: none).",
            json_schema_extra=lambda schema: schema.pop("default", None),
        ),
    ] = None
    theory: Annotated[
        TheorySettings | None,
        _doc(
            "Figures of the theory toys (absent or null: none).",
            json_schema_extra=lambda schema: schema.pop("default", None),
        ),
    ] = None


# ---- the JSON schema -----------------------------------------------------------------------
_MAPPINGS = ("properties", "$defs", "patternProperties")


def _clean(node: Any, in_mapping: bool = False) -> Any:
    """Drop pydantic's generated titles (not a property named ``title``)."""
    if isinstance(node, list):
        return [_clean(v) for v in node]
    if not isinstance(node, dict):
        return node
    return {
        k: _clean(v, k in _MAPPINGS and not in_mapping)
        for k, v in node.items()
        if in_mapping or k != "title"
    }


@functools.cache
def _schema() -> dict:
    generated = TypeAdapter(Config).json_schema()
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **_clean(generated),
        "title": "synthmath workflow configuration",
        "description": (
            "Generated from synthmath.runs.settings (python -m synthmath.runs.settings "
            "--schema); do not edit. An unknown key, a wrong type or an unknown value stops the "
            "workflow before any job starts. Task parameters (params, test_sets) are checked "
            "by the task itself (synthmath sample TASK --help-params)."
        ),
    }
    return schema


def config_schema() -> dict:
    """The JSON schema of a config file (a fresh copy)."""
    return copy.deepcopy(_schema())


def schema_yaml() -> str:
    """The schema as the YAML text committed in ``workflow/schemas/config.schema.yaml``."""
    header = "# GENERATED by `python -m synthmath.runs.settings --schema`; do not edit.\n"
    return header + yaml.safe_dump(config_schema(), sort_keys=False, width=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synthmath.runs.settings")
    parser.add_argument("--schema", action="store_true", help="print the config JSON schema")
    args = parser.parse_args(argv)
    if args.schema:
        sys.stdout.write(schema_yaml())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
