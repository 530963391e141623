# Compiled twins of refnet/reference/optimizers.py (included at the end of _core.pyx).
#
# Read the reference module for the formulas, their sources and the kernel contract.
# Each update is one fused in-place pass: every element of the parameter, its
# gradient and its state is read once and written once, with no temporaries.
# The twins perform the same IEEE operations in the same order as the NumPy
# reference, in the array's own precision (scalars rounded to it once), so they
# agree to the bit.  Structural variants (Nesterov, centered, momentum, root state)
# are separate loops: an `inline` loop body is called with literal flags, and the
# C compiler specialises and vectorises each copy.

from libc.math cimport sqrt, sqrtf


cdef extern from "<float.h>":
    const float FLT_TRUE_MIN
    const double DBL_TRUE_MIN


cdef inline floating _root(floating x) noexcept nogil:
    """sqrt(x) in the precision of x (both correctly rounded, as np.sqrt)"""
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline floating _nonzero(floating d) noexcept nogil:
    """max(d, smallest subnormal), NaN propagating as np.maximum: a zero denominator gives a zero step"""
    if floating is float:
        return FLT_TRUE_MIN if d < FLT_TRUE_MIN else d
    else:
        return DBL_TRUE_MIN if d < DBL_TRUE_MIN else d


cdef inline floating _regularised(floating theta, floating g, floating l2, floating l1) noexcept nogil:
    """g + l2 * theta + l1 * sgn(theta), sgn(0) = 0"""
    # l1 * sgn(theta) as a difference of two selects, which is exact and vectorises
    # (a bool -> int -> double conversion does not, for double, without AVX-512).
    cdef floating up = l1 if theta > 0 else 0
    cdef floating down = l1 if theta < 0 else 0
    return g + l2 * theta + (up - down)


cdef void _sgd(floating* param, const floating* grad, floating lr, floating l2, floating l1,
               floating keep, Py_ssize_t n) noexcept nogil:
    """theta := keep * theta - lr * g"""
    cdef Py_ssize_t i
    cdef floating theta, g
    for i in range(n):
        theta = param[i]
        g = _regularised(theta, grad[i], l2, l1)
        param[i] = keep * theta - lr * g


cdef inline void _sgd_momentum(floating* param, const floating* grad, floating* buffer,
                               floating gain, floating scale, floating momentum, bint nesterov,
                               floating l2, floating l1, floating keep, Py_ssize_t n) noexcept nogil:
    """b := momentum * b + gain * g;  theta := keep * theta - scale * (momentum * b + gain * g if nesterov else b)"""
    cdef Py_ssize_t i
    cdef floating theta, g, b, step
    for i in range(n):
        theta = param[i]
        g = _regularised(theta, grad[i], l2, l1)
        b = momentum * buffer[i] + gain * g
        buffer[i] = b
        if nesterov:
            step = momentum * b + gain * g
        else:
            step = b
        param[i] = keep * theta - scale * step


cdef inline void _rmsprop(floating* param, const floating* grad, floating* square_avg,
                          floating* grad_avg, floating* momentum_buffer, floating lr,
                          floating old_weight, floating new_weight, floating momentum,
                          floating eps_in, floating eps_out, floating gain, floating scale,
                          floating l2, floating l1, floating keep, Py_ssize_t n,
                          bint root_state, bint centered, bint with_momentum) noexcept nogil:
    """v := a v + b g^2 (or sigma := scaled hypot);  theta := keep * theta - lr * g / d (or through the buffer)"""
    cdef Py_ssize_t i
    cdef floating theta, g, v, g_bar, variance, magnitude, larger, smaller, weight_larger, weight_smaller
    cdef floating ratio, d, normalised, b
    for i in range(n):
        theta = param[i]
        g = _regularised(theta, grad[i], l2, l1)
        if root_state:
            v = square_avg[i]
            magnitude = fabs(g)
            if v >= magnitude:
                larger, smaller, weight_larger, weight_smaller = v, magnitude, old_weight, new_weight
            else:
                larger, smaller, weight_larger, weight_smaller = magnitude, v, new_weight, old_weight
            ratio = smaller / (larger if larger > 0 else 1)
            v = larger * _root(weight_larger + weight_smaller * (ratio * ratio))
            square_avg[i] = v
            d = v + eps_out
        else:
            v = old_weight * square_avg[i] + new_weight * g * g
            square_avg[i] = v
            variance = v
            if centered:
                g_bar = old_weight * grad_avg[i] + new_weight * g
                grad_avg[i] = g_bar
                variance = v - g_bar * g_bar
                if variance < 0:
                    variance = 0
            d = _root(variance + eps_in) + eps_out
        normalised = g / _nonzero(d)
        if with_momentum:
            b = momentum * momentum_buffer[i] + gain * normalised
            momentum_buffer[i] = b
            param[i] = keep * theta - scale * b
        else:
            param[i] = keep * theta - lr * normalised


cdef void _adam(floating* param, const floating* grad, floating* exp_avg, floating* exp_avg_sq,
                floating step_size, floating root_c2, floating one_minus_beta1, floating beta2,
                floating one_minus_beta2, floating eps, floating l2, floating l1, floating keep,
                Py_ssize_t n) noexcept nogil:
    """m += (1 - b1)(g - m);  v := b2 v + (1 - b2) g^2;  theta := keep * theta - step_size * m / (sqrt(v) / root_c2 + eps)"""
    cdef Py_ssize_t i
    cdef floating theta, g, m, v, d
    for i in range(n):
        theta = param[i]
        g = _regularised(theta, grad[i], l2, l1)
        m = exp_avg[i]
        m = m + one_minus_beta1 * (g - m)
        exp_avg[i] = m
        v = beta2 * exp_avg_sq[i] + one_minus_beta2 * g * g
        exp_avg_sq[i] = v
        d = _root(v) / root_c2 + eps
        param[i] = keep * theta - step_size * m / _nonzero(d)


def sgd(floating[::1] param, const floating[::1] grad, double lr, double l2, double l1, double keep):
    if param.shape[0]:
        with nogil:
            _sgd(&param[0], &grad[0], <floating>lr, <floating>l2, <floating>l1, <floating>keep,
                 param.shape[0])
    return param.base


def sgd_momentum(floating[::1] param, const floating[::1] grad, floating[::1] buffer, double lr,
                 double momentum, bint nesterov, bint lr_in_momentum, double l2, double l1,
                 double keep):
    cdef floating gain = <floating>(lr if lr_in_momentum else 1.0)
    cdef floating scale = <floating>(1.0 if lr_in_momentum else lr)
    cdef Py_ssize_t n = param.shape[0]
    if n:
        with nogil:
            if nesterov:
                _sgd_momentum(&param[0], &grad[0], &buffer[0], gain, scale, <floating>momentum,
                              True, <floating>l2, <floating>l1, <floating>keep, n)
            else:
                _sgd_momentum(&param[0], &grad[0], &buffer[0], gain, scale, <floating>momentum,
                              False, <floating>l2, <floating>l1, <floating>keep, n)
    return param.base


def rmsprop(floating[::1] param, const floating[::1] grad, floating[::1] square_avg,
            floating[::1] grad_avg, floating[::1] momentum_buffer, double lr, double old_weight,
            double new_weight, double momentum, double eps, bint eps_in_sqrt,
            bint lr_in_momentum, bint root_state, double l2, double l1, double keep):
    cdef Py_ssize_t n = param.shape[0]
    cdef bint centered = grad_avg.shape[0] != 0
    cdef bint with_momentum = momentum_buffer.shape[0] != 0
    # Lee's root state keeps eps outside the root whatever eps_in_sqrt says (see the reference).
    cdef bint inside = eps_in_sqrt and not root_state
    cdef floating eps_in = <floating>(eps if inside else 0.0)
    cdef floating eps_out = <floating>(0.0 if inside else eps)
    cdef floating gain = <floating>(lr if lr_in_momentum else 1.0)
    cdef floating scale = <floating>(1.0 if lr_in_momentum else lr)
    cdef floating* avg_ptr = &grad_avg[0] if centered else NULL
    cdef floating* buffer_ptr = &momentum_buffer[0] if with_momentum else NULL
    if not n:
        return param.base
    with nogil:
        # Literal flags, one specialised loop per variant (root state is never centered).
        if root_state and with_momentum:
            _rmsprop(&param[0], &grad[0], &square_avg[0], avg_ptr, buffer_ptr, <floating>lr,
                     <floating>old_weight, <floating>new_weight, <floating>momentum, eps_in, eps_out,
                     gain, scale, <floating>l2, <floating>l1, <floating>keep, n, True, False, True)
        elif root_state:
            _rmsprop(&param[0], &grad[0], &square_avg[0], avg_ptr, buffer_ptr, <floating>lr,
                     <floating>old_weight, <floating>new_weight, <floating>momentum, eps_in, eps_out,
                     gain, scale, <floating>l2, <floating>l1, <floating>keep, n, True, False, False)
        elif centered and with_momentum:
            _rmsprop(&param[0], &grad[0], &square_avg[0], avg_ptr, buffer_ptr, <floating>lr,
                     <floating>old_weight, <floating>new_weight, <floating>momentum, eps_in, eps_out,
                     gain, scale, <floating>l2, <floating>l1, <floating>keep, n, False, True, True)
        elif centered:
            _rmsprop(&param[0], &grad[0], &square_avg[0], avg_ptr, buffer_ptr, <floating>lr,
                     <floating>old_weight, <floating>new_weight, <floating>momentum, eps_in, eps_out,
                     gain, scale, <floating>l2, <floating>l1, <floating>keep, n, False, True, False)
        elif with_momentum:
            _rmsprop(&param[0], &grad[0], &square_avg[0], avg_ptr, buffer_ptr, <floating>lr,
                     <floating>old_weight, <floating>new_weight, <floating>momentum, eps_in, eps_out,
                     gain, scale, <floating>l2, <floating>l1, <floating>keep, n, False, False, True)
        else:
            _rmsprop(&param[0], &grad[0], &square_avg[0], avg_ptr, buffer_ptr, <floating>lr,
                     <floating>old_weight, <floating>new_weight, <floating>momentum, eps_in, eps_out,
                     gain, scale, <floating>l2, <floating>l1, <floating>keep, n, False, False, False)
    return param.base


def adam(floating[::1] param, const floating[::1] grad, floating[::1] exp_avg,
         floating[::1] exp_avg_sq, double lr, double beta1, double beta2, double eps,
         double bias_correction1, double bias_correction2, bint eps_hat, double l2, double l1,
         double keep):
    # In double, as the reference computes them in Python floats, then rounded once.
    cdef double step_size = lr / bias_correction1
    cdef double root_c2 = sqrt(bias_correction2)
    if eps_hat:
        step_size = lr * sqrt(bias_correction2) / bias_correction1
        root_c2 = 1.0
    if param.shape[0]:
        with nogil:
            _adam(&param[0], &grad[0], &exp_avg[0], &exp_avg_sq[0], <floating>step_size,
                  <floating>root_c2, <floating>(1 - beta1), <floating>beta2, <floating>(1 - beta2),
                  <floating>eps, <floating>l2, <floating>l1, <floating>keep, param.shape[0])
    return param.base
