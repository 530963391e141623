# Dense layers: y = act(x . W + b), forward and backward, with BLAS from SciPy.
#
# Included at the end of _core.pyx, so it shares its imports and the elementwise
# loops (_sigmoid, _tanh and their backward passes, on the clone chosen at import).
#
# The matrix products go to sgemm/dgemm from scipy.linalg.cython_blas (the BLAS
# SciPy links, so refnet links none of its own).  The bias add and the
# activation run in one pass over the product (forward); the activation's
# derivative and the bias gradient in one pass over grad_output (backward).
# Axis letters: __ri rows x n_in, __io n_in x n_out, __ro rows x n_out, __o n_out.

from scipy.linalg.cython_blas cimport sgemm, dgemm

# The activations a Dense kernel can fuse; the names are the reference's keys.
DENSE_ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu")
cdef dict _ACTIVATION_CODE = {name: code for code, name in enumerate(DENSE_ACTIVATIONS)}
cdef enum:
    IDENTITY, SIGMOID, TANH, RELU, LEAKY_RELU


cdef void _gemm_rowmajor(char trans_a, char trans_b, int m, int n, int k,
                         const floating* a, int lda, const floating* b, int ldb,
                         floating* c, int ldc) noexcept nogil:
    """C := op(A) . op(B) for row-major arrays (C is m x n), as C^T = op(B)^T . op(A)^T in Fortran order"""
    cdef floating one = 1, zero = 0
    # beta = 0: BLAS does not read C, so it may hold garbage (np.empty) or NaN.
    if floating is float:
        sgemm(&trans_b, &trans_a, &n, &m, &k, &one, <float*>b, &ldb, <float*>a, &lda,
              &zero, c, &ldc)
    else:
        dgemm(&trans_b, &trans_a, &n, &m, &k, &one, <double*>b, &ldb, <double*>a, &lda,
              &zero, c, &ldc)


cdef void _bias_activation_rows(int code, const floating* bias__o, floating slope,
                                floating* z__ro, floating* out__ro, Py_ssize_t rows,
                                Py_ssize_t n_out) noexcept nogil:
    """z[r, :] += b;  out[r, :] := act(z[r, :])   (ReLU propagates NaN like _relu)

    One loop per activation, chosen once per row, so that each inner loop is a
    branch-free select (operands loaded unconditionally) the compiler vectorises (a per-element switch made this
    pass cost as much as the matrix product of a 32 x 64 -> 64 layer).
    """
    cdef Py_ssize_t r, o
    cdef floating zi
    cdef floating* z
    cdef floating* out
    for r in range(rows):
        z = z__ro + r * n_out
        out = out__ro + r * n_out
        for o in range(n_out):
            z[o] += bias__o[o]
        if code == RELU:
            for o in range(n_out):
                out[o] = 0 if z[o] < 0 else z[o]   # NaN < 0 is false: NaN propagates
        elif code == LEAKY_RELU:
            for o in range(n_out):
                # A select of the factor, then an unconditional product (exact where the
                # factor is 1): one form that vectorises.
                zi = z[o]
                out[o] = zi * (1 if zi > 0 else slope)
        elif code == SIGMOID:
            _sigmoid(z, out, 0, n_out)
        elif code == TANH:
            _tanh(z, out, 0, n_out)
        elif out != z:
            for o in range(n_out):
                out[o] = z[o]


cdef void _delta_rows(int code, const floating* grad_output__ro, const floating* z__ro,
                      floating slope, floating* grad_z__ro, floating* grad_bias__o,
                      Py_ssize_t rows, Py_ssize_t n_out) noexcept nogil:
    """gz[r, :] := g[r, :] * act'(z[r, :]);  grad_b += gz[r, :]   (one vectorisable loop per activation)"""
    cdef Py_ssize_t r, o
    cdef floating gi
    cdef const floating* g
    cdef const floating* z
    cdef floating* gz
    for r in range(rows):
        g = grad_output__ro + r * n_out
        z = z__ro + r * n_out
        gz = grad_z__ro + r * n_out
        if code == RELU:
            for o in range(n_out):
                gi = g[o]   # loaded unconditionally, so the select vectorises
                gz[o] = gi if z[o] > 0 else 0
        elif code == LEAKY_RELU:
            for o in range(n_out):
                gz[o] = g[o] * (1 if z[o] > 0 else slope)   # vectorises, as in the forward pass
        elif code == SIGMOID:
            _sigmoid_backward(g, z, gz, 0, n_out)
        elif code == TANH:
            _tanh_backward(g, z, gz, 0, n_out)
        elif gz != g:
            for o in range(n_out):
                gz[o] = g[o]
        for o in range(n_out):
            grad_bias__o[o] += gz[o]


cdef void _dense_forward(const floating* x__ri, const floating* weight__io, const floating* bias__o,
                         int code, floating slope, floating* z__ro, floating* out__ro,
                         int rows, int n_in, int n_out) noexcept nogil:
    """z := x . W + b;  out := act(z)"""
    _gemm_rowmajor(c'n', c'n', rows, n_out, n_in, x__ri, n_in, weight__io, n_out, z__ro, n_out)
    _bias_activation_rows(code, bias__o, slope, z__ro, out__ro, rows, n_out)


cdef void _dense_backward(const floating* grad_output__ro, const floating* x__ri,
                          const floating* weight__io, const floating* z__ro, int code, floating slope,
                          floating* grad_z__ro, floating* grad_input__ri, floating* grad_weight__io,
                          floating* grad_bias__o, int rows, int n_in, int n_out) noexcept nogil:
    """gz := g * act'(z);  grad_b := sum_r gz;  grad_W := x^T . gz;  grad_x := gz . W^T

    grad_bias arrives zeroed and is summed row after row in the array's dtype.
    grad_input may be NULL
    (the first layer of a network needs no gradient for its input).
    """
    _delta_rows(code, grad_output__ro, z__ro, slope, grad_z__ro, grad_bias__o, rows, n_out)
    _gemm_rowmajor(c't', c'n', n_in, n_out, rows, x__ri, n_in, grad_z__ro, n_out,
                   grad_weight__io, n_out)
    if grad_input__ri != NULL:
        _gemm_rowmajor(c'n', c't', rows, n_in, n_out, grad_z__ro, n_out, weight__io, n_out,
                       grad_input__ri, n_in)


def dense_forward(const floating[:, ::1] x, const floating[:, ::1] weight,
                  const floating[::1] bias, str activation, double slope,
                  floating[:, ::1] z, floating[:, ::1] out):
    cdef int code = _ACTIVATION_CODE[activation]
    if x.shape[0]:
        with nogil:
            _dense_forward(&x[0, 0], &weight[0, 0], &bias[0], code, <floating>slope,
                           &z[0, 0], &out[0, 0], x.shape[0], x.shape[1], weight.shape[1])
    return out.base


def dense_backward(const floating[:, ::1] grad_output, const floating[:, ::1] x,
                   const floating[:, ::1] weight, const floating[:, ::1] z, str activation,
                   double slope, floating[:, ::1] grad_z, floating[:, ::1] grad_input,
                   floating[:, ::1] grad_weight, floating[::1] grad_bias):
    cdef int code = _ACTIVATION_CODE[activation]
    cdef floating* grad_input_ptr = NULL
    grad_bias[:] = 0
    if not x.shape[0]:
        # No rows: the sums over the batch are empty.  (BLAS with k = 0 would
        # also give zeros; this says it without relying on that corner.)
        grad_weight[:, :] = 0
        return None if grad_input is None else grad_input.base, grad_weight.base, grad_bias.base
    if grad_input is not None:
        grad_input_ptr = &grad_input[0, 0]
    with nogil:
        _dense_backward(&grad_output[0, 0], &x[0, 0], &weight[0, 0], &z[0, 0], code,
                        <floating>slope, &grad_z[0, 0], grad_input_ptr, &grad_weight[0, 0],
                        &grad_bias[0], x.shape[0], x.shape[1], weight.shape[1])
    return None if grad_input is None else grad_input.base, grad_weight.base, grad_bias.base
