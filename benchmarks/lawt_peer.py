"""LAWT, the public code of "Linear algebra with transformers", driven in this process.

LAWT (facebookresearch/LAWT, commit 50bba04, CC BY-NC 4.0) is not part of synthmath and none
of its code is copied here: the user clones it, passes its path, and this module imports its
own modules from that tree (``train.py`` for the parser, ``src.*`` for the environment, the
models and the trainer). Two one-line incompatibilities with Python 3.11 and torch 2.x are
fixed at run time, in memory, without touching the tree:

- ``src/optim.py`` calls ``inspect.getargspec`` (removed in Python 3.11): its module global
  ``inspect`` is replaced by a namespace whose ``getargspec`` is ``inspect.getfullargspec``;
- ``TransformerModel.generate`` masks with ``unfinished_sents.byte()`` (a uint8 mask, an error
  in torch 2.x): the method is recompiled from LAWT's own source with ``.byte()`` replaced by
  ``.bool()`` (the one occurrence) in that module's namespace.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import io
import sys
import tempfile
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

REQUIRED = ("train.py", "src/trainer.py", "src/model/transformer.py", "src/envs/numeric.py")


def check_tree(path: Path) -> None:
    """A one-line error unless ``path`` looks like a LAWT checkout."""
    missing = [name for name in REQUIRED if not (path / name).is_file()]
    if missing:
        raise SystemExit(f"--lawt {path}: not a LAWT tree (missing {', '.join(missing)})")


def load(path: Path) -> types.SimpleNamespace:
    """Import LAWT from ``path`` (its ``src`` package and ``train.py``), with the two fixes."""
    path = path.resolve()
    check_tree(path)
    if "src" in sys.modules and not str(getattr(sys.modules["src"], "__file__", "")).startswith(
        str(path)
    ):
        raise RuntimeError("another package named 'src' is already imported")
    sys.path.insert(0, str(path))
    errors = np.geterr()
    try:
        spec = importlib.util.spec_from_file_location("lawt_train", path / "train.py")
        train = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(train)  # imports src.*; sets np.seterr(all="raise")
    finally:
        np.seterr(**errors)  # LAWT's global setting would leak into synthmath
    import src.dataset
    import src.model
    import src.model.transformer as transformer
    import src.optim
    import src.trainer
    import src.utils

    import src  # noqa: F401  (LAWT's package, found first on sys.path)

    if not str(Path(src.__file__).resolve()).startswith(str(path)):
        raise RuntimeError(f"imported {src.__file__}, not LAWT's src package")
    _fix_optim(src.optim)
    _fix_generate(transformer)
    src.utils.CUDA = False
    return types.SimpleNamespace(train=train, src=src, transformer=transformer)


def _fix_optim(optim: types.ModuleType) -> None:
    """``inspect.getargspec`` -> ``inspect.getfullargspec`` for LAWT's optim module only."""
    if getattr(optim.inspect, "getargspec", None) is inspect.getfullargspec:
        return
    optim.inspect = types.SimpleNamespace(getargspec=inspect.getfullargspec)


def _fix_generate(transformer: types.ModuleType) -> None:
    """Recompile ``TransformerModel.generate`` with ``.byte()`` -> ``.bool()``."""
    cls = transformer.TransformerModel
    if getattr(cls.generate, "_bool_mask_fix", False):
        return
    source = textwrap.dedent(inspect.getsource(cls.generate))
    if source.count("unfinished_sents.byte()") != 1:
        raise RuntimeError("LAWT's TransformerModel.generate is not the expected version")
    source = source.replace("unfinished_sents.byte()", "unfinished_sents.bool()")
    namespace: dict[str, Any] = {}
    code = compile(source, inspect.getsourcefile(cls.generate), "exec")
    exec(code, transformer.__dict__, namespace)  # LAWT's own function, one token changed
    fixed = namespace["generate"]
    fixed._bool_mask_fix = True
    cls.generate = fixed


@dataclass
class Peer:
    """A LAWT environment, its parameters and freshly built encoder/decoder."""

    lawt: types.SimpleNamespace
    params: Any
    env: Any
    modules: dict[str, torch.nn.Module]

    @property
    def n_words(self) -> int:
        return self.env.n_words


def build(lawt: types.SimpleNamespace, args: list[str], dump_path: str, seed: int = 0) -> Peer:
    """LAWT's parameters parsed from ``args`` (as train.py would), its env and modules (CPU)."""
    base = ["--cpu", "true", "--num_workers", "0", "--env_base_seed", str(seed)]
    base += ["--dump_path", dump_path, "--exp_name", "bench", "--exp_id", "bench"]
    params = lawt.train.get_parser().parse_args(base + args)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the (non-)SLURM setup
        lawt.src.slurm.init_distributed_mode(params)
    lawt.train.check_model_params(params)
    env = lawt.src.envs.build_env(params)
    env.rng = np.random.RandomState(seed)
    torch.manual_seed(seed)
    modules = lawt.src.model.build_modules(env, params)
    return Peer(lawt, params, env, modules)


def batches(peer: Peer, n_batches: int, batch_size: int) -> list[tuple]:
    """Batches of LAWT's generator and encoder, collated by its own dataset code."""
    dataset = peer.lawt.src.dataset.EnvDataset(
        peer.env, peer.params.tasks[0], train=True, params=peer.params, path=None, type="train"
    )
    out = []
    with np.errstate(all="raise"):  # as in LAWT's process (train.py sets it globally)
        for _ in range(n_batches):
            out.append(dataset.collate_fn([dataset.generate_sample() for _ in range(batch_size)]))
    return out


def suppress_eos(peer: Peer) -> None:
    """No hypothesis ever ends early: the decoder's EOS logit gets a -1e9 bias."""
    with torch.no_grad():
        peer.modules["decoder"].proj.bias[peer.env.eos_index] = -1e9


@torch.no_grad()
def decode(peer: Peer, x1: torch.Tensor, len1: torch.Tensor, beam: int, max_len: int) -> Any:
    """Encoder and LAWT's own greedy (``generate``) or beam (``generate_beam``) decoding.

    Returns the lengths of the decoded sequences (BOS and EOS included), as LAWT returns them.
    """
    encoder, decoder = peer.modules["encoder"], peer.modules["decoder"]
    encoder.eval()
    decoder.eval()
    encoded = encoder("fwd", x=x1, lengths=len1, causal=False).transpose(0, 1)
    if beam == 1:
        _, lengths = decoder.generate(encoded, len1, max_len=max_len)
    else:
        _, lengths, _ = decoder.generate_beam(
            encoded, len1, beam, length_penalty=1.0, early_stopping=True, max_len=max_len
        )
    return lengths


class TrainStep:
    """LAWT's real training step (``Trainer.enc_dec_step``) on pre-built batches."""

    def __init__(self, peer: Peer, prebuilt: list[tuple]):
        with tempfile.TemporaryDirectory() as tmp:  # reload_checkpoint looks there
            peer.params.dump_path = tmp
            self.trainer = peer.lawt.src.trainer.Trainer(peer.modules, peer.env, peer.params)
        self.prebuilt = prebuilt
        self.next = 0
        self.task = peer.params.tasks[0]
        self.trainer.dataloader = {self.task: self}
        self.trainer.n_equations = 0  # train.py's epoch loop sets it

    def __iter__(self):
        return self

    def __next__(self) -> tuple:  # get_batch calls next(self.dataloader[task])
        batch = self.prebuilt[self.next % len(self.prebuilt)]
        self.next += 1
        return batch

    def step(self) -> int:
        """One step; the number of non-PAD input plus output tokens of its batch."""
        (_, len1), (_, len2), _ = self.prebuilt[self.next % len(self.prebuilt)]
        self.trainer.enc_dec_step(self.task)
        return int(len1.sum() + len2.sum())
