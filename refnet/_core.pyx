"""Compiled twins of the reference kernels in :mod:`refnet.reference`.

Every ``def`` here has a NumPy twin of the same name and parameters; read that
one for the formula.  The same contract holds: **no input validation** (the
public functions in :mod:`refnet.functional` do it), C-contiguous arrays of one
dtype, ``out`` exactly an input or disjoint from all of them.

Each operation is two layers, as in scikit-learn: a ``cdef ... noexcept nogil``
kernel over raw pointers that states its math in one line, and a thin ``def``
wrapper that releases the GIL and calls it.  ``floating`` makes one source
serve float32 and float64; transcendental kernels work in double and round
once, which makes their float32 results correctly rounded but for rare
near-halfway cases.

Argument notes: ``# IN`` is read, ``# OUT`` is written.  Axis letters in names
say the shape: ``__r`` rows, ``__u`` units, ``__rk`` rows × (units·pieces).
"""

from cython cimport floating

import numpy as np
from libc.math cimport fabs, INFINITY


include "_threads.pxi"


# --- sigmoid and tanh ---------------------------------------------------------

# Branch-free exp and expm1 and the elementwise loops over them, one clone per instruction
# set, picked at import: see _vmath.h for the algorithm and its error bound.
cdef extern from "_vmath.h" nogil:
    ctypedef struct refnet_vmath_table:
        void (*sigmoid_f)(const float*, float*, Py_ssize_t) noexcept nogil
        void (*sigmoid_d)(const double*, double*, Py_ssize_t) noexcept nogil
        void (*sigmoid_derivative_f)(const float*, float*, Py_ssize_t) noexcept nogil
        void (*sigmoid_derivative_d)(const double*, double*, Py_ssize_t) noexcept nogil
        void (*tanh_f)(const float*, float*, Py_ssize_t) noexcept nogil
        void (*tanh_d)(const double*, double*, Py_ssize_t) noexcept nogil
        void (*tanh_derivative_f)(const float*, float*, Py_ssize_t) noexcept nogil
        void (*tanh_derivative_d)(const double*, double*, Py_ssize_t) noexcept nogil
        void (*sigmoid_backward_f)(const float*, const float*, float*, Py_ssize_t) noexcept nogil
        void (*sigmoid_backward_d)(const double*, const double*, double*, Py_ssize_t) noexcept nogil
        void (*tanh_backward_f)(const float*, const float*, float*, Py_ssize_t) noexcept nogil
        void (*tanh_backward_d)(const double*, const double*, double*, Py_ssize_t) noexcept nogil
        void (*exp_shifted_f)(const float*, double, double*, Py_ssize_t) noexcept nogil
        void (*exp_shifted_d)(const double*, double, double*, Py_ssize_t) noexcept nogil
    refnet_vmath_table refnet_vmath
    int refnet_adam_variant(int penalised, int inside, int ams, int nesterov)
    void refnet_adam_float(int variant, float* param, const float* grad, float* exp_avg,
                           float* exp_avg_sq, float* max_exp_avg_sq, float coef_m, float coef_g,
                           float c, float one_minus_beta1, float beta2, float one_minus_beta2,
                           float eps_in, float eps_out, float l2, float l1, float keep,
                           Py_ssize_t start, Py_ssize_t stop)
    void refnet_adam_double(int variant, double* param, const double* grad, double* exp_avg,
                            double* exp_avg_sq, double* max_exp_avg_sq, double coef_m,
                            double coef_g, double c, double one_minus_beta1, double beta2,
                            double one_minus_beta2, double eps_in, double eps_out, double l2,
                            double l1, double keep, Py_ssize_t start, Py_ssize_t stop)
    int refnet_rmsprop_variant(int penalised, int root_state, int centered, int with_momentum,
                               int nesterov, int corrected)
    void refnet_rmsprop_float(int variant, float* param, const float* grad, float* square_avg,
                              float* grad_avg, float* momentum_buffer, float lr, float old_weight,
                              float new_weight, float momentum, float eps_in, float eps_out,
                              float gain, float scale, float c, float l2, float l1, float keep,
                              Py_ssize_t start, Py_ssize_t stop)
    void refnet_rmsprop_double(int variant, double* param, const double* grad, double* square_avg,
                               double* grad_avg, double* momentum_buffer, double lr,
                               double old_weight, double new_weight, double momentum,
                               double eps_in, double eps_out, double gain, double scale, double c,
                               double l2, double l1, double keep, Py_ssize_t start, Py_ssize_t stop)
    const char* refnet_vmath_select(int limit)
    double refnet_exp(double x)
    double _sigmoid_of "refnet_sigmoid_of"(double z)
    double _sigmoid_derivative_of "refnet_sigmoid_derivative_of"(double z)
    double _tanh_of "refnet_tanh_of"(double z)
    double _tanh_derivative_of "refnet_tanh_derivative_of"(double z)


# The clones, narrowest first; _select_isa takes one of these names.
ISA_CLONES = ("baseline", "avx2", "avx512")


def _select_isa(str widest="avx512"):
    """Run the transcendental loops on the widest clone this CPU has, no wider than
    ``widest`` (tests: every clone must give the same bits); returns the clone's name."""
    return refnet_vmath_select(ISA_CLONES.index(widest)).decode()


_select_isa()


cdef inline void _sigmoid(const floating* z, floating* out, Py_ssize_t start,
                          Py_ssize_t stop) noexcept nogil:
    """out := 1 / (1 + exp(-z)), over [start, stop)"""
    if floating is float:
        refnet_vmath.sigmoid_f(z + start, out + start, stop - start)
    else:
        refnet_vmath.sigmoid_d(z + start, out + start, stop - start)


cdef inline void _sigmoid_derivative(const floating* z, floating* out, Py_ssize_t start,
                                     Py_ssize_t stop) noexcept nogil:
    """out := sigma(z) * sigma(-z), over [start, stop)"""
    if floating is float:
        refnet_vmath.sigmoid_derivative_f(z + start, out + start, stop - start)
    else:
        refnet_vmath.sigmoid_derivative_d(z + start, out + start, stop - start)


cdef inline void _sigmoid_backward(const floating* grad_output, const floating* z, floating* out,
                                   Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """out := grad_output * sigma(z) * sigma(-z), over [start, stop)"""
    if floating is float:
        refnet_vmath.sigmoid_backward_f(grad_output + start, z + start, out + start, stop - start)
    else:
        refnet_vmath.sigmoid_backward_d(grad_output + start, z + start, out + start, stop - start)


cdef inline void _tanh(const floating* z, floating* out, Py_ssize_t start,
                       Py_ssize_t stop) noexcept nogil:
    """out := tanh(z), over [start, stop)"""
    if floating is float:
        refnet_vmath.tanh_f(z + start, out + start, stop - start)
    else:
        refnet_vmath.tanh_d(z + start, out + start, stop - start)


cdef inline void _tanh_derivative(const floating* z, floating* out, Py_ssize_t start,
                                  Py_ssize_t stop) noexcept nogil:
    """out := sech(z)^2, over [start, stop)"""
    if floating is float:
        refnet_vmath.tanh_derivative_f(z + start, out + start, stop - start)
    else:
        refnet_vmath.tanh_derivative_d(z + start, out + start, stop - start)


cdef inline void _tanh_backward(const floating* grad_output, const floating* z, floating* out,
                                Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """out := grad_output * sech(z)^2, over [start, stop)"""
    if floating is float:
        refnet_vmath.tanh_backward_f(grad_output + start, z + start, out + start, stop - start)
    else:
        refnet_vmath.tanh_backward_d(grad_output + start, z + start, out + start, stop - start)


# Split across threads as the optimizer updates are (_threads.pxi): one thread unless
# refnet.set_num_threads asks for more, the same bits for any count.

def sigmoid(const floating[::1] z, floating[::1] out):
    cdef Py_ssize_t n = z.shape[0], blocks = _blocks(n), block
    for block in prange(blocks, nogil=True, schedule="static", num_threads=blocks,
                        use_threads_if=blocks > 1):
        _sigmoid(&z[0], &out[0], _block_start(n, blocks, block), _block_start(n, blocks, block + 1))
    return out.base


def sigmoid_derivative(const floating[::1] z, floating[::1] out):
    cdef Py_ssize_t n = z.shape[0], blocks = _blocks(n), block
    for block in prange(blocks, nogil=True, schedule="static", num_threads=blocks,
                        use_threads_if=blocks > 1):
        _sigmoid_derivative(&z[0], &out[0], _block_start(n, blocks, block),
                           _block_start(n, blocks, block + 1))
    return out.base


def sigmoid_backward(const floating[::1] grad_output, const floating[::1] z, floating[::1] out):
    cdef Py_ssize_t n = z.shape[0], blocks = _blocks(n), block
    for block in prange(blocks, nogil=True, schedule="static", num_threads=blocks,
                        use_threads_if=blocks > 1):
        _sigmoid_backward(&grad_output[0], &z[0], &out[0], _block_start(n, blocks, block),
                         _block_start(n, blocks, block + 1))
    return out.base


def tanh(const floating[::1] z, floating[::1] out):
    cdef Py_ssize_t n = z.shape[0], blocks = _blocks(n), block
    for block in prange(blocks, nogil=True, schedule="static", num_threads=blocks,
                        use_threads_if=blocks > 1):
        _tanh(&z[0], &out[0], _block_start(n, blocks, block), _block_start(n, blocks, block + 1))
    return out.base


def tanh_derivative(const floating[::1] z, floating[::1] out):
    cdef Py_ssize_t n = z.shape[0], blocks = _blocks(n), block
    for block in prange(blocks, nogil=True, schedule="static", num_threads=blocks,
                        use_threads_if=blocks > 1):
        _tanh_derivative(&z[0], &out[0], _block_start(n, blocks, block),
                        _block_start(n, blocks, block + 1))
    return out.base


def tanh_backward(const floating[::1] grad_output, const floating[::1] z, floating[::1] out):
    cdef Py_ssize_t n = z.shape[0], blocks = _blocks(n), block
    for block in prange(blocks, nogil=True, schedule="static", num_threads=blocks,
                        use_threads_if=blocks > 1):
        _tanh_backward(&grad_output[0], &z[0], &out[0], _block_start(n, blocks, block),
                      _block_start(n, blocks, block + 1))
    return out.base


# --- the ReLU family ----------------------------------------------------------

cdef void _relu(const floating* z, floating* out, Py_ssize_t n) noexcept nogil:
    """out := max(0, z), NaN propagating"""
    cdef Py_ssize_t i
    cdef floating zi
    for i in range(n):
        zi = z[i]
        # "not below 0" keeps NaN and -0.0 as NumPy's maximum(z, 0) does, in one comparison.
        out[i] = zi if not zi < 0 else 0


cdef void _relu_derivative(const floating* z, floating* out, Py_ssize_t n) noexcept nogil:
    """out := 1 if z > 0 else 0"""
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = z[i] > 0


cdef void _relu_backward(const floating* grad_output, const floating* z, floating* out,
                         Py_ssize_t n) noexcept nogil:
    """out := grad_output if z > 0 else 0"""
    # Each loop below loads every operand before choosing, so that gcc turns the
    # choice into a vector blend instead of a branch (a conditional load blocks it).
    cdef Py_ssize_t i
    cdef floating g
    for i in range(n):
        g = grad_output[i]
        out[i] = g if z[i] > 0 else 0


cdef void _leaky_relu(const floating* z, floating slope, floating* out, Py_ssize_t n) noexcept nogil:
    """out := z if z > 0 else slope * z"""
    cdef Py_ssize_t i
    cdef floating zi, scaled
    for i in range(n):
        zi = z[i]
        scaled = slope * zi
        out[i] = zi if zi > 0 else scaled


cdef void _leaky_relu_derivative(const floating* z, floating slope, floating* out,
                                 Py_ssize_t n) noexcept nogil:
    """out := 1 if z > 0 else slope"""
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = 1 if z[i] > 0 else slope


cdef void _leaky_relu_backward(const floating* grad_output, const floating* z, floating slope,
                               floating* out, Py_ssize_t n) noexcept nogil:
    """out := grad_output if z > 0 else slope * grad_output"""
    cdef Py_ssize_t i
    cdef floating g, scaled
    for i in range(n):
        g = grad_output[i]
        scaled = slope * g
        out[i] = g if z[i] > 0 else scaled


def relu(const floating[::1] z, floating[::1] out):
    if z.shape[0]:
        with nogil:
            _relu(&z[0], &out[0], z.shape[0])
    return out.base


def relu_derivative(const floating[::1] z, floating[::1] out):
    if z.shape[0]:
        with nogil:
            _relu_derivative(&z[0], &out[0], z.shape[0])
    return out.base


def relu_backward(const floating[::1] grad_output, const floating[::1] z, floating[::1] out):
    if z.shape[0]:
        with nogil:
            _relu_backward(&grad_output[0], &z[0], &out[0], z.shape[0])
    return out.base


def leaky_relu(const floating[::1] z, double slope, floating[::1] out):
    if z.shape[0]:
        with nogil:
            _leaky_relu(&z[0], <floating>slope, &out[0], z.shape[0])
    return out.base


def leaky_relu_derivative(const floating[::1] z, double slope, floating[::1] out):
    if z.shape[0]:
        with nogil:
            _leaky_relu_derivative(&z[0], <floating>slope, &out[0], z.shape[0])
    return out.base


def leaky_relu_backward(const floating[::1] grad_output, const floating[::1] z, double slope,
                        floating[::1] out):
    if z.shape[0]:
        with nogil:
            _leaky_relu_backward(&grad_output[0], &z[0], <floating>slope, &out[0], z.shape[0])
    return out.base


cdef void _prelu(const floating* z__ru, const floating* slope__u, floating* out__ru,
                 Py_ssize_t rows, Py_ssize_t units) noexcept nogil:
    """out[r, u] := z[r, u] if z[r, u] > 0 else slope[u] * z[r, u]"""
    cdef Py_ssize_t r, u
    cdef const floating* z__u
    cdef floating* out__u
    cdef floating zi, scaled
    for r in range(rows):
        z__u = z__ru + r * units
        out__u = out__ru + r * units
        for u in range(units):
            zi = z__u[u]
            scaled = slope__u[u] * zi
            out__u[u] = zi if zi > 0 else scaled


cdef void _prelu_backward(const floating* grad_output__ru, const floating* z__ru,
                          const floating* slope__u, floating* grad_input__ru,
                          floating* grad_slope__u, Py_ssize_t rows, Py_ssize_t units) noexcept nogil:
    """grad_input[r, u] := g if z > 0 else slope[u] * g;  grad_slope[u] += sum_r (0 if z > 0 else g * z)

    grad_slope arrives zeroed and is summed row after row in the array's dtype.
    """
    cdef Py_ssize_t r, u, offset
    cdef floating g, zi, scaled
    for r in range(rows):
        for u in range(units):
            offset = r * units + u
            g = grad_output__ru[offset]
            zi = z__ru[offset]
            scaled = slope__u[u] * g
            grad_input__ru[offset] = g if zi > 0 else scaled
            grad_slope__u[u] += 0 if zi > 0 else g * zi


def prelu(const floating[:, ::1] z, const floating[::1] slope, floating[:, ::1] out):
    if z.shape[0] and z.shape[1]:
        with nogil:
            _prelu(&z[0, 0], &slope[0], &out[0, 0], z.shape[0], z.shape[1])
    return out.base


def prelu_backward(const floating[:, ::1] grad_output, const floating[:, ::1] z,
                   const floating[::1] slope, floating[:, ::1] grad_input,
                   floating[::1] grad_slope):
    grad_slope[:] = 0
    if z.shape[0] and z.shape[1]:
        with nogil:
            _prelu_backward(&grad_output[0, 0], &z[0, 0], &slope[0], &grad_input[0, 0],
                            &grad_slope[0], z.shape[0], z.shape[1])
    return grad_input.base, grad_slope.base


# --- softmax ------------------------------------------------------------------

cdef double _pairwise_sum(const double* x, Py_ssize_t n) noexcept nogil:
    """x[0] + ... + x[n-1] in NumPy's pairwise order (eight running sums in blocks of up to
    128, halves above): a rounding error that grows with log n, where one running sum's
    grows with n (131 ulp off 1 for a softmax row of 10^6, against 2)."""
    cdef Py_ssize_t i, half
    cdef double total = 0.0
    cdef double r0, r1, r2, r3, r4, r5, r6, r7
    if n < 8:
        for i in range(n):
            total += x[i]
        return total
    if n <= 128:
        r0, r1, r2, r3, r4, r5, r6, r7 = x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]
        i = 8
        while i < n - n % 8:
            r0 += x[i]
            r1 += x[i + 1]
            r2 += x[i + 2]
            r3 += x[i + 3]
            r4 += x[i + 4]
            r5 += x[i + 5]
            r6 += x[i + 6]
            r7 += x[i + 7]
            i += 8
        total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            total += x[i]
            i += 1
        return total
    half = n // 2
    half -= half % 8
    return _pairwise_sum(x, half) + _pairwise_sum(x + half, n - half)


cdef void _softmax_row(const floating* z, floating* out, double* e, Py_ssize_t n) noexcept nogil:
    """out := exp(z - max z) / sum(exp(z - max z));  e: n doubles of work space (may be out for double)"""
    cdef Py_ssize_t j
    cdef double row_max = -INFINITY, total
    for j in range(n):
        if z[j] > row_max or z[j] != z[j]:   # a NaN sticks, as in NumPy's max
            row_max = z[j]
    # The exponentials in double on the vector clone, then their pairwise sum, then one
    # rounding each: float32 results are the double quotient rounded once.
    if floating is float:
        refnet_vmath.exp_shifted_f(z, row_max, e, n)
    else:
        refnet_vmath.exp_shifted_d(z, row_max, e, n)
    total = _pairwise_sum(e, n)
    for j in range(n):
        out[j] = <floating>(e[j] / total)


cdef void _softmax_backward_row(const floating* grad_output, const floating* output,
                                floating* out, Py_ssize_t n) noexcept nogil:
    """out := s * (g - sum(g * s))"""
    cdef Py_ssize_t j
    cdef double dot = 0.0
    for j in range(n):
        dot += <double>grad_output[j] * <double>output[j]
    for j in range(n):
        out[j] = <floating>(<double>output[j] * (<double>grad_output[j] - dot))


def softmax(const floating[:, ::1] z, floating[:, ::1] out):
    cdef Py_ssize_t r
    cdef double[::1] work
    if z.shape[0] and z.shape[1]:
        # float64 rows keep their exponentials in out itself; float32 rows need doubles.
        work = None if floating is double else np.empty(z.shape[1], dtype=np.float64)
        with nogil:
            for r in range(z.shape[0]):
                if floating is double:
                    _softmax_row(&z[r, 0], &out[r, 0], &out[r, 0], z.shape[1])
                else:
                    _softmax_row(&z[r, 0], &out[r, 0], &work[0], z.shape[1])
    return out.base


def softmax_backward(const floating[:, ::1] grad_output, const floating[:, ::1] output,
                     floating[:, ::1] out):
    cdef Py_ssize_t r
    if output.shape[0] and output.shape[1]:
        with nogil:
            for r in range(output.shape[0]):
                _softmax_backward_row(&grad_output[r, 0], &output[r, 0], &out[r, 0],
                                      output.shape[1])
    return out.base


# --- Maxout -------------------------------------------------------------------

cdef inline Py_ssize_t _winner(const floating* group, Py_ssize_t pieces) noexcept nogil:
    """argmax of one group, NumPy's rules: first maximum wins ties, first NaN beats all."""
    cdef Py_ssize_t p, best_p = 0
    cdef floating best = group[0], v
    if best != best:
        return 0
    for p in range(1, pieces):
        v = group[p]
        if v > best:
            best = v
            best_p = p
        elif v != v:
            return p
    return best_p


cdef void _maxout(const floating* z__rk, floating* out__ru, Py_ssize_t n_units,
                  Py_ssize_t pieces) noexcept nogil:
    """out[i] := max(z[i*k : (i+1)*k]) over all n_units = rows * units groups"""
    cdef Py_ssize_t i
    cdef const floating* group
    for i in range(n_units):
        group = z__rk + i * pieces
        out__ru[i] = group[_winner(group, pieces)]


cdef void _maxout_backward(const floating* grad_output__ru, const floating* z__rk,
                           floating* out__rk, Py_ssize_t n_units, Py_ssize_t pieces) noexcept nogil:
    """out[i*k + p] := grad_output[i] if p is group i's winner else 0"""
    cdef Py_ssize_t i, p, winner
    for i in range(n_units):
        # The winner is found before the group is written, so out may be z itself.
        winner = _winner(z__rk + i * pieces, pieces)
        for p in range(pieces):
            out__rk[i * pieces + p] = grad_output__ru[i] if p == winner else 0


def maxout(const floating[:, ::1] z, Py_ssize_t pieces, floating[:, ::1] out):
    cdef Py_ssize_t n_units = out.shape[0] * out.shape[1]
    if n_units:
        with nogil:
            _maxout(&z[0, 0], &out[0, 0], n_units, pieces)
    return out.base


def maxout_backward(const floating[:, ::1] grad_output, const floating[:, ::1] z,
                    Py_ssize_t pieces, floating[:, ::1] out):
    cdef Py_ssize_t n_units = grad_output.shape[0] * grad_output.shape[1]
    if n_units:
        with nogil:
            _maxout_backward(&grad_output[0, 0], &z[0, 0], &out[0, 0], n_units, pieces)
    return out.base


include "_dense.pxi"
include "_losses.pxi"
include "_dropout.pxi"
include "_optim.pxi"
