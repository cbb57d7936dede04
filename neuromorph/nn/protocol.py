"""The layer protocol: what a layer is, declared once, read by every part of neuromorph.

Each layer declares a :class:`LayerDecl`: its **role** (a :class:`Role`: synapse, neuron, readout,
pooling, normalisation, reshape, identity, mask, activation, container) and its **op**, the operation
in the field's words (``"linear"``, ``"conv2d"``, ``"avg_pool2d"``, ``"LIF"``, ...). Neurons and readouts
also give their parameters in hardware-independent form through ``spec()`` (a
:class:`~neuromorph.nn.NeuronSpec`: time constants in steps, threshold, reset); other layers' parameters
are the torch attributes their op names (``weight``, ``bias``, ``kernel_size``, ``stride``, ...).

NIR export (``to_nir``), the energy monitor, the firing-rate metrics and the plots read this protocol and
nothing else: a layer is classified by :func:`declaration` only. A leaf layer that declares nothing gets
the same :class:`~neuromorph.errors.UnknownLayerError` from all of them (built by :func:`unknown_layer`).

How a layer declares itself (the first match along the class's MRO wins, so a subclass inherits its
parent's declaration unless it gives its own):

1. a neuromorph layer declares it on the class: ``layer_decl = LayerDecl(Role.SYNAPSE, "delayed_linear")``
   (a class attribute, or a property when it depends on the instance, e.g. a neuron's kind);
2. subclassing a neuromorph (or registered torch) layer inherits its declaration: ``class MyLIF(nm.nn.LIF)``
   is a LIF neuron everywhere;
3. a user's own class defines the same ``layer_decl`` attribute, without subclassing anything of ours;
4. a class one cannot edit (a torch built-in, a peer library's neuron) is declared by one call,
   :func:`register_layer` (``register_layer(spikingjelly...BaseNode, "neuron")``); the torch layers
   neuromorph uses are registered that way below, in one table.

A module that declares nothing but has children is a container (looked into); the model passed to a
consumer is always looked into when it declares nothing.
"""

from __future__ import annotations

import contextlib
import enum
import warnings
from dataclasses import dataclass
from typing import Iterator, Union

from torch import nn

from neuromorph.errors import ConfigError, UnknownLayerError

__all__ = [
    "Role", "LayerDecl", "register_layer", "unregister_layer", "declaration", "unknown_layer", "walk", "layers",
    "spiking_layers", "eval_for", "ATTRIBUTE",
]

#: the attribute a class defines to declare itself
ATTRIBUTE = "layer_decl"


class Role(str, enum.Enum):
    """What a layer does in a spiking network (the roles a hardware mapping or a cost model tells apart)."""

    SYNAPSE = "synapse"  # weighted connections: Linear, Conv, DelayedLinear, delay lines
    NEURON = "neuron"  # emits spikes (binary, or graded like spike·λ / deltas) from inputs and state
    READOUT = "readout"  # a neuron that never fires; its potential is the output (LI)
    POOLING = "pooling"  # max / average pooling
    NORMALISATION = "normalisation"  # BatchNorm, MPBN: folded into weights or thresholds at inference
    RESHAPE = "reshape"  # moves data only: Flatten, Unflatten
    IDENTITY = "identity"  # returns its input at inference: Identity, Dropout
    MASK = "mask"  # drops spikes at inference too (Random Spike Masking)
    ACTIVATION = "activation"  # real-valued element-wise non-linearity: ReLU, GELU, QCFS
    CONTAINER = "container"  # holds layers; its children (and the operations in its forward) are the layers


@dataclass(frozen=True)
class LayerDecl:
    """A layer's declaration: its :class:`Role`, its op, and three facts about how it runs.

    ``stepwise=True``: a neuron called once per time step on ``[B, ...]`` (state kept between calls, e.g.
    ``QCFSNeuron`` of a converted network); default: the whole sequence ``[T, B, ...]`` in one call.
    ``mode_dependent=True``: it computes something else in training mode (Dropout, BatchNorm batch
    statistics, HoyerSpike's batch threshold), so exporting or measuring it in training mode would differ.
    ``mixes_time=True``: its output at step t depends on inputs before t and it carries no state from one
    call to the next (a delay line, a delta of consecutive steps, a recurrent layer run over the sequence):
    cut into pieces the sequence gives other results, so :class:`~neuromorph.nn.Streaming` refuses it.
    Neurons carry their state between calls through the streaming protocol and do not set it.
    ``recurrent=True``: a neuron whose input current at step t adds ``weight @ s[t−1]`` (its own spikes of
    the previous step through the layer's ``weight`` ``[N, N]``; :class:`~neuromorph.nn.Recurrent`):
    export writes the recurrent edge, the energy report counts those synapses.
    """

    role: Role
    op: str
    stepwise: bool = False
    mode_dependent: bool = False
    mixes_time: bool = False
    recurrent: bool = False

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "role", Role(self.role))
        except ValueError:
            raise ConfigError(f"LayerDecl: role={self.role!r} is not valid; choose one of "
                              f"{', '.join(repr(r.value) for r in Role)}") from None
        if not isinstance(self.op, str) or not self.op:
            raise ConfigError(f"LayerDecl: op={self.op!r} must be a non-empty string naming the operation")


_REGISTRY: dict[type, LayerDecl] = {}


def register_layer(cls: type, role: Union[Role, str], op: str | None = None, *, stepwise: bool = False,
                   mode_dependent: bool = False, mixes_time: bool = False) -> None:
    """Declare ``cls`` (and its subclasses) as a layer of ``role`` doing ``op`` (default: the class name).

    The one call for classes that cannot carry a ``layer_decl`` attribute (torch built-ins, peer
    libraries' layers). Export, energy, metrics and plots all see it at once.
    """
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise ConfigError(f"register_layer: cls={cls!r} is not a torch.nn.Module subclass")
    _REGISTRY[cls] = LayerDecl(role, op or cls.__name__, stepwise, mode_dependent, mixes_time)


def unregister_layer(cls: type) -> None:
    """Remove the declaration :func:`register_layer` made for exactly ``cls``."""
    _REGISTRY.pop(cls, None)


def declaration(module: nn.Module) -> LayerDecl | None:
    """The module's declaration: the first registered class or ``layer_decl`` along its MRO, else None."""
    for cls in type(module).__mro__:
        decl = _REGISTRY.get(cls)
        if decl is not None:
            return decl
        if ATTRIBUTE in cls.__dict__:
            decl = getattr(module, ATTRIBUTE)
            if not isinstance(decl, LayerDecl):
                raise ConfigError(f"{type(module).__name__}.{ATTRIBUTE} must be a neuromorph.nn.LayerDecl, got {decl!r}")
            return decl
    return None


def unknown_layer(name: str, module: nn.Module) -> UnknownLayerError:
    """The one error for a layer that declares nothing (raised by export, energy and metrics alike)."""
    return UnknownLayerError(
        f"unknown layer {name!r} ({type(module).__name__}): it declares no role, so neuromorph cannot tell "
        f"whether it is a synapse, a neuron or something else. Subclass a neuromorph layer, give the class a "
        f"'{ATTRIBUTE} = neuromorph.nn.LayerDecl(role, op)' attribute, or call "
        f"neuromorph.nn.register_layer({type(module).__name__}, role)"
    )


_CONTAINER = LayerDecl(Role.CONTAINER, "container")


def walk(model: nn.Module) -> Iterator[tuple[str, nn.Module, LayerDecl]]:
    """Every layer of ``model`` with its declaration, in registration order: containers and the layers
    in them; the children of a declared (non-container) layer are part of it and not visited.

    ``model`` itself is a container unless it declares a role. Raises :class:`UnknownLayerError` for the
    first leaf module that declares nothing.
    """
    seen: set[int] = set()

    def visit(name: str, module: nn.Module, root: bool) -> Iterator[tuple[str, nn.Module, LayerDecl]]:
        if id(module) in seen:
            return
        seen.add(id(module))
        decl = declaration(module)
        if decl is None:
            if not root and next(module.children(), None) is None:
                raise unknown_layer(name, module)
            decl = _CONTAINER
        yield name, module, decl
        if decl.role is Role.CONTAINER:
            for child_name, child in module.named_children():
                yield from visit(f"{name}.{child_name}" if name else child_name, child, False)

    yield from visit("", model, True)


def layers(model: nn.Module) -> list[tuple[str, nn.Module, LayerDecl]]:
    """The declared layers of ``model`` (``walk`` without the containers); names as in ``named_modules``
    (the model itself, when it is one layer, is named after its class)."""
    return [(name or type(m).__name__, m, d) for name, m, d in walk(model) if d.role is not Role.CONTAINER]


def spiking_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The spiking layers (role ``neuron``) of ``model``, in registration order. Readouts (LI) are not
    among them: they never fire."""
    return [(name, m) for name, m, d in layers(model) if d.role is Role.NEURON]


@contextlib.contextmanager
def eval_for(model: nn.Module, what: str) -> Iterator[nn.Module]:
    """Run ``what`` (an export or a measurement) on ``model`` in eval mode, then restore every module's mode.

    Inference is what hardware runs and what a spike count describes: dropout off, BatchNorm with its
    running statistics, MPBN foldable. A model left in training mode is switched, never refused; when
    that changes what a layer computes (``mode_dependent`` in its declaration) a warning names the layer.
    """
    modes = [(m, m.training) for m in model.modules()]
    differ = [name or type(m).__name__ for name, m in model.named_modules()
              if m.training and getattr(declaration(m), "mode_dependent", False)]
    if differ:
        shown = ", ".join(repr(n) for n in differ[:3]) + (f" and {len(differ) - 3} more" if len(differ) > 3 else "")
        warnings.warn(f"{what}: {type(model).__name__} is in training mode; running it in eval mode (as inference does: "
                      f"dropout off, BatchNorm running statistics), which changes layer {shown}. The model's modes are "
                      "restored afterwards; call model.eval() first to silence this", UserWarning, stacklevel=4)
    model.eval()
    try:
        yield model
    finally:
        for m, t in modes:
            m.training = t


# ------------------------------------------------------------------------------------------------------
# torch's own layers, declared here because they cannot carry the attribute. Subclasses (neuromorph's
# time-distributed Conv2d, BatchNorm1d, ...) inherit these declarations.

_MODE, _TIME = {"mode_dependent": True}, {"mode_dependent": True, "mixes_time": True}
for _cls, _role, _op, *_facts in (
    (nn.Linear, Role.SYNAPSE, "linear"),
    (nn.Conv1d, Role.SYNAPSE, "conv1d"),
    (nn.Conv2d, Role.SYNAPSE, "conv2d"),
    (nn.Conv3d, Role.SYNAPSE, "conv3d"),
    (nn.RNN, Role.SYNAPSE, "rnn", _TIME),  # ANN baselines; dropout between stacked layers in training
    (nn.GRU, Role.SYNAPSE, "gru", _TIME),
    (nn.LSTM, Role.SYNAPSE, "lstm", _TIME),
    (nn.MaxPool1d, Role.POOLING, "max_pool1d"),
    (nn.MaxPool2d, Role.POOLING, "max_pool2d"),
    (nn.MaxPool3d, Role.POOLING, "max_pool3d"),
    (nn.AvgPool1d, Role.POOLING, "avg_pool1d"),
    (nn.AvgPool2d, Role.POOLING, "avg_pool2d"),
    (nn.AvgPool3d, Role.POOLING, "avg_pool3d"),
    (nn.AdaptiveAvgPool1d, Role.POOLING, "adaptive_avg_pool1d"),
    (nn.AdaptiveAvgPool2d, Role.POOLING, "adaptive_avg_pool2d"),
    (nn.AdaptiveAvgPool3d, Role.POOLING, "adaptive_avg_pool3d"),
    (nn.modules.batchnorm._BatchNorm, Role.NORMALISATION, "batch_norm", _MODE),
    (nn.LayerNorm, Role.NORMALISATION, "layer_norm"),
    (nn.GroupNorm, Role.NORMALISATION, "group_norm"),
    (nn.Flatten, Role.RESHAPE, "flatten"),
    (nn.Unflatten, Role.RESHAPE, "unflatten"),
    (nn.Identity, Role.IDENTITY, "identity"),
    (nn.modules.dropout._DropoutNd, Role.IDENTITY, "dropout", _MODE),
    (nn.ReLU, Role.ACTIVATION, "relu"),
    (nn.LeakyReLU, Role.ACTIVATION, "leaky_relu"),
    (nn.ELU, Role.ACTIVATION, "elu"),
    (nn.GELU, Role.ACTIVATION, "gelu"),
    (nn.SiLU, Role.ACTIVATION, "silu"),
    (nn.Tanh, Role.ACTIVATION, "tanh"),
    (nn.Sigmoid, Role.ACTIVATION, "sigmoid"),
    (nn.Hardtanh, Role.ACTIVATION, "hardtanh"),  # ReLU6 is a Hardtanh
    (nn.Softmax, Role.ACTIVATION, "softmax"),
    (nn.Sequential, Role.CONTAINER, "sequential"),
    (nn.ModuleList, Role.CONTAINER, "module_list"),
    (nn.ModuleDict, Role.CONTAINER, "module_dict"),
):
    register_layer(_cls, _role, _op, **(_facts[0] if _facts else {}))
del _cls, _role, _op, _facts, _MODE, _TIME
