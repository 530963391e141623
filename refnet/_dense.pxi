# Dense layers: y = act(x . W + b), forward and backward, the products in NumPy's BLAS.
#
# Included at the end of _core.pyx, so it shares its imports and the elementwise
# loops (_sigmoid, _tanh and their backward passes, on the clone chosen at import).
#
# The matrix products are np.matmul's, as in the reference: NumPy's BLAS, so refnet
# links none of its own and a process trains with one BLAS thread pool.  SciPy's
# cython_blas was used first; its wheels bundled an older OpenBLAS (0.3.30 against
# NumPy's 0.3.31 in SciPy 1.17.1) that ran a batch-16 step's products 1.4x slower,
# and sharing the cores with NumPy's pool cost more (see the performance guide).
# The bias add and the activation run in one nogil pass over the product
# (forward); the activation's derivative and the bias gradient in one pass over
# grad_output (backward).
# Axis letters: __ri rows x n_in, __io n_in x n_out, __ro rows x n_out, __o n_out.

# The activations a Dense kernel can fuse; the names are the reference's keys.
DENSE_ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu")
cdef dict _ACTIVATION_CODE = {name: code for code, name in enumerate(DENSE_ACTIVATIONS)}
cdef enum:
    IDENTITY, SIGMOID, TANH, RELU, LEAKY_RELU


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


def dense_forward(const floating[:, ::1] x, const floating[:, ::1] weight,
                  const floating[::1] bias, str activation, double slope,
                  floating[:, ::1] z, floating[:, ::1] out):
    cdef int code = _ACTIVATION_CODE[activation]
    if x.shape[0]:
        with np.errstate(all="ignore"):   # the IEEE result, whatever the caller's error state
            np.matmul(x.base, weight.base, out=z.base)
        with nogil:
            _bias_activation_rows(code, &bias[0], <floating>slope, &z[0, 0], &out[0, 0],
                                  x.shape[0], weight.shape[1])
    return out.base


def dense_backward(const floating[:, ::1] grad_output, const floating[:, ::1] x,
                   const floating[:, ::1] weight, const floating[:, ::1] z, str activation,
                   double slope, floating[:, ::1] grad_z, floating[:, ::1] grad_input,
                   floating[:, ::1] grad_weight, floating[::1] grad_bias):
    cdef int code = _ACTIVATION_CODE[activation]
    grad_bias[:] = 0
    if not x.shape[0]:
        # No rows: the sums over the batch are empty.
        grad_weight[:, :] = 0
        return None if grad_input is None else grad_input.base, grad_weight.base, grad_bias.base
    with nogil:
        _delta_rows(code, &grad_output[0, 0], &z[0, 0], <floating>slope, &grad_z[0, 0],
                    &grad_bias[0], x.shape[0], weight.shape[1])
    with np.errstate(all="ignore"):
        np.matmul(x.base.T, grad_z.base, out=grad_weight.base)
        if grad_input is not None:
            np.matmul(grad_z.base, weight.base.T, out=grad_input.base)
    return None if grad_input is None else grad_input.base, grad_weight.base, grad_bias.base
