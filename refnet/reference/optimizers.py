r"""Optimizer updates as readable NumPy: one in-place step of each rule on one parameter array.

These are the *reference kernels* of the optimizers in :mod:`refnet.optim`;
:mod:`refnet._core` holds a compiled twin of each, with the same name and
parameters, which performs the same floating-point operations in the same
order, so the twins agree to the bit.

Kernels do no input validation.  :mod:`refnet.optim` checks the arguments,
resolves the convention (``"lee"``, ``"torch"``, ``"keras"``) into the explicit
switches and coefficients below, and calls the active backend, so every kernel
may assume:

* ``param``, ``grad`` and every state array are 1-D, C-contiguous, of one length
  and one dtype, ``float32`` or ``float64``; ``param`` and the states are writeable;
* ``grad`` shares no memory with ``param`` or a state;
* the scalars are finite Python floats; an unused state array is empty.

``refnet.optim`` negates the gradient before calling a kernel where it is asked to
maximise (PyTorch's ``maximize``).  Every kernel starts with the regularisation
terms, from the parameter as it was before this step:

.. math:: g \leftarrow g + \lambda_2\,\theta + \lambda_1 \operatorname{sgn}\theta,
          \qquad \theta \leftarrow \kappa\,\theta

where :math:`\lambda_2` is coupled L2 (``l2``, PyTorch's ``weight_decay``),
:math:`\lambda_1` is L1 (``l1``, with :math:`\operatorname{sgn} 0 = 0`) and
:math:`\kappa = 1 - \eta\lambda` is decoupled weight decay (``keep``: AdamW, Keras'
``weight_decay``).  Without a penalty (:math:`\lambda_2 = \lambda_1 = 0`) the
gradient is used as it is, as PyTorch adds its ``weight_decay`` term only when it
is nonzero: adding zeros would turn :math:`-0` into :math:`+0` and
:math:`0 \cdot \infty` into NaN (the compiled twin has a loop without them).

Zero denominators: where an adaptive rule's denominator is exactly 0, which
happens only with :math:`\varepsilon = 0` (Lee's forms) when every gradient so
far was 0, the step is 0.  It is implemented by dividing by
:math:`\max(d, d_{\min})`, :math:`d_{\min}` the dtype's smallest subnormal: a
no-op for every :math:`d > 0`, and :math:`0 / d_{\min} = 0` where :math:`d = 0`.

References
----------
Defined once in the documentation's bibliography (``docs/bibliography.rst``);
the notes here say which part of each source this module follows.

* [Lee] Hung-yi Lee, "Tips for Training DNN", Machine Learning course, National
  Taiwan University (Adagrad, RMSProp, Momentum, Adam; L2 and L1).
* [Hinton] G. Hinton, N. Srivastava, K. Swersky, Neural Networks for Machine
  Learning, lecture 6e (RMSProp).
* [KingmaBa] D. P. Kingma and J. Ba, "Adam: A Method for Stochastic
  Optimization", ICLR 2015 (arXiv:1412.6980), Algorithm 1 and the
  :math:`\hat\varepsilon` form before its section 2.1.
* [Loshchilov] I. Loshchilov and F. Hutter, "Decoupled Weight Decay
  Regularization", ICLR 2019 (AdamW).
* [Reddi] S. J. Reddi, S. Kale and S. Kumar, "On the Convergence of Adam and
  Beyond", ICLR 2018 (AMSGrad).
* [Dozat] T. Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016
  workshop (NAdam).
* [Optax] optax source, ``optax/_src/alias.py`` and ``transform.py``
  (``scale_by_adam``, ``scale_by_amsgrad``, ``scale_by_rms``).
* [Torch] PyTorch documentation of ``torch.optim.SGD``, ``Adagrad``, ``RMSprop``,
  ``Adam``, ``AdamW`` and ``NAdam`` (the algorithms given there in pseudo-code).
* [Keras] Keras 3 source, ``keras/src/optimizers/{sgd,adagrad,rmsprop,adam,nadam}.py``
  and ``base_optimizer.py`` (``_apply_weight_decay``).
"""

import math

import numpy as np

__all__ = ["sgd", "sgd_momentum", "rmsprop", "adam"]


def _regularised(param, grad, l2, l1, keep):
    r"""Return :math:`g + \lambda_2\theta + \lambda_1\operatorname{sgn}\theta` and decay
    :math:`\theta \leftarrow \kappa\theta` in place, in that order (the penalty
    gradients use the parameter from before the decay, as PyTorch's AdamW and
    Keras do).  Without a penalty (:math:`\lambda_2 = \lambda_1 = 0`) :math:`g` is
    returned as it is, as PyTorch adds its decay term only when it is nonzero:
    adding zeros would turn :math:`-0` into :math:`+0` and :math:`0 \cdot \infty` into NaN."""
    # Without a copy: the kernels only read g, and grad shares no memory with param.
    g = grad + l2 * param + l1 * np.sign(param) if l2 or l1 else grad
    param *= keep
    return g


def _nonzero(denominator):
    """The denominator with exact zeros replaced by the smallest subnormal (see the module notes)."""
    return np.maximum(denominator, np.finfo(denominator.dtype).smallest_subnormal)


def sgd(param, grad, lr, l2, l1, keep):
    r"""Plain gradient descent [Lee]_.

    .. math:: \theta \leftarrow \theta - \eta\, g

    With coupled L2 this is Lee's weight decay,
    :math:`\theta \leftarrow (1 - \eta\lambda)\theta - \eta\,\partial L/\partial\theta`,
    equal to decoupled decay with the same :math:`\eta\lambda` (up to rounding).

    Parameters
    ----------
    param : ndarray of float32 or float64
        :math:`\theta`, 1-D; updated in place.
    grad : ndarray
        The gradient :math:`g = \partial L / \partial\theta`, ``param``'s shape and dtype; only read.
    lr : float
        :math:`\eta`, the learning rate of this step.
    l2, l1, keep : float
        :math:`\lambda_2` (coupled L2), :math:`\lambda_1` (L1) and :math:`\kappa = 1 - \eta\lambda`
        (decoupled weight decay), the regularisation of the module notes, applied first; 0, 0
        and 1 for none.

    Returns
    -------
    ndarray
        ``param``.
    """
    g = _regularised(param, grad, l2, l1, keep)
    param -= lr * g
    return param


def sgd_momentum(param, grad, buffer, lr, momentum, dampening, nesterov, lr_in_momentum, l2, l1, keep):
    r"""Gradient descent with (Nesterov) momentum, in the two forms libraries use.

    ``lr_in_momentum=True`` is Lee's (and Sutskever's, Keras') velocity
    :math:`v \leftarrow \mu v - \eta g,\ \theta \leftarrow \theta + v`; the
    buffer holds :math:`b = -v`, so both forms are one update:

    .. math:: b \leftarrow \mu b + c\, g, \qquad
              \theta \leftarrow \theta - s \cdot \begin{cases}
                  \mu b + c\, g & \text{Nesterov} \\ b & \text{otherwise}\end{cases}

    with :math:`(c, s) = (\eta, 1)` for ``lr_in_momentum`` [Lee]_ [Keras]_ (Keras'
    Nesterov: :math:`\theta \leftarrow \theta + \mu v - \eta g`) and
    :math:`(c, s) = (1, \eta)` otherwise, PyTorch's
    :math:`b \leftarrow \mu b + g,\ \theta \leftarrow \theta - \eta (g + \mu b)`
    for Nesterov [Torch]_.  The two agree while :math:`\eta` is
    constant (:math:`v = -\eta b`) and differ under a schedule.  The buffer
    starts at 0, which gives PyTorch's :math:`b_1 = g_1`.  PyTorch's ``dampening``
    :math:`\tau` scales the gradient entering the buffer, :math:`c \leftarrow (1 - \tau)\,c`
    (on every step but the first, where PyTorch copies :math:`g` into the buffer: the
    caller passes :math:`\tau = 0` there).

    Parameters
    ----------
    param : ndarray of float32 or float64
        :math:`\theta`, 1-D; updated in place.
    grad : ndarray
        The gradient :math:`g = \partial L / \partial\theta`, ``param``'s shape and dtype; only read.
    buffer : ndarray
        :math:`b` (:math:`-v` with ``lr_in_momentum``), ``param``'s shape and dtype, zeros before
        the first step; updated in place.
    lr : float
        :math:`\eta`, the learning rate of this step.
    momentum : float
        :math:`\mu`, the weight of the old buffer.
    dampening : float
        :math:`\tau`: the gradient enters the buffer as :math:`(1 - \tau)\,c\,g`; 0 on the first
        step and for none.
    nesterov : bool
        Step by the look-ahead :math:`\mu b + c\,g` instead of :math:`b`.
    lr_in_momentum : bool
        :math:`(c, s) = (\eta, 1)`, the learning rate inside the buffer (Lee, Keras); ``False``:
        :math:`(c, s) = (1, \eta)` (PyTorch).
    l2, l1, keep : float
        :math:`\lambda_2` (coupled L2), :math:`\lambda_1` (L1) and :math:`\kappa = 1 - \eta\lambda`
        (decoupled weight decay), the regularisation of the module notes, applied first; 0, 0
        and 1 for none.

    Returns
    -------
    ndarray
        ``param``, updated in place (as is ``buffer``).
    """
    g = _regularised(param, grad, l2, l1, keep)
    gain, scale = (lr * (1 - dampening), 1.0) if lr_in_momentum else (1 - dampening, lr)
    buffer *= momentum
    buffer += gain * g
    step = momentum * buffer + gain * g if nesterov else buffer
    param -= scale * step
    return param


def rmsprop(param, grad, square_avg, grad_avg, momentum_buffer, lr, old_weight, new_weight,
            momentum, nesterov, eps, eps_in_sqrt, lr_in_momentum, root_state, bias_correction, l2, l1, keep):
    r"""RMSProp [Hinton]_ [Lee]_, and Adagrad as its special case, in every convention.

    The running average of :math:`g^2` (weights :math:`a` on the old value,
    :math:`b` on the new; :math:`(\alpha, 1-\alpha)` for RMSProp, :math:`(1, 1)` for
    Adagrad's sum, :math:`(0, 1)` on Lee's first step, where :math:`\sigma^0 = |g^0|`)
    and the denominator:

    .. math:: v \leftarrow a\,v + b\,g^2, \qquad
              d = \sqrt{v - \bar g^2 + \varepsilon_\text{in}} + \varepsilon_\text{out}

    with :math:`\varepsilon` inside the root (``eps_in_sqrt``, Keras:
    :math:`\sqrt{v + \varepsilon}`) or outside (PyTorch: :math:`\sqrt v + \varepsilon`),
    and :math:`\bar g^2` only when centered (non-empty ``grad_avg``:
    :math:`\bar g \leftarrow a\bar g + b g`, PyTorch's and Keras' ``centered``).
    optax's ``bias_correction`` [Optax]_ divides both averages by :math:`c = 1 - \alpha^t`
    (``bias_correction``, computed once per step; 1 leaves them as they are) before the root:
    :math:`d = \sqrt{v/c - (\bar g/c)^2 + \varepsilon_\text{in}} + \varepsilon_\text{out}`.

    ``root_state`` (Lee's forms) keeps :math:`\sigma = \sqrt v` instead, updated
    with scaling as ``hypot`` does, so that :math:`\sigma > 0` whenever some
    :math:`g \ne 0`, even where :math:`g^2` underflows (:math:`g = 10^{-200}` in
    float64), and :math:`\sigma` does not overflow while the result itself does not:

    .. math:: \sigma + |g| = f\,2^e,\ f \in [\tfrac12, 1), \qquad
              \sigma \leftarrow 2^e \sqrt{a\,(2^{-e}\sigma)^2 + b\,(2^{-e}g)^2}, \qquad d = \sigma + \varepsilon

    (:math:`\sigma + |g|` is within a factor 2 of :math:`\max(\sigma, |g|)` and needs no
    comparison; :math:`e` is clipped to ``[minexp, maxexp - 2]`` of ``np.finfo``, so
    that :math:`2^{\pm e}` are normal numbers; scaling by them is exact, unlike ``hypot``'s
    division by the larger term, and costs no division; :math:`\sigma \leftarrow 0` where
    :math:`\sigma = g = 0`; :math:`\varepsilon` is always outside the root here,
    ``eps_in_sqrt`` is ignored).  Then the step, with no
    momentum (empty ``momentum_buffer``) Lee's
    :math:`\theta \leftarrow \theta - \frac{\eta}{\sigma} g` [Lee]_:

    .. math:: \theta \leftarrow \theta - \eta\,\frac{g}{d}

    or with momentum :math:`\mu`, the learning rate inside the buffer
    (``lr_in_momentum``, Keras: :math:`(c, s) = (\eta, 1)`) or outside
    (PyTorch: :math:`(c, s) = (1, \eta)`):

    .. math:: B \leftarrow \mu B + c\,\frac{g}{d}, \qquad \theta \leftarrow \theta - s\,B

    and with ``nesterov`` (optax's ``rmsprop(nesterov=True)``, whose trace follows the
    learning rate: ``lr_in_momentum``) the look-ahead
    :math:`\theta \leftarrow \theta - s\,(\mu B + c\,g/d)`, as SGD's Nesterov.
    :math:`g/d` is formed first: it is of order 1, where :math:`\eta g` could
    underflow for a tiny gradient.

    Parameters
    ----------
    param : ndarray of float32 or float64
        :math:`\theta`, 1-D; updated in place.
    grad : ndarray
        The gradient :math:`g = \partial L / \partial\theta`, ``param``'s shape and dtype; only read.
    square_avg : ndarray
        :math:`v`, the running average of :math:`g^2` (:math:`\sigma = \sqrt v` with ``root_state``),
        ``param``'s shape and dtype; updated in place.
    grad_avg : ndarray
        :math:`\bar g`, the running average of :math:`g` of the centered form, updated in place;
        empty for the uncentered form.  Ignored with ``root_state``.
    momentum_buffer : ndarray
        :math:`B`, updated in place; empty for no momentum.
    lr : float
        :math:`\eta`, the learning rate of this step.
    old_weight : float
        :math:`a`, the weight of the old average: :math:`\alpha` (RMSProp), 1 (Adagrad), 0 (Lee's first step).
    new_weight : float
        :math:`b`, the weight of the new term: :math:`1 - \alpha` (RMSProp), 1 (Adagrad, Lee's first step).
    momentum : float
        :math:`\mu`; read only with a non-empty ``momentum_buffer``.
    nesterov : bool
        The look-ahead step :math:`s\,(\mu B + c\,g/d)`; read only with a non-empty ``momentum_buffer``.
    eps : float
        :math:`\varepsilon`, where ``eps_in_sqrt`` puts it.
    eps_in_sqrt : bool
        :math:`\varepsilon` inside the root,
        :math:`(\varepsilon_\text{in}, \varepsilon_\text{out}) = (\varepsilon, 0)`; ``False``:
        outside, :math:`(0, \varepsilon)`.  Ignored with ``root_state``.
    lr_in_momentum : bool
        :math:`(c, s) = (\eta, 1)`, the learning rate inside the buffer; ``False``: :math:`(c, s) = (1, \eta)`.
        Read only with a non-empty ``momentum_buffer``.
    root_state : bool
        ``square_avg`` holds :math:`\sigma` (Lee's forms), updated with scaling, and :math:`d = \sigma + \varepsilon`.
    bias_correction : float
        :math:`c = 1 - \alpha^t`, dividing both averages before the root; 1 for none.  Ignored
        with ``root_state``.
    l2, l1, keep : float
        :math:`\lambda_2` (coupled L2), :math:`\lambda_1` (L1) and :math:`\kappa = 1 - \eta\lambda`
        (decoupled weight decay), the regularisation of the module notes, applied first; 0, 0
        and 1 for none.

    Returns
    -------
    ndarray
        ``param``, updated in place (as are ``square_avg`` and a non-empty ``grad_avg`` and ``momentum_buffer``).
    """
    g = _regularised(param, grad, l2, l1, keep)
    if root_state:
        # Both terms scaled by 2^-e, e the binary exponent of sigma + |g|, which is within a
        # factor 2 of the larger one (clipped so that 2^-e and 2^e are normal numbers): the
        # scaling is exact, the larger term's square is then of order 1, so it can neither
        # overflow nor underflow, and the smaller one's underflows only where it is
        # negligible next to it.
        magnitude = np.abs(g)
        info = np.finfo(g.dtype)
        _, exponent = np.frexp(np.clip(square_avg + magnitude,
                                       2.0 ** (info.minexp - 1), 2.0 ** (info.maxexp - 3)))
        one = g.dtype.type(1)
        down, up = np.ldexp(one, -exponent), np.ldexp(one, exponent)
        scaled_sigma, scaled_magnitude = down * square_avg, down * magnitude
        square_avg[...] = np.sqrt(old_weight * (scaled_sigma * scaled_sigma)
                                  + new_weight * (scaled_magnitude * scaled_magnitude)) * up
        denominator = square_avg + eps
    else:
        square_avg *= old_weight
        square_avg += new_weight * g * g
        corrected = square_avg / bias_correction   # exact where bias_correction is 1
        variance = corrected
        if grad_avg.size:
            grad_avg *= old_weight
            grad_avg += new_weight * g
            mean = grad_avg / bias_correction
            # v - g_bar^2 >= 0 in exact arithmetic; rounding can push it below 0, which counts as 0.
            variance = np.maximum(corrected - mean * mean, 0)
        eps_in, eps_out = (eps, 0.0) if eps_in_sqrt else (0.0, eps)
        denominator = np.sqrt(variance + eps_in) + eps_out
    normalised = g / _nonzero(denominator)
    if momentum_buffer.size:
        gain, scale = (lr, 1.0) if lr_in_momentum else (1.0, lr)
        momentum_buffer *= momentum
        momentum_buffer += gain * normalised
        param -= scale * (momentum * momentum_buffer + gain * normalised if nesterov else momentum_buffer)
    else:
        param -= lr * normalised
    return param


def adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps_in, eps_out,
         bias_correction1, bias_correction2, eps_hat, correct_first, amsgrad_corrected, nesterov,
         mu, mu_next, bias_correction1_next, l2, l1, keep):
    r"""Adam [KingmaBa]_, Algorithm 1 (also Lee's slide and PyTorch), its
    :math:`\hat\varepsilon` form (Keras), AMSGrad [Reddi]_ and Nesterov-Adam [Dozat]_.

    .. math:: m \leftarrow m + (1-\beta_1)(g - m), \qquad
              v \leftarrow \beta_2 v + (1-\beta_2)\,g^2

    (:math:`m` in PyTorch's and Keras' ``lerp`` form, equal to
    :math:`\beta_1 m + (1-\beta_1) g`).  With :math:`c_1 = 1-\beta_1^t`,
    :math:`c_2 = 1-\beta_2^t` (``bias_correction1/2``, computed once per step; 1
    to switch a bias correction off), Algorithm 1,
    :math:`\theta \leftarrow \theta - \eta\,\hat m / (\sqrt{\hat v} + \varepsilon)` with
    :math:`\hat m = m/c_1`, :math:`\hat v = v/c_2`, in PyTorch's order of operations:

    .. math:: \theta \leftarrow \theta - \frac{(\eta / c_1)\, m}{\sqrt{v}/\sqrt{c_2} + \varepsilon}

    With ``correct_first`` :math:`\hat v` is formed before the root, with
    :math:`\varepsilon_\text{in}` inside it and :math:`\varepsilon_\text{out}` outside
    (optax's ``eps_root`` and ``eps``, ε inside the root as RMSProp's ``eps_in_sqrt``;
    optax, PyTorch's ``NAdam`` and Keras' ``Nadam`` divide before the root):

    .. math:: \theta \leftarrow \theta - \frac{(\eta / c_1)\, m}
              {\sqrt{v / c_2 + \varepsilon_\text{in}} + \varepsilon_\text{out}}

    (without ``correct_first``, :math:`\varepsilon_\text{in} = 0` and :math:`\varepsilon = \varepsilon_\text{out}`).
    With ``eps_hat`` (Keras, scikit-learn), :math:`\hat\varepsilon` is added to the
    uncorrected root and the correction folded into the step size:

    .. math:: \theta \leftarrow \theta - \frac{\eta_t\, m}{\sqrt{v} + \hat\varepsilon},
              \qquad \eta_t = \eta\,\sqrt{c_2} / c_1

    AMSGrad (a non-empty ``max_exp_avg_sq``, :math:`\bar v`) divides by the largest
    second moment so far instead of :math:`v`: PyTorch and Keras keep the maximum of
    the uncorrected :math:`v` and correct it as :math:`v` above,
    :math:`\bar v \leftarrow \max(\bar v, v)`; optax (``amsgrad_corrected``) keeps the
    maximum of the corrected one, :math:`\bar v \leftarrow \max(\bar v, v/c_2)`, used as
    :math:`\hat v` itself: :math:`d = \sqrt{\bar v + \varepsilon_\text{in}} + \varepsilon_\text{out}`.

    Nesterov-Adam (``nesterov``) replaces :math:`\hat m` by a look-ahead mixing the new
    moment and the gradient, with momentum coefficients :math:`\mu_t` (``mu``),
    :math:`\mu_{t+1}` (``mu_next``) and their running products
    :math:`c_1 = 1 - \prod_{i \le t}\mu_i`, :math:`c_1' = 1 - \prod_{i \le t+1}\mu_i`
    (``bias_correction1_next``; 1 for both without bias correction of :math:`m`):

    .. math:: \hat m = \frac{\mu_{t+1}}{c_1'}\, m + \frac{1 - \mu_t}{c_1}\, g

    PyTorch's ``NAdam`` and Keras' ``Nadam`` schedule
    :math:`\mu_t = \beta_1 (1 - \tfrac12\, 0.96^{t\psi})`; optax's ``nadam`` (Dozat's)
    has :math:`\mu_t = \beta_1`; all three form :math:`\hat v` before the root, as
    ``correct_first``.  The step is :math:`\theta \leftarrow \theta - (\eta\,\hat m)/d`, the scalars
    :math:`\eta\mu_{t+1}/c_1'` and :math:`\eta(1-\mu_t)/c_1` computed once per step.

    Coupled L2 here is Adam's ``weight_decay``; decoupled decay (``keep``) is AdamW [Loshchilov]_.

    Parameters
    ----------
    param : ndarray of float32 or float64
        :math:`\theta`, 1-D; updated in place.
    grad : ndarray
        The gradient :math:`g = \partial L / \partial\theta`, ``param``'s shape and dtype; only read.
    exp_avg : ndarray
        :math:`m`, the first moment, ``param``'s shape and dtype; updated in place.
    exp_avg_sq : ndarray
        :math:`v`, the second moment, ``param``'s shape and dtype; updated in place.
    max_exp_avg_sq : ndarray
        :math:`\bar v`, AMSGrad's maximum, updated in place; empty for no AMSGrad.
    lr : float
        :math:`\eta`, the learning rate of this step.
    beta1 : float
        :math:`\beta_1`, the decay of :math:`m`.
    beta2 : float
        :math:`\beta_2`, the decay of :math:`v`.
    eps_in : float
        :math:`\varepsilon_\text{in}`, inside the root; read only where :math:`\hat v` is formed
        before the root (``correct_first``, ``nesterov``, or ``amsgrad_corrected`` with AMSGrad).
    eps_out : float
        :math:`\varepsilon_\text{out}`, outside the root (:math:`\hat\varepsilon` with ``eps_hat``).
    bias_correction1 : float
        :math:`c_1 = 1 - \beta_1^t` (with ``nesterov``, :math:`1 - \prod_{i \le t}\mu_i`); 1 to
        switch the correction of :math:`m` off.
    bias_correction2 : float
        :math:`c_2 = 1 - \beta_2^t`; 1 to switch the correction of :math:`v` off.
    eps_hat : bool
        The :math:`\hat\varepsilon` form: :math:`\sqrt{c_2}` folded into the step size
        :math:`\eta_t`, :math:`v` not divided by :math:`c_2`.
    correct_first : bool
        Form :math:`\hat v = v / c_2` before the root, with :math:`\varepsilon_\text{in}` inside
        it; ``False``: :math:`\sqrt{v}/\sqrt{c_2} + \varepsilon_\text{out}`.
    amsgrad_corrected : bool
        With AMSGrad, keep the maximum of :math:`v / c_2` and use it as :math:`\hat v` (optax);
        ``False``: the maximum of the uncorrected :math:`v` (PyTorch, Keras).
    nesterov : bool
        Nesterov-Adam's look-ahead :math:`\hat m`, with :math:`\hat v` formed before the root.
    mu : float
        :math:`\mu_t`; read only with ``nesterov``.
    mu_next : float
        :math:`\mu_{t+1}`; read only with ``nesterov``.
    bias_correction1_next : float
        :math:`c_1' = 1 - \prod_{i \le t+1}\mu_i`, 1 without bias correction of :math:`m`; read
        only with ``nesterov``.
    l2, l1, keep : float
        :math:`\lambda_2` (coupled L2), :math:`\lambda_1` (L1) and :math:`\kappa = 1 - \eta\lambda`
        (decoupled weight decay), the regularisation of the module notes, applied first; 0, 0
        and 1 for none.

    Returns
    -------
    ndarray
        ``param``, updated in place (as are ``exp_avg``, ``exp_avg_sq`` and a non-empty ``max_exp_avg_sq``).
    """
    g = _regularised(param, grad, l2, l1, keep)
    scale = lr * math.sqrt(bias_correction2) if eps_hat else lr
    if eps_hat:
        bias_correction2 = 1.0   # folded into the step size
    if nesterov:
        coefficient_m = scale * mu_next / bias_correction1_next
        coefficient_g = scale * (1 - mu) / bias_correction1
    else:
        coefficient_m = scale / bias_correction1
    exp_avg += (1 - beta1) * (g - exp_avg)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * g * g
    second = exp_avg_sq
    if max_exp_avg_sq.size:
        np.maximum(max_exp_avg_sq, exp_avg_sq / bias_correction2 if amsgrad_corrected else exp_avg_sq,
                   out=max_exp_avg_sq)
        second = max_exp_avg_sq
    if max_exp_avg_sq.size and amsgrad_corrected:
        denominator = np.sqrt(second + eps_in) + eps_out
    elif correct_first or nesterov:
        denominator = np.sqrt(second / bias_correction2 + eps_in) + eps_out
    else:
        denominator = np.sqrt(second) / math.sqrt(bias_correction2) + eps_out
    numerator = coefficient_m * exp_avg + coefficient_g * g if nesterov else coefficient_m * exp_avg
    param -= numerator / _nonzero(denominator)
    return param
