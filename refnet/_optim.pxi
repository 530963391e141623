# Compiled twins of refnet/reference/optimizers.py (included at the end of _core.pyx).
#
# Read the reference module for the formulas, their sources and the kernel contract.
# Each update is one fused in-place pass: every element of the parameter, its
# gradient and its state is read once and written once, with no temporaries.
# The twins perform the same IEEE operations in the same order as the NumPy
# reference, in the array's own precision (scalars rounded to it once), so they
# agree to the bit.  Structural variants (Nesterov, centered, momentum, root state, a penalty)
# are separate loops: an `inline` loop body is called with literal flags, and the
# C compiler specialises and vectorises each copy.  The loops bound by sqrt and division
# (RMSProp/Adagrad, Adam) are in _vmath.h, cloned per instruction set (AVX-512, AVX2,
# baseline) and chosen at import; SGD's, bound by memory, stay here.

from libc.math cimport sqrt


cdef inline floating _regularised(floating theta, floating g, floating l2, floating l1,
                                  bint penalised) noexcept nogil:
    """g + l2 * theta + l1 * sgn(theta), sgn(0) = 0, where penalised (l2 or l1 nonzero), else g"""
    if not penalised:
        return g
    # l1 * sgn(theta) as a difference of two selects, which is exact and vectorises
    # (a bool -> int -> double conversion does not, for double, without AVX-512).
    cdef floating up = l1 if theta > 0 else 0
    cdef floating down = l1 if theta < 0 else 0
    return g + l2 * theta + (up - down)


cdef inline void _sgd(floating* param, const floating* grad, floating lr, floating l2, floating l1,
                      bint penalised, floating keep, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """theta := keep * theta - lr * g"""
    cdef Py_ssize_t i
    cdef floating theta, g
    for i in range(start, stop):
        theta = param[i]
        g = _regularised(theta, grad[i], l2, l1, penalised)
        param[i] = keep * theta - lr * g


cdef inline void _sgd_momentum(floating* param, const floating* grad, floating* buffer,
                               floating gain, floating scale, floating momentum, bint nesterov,
                               floating l2, floating l1, bint penalised, floating keep,
                               Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """b := momentum * b + gain * g;  theta := keep * theta - scale * (momentum * b + gain * g if nesterov else b)"""
    cdef Py_ssize_t i
    cdef floating theta, g, b, step
    for i in range(start, stop):
        theta = param[i]
        g = _regularised(theta, grad[i], l2, l1, penalised)
        b = momentum * buffer[i] + gain * g
        buffer[i] = b
        if nesterov:
            step = momentum * b + gain * g
        else:
            step = b
        param[i] = keep * theta - scale * step


cdef void _sgd_variant(floating* param, const floating* grad, floating lr, floating l2, floating l1,
                      bint penalised, floating keep, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """_sgd with its flag as a literal"""
    if penalised:
        _sgd(param, grad, lr, l2, l1, True, keep, start, stop)
    else:
        _sgd(param, grad, lr, l2, l1, False, keep, start, stop)


cdef void _sgd_momentum_variant(floating* param, const floating* grad, floating* buffer,
                                floating gain, floating scale, floating momentum, bint nesterov,
                                floating l2, floating l1, bint penalised, floating keep,
                                Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """_sgd_momentum with its flags as literals"""
    if nesterov and penalised:
        _sgd_momentum(param, grad, buffer, gain, scale, momentum, True, l2, l1, True, keep, start, stop)
    elif nesterov:
        _sgd_momentum(param, grad, buffer, gain, scale, momentum, True, l2, l1, False, keep, start, stop)
    elif penalised:
        _sgd_momentum(param, grad, buffer, gain, scale, momentum, False, l2, l1, True, keep, start, stop)
    else:
        _sgd_momentum(param, grad, buffer, gain, scale, momentum, False, l2, l1, False, keep, start, stop)


cdef void _rmsprop_variant(floating* param, const floating* grad, floating* square_avg,
                           floating* grad_avg, floating* momentum_buffer, floating lr,
                           floating old_weight, floating new_weight, floating momentum,
                           floating eps_in, floating eps_out, floating gain, floating scale,
                           floating c, floating l2, floating l1, bint penalised, floating keep,
                           Py_ssize_t start, Py_ssize_t stop, bint root_state, bint centered,
                           bint with_momentum, bint nesterov, bint corrected) noexcept nogil:
    """v := a v + b g^2 (or sigma := sqrt(a sigma^2 + b g^2), scaled by powers of two);  theta := keep * theta - lr * g / d (or through the buffer)

    The loops are in _vmath.h, one per variant, cloned per instruction set like Adam's.
    """
    cdef int variant = refnet_rmsprop_variant(penalised, root_state, centered, with_momentum, nesterov,
                                              corrected)
    if floating is float:
        refnet_rmsprop_float(variant, param, grad, square_avg, grad_avg, momentum_buffer, lr,
                             old_weight, new_weight, momentum, eps_in, eps_out, gain, scale, c, l2,
                             l1, keep, start, stop)
    else:
        refnet_rmsprop_double(variant, param, grad, square_avg, grad_avg, momentum_buffer, lr,
                              old_weight, new_weight, momentum, eps_in, eps_out, gain, scale, c, l2,
                              l1, keep, start, stop)


cdef void _adam_variant(floating* param, const floating* grad, floating* exp_avg,
                       floating* exp_avg_sq, floating* max_exp_avg_sq, floating coef_m,
                       floating coef_g, floating c, floating one_minus_beta1, floating beta2,
                       floating one_minus_beta2, floating eps_in, floating eps_out, floating l2,
                       floating l1, bint penalised, floating keep, Py_ssize_t start,
                       Py_ssize_t stop, bint inside, int ams, bint nesterov) noexcept nogil:
    """m += (1 - b1)(g - m);  v := b2 v + (1 - b2) g^2 (AMSGrad: its running maximum);  theta := keep * theta - n / d

    The loops are in _vmath.h, one per variant, cloned per instruction set like the
    activations: float64 sqrt and division are compute-bound on two lanes.
    """
    cdef int variant = refnet_adam_variant(penalised, inside, ams, nesterov)
    if floating is float:
        refnet_adam_float(variant, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, coef_m, coef_g,
                          c, one_minus_beta1, beta2, one_minus_beta2, eps_in, eps_out, l2, l1, keep,
                          start, stop)
    else:
        refnet_adam_double(variant, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, coef_m, coef_g,
                           c, one_minus_beta1, beta2, one_minus_beta2, eps_in, eps_out, l2, l1, keep,
                           start, stop)


# The wrappers split the arrays into one block per thread (OpenMP, where the build has it)
# and run the serial loop above on each: the updates are elementwise, so the result is the
# same bits for any split.  Zero-length arrays give no blocks (so no &a[0] is taken).

def sgd(floating[::1] param, const floating[::1] grad, double lr, double l2, double l1, double keep):
    cdef Py_ssize_t n = param.shape[0], blocks = _blocks(n), block
    for block in prange(blocks, nogil=True, schedule="static", num_threads=blocks,
                        use_threads_if=blocks > 1):
        _sgd_variant(&param[0], &grad[0], <floating>lr, <floating>l2, <floating>l1,
                     l2 != 0 or l1 != 0, <floating>keep,
                     _block_start(n, blocks, block), _block_start(n, blocks, block + 1))
    return param.base


def sgd_momentum(floating[::1] param, const floating[::1] grad, floating[::1] buffer, double lr,
                 double momentum, double dampening, bint nesterov, bint lr_in_momentum, double l2,
                 double l1, double keep):
    cdef floating gain = <floating>((lr if lr_in_momentum else 1.0) * (1 - dampening))
    cdef floating scale = <floating>(1.0 if lr_in_momentum else lr)
    cdef Py_ssize_t n = param.shape[0], blocks = _blocks(n), block
    for block in prange(blocks, nogil=True, schedule="static", num_threads=blocks,
                        use_threads_if=blocks > 1):
        _sgd_momentum_variant(&param[0], &grad[0], &buffer[0], gain, scale, <floating>momentum,
                              nesterov, <floating>l2, <floating>l1, l2 != 0 or l1 != 0,
                              <floating>keep,
                              _block_start(n, blocks, block), _block_start(n, blocks, block + 1))
    return param.base


def rmsprop(floating[::1] param, const floating[::1] grad, floating[::1] square_avg,
            floating[::1] grad_avg, floating[::1] momentum_buffer, double lr, double old_weight,
            double new_weight, double momentum, bint nesterov, double eps, bint eps_in_sqrt,
            bint lr_in_momentum, bint root_state, double bias_correction, double l2, double l1,
            double keep):
    cdef Py_ssize_t n = param.shape[0], blocks = _blocks(n), block
    cdef bint centered = grad_avg.shape[0] != 0
    cdef bint with_momentum = momentum_buffer.shape[0] != 0
    # Lee's root state keeps eps outside the root whatever eps_in_sqrt says (see the reference).
    cdef bint inside = eps_in_sqrt and not root_state
    # Dividing by 1 changes no bit: the loop without the division serves it (and Lee's root state).
    cdef bint corrected = bias_correction != 1 and not root_state
    cdef floating eps_in = <floating>(eps if inside else 0.0)
    cdef floating eps_out = <floating>(0.0 if inside else eps)
    cdef floating gain = <floating>(lr if lr_in_momentum else 1.0)
    cdef floating scale = <floating>(1.0 if lr_in_momentum else lr)
    cdef floating* avg_ptr = &grad_avg[0] if centered else NULL
    cdef floating* buffer_ptr = &momentum_buffer[0] if with_momentum else NULL
    for block in prange(blocks, nogil=True, schedule="static", num_threads=blocks,
                        use_threads_if=blocks > 1):
        _rmsprop_variant(&param[0], &grad[0], &square_avg[0], avg_ptr, buffer_ptr, <floating>lr,
                         <floating>old_weight, <floating>new_weight, <floating>momentum, eps_in,
                         eps_out, gain, scale, <floating>bias_correction, <floating>l2,
                         <floating>l1, l2 != 0 or l1 != 0, <floating>keep,
                         _block_start(n, blocks, block), _block_start(n, blocks, block + 1),
                         root_state, centered, with_momentum, nesterov and with_momentum, corrected)
    return param.base


def adam(floating[::1] param, const floating[::1] grad, floating[::1] exp_avg,
         floating[::1] exp_avg_sq, max_exp_avg_sq, double lr, double beta1,
         double beta2, double eps_in, double eps_out, double bias_correction1,
         double bias_correction2, bint eps_hat, bint correct_first, bint amsgrad_corrected,
         bint nesterov, double mu, double mu_next, double bias_correction1_next, double l2,
         double l1, double keep):
    cdef Py_ssize_t n = param.shape[0], blocks = _blocks(n), block
    # Typed only where AMSGrad uses it: taking a buffer of the empty array costs as much as the
    # rest of the call on a small parameter.
    cdef floating[::1] maximum
    cdef floating* max_ptr = NULL
    cdef int ams = 0
    if max_exp_avg_sq.shape[0] != 0:
        maximum = max_exp_avg_sq
        max_ptr = &maximum[0]
        ams = 2 if amsgrad_corrected else 1
    # In double, as the reference computes them in Python floats, then rounded once.
    cdef double scale = lr * sqrt(bias_correction2) if eps_hat else lr
    cdef double coef_m = scale / bias_correction1, coef_g = 0.0
    if eps_hat:
        bias_correction2 = 1.0
    if nesterov:
        coef_m = scale * mu_next / bias_correction1_next
        coef_g = scale * (1 - mu) / bias_correction1
    # NAdam, like correct_first, divides v by its correction before the root (as the reference).
    cdef bint before_root = correct_first or nesterov
    cdef double c = bias_correction2 if before_root or ams == 2 else sqrt(bias_correction2)
    for block in prange(blocks, nogil=True, schedule="static", num_threads=blocks,
                        use_threads_if=blocks > 1):
        _adam_variant(&param[0], &grad[0], &exp_avg[0], &exp_avg_sq[0], max_ptr, <floating>coef_m,
                      <floating>coef_g, <floating>c, <floating>(1 - beta1), <floating>beta2,
                      <floating>(1 - beta2), <floating>eps_in, <floating>eps_out, <floating>l2,
                      <floating>l1, l2 != 0 or l1 != 0, <floating>keep,
                      _block_start(n, blocks, block), _block_start(n, blocks, block + 1),
                      before_root, ams, nesterov)
    return param.base
