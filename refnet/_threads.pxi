# Threads for the compiled elementwise kernels: the optimizer updates and the sigmoid and tanh
# loops (included near the top of _core.pyx).  Each wrapper splits its arrays into one block
# per thread and runs the serial loop on each; the kernels are elementwise, so the result is
# the same bits for any split.

import os

from cython.parallel cimport prange


cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define refnet_max_threads() omp_get_max_threads()
    #else
    #define refnet_max_threads() 1
    #endif
    """
    int refnet_max_threads() noexcept nogil


# Elements per thread below which waking a second thread costs more than it saves, when
# threads are asked for: two threads win at 2 x 2^13 elements on an idle machine (measured:
# SGD 26 -> 19 us, Lee's RMSProp 89 -> 68 us, in float64).
cdef Py_ssize_t _MIN_BLOCK = 1 << 13
# Block boundaries fall on multiples of 16 elements, 64 bytes for float32: whole cache
# lines, which two threads then never both write.
cdef Py_ssize_t _BLOCK_ALIGN = 16

# Threads the kernels may use; 1 unless refnet.set_num_threads asks for more.  In a training
# loop the updates alternate with BLAS's matrix products, and BLAS keeps its own pool of
# threads spinning for milliseconds after each product: an OpenMP pool beside it fights it
# for the cores (measured on 2 cores, 784-256-256-10 with Adam: 16 ms a step at batch 128
# and 13.6 ms at batch 16 with the updates split, 1.6 and 0.6 ms on one thread; even a
# 4096 x 4096 float64 layer stepped 8% slower split).  One pool at a time is the default.
cdef int _threads = 1

# GNU OpenMP's threads do not survive fork(): a child that starts a parallel region waits
# for them forever.  A forked child therefore runs every kernel on its own thread.
cdef bint _forked = False


def _after_fork_in_child():
    global _forked
    _forked = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def _set_num_threads(int threads):
    global _threads
    _threads = threads


def _get_num_threads():
    return _threads


def _openmp_threads():
    """The threads OpenMP offers (OMP_NUM_THREADS, threadpoolctl), 1 in a build without it."""
    return refnet_max_threads()


cdef inline Py_ssize_t _blocks(Py_ssize_t n) noexcept nogil:
    """How many threads share n elements: those asked for and offered by OpenMP, each with at least _MIN_BLOCK"""
    if _forked:
        return 1 if n else 0
    return max(min(<Py_ssize_t>min(_threads, refnet_max_threads()), n // _MIN_BLOCK), 1 if n else 0)


cdef inline Py_ssize_t _block_start(Py_ssize_t n, Py_ssize_t blocks, Py_ssize_t block) noexcept nogil:
    """First element of a block (block == blocks gives n): equal sizes rounded up to _BLOCK_ALIGN"""
    cdef Py_ssize_t size = (n // blocks + _BLOCK_ALIGN) // _BLOCK_ALIGN * _BLOCK_ALIGN
    return min(block * size, n)
