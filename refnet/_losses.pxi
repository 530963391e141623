# Losses, each fused with its gradient: one pass computes the batch-mean loss
# and writes d(loss)/d(input).  Included at the end of _core.pyx.
#
# Sums are accumulated in double for both dtypes and the loss is returned as a
# Python float; gradients are evaluated in double and rounded once.  exp is the
# core's branch-free one (_vmath.h, < 1 ulp, inlined); log and log1p are libm's.
# Axis letters: __rk rows x classes (or units), __r rows.

from libc.math cimport log, log1p


cdef extern from *:
    """
    /* One read of a label the caller's other threads may still write (the volatile access
       keeps the compiler from reading it again after the range check). */
    static inline Py_ssize_t refnet_read_once(const Py_ssize_t* p) { return *(const volatile Py_ssize_t*)p; }
    """
    Py_ssize_t refnet_read_once(const Py_ssize_t* p) noexcept nogil


cdef double _softmax_cross_entropy(const floating* logits__rk, const Py_ssize_t* labels__r,
                                   floating* grad__rk, Py_ssize_t rows, Py_ssize_t classes,
                                   Py_ssize_t* bad_row) noexcept nogil:
    """loss := mean_r (log1p(rest_r) + (m_r - z_r[y_r]));  grad := (softmax(z) - onehot(y)) / rows

    Everything from the shifted logits z - m (see the reference for why):
    rest = sum of e^(z_j - m) over j other than the first maximum, others = the
    same sum over j other than the label, and the label's gradient is -others / total.
    A label outside [0, classes) stops the loop with its row in bad_row: the labels were
    validated, but they are the caller's array, which another thread may write meanwhile.
    """
    cdef Py_ssize_t r, j, winner, label
    cdef const floating* z
    cdef floating* grad
    cdef double row_max, e, rest, others, total, loss = 0.0
    for r in range(rows):
        z = logits__rk + r * classes
        grad = grad__rk + r * classes
        label = refnet_read_once(labels__r + r)
        if label < 0 or label >= classes:
            bad_row[0] = r
            return 0.0
        winner = 0
        for j in range(1, classes):
            if z[j] > z[winner]:
                winner = j
        row_max = z[winner]
        rest = others = 0.0
        for j in range(classes):
            e = refnet_exp(<double>z[j] - row_max)
            if j != winner:
                rest += e
            if j != label:
                others += e
        total = 1.0 + rest
        loss += log1p(rest) + (row_max - <double>z[label])
        for j in range(classes):
            if j == label:
                grad[j] = <floating>(-others / total / rows)
            else:
                grad[j] = <floating>(refnet_exp(<double>z[j] - row_max) / total / rows)
    return loss / rows


cdef double _binary_cross_entropy_with_logits(const floating* logits, const floating* targets,
                                              floating* grad, Py_ssize_t rows,
                                              Py_ssize_t n) noexcept nogil:
    """loss := sum(c z + log1p(exp(-|z|))) / rows, c = 1 - t (z > 0) or -t, c z = 0 where c = 0;
    grad := (sigma(z) - t) / rows"""
    cdef Py_ssize_t i
    cdef double z, t, c, loss = 0.0
    for i in range(n):
        z = logits[i]
        t = targets[i]
        c = 1.0 - t if z > 0 else -t
        loss += (c * z if c != 0 else 0.0) + log1p(refnet_exp(-fabs(z)))
        grad[i] = <floating>((_sigmoid_of(z) - t) / rows)
    return loss / rows


cdef double _cross_entropy(const floating* outputs, const floating* targets, floating* grad,
                           Py_ssize_t rows, Py_ssize_t n) noexcept nogil:
    """loss := -sum(t ln a + (1 - t) ln(1 - a)) / rows;  grad := (-t/a + (1 - t)/(1 - a)) / rows

    A term whose coefficient (t or 1 - t) is 0 counts 0, whatever a is.
    """
    cdef Py_ssize_t i
    cdef double a, t, g, loss = 0.0
    for i in range(n):
        a = outputs[i]
        t = targets[i]
        g = 0.0
        if t != 0:
            loss -= t * log(a)
            g -= t / a
        if t != 1:
            loss -= (1.0 - t) * log1p(-a)
            g += (1.0 - t) / (1.0 - a)
        grad[i] = <floating>(g / rows)
    return loss / rows


cdef double _mean_squared_error(const floating* outputs, const floating* targets, floating* grad,
                                Py_ssize_t rows, Py_ssize_t n) noexcept nogil:
    """loss := sum((a - t)^2) / rows;  grad := 2 (a - t) / rows"""
    cdef Py_ssize_t i
    cdef double d, loss = 0.0
    for i in range(n):
        d = <double>outputs[i] - <double>targets[i]
        loss += d * d
        grad[i] = <floating>(2.0 * d / rows)
    return loss / rows


def softmax_cross_entropy(const floating[:, ::1] logits, const Py_ssize_t[::1] labels,
                          floating[:, ::1] grad):
    cdef double loss
    cdef Py_ssize_t bad_row = -1
    with nogil:
        loss = _softmax_cross_entropy(&logits[0, 0], &labels[0], &grad[0, 0],
                                      logits.shape[0], logits.shape[1], &bad_row)
    if bad_row >= 0:
        raise ValueError(f"labels[{bad_row}] left [0, {logits.shape[1]}) during the call "
                         f"(written by another thread after validation); grad is partly written")
    return loss


def binary_cross_entropy_with_logits(const floating[:, ::1] logits,
                                     const floating[:, ::1] targets, floating[:, ::1] grad):
    cdef double loss
    with nogil:
        loss = _binary_cross_entropy_with_logits(&logits[0, 0], &targets[0, 0], &grad[0, 0],
                                                 logits.shape[0],
                                                 logits.shape[0] * logits.shape[1])
    return loss


def cross_entropy(const floating[:, ::1] outputs, const floating[:, ::1] targets,
                  floating[:, ::1] grad):
    cdef double loss
    with nogil:
        loss = _cross_entropy(&outputs[0, 0], &targets[0, 0], &grad[0, 0], outputs.shape[0],
                              outputs.shape[0] * outputs.shape[1])
    return loss


def mean_squared_error(const floating[:, ::1] outputs, const floating[:, ::1] targets,
                       floating[:, ::1] grad):
    cdef double loss
    with nogil:
        loss = _mean_squared_error(&outputs[0, 0], &targets[0, 0], &grad[0, 0], outputs.shape[0],
                                   outputs.shape[0] * outputs.shape[1])
    return loss
