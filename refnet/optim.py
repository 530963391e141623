r"""Optimizers: SGD (momentum, Nesterov), Adagrad, RMSProp and Adam/AdamW, in every convention.

Libraries disagree on where :math:`\varepsilon` goes, what a running average
starts from and whether the learning rate sits inside the momentum buffer.
Here every difference is an explicit switch, and a *convention* is a named
table of switches and default hyper-parameters:

``"lee"``
    the lecture's forms [Lee]: Adagrad and RMSProp without :math:`\varepsilon`,
    RMSProp with :math:`\sigma^0 = |g^0|`, momentum :math:`v \leftarrow \lambda v - \eta\nabla L`,
    Adam as Kingma & Ba's Algorithm 1.  Nesterov and centered RMSProp are not
    in the lecture and are refused.  Lee's :math:`\sigma` is kept as a root and
    updated with ``hypot``-style scaling (``root_state``), so it cannot underflow
    to 0 while :math:`g \ne 0`; where a denominator is exactly 0 (every
    gradient so far 0) the step is 0.
``"torch"`` (the default)
    ``torch.optim.SGD``, ``Adagrad``, ``RMSprop``, ``Adam`` and ``AdamW`` (Adam with
    ``decoupled=True``), with their defaults for anything unspecified.
``"keras"``
    Keras 3: :math:`\varepsilon` inside the square root, the Adagrad
    accumulator starting at 0.1, the :math:`\hat\varepsilon` Adam, the learning
    rate inside the RMSProp momentum buffer, Keras' defaults, and ``weight_decay``
    meaning Keras' decoupled decay :math:`\theta \leftarrow \theta - \eta\lambda\theta`
    in every optimizer.
``"optax"``
    optax's ``sgd``, ``adagrad``, ``rmsprop`` and ``adam`` [Optax]: :math:`\varepsilon`
    inside the root for Adagrad and RMSProp, the Adagrad accumulator starting at 0.1,
    the RMSProp learning rate inside the momentum trace (optax scales before its
    ``trace``), Adam as Algorithm 1 and ``nesterov=True`` as optax's ``nadam``
    (:math:`\mu_t = \beta_1`); ``weight_decay`` coupled unless ``decoupled``
    (``optax.adamw``), as optax adds ``add_decayed_weights`` before scaling.

``lr`` is always required.  A hyper-parameter or switch left at ``None`` takes
the convention's value; one given explicitly overrides it.  Each class lists
its table.  The formulas, with their sources, are on the reference kernels in
:mod:`refnet.reference.optimizers`; the compiled twins in :mod:`refnet._core`
run them as one fused in-place pass per parameter array.

Common to every optimizer:

* ``opt.step(params, grads, names=None)`` updates a list of C-contiguous,
  writeable float32/float64 arrays in place.  State (momentum buffers, running
  averages) is kept per *position* in the list and created on the first step.
  Everything is checked before any array is written: on error nothing changes.
* ``l1=`` adds :math:`\lambda_1\operatorname{sgn}\theta` to the gradient (sgn 0 = 0);
  ``weight_decay`` is coupled L2 (:math:`g \mathrel{+}= \lambda\theta`, PyTorch) unless
  ``decoupled`` (:math:`\theta \leftarrow (1 - \eta\lambda)\theta` before the
  update: AdamW, Keras).  For plain SGD the two coincide; for RMSProp and Adam
  they do not.
* ``schedule=`` multiplies the learning rate by a factor of the number of steps
  taken so far: :class:`Constant`, :class:`StepDecay`, :class:`InverseTime`.
* ``groups=`` sets per-parameter options, as ``torch.optim`` parameter groups:
  a list of dicts ``{"params": [...], "lr_scale": float, "weight_decay": bool}``
  whose ``params`` are positions (``int``) or names (``str``, shell patterns such
  as ``"*.bias"``, matched against ``names`` given to :meth:`~Optimizer.step`,
  the names of ``named_parameters()``).  ``lr_scale`` multiplies the learning
  rate (decoupled decay included); ``weight_decay=False`` exempts the
  parameters from weight decay and L1 (biases, usually);
  ``weight_decay_scale`` and ``l1_scale`` multiply their weight decay
  :math:`\lambda` and their L1 coefficient (the dropout conversions of
  :func:`refnet.ensemble.dropout_parameter_groups` need all three scales).  Later groups override earlier ones for the keys they set.
* ``maximize=True`` ascends instead (PyTorch's ``maximize``): the gradient is negated
  before anything else, in every optimizer.
* ``clip_value=``, ``clip_norm=``, ``clip_rms=`` or ``global_clip_norm=`` (at most
  one, as in Keras) clip the gradients before the update, into the optimizer's own
  buffers (the caller's gradient arrays are never modified): each element to
  :math:`[-c, c]` (Keras ``clipvalue``, torch ``clip_grad_value_``, optax ``clip``), each
  array to norm :math:`c` (Keras ``clipnorm``) or RMS :math:`c` (optax
  ``clip_by_block_rms``), or all arrays together to norm :math:`c` (torch
  ``clip_grad_norm_``, Keras ``global_clipnorm``, optax ``clip_by_global_norm``), by the
  factor :math:`\min(1, c / (\lVert g\rVert_p + \varepsilon))`.  ``clip_norm_type`` is
  :math:`p` (default 2, torch's ``norm_type``); ``clip_eps`` is :math:`\varepsilon`, by
  default 1e-6 for ``global_clip_norm`` under ``"torch"`` (``clip_grad_norm_``'s constant)
  and 0 otherwise (Keras, optax).  Clipping acts on the gradient alone: coupled L2 and L1 are added after it,
  as they are inside ``torch.optim`` after ``clip_grad_norm_``.  The formulas and their
  edge cases (zero, empty, inf, NaN) are in :mod:`refnet.reference.clipping`, whose
  functions are also exported here.
* ``state_dict()`` / ``load_state_dict()`` save and restore the step count and
  every state array (copies), so a resumed run continues bit for bit.

References
----------
Defined once in the documentation's bibliography (``docs/bibliography.rst``);
the notes here say which part of each source this module follows.

* [Lee] Hung-yi Lee, "Tips for Training DNN", NTU Machine Learning course.
* [Torch] PyTorch documentation of ``torch.optim``.
* [Keras] Keras 3 source, ``keras/src/optimizers/``.
* [Optax] optax source, ``optax/_src/alias.py`` and ``transform.py``.
"""

import copy
import dataclasses
import difflib
import fnmatch
import math
import numbers
import operator
import sys

import numpy as np

from . import _validate
from .backend import active
from .reference import clipping as _clipping
from .reference.clipping import clip_by_global_norm, clip_by_norm, clip_by_rms, clip_by_value, grad_norm

__all__ = ["SGD", "Adagrad", "RMSProp", "Adam", "Constant", "StepDecay", "InverseTime", "CONVENTIONS",
           "clip_by_value", "clip_by_norm", "clip_by_rms", "clip_by_global_norm", "grad_norm"]

CONVENTIONS = ("lee", "torch", "keras", "optax")


# --- learning-rate schedules ---------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Constant:
    r"""The learning rate as given: :math:`\eta_t = \eta`."""

    def factor(self, t):
        return 1.0


@dataclasses.dataclass(frozen=True)
class StepDecay:
    r"""Step decay: :math:`\eta_t = \eta\,\gamma^{\lfloor t / s \rfloor}`, ``t`` steps taken so far
    (PyTorch's ``StepLR`` stepped once per optimizer step).

    Parameters
    ----------
    step_size : int >= 1
        :math:`s`, the number of steps between two decays.
    gamma : float in [0, 1], default 0.1
        :math:`\gamma`, the factor the learning rate is multiplied by every ``step_size`` steps.
    """

    step_size: int
    gamma: float = 0.1

    def __post_init__(self):
        _validate.positive_int(self.step_size, "step_size")
        _in_range(self.gamma, "gamma", 0.0, 1.0)

    def factor(self, t):
        return self.gamma ** (t // self.step_size)


@dataclasses.dataclass(frozen=True)
class InverseTime:
    r"""1/t decay: :math:`\eta_t = \eta / (1 + d\,t)^p`, ``t`` steps taken so far.

    ``power=1`` is Keras' ``InverseTimeDecay`` (``decay_steps=1``); Lee's
    :math:`\eta^t = \eta/\sqrt{t+1}` is ``InverseTime(decay=1, power=0.5)``.

    Parameters
    ----------
    decay : float >= 0, default 1
        :math:`d`, the rate per step; 0 keeps the learning rate constant.
    power : float >= 0, default 1
        :math:`p`, the exponent of :math:`1 + d\,t`.
    """

    decay: float = 1.0
    power: float = 1.0

    def __post_init__(self):
        _in_range(self.decay, "decay", 0.0)
        _in_range(self.power, "power", 0.0)

    def factor(self, t):
        return (1.0 + self.decay * t) ** -self.power


# --- argument checks ----------------------------------------------------------------

def _in_range(value, name, low, high=None, high_open=False):
    """Return ``value`` as a float in [low, high] (or [low, high)), or raise naming ``name``."""
    number = _validate.finite_scalar(value, name)
    if number < low or (high is not None and (number >= high if high_open else number > high)):
        expected = f">= {low}" if high is None else f"in [{low}, {high}" + (")" if high_open else "]")
        raise ValueError(f"{name} must be {expected}, got {number}")
    return number


_flag = _validate.flag


def _param(array, index):
    name = f"params[{index}]"
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray updated in place, got {type(array).__name__}")
    if array.dtype not in _validate.FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {array.dtype}")
    if not array.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (it is updated in place)")
    if not array.flags.writeable:
        raise ValueError(f"{name} must be writeable, got a read-only array")
    return array


def _sequence(value, name):
    if isinstance(value, np.ndarray) or not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list or tuple of arrays, got {type(value).__name__}")
    return value


# Per-parameter options a group may set, and their values where no group sets them.
_GROUP_OPTIONS = {"lr_scale": 1.0, "weight_decay": True, "weight_decay_scale": 1.0, "l1_scale": 1.0}


def _group(spec, index):
    name = f"groups[{index}]"
    if not isinstance(spec, dict):
        raise TypeError(f"{name} must be a dict, got {type(spec).__name__}")
    unknown = set(spec) - {"params", *_GROUP_OPTIONS}
    if unknown:
        raise ValueError(f"{name} has unknown keys {sorted(unknown)}; allowed: params, {', '.join(_GROUP_OPTIONS)}")
    if "params" not in spec:
        raise ValueError(f"{name} must have a 'params' list (positions or names)")
    selectors = spec["params"]
    if isinstance(selectors, (str, numbers.Integral)) or not isinstance(selectors, (list, tuple)):
        raise TypeError(f"{name}['params'] must be a list of positions (int) or names (str)")
    for selector in selectors:
        if isinstance(selector, bool) or not isinstance(selector, (str, numbers.Integral)):
            raise TypeError(f"{name}['params'] must hold ints or strs, got {selector!r}")
    group = {"params": tuple(operator.index(s) if not isinstance(s, str) else s for s in selectors)}
    if "lr_scale" in spec:
        group["lr_scale"] = _in_range(spec["lr_scale"], f"{name}['lr_scale']", 0.0)
    if "weight_decay" in spec:
        group["weight_decay"] = _flag(spec["weight_decay"], f"{name}['weight_decay']")
    for scale in ("weight_decay_scale", "l1_scale"):
        if scale in spec:
            group[scale] = _in_range(spec[scale], f"{name}[{scale!r}]", 0.0)
    return group


def _same_setting(mine, saved):
    """Whether a saved configuration entry is this optimizer's: equal and of one type.  A
    schedule of the caller's own class without ``__eq__`` compares by identity, which no
    saved copy (pickled, or from a fresh optimizer built the same way) can pass: its type
    is all that can be compared."""
    if type(mine) is not type(saved):
        return False
    return mine == saved or type(mine).__eq__ is object.__eq__


class _Plan:
    """A step's arguments checked once: flat views of the parameters, their state and options.

    ``serves`` tells whether a later step brings the same parameter arrays (by
    identity, still writeable and of the same dtype and shape, which an array's
    owner can change in place), names, state and groups, so that nothing needs
    checking again; the gradients are re-checked only when other arrays arrive.
    """

    def __init__(self, optimizer, params, names):
        params = [_param(p, i) for i, p in enumerate(_sequence(params, "params"))]
        self.options = optimizer._options(params, names)
        if optimizer._state is not None:
            optimizer._check_state(params)
            self.state = optimizer._state
        else:
            self.state = [optimizer._initial_state(p) for p in params]
        self.arrays = params
        self.layouts = [(p.dtype, p.shape) for p in params]
        self.names = None if names is None else list(names)
        # Group options are public dicts a caller may edit between steps, as with torch's param_groups.
        self.groups = copy.deepcopy(optimizer.groups)
        self.params = [p.reshape(-1) for p in params]
        self.states = [{key: a.reshape(-1) for key, a in state.items()} for state in self.state]
        self._grads = self._flat_grads = self._aliased = None
        self._scratch = None

    def _buffers(self):
        # Allocated on the first step that clips or maximises, then reused: no allocation per step.
        if self._scratch is None:
            self._scratch = [np.empty_like(p) for p in self.params]
        return self._scratch

    def clipped(self, grads, clipping):
        """``grads`` clipped into buffers the plan keeps."""
        outs = self._buffers()
        with np.errstate(all="ignore"):
            _clipping.clip_into(clipping["kind"], grads, outs, clipping["threshold"],
                                clipping["norm_type"], clipping["eps"])
        return outs

    def negated(self, grads):
        """``-grads`` in the same buffers (in place where ``grads`` are already the clipped ones)."""
        outs = self._buffers()
        for grad, out in zip(grads, outs):
            np.negative(grad, out=out)
        return outs

    def serves(self, optimizer, params, names):
        return (optimizer._state is self.state and isinstance(params, (list, tuple))
                and len(params) == len(self.arrays) and all(map(operator.is_, params, self.arrays))
                and all(p.flags.writeable and (p.dtype, p.shape) == layout for p, layout in zip(params, self.layouts))
                and names == self.names and optimizer.groups == self.groups)

    def gradients(self, grads):
        """The gradients as flat arrays, checked (once for the same arrays), copied where they alias a parameter."""
        if not (self._grads is not None and isinstance(grads, (list, tuple)) and len(grads) == len(self._grads)
                and all(map(operator.is_, grads, self._grads))):
            grads = _sequence(grads, "grads")
            if len(grads) != len(self.arrays):
                raise ValueError(f"grads must have one array per parameter ({len(self.arrays)}), got {len(grads)}")
            checked = [_validate.like(g, f"grads[{i}]", p.dtype, p.shape, f"params[{i}]")
                       for i, (g, p) in enumerate(zip(grads, self.arrays))]
            # Parameters are updated one after the other: a gradient sharing memory with any
            # parameter (its own, read element by element as it is written, or another one,
            # updated earlier in the step) must be read from a copy taken before the step.
            self._aliased = [any(np.may_share_memory(g, p) for p in self.arrays) for g in checked]
            self._flat_grads = [g.reshape(-1) for g in checked]
            # Kept for the identity test only where the checks converted nothing (a list
            # or a strided array becomes a new array, which the caller could not change).
            self._grads = list(grads) if all(map(operator.is_, grads, checked)) else None
        return [g.copy() if aliased else g for g, aliased in zip(self._flat_grads, self._aliased)]


# --- the optimizers -----------------------------------------------------------------

class Optimizer:
    """Base class: conventions, validation, groups, schedules and state; subclasses do one update."""

    _PRESETS = {}
    # Hyper-parameters the conventions share (the signature's defaults), so that
    # None -- "the preset's value" -- means the same for them as for the others.
    _DEFAULTS = {}

    # clip_eps of global_clip_norm where not given: PyTorch's clip_grad_norm_ adds 1e-6 to the norm,
    # Keras and optax nothing.  The per-array forms are Keras' and optax's alone: 0 in every convention.
    _CLIP_EPS = {"lee": 0.0, "torch": _clipping.TORCH_EPS, "keras": 0.0, "optax": 0.0}

    def __init__(self, lr, convention, *, l1, schedule, groups, clip_value=None, clip_norm=None, clip_rms=None,
                 global_clip_norm=None, clip_norm_type=2.0, clip_eps=None, **given):
        # The subclasses collect the clipping options as **clipping, so a misspelt option (Keras'
        # `clipnorm`) would arrive here among the settings; refuse it as Python refuses a bad keyword.
        # The settings a class declares (not its signature: a user's subclass may pass **kwargs on).
        settings_names = set(self._DEFAULTS).union(*self._PRESETS.values())
        for name in given.keys() - settings_names:
            known = sorted(settings_names | set(self._CLIP_ARGUMENTS.values()) | self._KEYWORDS)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {name!r}{hint}")
        if convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {list(CONVENTIONS)}, got {convention!r}")
        self.convention = convention
        self.clipping = self._checked_clipping(convention, dict(
            value=clip_value, norm=clip_norm, rms=clip_rms, global_norm=global_clip_norm),
            clip_norm_type, clip_eps)
        self.lr = _in_range(lr, "lr", 0.0)
        self.l1 = _in_range(l1, "l1", 0.0)
        self.schedule = Constant() if schedule is None else schedule
        if not callable(getattr(self.schedule, "factor", None)):
            raise TypeError(f"schedule must be Constant, StepDecay, InverseTime or have .factor(t), got {schedule!r}")
        if isinstance(groups, dict) or not isinstance(groups, (list, tuple)):
            raise TypeError(f"groups must be a list of dicts, got {type(groups).__name__}")
        self.groups = tuple(_group(spec, i) for i, spec in enumerate(groups))
        settings = {**self._DEFAULTS, **self._PRESETS[convention]}
        settings.update({key: value for key, value in given.items() if value is not None})
        self.settings = self._checked(settings)
        self._steps = 0
        self._state = None
        self._plan = None

    def __getstate__(self):
        # The plan holds views of the parameters; a copy or pickle would detach them from the
        # copied parameters and step into arrays nobody sees.  The copy plans afresh.
        return {**self.__dict__, "_plan": None}

    def __repr__(self):
        options = ", ".join(f"{key}={value!r}" for key, value in self.settings.items())
        if self.clipping is not None:
            c = self.clipping
            options += f", {self._CLIP_ARGUMENTS[c['kind']]}={c['threshold']!r}"
            if c["kind"] in ("norm", "global_norm"):
                options += f", clip_norm_type={c['norm_type']!r}, clip_eps={c['eps']!r}"
        return f"{type(self).__name__}(lr={self.lr!r}, convention={self.convention!r}, {options})"

    _CLIP_ARGUMENTS = {"value": "clip_value", "norm": "clip_norm", "rms": "clip_rms", "global_norm": "global_clip_norm"}
    # The keywords every optimizer takes besides its settings and the four clipping thresholds.
    _KEYWORDS = {"lr", "convention", "l1", "schedule", "groups", "clip_norm_type", "clip_eps"}

    @classmethod
    def _checked_clipping(cls, convention, thresholds, norm_type, eps):
        """None, or the one clipping asked for: kind, threshold, norm type and ε, checked."""
        given = {kind: value for kind, value in thresholds.items() if value is not None}
        if len(given) > 1:
            names = ", ".join(f"{cls._CLIP_ARGUMENTS[kind]}={value!r}" for kind, value in given.items())
            raise ValueError(f"at most one of clip_value, clip_norm, clip_rms and global_clip_norm may be set "
                             f"(as in Keras), got {names}")
        norm_type = _clipping.check_norm_type(norm_type, "clip_norm_type")
        if eps is not None:
            eps = _clipping.check_eps(eps, "clip_eps")
        kind = next(iter(given), None)
        # Accepted and ignored, a norm type or an ε would let a user believe they clip as torch
        # or optax does while refnet clips otherwise.
        if kind not in ("norm", "global_norm") and (norm_type != 2.0 or eps is not None):
            given_here = []
            if norm_type != 2.0:
                given_here.append(f"clip_norm_type={norm_type!r}")
            if eps is not None:
                given_here.append(f"clip_eps={eps!r}")
            context = f"with {cls._CLIP_ARGUMENTS[kind]}" if kind else "without clipping"
            raise ValueError(f"{', '.join(given_here)} given {context}: clip_norm_type and clip_eps apply to "
                             f"clip_norm and global_clip_norm only")
        if not given:
            return None
        value = given[kind]
        if eps is None:
            eps = cls._CLIP_EPS[convention] if kind == "global_norm" else 0.0
        return {"kind": kind, "threshold": _clipping.check_threshold(value, cls._CLIP_ARGUMENTS[kind]),
                "norm_type": norm_type, "eps": eps}

    def _checked(self, settings):
        """Validate and normalise the resolved settings (subclasses)."""
        raise NotImplementedError

    def _refuse_under_lee(self, option, present):
        if self.convention == "lee" and present:
            raise ValueError(
                f"{option} is not part of the 'lee' convention (the lecture has no such option); "
                f"use convention='torch' or 'keras'"
            )

    # -- stepping ---------------------------------------------------------------------

    @property
    def steps(self):
        """Number of steps taken so far."""
        return self._steps

    def lr_at(self, t):
        """The scheduled learning rate of step ``t`` (``t`` steps taken before it).

        The schedule's factor must be a finite real >= 0: a NaN, infinite or
        negative one is refused before any parameter is written; so is an ``lr``
        attribute set to one since the optimizer was built.
        """
        base = _in_range(self.lr, "lr", 0.0)   # a public attribute: checked again, as when built
        try:
            factor = _validate.finite_scalar(self.schedule.factor(t), f"its factor at step {t}")
            if factor < 0:
                raise ValueError(f"its factor at step {t} must be >= 0, got {factor}")
            lr = _validate.finite_scalar(base * factor, f"lr * its factor at step {t}")
        except (TypeError, ValueError) as error:
            raise type(error)(f"schedule {self.schedule!r}: {error}") from None
        return lr

    def step(self, params, grads, names=None):
        """Update ``params`` in place from ``grads``; ``names`` (optional) select groups by name.

        ``params`` is a list of C-contiguous, writeable float32/float64 arrays,
        the same ones (shape and dtype per position) on every step; ``grads`` a
        list of arrays of the same shapes and dtypes.  Everything is validated
        before any array is written: once while the same arrays come back step
        after step (as in ``fit``), again whenever another list arrives.
        """
        plan = self._plan if self._plan is not None and self._plan.serves(self, params, names) \
            else _Plan(self, params, names)
        grads = plan.gradients(grads)
        lr = self.lr_at(self._steps)
        if self.clipping is not None:
            grads = plan.clipped(grads, self.clipping)
        if self.settings.get("maximize", False):   # PyTorch's maximize: ascend, the caller's gradients untouched
            grads = plan.negated(grads)
        kernel_args = self._step_arguments(lr)
        for param, grad, state, options in zip(plan.params, grads, plan.states, plan.options):
            scaled_lr = lr * options["lr_scale"]
            self._update(param, grad, state, scaled_lr, self._regularisation(scaled_lr, options), kernel_args)
        self._plan, self._state = plan, plan.state
        self._steps += 1

    def _options(self, params, names):
        """The group options (see ``_GROUP_OPTIONS``) in force at each position."""
        if names is not None:
            if len(names) != len(params) or not all(isinstance(n, str) for n in names):
                raise ValueError(f"names must be a list of {len(params)} strings, one per parameter")
        options = [dict(_GROUP_OPTIONS) for _ in params]
        for index, group in enumerate(self.groups):
            # Checked again, as when the optimizer was built: a caller may have edited the dict
            # since (as torch's param_groups), and nothing may be written before it is checked.
            group = _group(group, index)
            for position in self._selected(group["params"], index, params, names):
                options[position].update((key, value) for key, value in group.items() if key != "params")
        return options

    @staticmethod
    def _selected(selectors, index, params, names):
        for selector in selectors:
            if isinstance(selector, str):
                if names is None:
                    raise ValueError(f"groups[{index}] selects {selector!r} by name; pass names= to step()")
                matches = [i for i, name in enumerate(names) if fnmatch.fnmatchcase(name, selector)]
                if not matches:
                    raise ValueError(f"groups[{index}]: {selector!r} matches no parameter name")
                yield from matches
            else:
                if not -len(params) <= selector < len(params):
                    raise ValueError(f"groups[{index}] selects position {selector}, but there are {len(params)} params")
                yield selector % len(params)

    def _check_state(self, params):
        if len(params) != len(self._state):
            raise ValueError(
                f"params must be the {len(self._state)} arrays this optimizer has stepped, got {len(params)}"
            )
        for i, (param, state) in enumerate(zip(params, self._state)):
            for array in state.values():
                if array.shape != param.shape or array.dtype != param.dtype:
                    raise ValueError(
                        f"params[{i}] has shape {param.shape} and dtype {param.dtype}, but the optimizer's "
                        f"state for position {i} has shape {array.shape} and dtype {array.dtype}"
                    )

    def _regularisation(self, lr, options):
        """(l2, l1, keep) for the kernel: coupled L2, L1 and the decoupled decay factor."""
        if not options["weight_decay"]:
            return 0.0, 0.0, 1.0
        decay = self.settings["weight_decay"] * options["weight_decay_scale"]
        l1 = self.l1 * options["l1_scale"]
        if self.settings["decoupled"]:
            return 0.0, l1, 1.0 - lr * decay
        return decay, l1, 1.0

    def _step_arguments(self, lr):
        """Scalars computed once per step and shared by every parameter (subclasses)."""
        return {}

    # -- state ------------------------------------------------------------------------

    def _initial_state(self, param):
        raise NotImplementedError

    def state_dict(self):
        """The optimizer's configuration, step count and state arrays (copies)."""
        return {
            "optimizer": type(self).__name__,
            "config": self._config(),
            "steps": self._steps,
            "state": None if self._state is None else [
                {key: array.copy() for key, array in state.items()} for state in self._state
            ],
        }

    def load_state_dict(self, state_dict):
        """Restore what :meth:`state_dict` returned, into an optimizer configured the same way."""
        if not isinstance(state_dict, dict) or set(state_dict) != {"optimizer", "config", "steps", "state"}:
            raise ValueError("state_dict must be a dict returned by Optimizer.state_dict()")
        if state_dict["optimizer"] != type(self).__name__:
            raise ValueError(f"state_dict is from {state_dict['optimizer']}, not {type(self).__name__}")
        mine, saved = self._config(), state_dict["config"]
        if not isinstance(saved, dict):
            raise ValueError(f"state_dict['config'] must be a dict, got {type(saved).__name__}")
        for key in sorted(set(mine) | set(saved), key=str):
            if not _same_setting(mine.get(key), saved.get(key)):
                raise ValueError(
                    f"state_dict has {key}={saved.get(key)!r}, but this optimizer has {key}={mine.get(key)!r}"
                )
        steps = state_dict["steps"]
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or not 0 <= steps <= sys.maxsize:
            raise ValueError(f"state_dict['steps'] must be an int in [0, {sys.maxsize}], got {steps!r}")
        state = state_dict["state"]
        if state is not None:
            state = [self._loaded(entry, i) for i, entry in enumerate(_sequence(state, "state_dict['state']"))]
        self._steps, self._state = int(steps), state

    def _loaded(self, entry, index):
        if not isinstance(entry, dict) or set(entry) != set(self._state_keys()):
            raise ValueError(f"state_dict['state'][{index}] must have the keys {sorted(self._state_keys())}")
        arrays = {key: _validate.float_array(value, f"state_dict['state'][{index}][{key!r}]").copy()
                  for key, value in entry.items()}
        if len({(a.shape, a.dtype) for a in arrays.values()}) > 1:
            raise ValueError(f"state_dict['state'][{index}] arrays must share one shape and dtype")
        return arrays

    def _config(self):
        # Clipping joins the configuration only where set, so that state saved before it existed still loads.
        clipping = {} if self.clipping is None else {"clipping": self.clipping}
        return {"convention": self.convention, "lr": self.lr, "l1": self.l1, "schedule": self.schedule,
                "groups": self.groups, **clipping, **self.settings}

    def _state_keys(self):
        raise NotImplementedError


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional (Nesterov) momentum.

    Update: :func:`refnet.reference.optimizers.sgd` without momentum,
    :func:`~refnet.reference.optimizers.sgd_momentum` with it.

    ============  ================  =============  ===========
    convention    lr_in_momentum    decoupled      nesterov
    ============  ================  =============  ===========
    ``"lee"``     True              False          refused
    ``"torch"``   False             False          allowed
    ``"keras"``   True              True           allowed
    ``"optax"``   False             False          allowed
    ============  ================  =============  ===========

    ``lr_in_momentum=True``: :math:`v \leftarrow \mu v - \eta g,\ \theta \leftarrow \theta + v`
    (Lee, Keras; the state ``momentum_buffer`` holds :math:`-v`); ``False``:
    :math:`b \leftarrow \mu b + g,\ \theta \leftarrow \theta - \eta b` (PyTorch).  Equal
    under a constant learning rate, different under a schedule.  PyTorch's ``dampening``
    and ``maximize`` are 0 and False in every convention unless given (Keras and optax
    have neither).

    Parameters
    ----------
    lr : float
        The learning rate :math:`\eta > 0` (required: the conventions' defaults differ).
    momentum : float in [0, 1], default 0
        Momentum :math:`\mu`; 0 is plain gradient descent.
    nesterov : bool, default False
        Nesterov's look-ahead form of momentum (refused under ``"lee"``).
    dampening : float in [0, 1], default 0
        PyTorch's dampening :math:`\tau`: :math:`b \leftarrow \mu b + (1 - \tau) g` after the first
        step (not with ``nesterov``; refused under ``"lee"`` unless 0).
    maximize : bool, default False
        Ascend: negate the gradient before anything else (PyTorch's ``maximize``; every optimizer).
    lr_in_momentum : bool, optional
        :math:`v \leftarrow \mu v - \eta g` (Lee, Keras) instead of
        :math:`b \leftarrow \mu b + g,\ \theta \leftarrow \theta - \eta b` (PyTorch).
    weight_decay : float, default 0
        L2 coefficient :math:`\lambda \ge 0`: coupled (:math:`g \mathrel{+}= \lambda\theta`)
        unless ``decoupled``.
    convention : {"torch", "lee", "keras", "optax"}, default "torch"
        The table above: the values every option left at ``None`` takes.
    l1 : float, default 0
        Adds :math:`\lambda_1 \operatorname{sgn}\theta` to the gradient (sgn 0 = 0).
    decoupled : bool, optional
        Decay the weights directly, :math:`\theta \leftarrow (1 - \eta\lambda)\theta`
        (AdamW, Keras), instead of adding :math:`\lambda\theta` to the gradient.
    schedule : Constant, StepDecay or InverseTime, optional
        Multiplies ``lr`` by a factor of the number of steps taken.
    groups : list of dict, default ()
        Per-parameter ``lr_scale``, ``weight_decay`` (bool), ``weight_decay_scale`` and
        ``l1_scale``, selected by position or name pattern (see :mod:`refnet.optim`).
    clip_value : float > 0, optional
        Clip each gradient element to :math:`[-c, c]` before the update (Keras ``clipvalue``,
        torch ``clip_grad_value_``, optax ``clip``).  At most one of the four clipping options.
    clip_norm : float > 0, optional
        Scale each gradient array whose norm exceeds :math:`c` down to norm :math:`c`
        (Keras ``clipnorm``).
    clip_rms : float > 0, optional
        Scale each gradient array whose root mean square exceeds :math:`c` down to RMS :math:`c`
        (optax ``clip_by_block_rms``).
    global_clip_norm : float > 0, optional
        Scale all gradients by one factor so that their norm together is at most :math:`c`
        (torch ``clip_grad_norm_``, Keras ``global_clipnorm``, optax ``clip_by_global_norm``).
    clip_norm_type : float >= 1 or inf, default 2
        The :math:`p` of the norm of ``clip_norm`` and ``global_clip_norm`` (torch's ``norm_type``).
    clip_eps : float >= 0, optional
        :math:`\varepsilon` in the factor :math:`\min(1, c / (\lVert g\rVert + \varepsilon))`
        of ``clip_norm`` and ``global_clip_norm``; by default 1e-6 for ``global_clip_norm`` under
        ``"torch"`` (``clip_grad_norm_``), else 0.  With another clipping, or none, a
        ``clip_norm_type`` other than 2 or any ``clip_eps`` is refused, not ignored.

    Raises
    ------
    TypeError, ValueError
        An unknown keyword argument (a misspelt option), a hyper-parameter of the wrong type or out of
        its range, an unknown convention, or an option the ``"lee"`` convention refuses.

    Examples
    --------
    >>> import numpy as np, refnet
    >>> w = np.array([1.0, -2.0])
    >>> refnet.SGD(lr=0.1).step([w], [np.array([1.0, 1.0])])
    >>> w
    array([ 0.9, -2.1])
    """

    _DEFAULTS = dict(momentum=0.0, nesterov=False, weight_decay=0.0, dampening=0.0, maximize=False)
    _PRESETS = {
        "lee": dict(lr_in_momentum=True, decoupled=False),
        "torch": dict(lr_in_momentum=False, decoupled=False),
        "keras": dict(lr_in_momentum=True, decoupled=True),
        "optax": dict(lr_in_momentum=False, decoupled=False),
    }

    def __init__(self, lr, momentum=0.0, nesterov=False, weight_decay=0.0, convention="torch", *,
                 l1=0.0, lr_in_momentum=None, decoupled=None, dampening=0.0, maximize=False, schedule=None,
                 groups=(), **clipping):
        super().__init__(lr, convention, l1=l1, schedule=schedule, groups=groups, **clipping, momentum=momentum,
                         nesterov=nesterov, weight_decay=weight_decay, lr_in_momentum=lr_in_momentum,
                         decoupled=decoupled, dampening=dampening, maximize=maximize)

    def _checked(self, s):
        s["momentum"] = _in_range(s["momentum"], "momentum", 0.0, 1.0)
        s["nesterov"] = _flag(s["nesterov"], "nesterov")
        self._refuse_under_lee("nesterov=True", s["nesterov"])
        if s["nesterov"] and s["momentum"] == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        s["weight_decay"] = _in_range(s["weight_decay"], "weight_decay", 0.0)
        s["lr_in_momentum"] = _flag(s["lr_in_momentum"], "lr_in_momentum")
        s["decoupled"] = _flag(s["decoupled"], "decoupled")
        s["dampening"] = _in_range(s["dampening"], "dampening", 0.0, 1.0)
        self._refuse_under_lee("dampening", s["dampening"])
        if s["nesterov"] and s["dampening"]:
            raise ValueError("nesterov=True needs dampening=0 (as PyTorch)")
        s["maximize"] = _flag(s["maximize"], "maximize")
        return s

    def _state_keys(self):
        return ("momentum_buffer",) if self.settings["momentum"] else ()

    def _initial_state(self, param):
        return {key: np.zeros_like(param) for key in self._state_keys()}

    def _update(self, param, grad, state, lr, regularisation, _):
        l2, l1, keep = regularisation
        s = self.settings
        if s["momentum"]:
            # PyTorch copies the first gradient into the buffer undamped.
            dampening = s["dampening"] if self._steps else 0.0
            active().sgd_momentum(param, grad, state["momentum_buffer"], lr, s["momentum"], dampening,
                                  s["nesterov"], s["lr_in_momentum"], l2, l1, keep)
        else:
            active().sgd(param, grad, lr, l2, l1, keep)


class Adagrad(Optimizer):
    r"""Adagrad: the step divided by the root of the sum of all squared gradients so far.

    Update: :func:`refnet.reference.optimizers.rmsprop` with weights :math:`(1, 1)`:
    :math:`s \leftarrow s + g^2,\ \theta \leftarrow \theta - \eta\, g / d`.

    ===========  ======  ===================  ===========  ==========  =========
    convention   eps     initial_accumulator  eps_in_sqrt  root_state  decoupled
    ===========  ======  ===================  ===========  ==========  =========
    ``"lee"``    0       0                    False        True        False
    ``"torch"``  1e-10   0                    False        False       False
    ``"keras"``  1e-7    0.1                  True         False       True
    ``"optax"``  1e-7    0.1                  True         False       False
    ===========  ======  ===================  ===========  ==========  =========

    :math:`d = \sqrt{s} + \varepsilon` (PyTorch), :math:`\sqrt{s + \varepsilon}`
    (``eps_in_sqrt``, Keras), or Lee's :math:`\sqrt{\sum_{i \le t} (g^i)^2}` kept as a
    root updated by scaled ``hypot`` (``root_state``; a zero root gives a zero step).
    With a constant gradient Lee's steps are :math:`\eta\operatorname{sgn}(g)/\sqrt t`.
    PyTorch's ``lr_decay`` is ``schedule=InverseTime(lr_decay)``.

    Parameters
    ----------
    lr : float
        The learning rate :math:`\eta > 0` (required: the conventions' defaults differ).
    eps : float, optional
        :math:`\varepsilon \ge 0` added to the denominator (inside the root if ``eps_in_sqrt``).
    initial_accumulator : float, optional
        The value the sum of squared gradients starts from.
    eps_in_sqrt : bool, optional
        :math:`\sqrt{s + \varepsilon}` (Keras) instead of :math:`\sqrt s + \varepsilon`.
    root_state : bool, optional
        Keep Lee's root :math:`\sigma` instead of the sum (no underflow of :math:`g^2`).
    weight_decay, convention, l1, decoupled, maximize, schedule, groups
        As for :class:`SGD`; the convention's values are in the table above.
    clip_value, clip_norm, clip_rms, global_clip_norm, clip_norm_type, clip_eps
        Gradient clipping before the update, as for :class:`SGD`.

    Raises
    ------
    TypeError, ValueError
        A hyper-parameter of the wrong type or out of its range, an unknown convention, or an option the
        ``"lee"`` convention refuses.
    """

    _DEFAULTS = dict(weight_decay=0.0, maximize=False)
    _PRESETS = {
        "lee": dict(eps=0.0, initial_accumulator=0.0, eps_in_sqrt=False, root_state=True, decoupled=False),
        "torch": dict(eps=1e-10, initial_accumulator=0.0, eps_in_sqrt=False, root_state=False, decoupled=False),
        "keras": dict(eps=1e-7, initial_accumulator=0.1, eps_in_sqrt=True, root_state=False, decoupled=True),
        "optax": dict(eps=1e-7, initial_accumulator=0.1, eps_in_sqrt=True, root_state=False, decoupled=False),
    }

    def __init__(self, lr, eps=None, initial_accumulator=None, weight_decay=0.0, convention="torch", *,
                 l1=0.0, eps_in_sqrt=None, root_state=None, decoupled=None, maximize=False, schedule=None,
                 groups=(), **clipping):
        super().__init__(lr, convention, l1=l1, schedule=schedule, groups=groups, **clipping, eps=eps,
                         initial_accumulator=initial_accumulator, weight_decay=weight_decay,
                         eps_in_sqrt=eps_in_sqrt, root_state=root_state, decoupled=decoupled, maximize=maximize)

    def _checked(self, s):
        s["initial_accumulator"] = _in_range(s["initial_accumulator"], "initial_accumulator", 0.0)
        s["weight_decay"] = _in_range(s["weight_decay"], "weight_decay", 0.0)
        for switch in ("eps_in_sqrt", "root_state", "decoupled", "maximize"):
            s[switch] = _flag(s[switch], switch)
        _check_eps(s, s["root_state"])
        _check_root_state(s)
        return s

    def _state_keys(self):
        return ("root_sum",) if self.settings["root_state"] else ("sum",)

    def _initial_state(self, param):
        start = self.settings["initial_accumulator"]
        (key,) = self._state_keys()
        return {key: np.full_like(param, math.sqrt(start) if self.settings["root_state"] else start)}

    def _update(self, param, grad, state, lr, regularisation, _):
        l2, l1, keep = regularisation
        s = self.settings
        (key,) = self._state_keys()
        unused = param[:0]
        active().rmsprop(param, grad, state[key], unused, unused, lr, 1.0, 1.0, 0.0, False, s["eps"],
                         s["eps_in_sqrt"], False, s["root_state"], 1.0, l2, l1, keep)


def _check_eps(s, root_state=False):
    """eps > 0, except in Lee's root form, which needs none."""
    s["eps"] = _in_range(s["eps"], "eps", 0.0)
    if s["eps"] == 0 and not root_state:
        raise ValueError(
            "eps must be positive unless root_state=True: g**2 underflows to 0 while g != 0 "
            "(g = 1e-200 in float64) and the step would divide by 0; root_state (Lee's form) "
            "keeps the root and needs no eps"
        )


def _check_root_state(s):
    if s["root_state"] and s["eps_in_sqrt"]:
        raise ValueError("root_state=True keeps eps outside the square root; it cannot be combined with eps_in_sqrt=True")


class RMSProp(Optimizer):
    r"""RMSProp: the step divided by the root of a running average of squared gradients.

    Update: :func:`refnet.reference.optimizers.rmsprop`:
    :math:`v \leftarrow \alpha v + (1-\alpha) g^2,\ \theta \leftarrow \theta - \eta\, g / d`.

    ===========  =====  ======  ===============  ===========  ==============  ==========  =========
    convention   alpha  eps     initial_average  eps_in_sqrt  lr_in_momentum  root_state  decoupled
    ===========  =====  ======  ===============  ===========  ==============  ==========  =========
    ``"lee"``    0.9    0       ``"first"``      False        True            True        False
    ``"torch"``  0.99   1e-8    0                False        False           False       False
    ``"keras"``  0.9    1e-7    0                True         True            False       True
    ``"optax"``  0.9    1e-8    0                True         True            False       False
    ===========  =====  ======  ===============  ===========  ==============  ==========  =========

    ``alpha`` is Keras' ``rho``; Lee's lecture leaves :math:`\alpha` open, the
    preset takes Hinton's 0.9.  ``initial_average``: the value :math:`v` starts
    from (0; TensorFlow 1 used 1), or ``"first"``, Lee's :math:`\sigma^0 = |g^0|`
    (the first step replaces the average by :math:`g^2`).  Momentum :math:`\mu`:
    :math:`B \leftarrow \mu B + g/d,\ \theta \leftarrow \theta - \eta B` (PyTorch) or
    :math:`B \leftarrow \mu B + \eta g/d,\ \theta \leftarrow \theta - B` (``lr_in_momentum``,
    Keras).  ``centered`` (PyTorch, Keras; refused under ``"lee"``) divides by the
    root of :math:`v - \bar g^2`, :math:`\bar g` the running mean of :math:`g`.
    optax's options: ``nesterov`` (:math:`\theta \leftarrow \theta - \eta(\mu B + g/d)`,
    optax's ``rmsprop(nesterov=True)`` with ``lr_in_momentum=True``, as optax's trace follows
    the learning rate) and ``bias_correction``, dividing :math:`v` (and :math:`\bar g`) by
    :math:`1 - \alpha^t` before the root; both off in every convention unless given.

    First step from rest with a gradient :math:`g`: Lee :math:`\eta\operatorname{sgn} g`;
    PyTorch :math:`\eta g / (\sqrt{1-\alpha}\,|g| + \varepsilon) \approx 10\eta`;
    Keras :math:`\eta g / \sqrt{(1-\rho) g^2 + \varepsilon} \approx 3.16\eta`.

    Parameters
    ----------
    lr : float
        The learning rate :math:`\eta > 0` (required: the conventions' defaults differ).
    alpha : float in [0, 1), optional
        Weight of the old average (Keras' ``rho``).
    eps : float, optional
        :math:`\varepsilon \ge 0` added to the denominator (inside the root if ``eps_in_sqrt``).
    momentum : float in [0, 1], default 0
        Momentum :math:`\mu` on the scaled step.
    centered : bool, default False
        Divide by the root of :math:`v - \bar g^2` (refused under ``"lee"``).
    nesterov : bool, default False
        Nesterov's look-ahead on the momentum buffer (needs ``momentum > 0``; refused under ``"lee"``).
    bias_correction : bool, default False
        Divide the running averages by :math:`1 - \alpha^t` (optax; not with Lee's root state or
        ``initial_average="first"``).
    initial_average : float or "first", optional
        The value :math:`v` starts from, or Lee's :math:`\sigma^0 = |g^0|`.
    eps_in_sqrt : bool, optional
        :math:`\sqrt{v + \varepsilon}` (Keras) instead of :math:`\sqrt v + \varepsilon`.
    lr_in_momentum : bool, optional
        The learning rate inside the momentum buffer (Keras) or outside (PyTorch).
    root_state : bool, optional
        Keep Lee's root :math:`\sigma` instead of :math:`v` (no underflow of :math:`g^2`).
    weight_decay, convention, l1, decoupled, maximize, schedule, groups
        As for :class:`SGD`; the convention's values are in the table above.
    clip_value, clip_norm, clip_rms, global_clip_norm, clip_norm_type, clip_eps
        Gradient clipping before the update, as for :class:`SGD`.

    Raises
    ------
    TypeError, ValueError
        A hyper-parameter of the wrong type or out of its range, an unknown convention, or an option the
        ``"lee"`` convention refuses.
    """

    _DEFAULTS = dict(momentum=0.0, centered=False, weight_decay=0.0, nesterov=False, bias_correction=False,
                     maximize=False)
    _PRESETS = {
        "lee": dict(alpha=0.9, eps=0.0, initial_average="first", eps_in_sqrt=False,
                    lr_in_momentum=True, root_state=True, decoupled=False),
        "torch": dict(alpha=0.99, eps=1e-8, initial_average=0.0, eps_in_sqrt=False,
                      lr_in_momentum=False, root_state=False, decoupled=False),
        "keras": dict(alpha=0.9, eps=1e-7, initial_average=0.0, eps_in_sqrt=True,
                      lr_in_momentum=True, root_state=False, decoupled=True),
        # optax's rmsprop scales by the learning rate before its trace: lr inside the buffer.
        "optax": dict(alpha=0.9, eps=1e-8, initial_average=0.0, eps_in_sqrt=True,
                      lr_in_momentum=True, root_state=False, decoupled=False),
    }

    def __init__(self, lr, alpha=None, eps=None, momentum=0.0, centered=False, weight_decay=0.0,
                 convention="torch", *, l1=0.0, initial_average=None, eps_in_sqrt=None,
                 lr_in_momentum=None, root_state=None, decoupled=None, nesterov=False, bias_correction=False,
                 maximize=False, schedule=None, groups=(), **clipping):
        super().__init__(lr, convention, l1=l1, schedule=schedule, groups=groups, **clipping, alpha=alpha, eps=eps,
                         momentum=momentum, centered=centered, weight_decay=weight_decay,
                         initial_average=initial_average, eps_in_sqrt=eps_in_sqrt,
                         lr_in_momentum=lr_in_momentum, root_state=root_state, decoupled=decoupled,
                         nesterov=nesterov, bias_correction=bias_correction, maximize=maximize)

    def _checked(self, s):
        s["alpha"] = _in_range(s["alpha"], "alpha", 0.0, 1.0, high_open=True)
        s["momentum"] = _in_range(s["momentum"], "momentum", 0.0, 1.0)
        s["weight_decay"] = _in_range(s["weight_decay"], "weight_decay", 0.0)
        if s["initial_average"] != "first":
            s["initial_average"] = _in_range(s["initial_average"], "initial_average", 0.0)
        for switch in ("centered", "eps_in_sqrt", "lr_in_momentum", "root_state", "decoupled", "nesterov",
                       "bias_correction", "maximize"):
            s[switch] = _flag(s[switch], switch)
        self._refuse_under_lee("centered=True", s["centered"])
        self._refuse_under_lee("nesterov=True", s["nesterov"])
        _check_eps(s, s["root_state"])
        _check_root_state(s)
        if s["root_state"] and s["centered"]:
            raise ValueError("centered=True needs the mean square itself; it cannot be combined with root_state=True")
        if s["nesterov"] and s["momentum"] == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        if s["bias_correction"] and (s["root_state"] or s["initial_average"] == "first"):
            raise ValueError("bias_correction=True corrects an average that starts at 0; it cannot be combined with "
                             "root_state=True or initial_average='first'")
        return s

    def _state_keys(self):
        s = self.settings
        keys = ["root_mean_square" if s["root_state"] else "square_avg"]
        if s["centered"]:
            keys.append("grad_avg")
        if s["momentum"]:
            keys.append("momentum_buffer")
        return tuple(keys)

    def _initial_state(self, param):
        s = self.settings
        start = 0.0 if s["initial_average"] == "first" else s["initial_average"]
        state = {key: np.zeros_like(param) for key in self._state_keys()}
        state[self._state_keys()[0]][...] = math.sqrt(start) if s["root_state"] else start
        return state

    def _step_arguments(self, lr):
        alpha = self.settings["alpha"]
        correction = 1.0 - alpha ** (self._steps + 1) if self.settings["bias_correction"] else 1.0
        if self.settings["initial_average"] == "first" and self._steps == 0:
            return {"weights": (0.0, 1.0), "bias_correction": correction}
        return {"weights": (alpha, 1.0 - alpha), "bias_correction": correction}

    def _update(self, param, grad, state, lr, regularisation, args):
        l2, l1, keep = regularisation
        s = self.settings
        unused = param[:0]
        average = state[self._state_keys()[0]]
        old_weight, new_weight = args["weights"]
        active().rmsprop(param, grad, average, state.get("grad_avg", unused),
                         state.get("momentum_buffer", unused), lr, old_weight, new_weight,
                         s["momentum"], s["nesterov"], s["eps"], s["eps_in_sqrt"], s["lr_in_momentum"],
                         s["root_state"], args["bias_correction"], l2, l1, keep)


# The empty array a kernel takes for a state it does not keep (AMSGrad's maximum without AMSGrad).
_NO_STATE = np.empty(0)


class Adam(Optimizer):
    r"""Adam, and AdamW with ``decoupled=True``, AMSGrad and Nesterov-Adam (NAdam).

    Update: :func:`refnet.reference.optimizers.adam`:
    :math:`m \leftarrow \beta_1 m + (1-\beta_1) g,\ v \leftarrow \beta_2 v + (1-\beta_2) g^2,\
    \theta \leftarrow \theta - \eta\,\hat m / (\sqrt{\hat v} + \varepsilon)`.

    ===========  ======  ===============  =======  ===========  ==============
    convention   eps     bias_correction  eps_hat  decoupled    momentum_decay
    ===========  ======  ===============  =======  ===========  ==============
    ``"lee"``    1e-8    True             False    False        (refused)
    ``"torch"``  1e-8    True             False    False        0.004
    ``"keras"``  1e-7    True             True     True         1
    ``"optax"``  1e-8    True             False    False        inf
    ===========  ======  ===============  =======  ===========  ==============

    Every convention has ``eps_in_sqrt=False``, ``eps_root=0``, ``amsgrad=False``
    and ``nesterov=False`` unless given.  ``"lee"`` is Kingma & Ba's Algorithm 1 (the
    lecture's slide), which PyTorch implements, and refuses AMSGrad and Nesterov;
    ``eps_hat`` is Keras' form, :math:`\hat\varepsilon` added to the uncorrected
    :math:`\sqrt v` with the correction folded into the step size.  ``decoupled`` is
    AdamW (PyTorch's ``AdamW`` defaults ``weight_decay`` to 0.01; here it is 0 unless
    given).  The first step is :math:`\approx \eta\operatorname{sgn} g`.

    The other libraries' options: ε inside the root, :math:`\sqrt{\hat v + \varepsilon}`
    (``eps_in_sqrt``, the name RMSProp uses), or optax's ``eps_root``,
    :math:`\sqrt{\hat v + \varepsilon_\text{root}} + \varepsilon`; each bias correction
    switched alone (``bias_correction=(True, False)`` corrects :math:`m` only: optax's
    ``bias_correction_mu``/``bias_correction_nu``); AMSGrad, dividing by the running
    maximum of the second moment: ``amsgrad=True`` keeps the maximum of :math:`v`
    (PyTorch, Keras), ``amsgrad="corrected"`` the maximum of :math:`\hat v` (optax's
    ``amsgrad``).  ``nesterov=True`` is NAdam: PyTorch's ``NAdam`` (``decoupled`` for
    its ``decoupled_weight_decay``) and Keras' ``Nadam`` schedule the momentum
    :math:`\mu_t = \beta_1(1 - \tfrac12\,0.96^{t\psi})` with ``momentum_decay``
    :math:`\psi` (PyTorch 0.004; Keras' :math:`0.96^t` is :math:`\psi = 1`, and
    ``convention="keras"`` with ``nesterov=True`` is Keras' ``Nadam``: ``eps_hat``
    off unless given); ``momentum_decay=math.inf`` (the ``"optax"`` preset) gives
    :math:`\mu_t = \beta_1`, Dozat's NAdam and optax's ``nadam`` / ``adam(nesterov=True)``.  With ``nesterov``,
    with ``eps_root`` or ε inside the root and with ``amsgrad="corrected"``,
    :math:`\hat v = v/(1-\beta_2^t)` is formed before the root, as those libraries do;
    PyTorch's Adam takes the root first, :math:`\sqrt v/\sqrt{1-\beta_2^t}`.

    Parameters
    ----------
    lr : float
        The learning rate :math:`\eta > 0` (required: the conventions' defaults differ).
    beta1, beta2 : float in [0, 1), default 0.9 and 0.999
        Weights of the old first and second moments.
    eps : float, optional
        :math:`\varepsilon \ge 0` of the denominator (may be 0 only with ``eps_root > 0``).
    bias_correction : bool or (bool, bool), optional
        Divide the moments by :math:`1 - \beta^t`: both, or (first moment, second moment).
    eps_hat : bool, optional
        Keras' :math:`\hat\varepsilon` form (added to the uncorrected :math:`\sqrt v`).
    eps_in_sqrt : bool, default False
        :math:`\sqrt{\hat v + \varepsilon}` instead of :math:`\sqrt{\hat v} + \varepsilon`.
    eps_root : float, default 0
        optax's :math:`\varepsilon_\text{root} \ge 0` inside the root, beside ``eps`` outside it.
    amsgrad : bool or "corrected", default False
        Divide by the running maximum of :math:`v` (``True``: PyTorch, Keras) or of
        :math:`\hat v` (``"corrected"``: optax).
    nesterov : bool, default False
        Nesterov-Adam (NAdam).
    momentum_decay : float >= 0 or math.inf, optional
        :math:`\psi` of NAdam's momentum schedule (only with ``nesterov=True``).
    weight_decay, convention, l1, decoupled, maximize, schedule, groups
        As for :class:`SGD`; the convention's values are in the table above.
    clip_value, clip_norm, clip_rms, global_clip_norm, clip_norm_type, clip_eps
        Gradient clipping before the update, as for :class:`SGD`.

    Raises
    ------
    TypeError, ValueError
        A hyper-parameter of the wrong type or out of its range, an unknown convention, an option the
        ``"lee"`` convention refuses, or options that exclude each other (``eps_hat`` with ε inside the
        root or ``amsgrad="corrected"``; ``eps_in_sqrt`` with ``eps_root``).
    """

    _DEFAULTS = dict(beta1=0.9, beta2=0.999, weight_decay=0.0, eps_in_sqrt=False, eps_root=0.0, amsgrad=False,
                     nesterov=False, maximize=False)
    _PRESETS = {
        "lee": dict(eps=1e-8, bias_correction=True, eps_hat=False, decoupled=False, momentum_decay=None),
        "torch": dict(eps=1e-8, bias_correction=True, eps_hat=False, decoupled=False, momentum_decay=0.004),
        "keras": dict(eps=1e-7, bias_correction=True, eps_hat=True, decoupled=True, momentum_decay=1.0),
        "optax": dict(eps=1e-8, bias_correction=True, eps_hat=False, decoupled=False, momentum_decay=math.inf),
    }

    def __init__(self, lr, beta1=0.9, beta2=0.999, eps=None, weight_decay=0.0, decoupled=None,
                 convention="torch", *, l1=0.0, bias_correction=None, eps_hat=None, eps_in_sqrt=False,
                 eps_root=0.0, amsgrad=False, nesterov=False, momentum_decay=None, maximize=False, schedule=None,
                 groups=(), **clipping):
        if momentum_decay is not None and isinstance(nesterov, (bool, np.bool_)) and not nesterov:
            raise ValueError("momentum_decay is NAdam's momentum schedule; it needs nesterov=True")
        if convention == "keras" and isinstance(nesterov, (bool, np.bool_)) and nesterov and eps_hat is None:
            eps_hat = False   # Keras' Nadam adds epsilon to the corrected root, unlike its Adam
        super().__init__(lr, convention, l1=l1, schedule=schedule, groups=groups, **clipping, beta1=beta1,
                         beta2=beta2, eps=eps, weight_decay=weight_decay, decoupled=decoupled,
                         bias_correction=bias_correction, eps_hat=eps_hat, eps_in_sqrt=eps_in_sqrt,
                         eps_root=eps_root, amsgrad=amsgrad, nesterov=nesterov, momentum_decay=momentum_decay,
                         maximize=maximize)
        self._momentum_product = (0, 1.0)   # (t, the product of mu_1 ... mu_t), NAdam's running product

    def _checked(self, s):
        s["beta1"] = _in_range(s["beta1"], "beta1", 0.0, 1.0, high_open=True)
        s["beta2"] = _in_range(s["beta2"], "beta2", 0.0, 1.0, high_open=True)
        s["eps_root"] = _in_range(s["eps_root"], "eps_root", 0.0)
        s["weight_decay"] = _in_range(s["weight_decay"], "weight_decay", 0.0)
        for switch in ("decoupled", "eps_hat", "eps_in_sqrt", "nesterov", "maximize"):
            s[switch] = _flag(s[switch], switch)
        s["bias_correction"] = _bias_correction(s["bias_correction"])
        if s["amsgrad"] != "corrected":
            s["amsgrad"] = _flag(s["amsgrad"], 'amsgrad (or "corrected")')
        self._refuse_under_lee("amsgrad", s["amsgrad"])
        self._refuse_under_lee("nesterov=True", s["nesterov"])
        s["eps"] = _in_range(s["eps"], "eps", 0.0)
        if s["eps"] == 0 and s["eps_root"] == 0:
            raise ValueError("eps must be positive unless eps_root > 0: v can be 0 (a gradient of 0, or g**2 "
                             "underflowing) and the step would divide by 0")
        if s["eps_in_sqrt"] and s["eps_root"]:
            raise ValueError("eps_in_sqrt=True puts eps inside the root, where eps_root is; give one of them")
        if s["eps_hat"] and (s["eps_in_sqrt"] or s["eps_root"] or s["amsgrad"] == "corrected"):
            raise ValueError("eps_hat=True adds eps to the uncorrected root; it cannot be combined with eps_in_sqrt, "
                             "eps_root or amsgrad='corrected', which correct v before the root")
        if s["nesterov"]:
            decay = s["momentum_decay"]
            if decay != math.inf:
                decay = _in_range(decay, "momentum_decay", 0.0)
            s["momentum_decay"] = decay
        else:
            s["momentum_decay"] = None
        return s

    def _state_keys(self):
        return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if self.settings["amsgrad"] else ("exp_avg", "exp_avg_sq")

    def _initial_state(self, param):
        return {key: np.zeros_like(param) for key in self._state_keys()}

    def _mu(self, t):
        r""":math:`\mu_t = \beta_1 (1 - \frac12\, 0.96^{t\psi})`, NAdam's momentum at step ``t``."""
        return self.settings["beta1"] * (1.0 - 0.5 * 0.96 ** (t * self.settings["momentum_decay"]))

    def _mu_product(self, t):
        """The product of mu_1 ... mu_t, multiplied in step order as PyTorch and Keras keep it."""
        done, product = self._momentum_product
        if done > t:   # a state loaded from an earlier step
            done, product = 0, 1.0
        for i in range(done + 1, t + 1):
            following = product * self._mu(i)
            # A fixed point (0, or the smallest subnormal times a mu above 1/2) stays one: mu_i
            # grows with i and stays below 1, so every later product rounds to it too.  Stopping
            # there gives the same bits, where resuming at step 10^9 would multiply 10^9 times.
            if following == product:
                break
            product = following
        self._momentum_product = (t, product)
        return product

    def _step_arguments(self, lr):
        s = self.settings
        t = self._steps + 1
        correct_m, correct_v = s["bias_correction"] if isinstance(s["bias_correction"], tuple) \
            else (s["bias_correction"],) * 2
        bias_correction1 = 1.0 - s["beta1"] ** t if correct_m else 1.0
        bias_correction2 = 1.0 - s["beta2"] ** t if correct_v else 1.0
        mu = mu_next = 0.0
        bias_correction1_next = 1.0
        if s["nesterov"]:
            mu, mu_next = self._mu(t), self._mu(t + 1)
            if correct_m:
                product = self._mu_product(t)
                bias_correction1, bias_correction1_next = 1.0 - product, 1.0 - product * mu_next
        inside = s["eps_in_sqrt"]
        eps_in, eps_out = (s["eps"], 0.0) if inside else (s["eps_root"], s["eps"])
        corrected = s["amsgrad"] == "corrected"
        correct_first = inside or s["eps_root"] > 0 or s["nesterov"] or corrected
        # The kernel's arguments between lr and the regularisation, in its order.
        return (s["beta1"], s["beta2"], eps_in, eps_out, bias_correction1, bias_correction2, s["eps_hat"],
                correct_first, corrected, s["nesterov"], mu, mu_next, bias_correction1_next)

    def _update(self, param, grad, state, lr, regularisation, args):
        l2, l1, keep = regularisation
        active().adam(param, grad, state["exp_avg"], state["exp_avg_sq"],
                      state.get("max_exp_avg_sq", _NO_STATE),
                      lr, *args, l2, l1, keep)


def _bias_correction(value):
    """True, False, or a pair of them (first moment, second moment); a pair of equal flags is one flag."""
    name = "bias_correction"
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be True, False or a pair (first moment, second moment), got {value!r}")
        pair = (_flag(value[0], f"{name}[0]"), _flag(value[1], f"{name}[1]"))
        return pair[0] if pair[0] == pair[1] else pair
    return _flag(value, f"{name} (or a pair of them)")
