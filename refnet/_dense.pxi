# Dense layers: y = act(x . W + b), forward and backward, with BLAS from SciPy.
#
# Included at the end of _core.pyx, so it shares its imports and the scalar
# helpers (_sigmoid_of, _sigmoid_derivative_of, _tanh_derivative_of).
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


cdef inline floating _activation_of(int code, floating z, floating slope) noexcept nogil:
    """act(z) for the fused activations (ReLU propagates NaN like _relu)"""
    if code == SIGMOID:
        return <floating>_sigmoid_of(z)
    if code == TANH:
        return <floating>libm_tanh(z)
    if code == RELU:
        return z if (z >= 0 or z != z) else 0
    if code == LEAKY_RELU:
        return z if z > 0 else slope * z
    return z


cdef inline floating _activation_backward_of(int code, floating g, floating z,
                                             floating slope) noexcept nogil:
    """g * act'(z), as the *_backward kernels compute it"""
    if code == SIGMOID:
        return <floating>(<double>g * _sigmoid_derivative_of(z))
    if code == TANH:
        return <floating>(<double>g * _tanh_derivative_of(z))
    if code == RELU:
        return g if z > 0 else 0
    if code == LEAKY_RELU:
        return g if z > 0 else slope * g
    return g


cdef void _dense_forward(const floating* x__ri, const floating* weight__io, const floating* bias__o,
                         int code, floating slope, floating* z__ro, floating* out__ro,
                         int rows, int n_in, int n_out) noexcept nogil:
    """z := x . W + b;  out := act(z)"""
    cdef Py_ssize_t r, o, offset
    cdef floating zi
    _gemm_rowmajor(c'n', c'n', rows, n_out, n_in, x__ri, n_in, weight__io, n_out, z__ro, n_out)
    for r in range(rows):
        for o in range(n_out):
            offset = r * n_out + o
            zi = z__ro[offset] + bias__o[o]
            z__ro[offset] = zi
            out__ro[offset] = _activation_of(code, zi, slope)


cdef void _dense_backward(const floating* grad_output__ro, const floating* x__ri,
                          const floating* weight__io, const floating* z__ro, int code, floating slope,
                          floating* grad_z__ro, floating* grad_input__ri, floating* grad_weight__io,
                          floating* grad_bias__o, int rows, int n_in, int n_out) noexcept nogil:
    """gz := g * act'(z);  grad_b := sum_r gz;  grad_W := x^T . gz;  grad_x := gz . W^T

    grad_bias arrives zeroed and is summed row after row in the array's dtype,
    as NumPy reduces a C-ordered array over axis 0.  grad_input may be NULL
    (the first layer of a network needs no gradient for its input).
    """
    cdef Py_ssize_t r, o, offset
    cdef floating gz
    for r in range(rows):
        for o in range(n_out):
            offset = r * n_out + o
            gz = _activation_backward_of(code, grad_output__ro[offset], z__ro[offset], slope)
            grad_z__ro[offset] = gz
            grad_bias__o[o] += gz
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
