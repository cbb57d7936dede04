"""Read and write lava-dl's netx HDF5 network description, with h5py only (no lava-dl import).

Layout, as lava-dl 0.6.0's ``lava/lib/dl/netx/hdf5.py`` and ``netx/utils.py`` (class ``NetDict``) read it:

- ``/layer/<i>`` for i = 0, 1, ...: one group per layer, in order.
- ``type``: 1-element byte string array: ``b"input"``, ``b"dense"``, ``b"dense_rec"``, ``b"conv"``, ``b"flatten"``.
- ``weight_rec`` (``dense_rec`` only): integer recurrent weights ``[out, out]``; netx (``RecurrentDense``,
  lava-dl 0.6) fits ``weight`` and ``weight_rec`` side by side into one mantissa/exponent and feeds the
  layer's spikes back into its own neurons through a second dense synapse (one step later, like any synapse).
- ``shape``: the layer's output shape in PyTorch order (``[C, H, W]`` or ``[N]``); netx reverses it to
  Lava's (x, y, channel) order.
- ``weight``: integer weights, ``[out, in]`` for dense and ``[out, in/groups, kH, kW]`` (PyTorch's
  cross-correlation kernel) for conv. netx fits Dense weights into an 8-bit mantissa and an exponent
  itself (``optimize_weight_bits``); integers in [-128, 127] pass through that step unchanged, so the
  effective synaptic input is exactly ``sum(weight * spikes)``.
- ``bias`` (optional): integer ``bias_mant``; netx fixes ``bias_exp = 6``.
- ``delay`` (optional, dense only): integer axonal delays ``[out, in]`` in steps, 0..62.
- conv only: ``stride``, ``padding``, ``dilation`` as 2-element ``[H, W]`` arrays and scalar ``groups``.
- ``neuron/``: ``type`` (``b"CUBA"``), ``iDecay`` and ``vDecay`` on the 4096 scale (netx passes
  ``du = iDecay - 1`` and Lava's fixed-point LIF adds its 1-bit ``ds_offset`` back), ``vThMant``,
  ``refDelay``, ``gradedSpike``.

neuromorph also stores, as HDF5 *attributes* (which netx never reads), the layer name in the source
model, the power-of-two weight scale, whether the layer spikes and its role (``"maxpool_gate"`` for the
gate layer of an exported max pooling), so that fidelity and constraint reports can map the integers back to
the model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from neuromorph._atomic import atomic_path
from neuromorph.errors import DataFormatError
from neuromorph.hardware_profile import load_profile

# Loihi fixed-point ranges, read from the hardware profile (hardware/loihi2.toml [constraints], each with
# its source; Loihi 1 and 2 share Lava's fixed-point CUBA neuron and the netx format, and loihi.toml holds
# the same values): du, dv unsigned on the 2**decay_bits scale; vth unsigned threshold_mantissa_bits;
# bias_mant signed bias_mantissa_bits; weights signed weight_bits mantissas; u and v signed state_bits;
# threshold, synaptic input and bias left-shifted by msb_shift_bits; netx clamps delays above max_delay.
LAVA_PROFILE = load_profile("loihi2")
DECAY_UNITY = 1 << int(LAVA_PROFILE.limit("decay_bits"))
MAX_VTH_MANT = (1 << int(LAVA_PROFILE.limit("threshold_mantissa_bits"))) - 1
BIAS_RANGE = (-(1 << (int(LAVA_PROFILE.limit("bias_mantissa_bits")) - 1)), (1 << (int(LAVA_PROFILE.limit("bias_mantissa_bits")) - 1)) - 1)
WEIGHT_BITS = int(LAVA_PROFILE.limit("weight_bits"))
WEIGHT_RANGE = (-(1 << (WEIGHT_BITS - 1)), (1 << (WEIGHT_BITS - 1)) - 1)
STATE_BITS = int(LAVA_PROFILE.limit("state_bits"))
MSB_SHIFT = int(LAVA_PROFILE.limit("msb_shift_bits"))
MAX_DELAY = int(LAVA_PROFILE.limit("max_delay"))

_FORMAT_TAG = "neuromorph-netx-1"


@dataclass
class NetxLayer:
    """One synapse + CUBA neuron layer of a netx file, in Loihi integers.

    Neuron dynamics (Lava ``PyLifModelBitAcc``, per step, all integers)::

        u[t] = trunc(u[t-1] * (4096 - i_decay) / 4096) + (sum w * s) << 6    (24-bit wrap)
        v[t] = trunc(v[t-1] * (4096 - v_decay) / 4096) + u[t] + bias << 6    (24-bit clip)
        spike if v[t] > v_th_mant << 6, then v[t] = 0
    """

    kind: str  # "dense" | "conv"
    weight: np.ndarray
    shape: tuple[int, ...]  # output shape, PyTorch order
    i_decay: int
    v_decay: int
    v_th_mant: int
    bias: np.ndarray | None = None
    delay: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    ref_delay: int = 1
    graded_spike: bool = False
    flatten_before: bool = False
    name: str = ""
    weight_exponent: int = 0  # real weight = weight * 2**weight_exponent (in threshold units)
    spiking: bool = True
    extra: dict = field(default_factory=dict)
    weight_rec: np.ndarray | None = None  # recurrent weights [out, out]: written as a 'dense_rec' layer


@dataclass
class NetxNetwork:
    """A netx file: input shape (PyTorch order) and the layers after it."""

    input_shape: tuple[int, ...]
    layers: list[NetxLayer]


def _bytes(s: str) -> np.ndarray:
    return np.array([s.encode("ascii")])


def write_netx(net: NetxNetwork, path: str | os.PathLike) -> Path:
    """Write ``net`` as a lava-dl netx HDF5 file, atomically (temp file in the same folder + rename)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = _FORMAT_TAG
            root = f.create_group("layer")
            idx = 0
            g = root.create_group(str(idx))
            g.create_dataset("type", data=_bytes("input"))
            g.create_dataset("shape", data=np.asarray(net.input_shape, dtype=np.int64))
            idx += 1
            for layer in net.layers:
                if layer.flatten_before:
                    g = root.create_group(str(idx))
                    g.create_dataset("type", data=_bytes("flatten"))
                    idx += 1
                g = root.create_group(str(idx))
                idx += 1
                rec = layer.weight_rec is not None
                g.create_dataset("type", data=_bytes("dense_rec" if rec else layer.kind))
                g.create_dataset("shape", data=np.asarray(layer.shape, dtype=np.int64))
                g.create_dataset("weight", data=np.asarray(layer.weight, dtype=np.int32))
                if rec:
                    g.create_dataset("weight_rec", data=np.asarray(layer.weight_rec, dtype=np.int32))
                if layer.bias is not None:
                    g.create_dataset("bias", data=np.asarray(layer.bias, dtype=np.int32))
                if layer.delay is not None:
                    g.create_dataset("delay", data=np.asarray(layer.delay, dtype=np.int32))
                if layer.kind == "conv":
                    g.create_dataset("stride", data=np.asarray(layer.stride, dtype=np.int64))
                    g.create_dataset("padding", data=np.asarray(layer.padding, dtype=np.int64))
                    g.create_dataset("dilation", data=np.asarray(layer.dilation, dtype=np.int64))
                    g.create_dataset("groups", data=np.int64(layer.groups))
                n = g.create_group("neuron")
                n.create_dataset("type", data=_bytes("CUBA"))
                n.create_dataset("iDecay", data=np.int64(layer.i_decay))
                n.create_dataset("vDecay", data=np.int64(layer.v_decay))
                n.create_dataset("vThMant", data=np.int64(layer.v_th_mant))
                n.create_dataset("refDelay", data=np.int64(layer.ref_delay))
                n.create_dataset("gradedSpike", data=np.bool_(layer.graded_spike))
                g.attrs["name"] = layer.name
                g.attrs["weight_exponent"] = int(layer.weight_exponent)
                g.attrs["spiking"] = bool(layer.spiking)
                if layer.extra.get("role"):
                    g.attrs["role"] = str(layer.extra["role"])  # e.g. "maxpool_gate" (see export.nir)
    return path


def _int_scalar(g: h5py.Group, key: str, path: Path) -> int:
    if key not in g:
        raise DataFormatError(f"netx layer {g.name!r} lacks field {key!r}", path=path)
    v = np.asarray(g[key][()])
    if v.size != 1 or not np.issubdtype(v.dtype, np.number):
        raise DataFormatError(f"netx field {g.name}/{key} must be one number, got {v!r}", path=path)
    return int(v.reshape(-1)[0])


def _type(g: h5py.Group, path: Path) -> str:
    if "type" not in g:
        raise DataFormatError(f"netx group {g.name!r} lacks field 'type'", path=path)
    v = g["type"][()]
    if isinstance(v, np.ndarray):
        if v.size != 1:
            raise DataFormatError(f"netx field {g.name}/type must hold one string", path=path)
        v = v.reshape(-1)[0]
    if isinstance(v, bytes):
        v = v.decode("ascii", errors="replace")
    return str(v)


def read_netx(path: str | os.PathLike) -> NetxNetwork:
    """Read and validate a netx file (ours or lava-dl's): raises ``DataFormatError`` naming the file and
    the field for anything damaged, foreign or unsupported (pooling layers, SDNN/resonator neurons)."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError("netx file not found", path=path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataFormatError(f"not a readable HDF5 file ({exc})", path=path) from None
    with f:
        if "layer" not in f or not isinstance(f["layer"], h5py.Group):
            raise DataFormatError("not a netx file: no '/layer' group", path=path)
        root = f["layer"]
        keys = list(root.keys())
        if not keys or any(not k.isdigit() for k in keys):
            raise DataFormatError(f"netx '/layer' must hold groups 0..N-1, found {keys[:5]}", path=path)
        order = sorted(int(k) for k in keys)
        if order != list(range(len(order))):
            raise DataFormatError(f"netx layer indices are not contiguous: {order}", path=path)
        input_shape: tuple[int, ...] | None = None
        layers: list[NetxLayer] = []
        flatten_next = False
        for i in order:
            g = root[str(i)]
            kind = _type(g, path)
            if kind == "input":
                if "neuron" in g:
                    raise DataFormatError(f"netx layer {i}: input layers with neurons are not supported", path=path)
                if "shape" not in g:
                    raise DataFormatError(f"netx layer {i} (input) lacks 'shape'", path=path)
                input_shape = tuple(int(s) for s in np.asarray(g["shape"][()]).reshape(-1))
                continue
            if kind == "flatten":
                flatten_next = True
                continue
            if kind not in ("dense", "dense_rec", "conv"):
                raise DataFormatError(f"netx layer {i}: type {kind!r} is not supported (dense, dense_rec, conv, flatten, "
                                      "input)", path=path)
            rec = kind == "dense_rec"
            kind = "dense" if rec else kind
            for key in ("shape", "weight", "neuron") + (("weight_rec",) if rec else ()):
                if key not in g:
                    raise DataFormatError(f"netx layer {i} ({kind}) lacks field {key!r}", path=path)
            n = g["neuron"]
            ntype = _type(n, path)
            if ntype not in ("CUBA", "LOIHI"):
                raise DataFormatError(f"netx layer {i}: neuron type {ntype!r} is not supported (CUBA)", path=path)
            weight = np.asarray(g["weight"][()])
            if not np.issubdtype(weight.dtype, np.number) or not np.all(np.isfinite(weight)):
                raise DataFormatError(f"netx layer {i}: 'weight' is not a finite numeric array", path=path)
            weight = weight.astype(np.int64)
            shape = tuple(int(s) for s in np.asarray(g["shape"][()]).reshape(-1))
            layer = NetxLayer(
                kind=kind,
                weight=weight,
                shape=shape,
                i_decay=_int_scalar(n, "iDecay", path),
                v_decay=_int_scalar(n, "vDecay", path),
                v_th_mant=_int_scalar(n, "vThMant", path),
                ref_delay=_int_scalar(n, "refDelay", path) if "refDelay" in n else 1,
                graded_spike=bool(np.asarray(n["gradedSpike"][()]).reshape(-1)[0]) if "gradedSpike" in n else False,
                flatten_before=flatten_next,
                name=str(g.attrs.get("name", f"layer{i}")),
                weight_exponent=int(g.attrs.get("weight_exponent", 0)),
                spiking=bool(g.attrs.get("spiking", True)),
            )
            if "role" in g.attrs:
                layer.extra["role"] = str(g.attrs["role"])
            flatten_next = False
            if "messageBits" in n and _int_scalar(n, "messageBits", path) != 0:
                raise DataFormatError(f"netx layer {i}: graded output spikes (messageBits) are not supported", path=path)
            if rec:
                w_rec = np.asarray(g["weight_rec"][()])
                if not np.issubdtype(w_rec.dtype, np.number) or not np.all(np.isfinite(w_rec)):
                    raise DataFormatError(f"netx layer {i}: 'weight_rec' is not a finite numeric array", path=path)
                layer.weight_rec = w_rec.astype(np.int64)
            if "bias" in g:
                layer.bias = np.asarray(g["bias"][()]).astype(np.int64)
            if "delay" in g:
                layer.delay = np.asarray(g["delay"][()]).astype(np.int64)
            if kind == "conv":
                for key in ("stride", "padding", "dilation", "groups"):
                    if key not in g:
                        raise DataFormatError(f"netx layer {i} (conv) lacks field {key!r}", path=path)

                def pair(key: str) -> tuple[int, int]:
                    v = np.asarray(g[key][()]).reshape(-1).astype(int)
                    return (int(v[0]), int(v[0])) if v.size == 1 else (int(v[0]), int(v[1]))

                layer.stride, layer.padding, layer.dilation = pair("stride"), pair("padding"), pair("dilation")
                layer.groups = _int_scalar(g, "groups", path)
                if weight.ndim == 5:  # slayer writes [out, in, kH, kW, 1]
                    layer.weight = weight.reshape(weight.shape[:4])
                if layer.weight.ndim != 4:
                    raise DataFormatError(f"netx layer {i}: conv weight must be 4-D, got shape {weight.shape}", path=path)
            elif weight.ndim != 2:
                raise DataFormatError(f"netx layer {i}: dense weight must be 2-D, got shape {weight.shape}", path=path)
            _check_ranges(layer, i, path)
            layers.append(layer)
        if input_shape is None:
            if not layers or layers[0].kind != "dense":
                raise DataFormatError("netx file has no input layer giving the input shape", path=path)
            input_shape = (int(layers[0].weight.shape[1]),)
        if not layers:
            raise DataFormatError("netx file has no dense or conv layers", path=path)
    return NetxNetwork(input_shape=input_shape, layers=layers)


def _check_ranges(layer: NetxLayer, i: int, path: Path) -> None:
    def bad(msg: str) -> DataFormatError:
        return DataFormatError(f"netx layer {i} ({layer.name}): {msg}", path=path)

    if not 0 <= layer.i_decay <= DECAY_UNITY:
        raise bad(f"iDecay={layer.i_decay} outside 0..{DECAY_UNITY}")
    if not 0 <= layer.v_decay <= DECAY_UNITY:
        raise bad(f"vDecay={layer.v_decay} outside 0..{DECAY_UNITY}")
    if not 0 <= layer.v_th_mant <= MAX_VTH_MANT:
        raise bad(f"vThMant={layer.v_th_mant} outside 0..{MAX_VTH_MANT}")
    if layer.delay is not None:
        if layer.kind != "dense":
            raise bad("delays are only supported on dense layers")
        if layer.delay.shape != layer.weight.shape:
            raise bad(f"delay shape {layer.delay.shape} differs from weight shape {layer.weight.shape}")
        if layer.delay.size and (layer.delay.min() < 0 or layer.delay.max() > MAX_DELAY):
            raise bad(f"delays must lie in 0..{MAX_DELAY}, found {layer.delay.min()}..{layer.delay.max()}")
    if layer.bias is not None and layer.bias.size and (layer.bias.min() < BIAS_RANGE[0] or layer.bias.max() > BIAS_RANGE[1]):
        raise bad(f"bias mantissa outside {BIAS_RANGE}")
    n_out = int(np.prod(layer.shape))
    if layer.kind == "dense" and layer.weight.shape[0] != n_out:
        raise bad(f"weight has {layer.weight.shape[0]} rows but shape {layer.shape} has {n_out} neurons")
    if layer.weight_rec is not None:
        if layer.weight_rec.shape != (n_out, n_out):
            raise bad(f"weight_rec must be [{n_out}, {n_out}] (the layer's neurons to themselves), got "
                      f"{list(layer.weight_rec.shape)}")
        if layer.delay is not None:
            raise bad("a recurrent layer (dense_rec) with delays is not supported (netx applies them to weight_rec too)")
