"""The training loop: fit a recipe, checkpoint, resume bitwise, stop cleanly on Ctrl-C, run under DDP.

Determinism: the model is built after ``torch.manual_seed(seed)``; the batch order of epoch e is a
permutation seeded by (seed, e) (``neuromorph.train.data.epoch_batches``); the only other randomness
(dropout, surrogate noise) comes from torch's global generator, whose state every checkpoint stores.
A run stopped after any step and resumed from its ``last.pt`` therefore replays exactly the same
arithmetic as an uninterrupted run on the same machine: on CPU the final weights are bitwise equal.

Output folder::

    OUT/last.pt        model + optimisers + schedules + RNG + position (epoch, step): what --resume reads
    OUT/best.pt        weights of the epoch with the best validation accuracy (validation is held out of
                       the training split; the test split is only evaluated, never used for selection)
    OUT/metrics.jsonl  one JSON object per epoch, then one with "event": "final" (test metrics)
                       (``skipped_batches``: batches whose loss or gradient was NaN/Inf, see below)
    OUT/summary.json   the final summary (also printed by ``neuromorph train --json``)

Constraints: after every optimiser step the loop calls ``apply_constraints()`` on each layer that defines it
(:func:`neuromorph.nn.apply_constraints`), the projection of a layer's parameters onto their declared range.

Non-finite values: a batch whose loss or gradient holds NaN/Inf (one bad sample, an overflow) is
skipped (no optimiser step, so the weights stay finite), warned about naming the epoch and batch, and
counted in the epoch's ``skipped_batches``; ``max_nonfinite`` such batches in a row stop the run with a
``NonFiniteError`` (also recorded as an ``"event": "nonfinite"`` line). Weights are checked before every
checkpoint: non-finite weights are never written as best.pt or last.pt. The gradient norm is summed in
float64 (:func:`clip_gradients`), so a huge but finite gradient is clipped to ``grad_clip``, not skipped.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

from neuromorph.errors import CheckpointError, ConfigError, NonFiniteError
from neuromorph.nn.neurons import apply_constraints
from neuromorph.train import checkpoint as ck
from neuromorph.train import distributed as dd
from neuromorph.train.data import DataBundle, Split, epoch_batches, load_data, shard
from neuromorph.train.metrics import FiringRateMonitor, MetricsLog, per_class_accuracy, readout, write_json_atomic
from neuromorph.train.progress import ProgressBar
from neuromorph.train.recipes import Recipe

# ----------------------------------------------------------------------------------------------------
# method hooks: the generic loop plus the few steps a method adds (DCLS delays need four of them)


class Hooks:
    """Method-specific steps around the generic loop. The default builds one optimiser and schedule."""

    def build_optimizers(
        self, model: torch.nn.Module, recipe: Recipe, steps_per_epoch: int
    ) -> tuple[list[torch.optim.Optimizer], list[tuple[Any, str]]]:
        """Optimisers and ``(scheduler, "step" | "epoch")`` pairs (when each scheduler is stepped)."""
        params = [p for p in model.parameters() if p.requires_grad]
        if recipe.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
        elif recipe.optimizer == "adamw":
            opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
        elif recipe.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
        else:
            raise ConfigError(f"optimizer={recipe.optimizer!r} needs the model's own hooks (recipe {recipe.name!r})")
        scheds: list[tuple[Any, str]] = []
        if recipe.schedule == "cosine":
            scheds.append((torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=recipe.epochs), "epoch"))
        elif recipe.schedule == "onecycle":
            total = recipe.epochs * steps_per_epoch
            scheds.append((torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=total), "step"))
        elif recipe.schedule != "none":
            raise ConfigError(f"schedule={recipe.schedule!r} needs the model's own hooks (recipe {recipe.name!r})")
        return [opt], scheds

    def prepare(self, model: torch.nn.Module) -> None:
        """Called once on the freshly built model, before the optimisers are built (e.g. freeze delays)."""

    def regularizer(self, model: torch.nn.Module) -> torch.Tensor | None:
        """A term added to the training loss after each forward (e.g. the Hoyer regulariser or the Delta
        layer's sparsity penalty, which the model's layers compute during that forward); None adds nothing."""
        return None

    def after_step(self, model: torch.nn.Module) -> None:
        """Called after every optimiser step (e.g. clamp delay positions)."""

    def end_epoch(self, model: torch.nn.Module, epoch: int) -> None:
        """Called once at the end of every training epoch (e.g. shrink the DCLS σ)."""

    @contextlib.contextmanager
    def eval_context(self, model: torch.nn.Module) -> Iterator[None]:
        """Wraps every evaluation (e.g. evaluate with rounded integer delays, then restore)."""
        yield

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def hooks_for(recipe: Recipe) -> Hooks:
    """The training hooks the recipe names (``recipe.hooks``, one of ``neuromorph.train.recipes.HOOKS``)."""
    from neuromorph.train.recipes import build_hooks

    return build_hooks(recipe)


# ----------------------------------------------------------------------------------------------------
# model construction


def _fill_kwargs(builder: Callable[..., Any], recipe: Recipe, data: DataBundle) -> dict[str, Any]:
    """The builder's arguments: the recipe's ``model_kwargs`` plus what the data determines (classes,
    input size) and the backend, for the parameter names the builder actually has."""
    kwargs = dict(recipe.model_kwargs)
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return kwargs
    shape = data.input_shape
    derived: dict[str, Any] = {"n_classes": data.n_classes, "num_classes": data.n_classes, "backend": recipe.backend}
    if len(shape) == 1:  # feature vectors per step (audio channels)
        derived.update({"n_inputs": shape[0], "in_features": shape[0], "input_size": shape[0]})
    elif len(shape) == 3:  # frames [C, H, W]
        derived.update({"in_channels": shape[0]})
        if shape[1] == shape[2]:
            derived["input_size"] = shape[1]
    for name, value in derived.items():
        if name in params and name not in kwargs:
            if name == "backend" and value == "auto":
                continue
            kwargs[name] = value
    return kwargs


def build_model(recipe: Recipe, data: DataBundle) -> tuple[torch.nn.Module, str, dict[str, Any]]:
    """Seed, then build the recipe's model; returns ``(model, builder name, resolved kwargs)``."""
    builder = ck.resolve_builder(recipe.model)
    kwargs = _fill_kwargs(builder, recipe, data)
    torch.manual_seed(recipe.seed)
    return builder(**kwargs), recipe.model, kwargs


def resolve_device(device: str, info: dd.DistInfo | None = None) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device={device!r} but CUDA is not available; use --device cpu")
        if info is not None and info.enabled and device == "cuda":
            device = f"cuda:{info.local_rank}"
    return torch.device(device)


# ----------------------------------------------------------------------------------------------------
# evaluation


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    split: Split,
    recipe: Recipe,
    n_classes: int,
    device: torch.device | str = "cpu",
    hooks: Hooks | None = None,
    info: dd.DistInfo | None = None,
) -> dict[str, Any]:
    """Loss, accuracy, per-class accuracy, confusion matrix and mean firing rate per spiking layer.

    Under DDP each rank evaluates a contiguous share and the sums are all-reduced, so every rank
    returns the metrics of the whole split.
    """
    info = info or dd.DistInfo()
    hooks = hooks or Hooks()
    model = ck.unwrap(model)
    was_training = model.training
    model.eval()
    monitor = FiringRateMonitor(model)
    confusion = torch.zeros(n_classes, n_classes, dtype=torch.int64)
    loss_sum = torch.zeros((), dtype=torch.float64)
    # the same batches as one process would form, dealt out to the ranks in turn (with per-batch padding
    # a sample's result depends on its batch, so the batches must not change with the number of ranks)
    order = torch.arange(len(split))
    batches = [order[i : i + recipe.eval_batch_size] for i in range(0, len(split), recipe.eval_batch_size)]
    try:
        with hooks.eval_context(model):
            for idx in batches[info.rank :: info.world]:
                x, y = split.batch(idx)
                x, y = x.to(device), y.to(device)
                scores = readout(model(x), recipe.readout)
                loss_sum += F.cross_entropy(scores.float(), y, reduction="sum").double().cpu()
                pred = scores.argmax(-1).cpu()
                confusion += torch.bincount(y.cpu() * n_classes + pred, minlength=n_classes * n_classes).view(n_classes, n_classes)
    finally:
        monitor.close()
        model.train(was_training)
    names = [name for name, _ in monitor.layers]
    rate_sums = torch.tensor([float(monitor.sums.get(k, 0.0)) for k in names], dtype=torch.float64)
    rate_counts = torch.tensor([float(monitor.counts.get(k, 0)) for k in names], dtype=torch.float64)
    confusion = dd.all_reduce_sum(confusion, info)
    loss_sum = dd.all_reduce_sum(loss_sum, info)
    rate_sums = dd.all_reduce_sum(rate_sums, info)
    rate_counts = dd.all_reduce_sum(rate_counts, info)
    total = int(confusion.sum())
    rates = {k: float(s / c) if c > 0 else None for k, s, c in zip(names, rate_sums, rate_counts)}
    return {
        "n": total,
        "loss": float(loss_sum) / max(total, 1),
        "accuracy": float(confusion.diag().sum()) / max(total, 1),
        "per_class": per_class_accuracy(confusion),
        "confusion": confusion.tolist(),
        "firing_rate": rates,
        "mean_firing_rate": float(rate_sums.sum() / rate_counts.sum()) if rate_counts.sum() > 0 else None,
    }


# ----------------------------------------------------------------------------------------------------
# Ctrl-C


class StopFlag:
    """First Ctrl-C asks the loop to stop after the current step (and save); a second one aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> "StopFlag":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


# ----------------------------------------------------------------------------------------------------
# the loop


@dataclass
class _Position:
    epoch: int = 0  # current epoch, 0-based
    step: int = 0  # next batch within the epoch
    best_val: float = -1.0
    best_epoch: int = 0
    accum: dict[str, Any] = field(default_factory=dict)


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


# batches in a row with a non-finite loss or gradient after which training stops (see the module docstring)
MAX_NONFINITE = 5


def clip_gradients(parameters: Iterator[torch.nn.Parameter] | list[torch.nn.Parameter], max_norm: float | None) -> float:
    """Scale the gradients in place to a total 2-norm of at most ``max_norm``; return the norm before scaling.

    The total is combined in float64 from per-tensor float32 norms, so a gradient whose entries are all finite
    (BPTT through an unstable recurrence reaches 1e20 and more) has a finite norm and is clipped, where
    ``torch.nn.utils.clip_grad_norm_``'s float32 total overflows to inf; the result is NaN/inf only when an entry
    is. A tensor whose own float32 norm overflows is normed again in float64 (a copy of that tensor only).
    ``max_norm=None`` measures without scaling. The scale is ``max_norm / (norm + 1e-6)`` as in torch.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    by_device: dict[torch.device, list[torch.Tensor]] = {}
    for g in grads:
        by_device.setdefault(g.device, []).append(g)
    groups = list(by_device.values())
    per = torch.cat([torch.stack([torch.linalg.vector_norm(g) for g in gs]).to("cpu", torch.float64) for gs in groups])
    flat = [g for gs in groups for g in gs]
    for i in torch.nonzero(torch.isinf(per)).flatten().tolist():
        if bool(torch.isfinite(flat[i]).all()):  # finite entries, float32 sum of squares overflowed
            per[i] = torch.linalg.vector_norm(flat[i], dtype=torch.float64).cpu()
    norm = float(torch.linalg.vector_norm(per))
    if max_norm is not None and math.isfinite(norm):
        coef = max_norm / (norm + 1e-6)
        if coef < 1.0:
            # a coefficient below float32's normal range (a norm ~1e38 and more) is applied in two halves,
            # which keeps each factor normal and the result's relative error at float32 rounding
            factors = (coef,) if coef > 1e-30 else (math.sqrt(coef), math.sqrt(coef))
            for g in grads:
                for f in factors:
                    g.mul_(f)
    return norm


#: the largest value whose square a floating dtype holds (above it Adam's second moment overflows)
_SQUARE_LIMIT = {dt: math.sqrt(torch.finfo(dt).max) for dt in (torch.float16, torch.bfloat16, torch.float32,
                                                                 torch.float64)}


def _overflowing_gradient(model: torch.nn.Module, grad_norm: float, grad_clip: float | None) -> str | None:
    """Why the step must not be taken although the gradient is finite, or None: a (clipped) gradient entry
    whose square overflows its parameter's dtype. Adam-like optimisers keep that square (the second moment):
    it becomes inf and the parameter then never moves again, silently. Checked entry by entry only when
    the norm allows it (the norm bounds every entry)."""
    bound = grad_norm if grad_clip is None else min(grad_norm, grad_clip)
    # the usual step: below float16's limit, the smallest of the dtypes an optimiser keeps state in
    if not math.isfinite(grad_norm) or bound <= _SQUARE_LIMIT[torch.float16]:
        return None
    for name, p in model.named_parameters():
        g = p.grad
        if g is None or not g.is_floating_point():
            continue
        limit = _SQUARE_LIMIT.get(g.dtype) or math.sqrt(torch.finfo(g.dtype).max)
        if bound > limit and float(g.abs().max()) > limit:
            return (f"gradient entries of {name!r} beyond {limit:.3g}, whose square overflows {g.dtype} in the "
                    f"optimiser's state; set grad_clip")
    return None


def _nonfinite_weights(model: torch.nn.Module) -> str | None:
    """The name of the first parameter or buffer holding NaN/Inf, or None (run once per checkpoint)."""
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return None


def fit(
    recipe: Recipe,
    out: str | Path,
    data: DataBundle | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    on_step: Callable[[int, int], bool] | None = None,
    hooks: Hooks | None = None,
    max_nonfinite: int = MAX_NONFINITE,
) -> dict[str, Any]:
    """Train ``recipe``, writing ``OUT/{last,best}.pt``, ``metrics.jsonl`` and ``summary.json``.

    ``resume=True`` continues from ``OUT/last.pt`` with the recipe stored there (only ``device``,
    ``backend`` and ``data_root`` are taken from ``recipe``); a missing or corrupt file raises
    ``CheckpointError``, never starts afresh. ``on_step(epoch, step)`` is called after
    every optimiser step; returning True stops the run like Ctrl-C does (save ``last.pt``, return a
    summary with ``"status": "interrupted"``). ``hooks`` replaces the recipe's method hooks (ablations).
    ``max_nonfinite``: batches in a row with a NaN/Inf loss or gradient before the run stops with
    ``NonFiniteError`` (single ones are skipped and counted). Under torchrun the process group is joined here.
    """
    out = Path(out)
    last_path, best_path = out / "last.pt", out / "best.pt"
    resumed: dict[str, Any] | None = None
    if resume:
        if not last_path.exists():
            raise CheckpointError(f"--resume: no checkpoint {str(last_path)!r} to resume from")
        resumed = ck.load_checkpoint(last_path)
        if "train_state" not in resumed:
            raise CheckpointError(f"checkpoint {str(last_path)!r} holds no training state (not a last.pt)")
        # the run continues with the recipe it started with; only where it runs may change
        stored = Recipe.from_dict(resumed["info"]["recipe"])
        recipe = stored.replace(device=recipe.device, backend=recipe.backend, data_root=recipe.data_root or stored.data_root)
    elif last_path.exists() and not overwrite:
        raise ConfigError(f"{str(out)!r} already holds a run (last.pt); pass --resume to continue it or --overwrite to start again")

    info = dd.setup(recipe.device)
    device = resolve_device(recipe.device, info)
    if recipe.batch_size % info.world:
        raise ConfigError(f"batch_size={recipe.batch_size} must be divisible by the number of processes ({info.world})")
    t_start = time.perf_counter()
    data = data if data is not None else load_data(recipe)
    model, builder, kwargs = build_model(recipe, data)
    model.to(device)
    hooks = hooks if hooks is not None else hooks_for(recipe)
    hooks.prepare(model)
    n_batches = len(epoch_batches(len(data.train), recipe.batch_size, recipe.seed, 0))
    optimizers, schedulers = hooks.build_optimizers(model, recipe, n_batches)
    pos = _Position()
    log = MetricsLog(out / "metrics.jsonl", enabled=info.is_main)
    if resumed is not None:
        ts = resumed["train_state"]
        model.load_state_dict(resumed["state_dict"])
        for opt, state in zip(optimizers, ts["optimizers"], strict=True):
            opt.load_state_dict(state)
        for (sched, _), state in zip(schedulers, ts["schedulers"], strict=True):
            sched.load_state_dict(state)
        hooks.load_state_dict(ts.get("hooks", {}))
        pos = _Position(ts["epoch"], ts["step"], ts["best_val"], ts["best_epoch"], ts["accum"])
        _set_rng_state(ts["rng"], device)
        log.truncate_after(pos.epoch)
    else:
        if info.is_main and overwrite:
            for p in (last_path, best_path, out / "metrics.jsonl", out / "summary.json"):
                p.unlink(missing_ok=True)
        torch.manual_seed(recipe.seed + 1 + info.rank)  # training randomness (dropout), per rank
    train_model: torch.nn.Module = model
    if info.enabled:
        train_model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    monitor = FiringRateMonitor(model)
    ckpt_info = {"recipe": recipe.to_dict(), "data": data.info, "n_classes": data.n_classes, "input_shape": list(data.input_shape)}

    def check_weights(epoch: int) -> None:
        bad = _nonfinite_weights(model)
        if bad is not None:
            raise NonFiniteError(f"training {recipe.name!r}: parameter {bad!r} holds NaN/Inf after epoch {epoch}; nothing "
                                 f"was saved for this epoch (lower lr or set grad_clip; the last good checkpoint is kept)")

    def train_state(epoch: int, step: int, accum: dict[str, Any]) -> dict[str, Any]:
        return {
            "epoch": epoch, "step": step, "best_val": pos.best_val, "best_epoch": pos.best_epoch, "accum": accum,
            "optimizers": [o.state_dict() for o in optimizers], "schedulers": [s.state_dict() for s, _ in schedulers],
            "hooks": hooks.state_dict(), "rng": _rng_state(device),
        }

    status = "completed"
    with StopFlag() as stop:
        while pos.epoch < recipe.epochs:
            epoch = pos.epoch
            batches = epoch_batches(len(data.train), recipe.batch_size, recipe.seed, epoch)
            acc = pos.accum or {"loss_sum": torch.zeros((), dtype=torch.float64), "correct": 0, "count": 0, "rate_sums": {}, "rate_counts": {}}
            acc.setdefault("skipped", 0)
            acc.setdefault("bad_run", 0)
            monitor.reset()
            monitor.sums.update({k: v.clone() for k, v in acc["rate_sums"].items()})
            monitor.counts.update(acc["rate_counts"])
            train_model.train()
            bar = ProgressBar(len(batches), f"[{recipe.name} {epoch + 1}/{recipe.epochs}]", enabled=progress and info.is_main)
            bar.done = bar.start_done = pos.step
            interrupted = False
            stop_at_epoch_end = False
            for step in range(pos.step, len(batches)):
                # one length for the whole global batch, so DDP ranks pad as one process would
                idx = shard(batches[step], info.rank, info.world)
                x, y = data.train.batch(idx, data.train.steps_for(batches[step]))
                x, y = x.to(device), y.to(device)
                scores = readout(train_model(x), recipe.readout)
                loss = F.cross_entropy(scores, y, label_smoothing=recipe.label_smoothing)
                extra = hooks.regularizer(model)
                if extra is not None:
                    loss = loss + extra
                for opt in optimizers:
                    opt.zero_grad(set_to_none=True)
                loss.backward()
                # the gradient norm (float64, computed by the clipping) is NaN/Inf only when a gradient entry is;
                # a huge finite gradient is clipped, not skipped. Under DDP the gradients are already all-reduced,
                # and any_rank makes the local loss check global too, so every rank skips the same batches
                grad_norm = clip_gradients(model.parameters(), recipe.grad_clip)
                loss_value = float(loss.detach())
                overflow = _overflowing_gradient(model, grad_norm, recipe.grad_clip)
                bad = dd.any_rank(not (math.isfinite(loss_value) and math.isfinite(grad_norm)) or overflow is not None,
                                  info)
                if bad:
                    for opt in optimizers:  # no step: the weights stay as they were
                        opt.zero_grad(set_to_none=True)
                    acc["skipped"] += 1
                    acc["bad_run"] += 1
                    # name the training samples whose input is non-finite (the usual cause), else the batch's
                    bad_input = (~torch.isfinite(x)).reshape(x.shape[0], x.shape[1], -1).any(2).any(0).cpu() if x.is_floating_point() else None
                    if bad_input is not None and bool(bad_input.any()):
                        samples = f"training samples with NaN/Inf input: {idx[bad_input].tolist()}"
                    else:
                        samples = f"samples {idx[:8].tolist()}{'...' if idx.numel() > 8 else ''}"
                    where = f"epoch {epoch + 1} batch {step} ({samples})"
                    what = f"loss {loss_value}, gradient norm {grad_norm}"
                    if overflow is not None and math.isfinite(loss_value) and math.isfinite(grad_norm):
                        what += f" ({overflow})"
                    if acc["bad_run"] >= max_nonfinite:
                        if info.is_main:
                            log.write({"event": "nonfinite", "epoch": epoch + 1, "batch": step, "in_a_row": acc["bad_run"],
                                       "loss": str(loss_value), "grad_norm": str(grad_norm)})
                        bar.close()
                        monitor.close()
                        raise NonFiniteError(
                            f"training {recipe.name!r} stopped: {acc['bad_run']} batches in a row had a non-finite loss or "
                            f"gradient, the last at {where}: {what}. Check the inputs for NaN/Inf, lower lr or set "
                            f"grad_clip; the weights were not updated by these batches and the checkpoints in {str(out)!r} "
                            f"are from the last completed epoch")
                    kind = "unusable" if overflow is not None and math.isfinite(grad_norm) else "non-finite"
                    warnings.warn(f"training {recipe.name!r}: {kind} {what} at {where}; batch skipped (no optimiser "
                                  f"step)", RuntimeWarning, stacklevel=2)
                else:
                    acc["bad_run"] = 0
                    for opt in optimizers:
                        opt.step()
                    # the parameter ranges a layer declares (apply_constraints(): e.g. the adaptive LIF's
                    # time constants) are a projection after each step, for every method's hooks
                    apply_constraints(model)
                    hooks.after_step(model)
                    for sched, when in schedulers:
                        if when == "step":
                            sched.step()
                    acc["loss_sum"] = acc["loss_sum"] + loss.detach().double().cpu() * y.numel()
                    acc["correct"] += int((scores.argmax(-1) == y).sum())
                    acc["count"] += y.numel()
                bar.update(step + 1, loss=float(acc["loss_sum"]) / max(acc["count"], 1), acc=acc["correct"] / max(acc["count"], 1),
                           rate=monitor.mean_rate())
                requested = dd.any_rank(stop.requested or bool(on_step is not None and on_step(epoch, step)), info)
                stop_at_epoch_end = stop_at_epoch_end or requested
                if requested and step + 1 < len(batches):
                    acc["rate_sums"] = {k: v.clone() for k, v in monitor.sums.items()}
                    acc["rate_counts"] = dict(monitor.counts)
                    if info.is_main:
                        ck.save_checkpoint(last_path, model, builder, kwargs, {**ckpt_info, "epoch": epoch}, train_state(epoch, step + 1, acc))
                    interrupted = True
                    break
            bar.close()
            if interrupted:
                status = "interrupted"
                break
            for sched, when in schedulers:
                if when == "epoch":
                    sched.step()
            hooks.end_epoch(model, epoch)
            totals = dd.all_reduce_sum(torch.tensor([float(acc["loss_sum"]), acc["correct"], acc["count"]], dtype=torch.float64), info)
            rates = monitor.rates()
            check_weights(epoch + 1)
            n_seen = float(totals[2]) or float("nan")  # every batch skipped: no loss to report
            record: dict[str, Any] = {
                "epoch": epoch + 1, "train_loss": float(totals[0] / n_seen), "train_accuracy": float(totals[1] / n_seen),
                "skipped_batches": int(acc["skipped"]),
                "train_firing_rate": rates, "train_mean_firing_rate": monitor.mean_rate(),
                "lr": [g["lr"] for o in optimizers for g in o.param_groups][:4], "time_s": round(time.perf_counter() - t_start, 3),
            }
            if data.val is not None:
                val = evaluate(model, data.val, recipe, data.n_classes, device, hooks, info)
                record.update({"val_loss": val["loss"], "val_accuracy": val["accuracy"], "val_mean_firing_rate": val["mean_firing_rate"]})
                improved = val["accuracy"] > pos.best_val
            else:
                improved = True  # no held-out data: best.pt is the latest epoch
            pos = _Position(epoch + 1, 0, record.get("val_accuracy", pos.best_val) if improved else pos.best_val,
                            epoch + 1 if improved else pos.best_epoch, {})
            if info.is_main:
                log.write(record)
                if improved:
                    ck.save_checkpoint(best_path, model, builder, kwargs, {**ckpt_info, "epoch": epoch + 1, "val_accuracy": record.get("val_accuracy")})
                ck.save_checkpoint(last_path, model, builder, kwargs, {**ckpt_info, "epoch": epoch + 1}, train_state(epoch + 1, 0, {}))
            if stop_at_epoch_end or stop.requested:
                status = "interrupted" if pos.epoch < recipe.epochs else status
                if status == "interrupted":
                    break
    monitor.close()
    summary: dict[str, Any] = {
        "recipe": recipe.name, "status": status, "out": str(out), "epochs_completed": pos.epoch, "epochs": recipe.epochs,
        "best_epoch": pos.best_epoch, "best_val_accuracy": pos.best_val if data.val is not None else None,
        "last_checkpoint": str(last_path), "best_checkpoint": str(best_path),
    }
    if status == "completed":
        dd.barrier(info)  # rank 0 wrote best.pt
        best = ck.load_checkpoint(best_path)
        model.load_state_dict(best["state_dict"])
        test = evaluate(model, data.test, recipe, data.n_classes, device, hooks, info)
        summary.update({
            "test_accuracy": test["accuracy"], "test_loss": test["loss"], "per_class": test["per_class"],
            "firing_rate": test["firing_rate"], "mean_firing_rate": test["mean_firing_rate"], "confusion": test["confusion"],
            "n_train": len(data.train), "n_val": 0 if data.val is None else len(data.val), "n_test": test["n"],
        })
        if info.is_main:
            log.write({"event": "final", "epoch": pos.epoch, "checkpoint": "best.pt", "best_epoch": pos.best_epoch, **{f"test_{k}": v for k, v in test.items()}})
    summary["wall_time_s"] = round(time.perf_counter() - t_start, 2)
    if info.is_main:
        write_json_atomic(out / "summary.json", summary)
    if status == "completed":
        # all ranks leave together: a rank that tears its process group down while another still runs
        # (rank 0 writing the summary) made gloo abort that process ("terminate called without an active
        # exception"), about one run in eight here
        dd.barrier(info)
    return summary
