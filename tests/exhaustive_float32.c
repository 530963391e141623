/* Every float32 input of the float32 transcendental kernels against an oracle.
 *
 * Not part of the package: a proof run, `python tests/exhaustive_float32.py` (which builds
 * this file with the core's flags, runs it and settles the near-midpoint inputs it lists
 * with mpmath).  It includes refnet/_vmath.h, the very code the compiled core runs, and
 * checks each of the 2^32 bit patterns (or every STRIDE-th) on every clone the CPU has: the
 * widest clone against the oracle, the others bit for bit against the widest.
 *
 * The oracle is the formula in double through libm (glibc: exp < 1 ulp, tanh < 2 ulp), within
 * 8 double ulp of the exact value (2^-50 relative, the sum of each operation's error): far
 * inside the margin B = 2^-46 used here, so the exact value lies in [d (1 - B), d (1 + B)]
 * around the oracle's d, and a result y is within (|y - d| + |d| B) / ulp of it: that bound,
 * taken over every input, must stay within the specs' CORRECTLY_ROUNDED (0.5 + 2^-20 ulp).
 * Where that interval holds no float32 rounding midpoint, the correctly rounded result is
 * (float)d and a y equal to it is proven correctly rounded; where it holds one (HARD: near
 * sigma(0) = 1/2 the exact value sits within z^3/48 of a midpoint), the bound above still
 * holds and the driver settles a sample of them exactly.
 *
 * Output lines: HARD <kernel> <input bits> <result bits> (the first 100, then every 1000th);
 * OVER <kernel> <input bits> <result bits> <bound> (beyond the spec); CLONE <kernel> <isa>
 * <input bits> (a clone disagreeing with the widest); SUMMARY <kernel> <inputs> <proven
 * correctly rounded> <hard> <not correctly rounded> <over
 * the spec> <largest bound in ulp>.
 */
#include "_vmath.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK (1 << 20)
#define MARGIN 0x1p-46

typedef void (*unary_f)(const float*, float*, ptrdiff_t);

static double oracle_sigmoid(double z) {
    double e = exp(-fabs(z));
    return (z < 0 ? e : 1.0) / (1.0 + e);
}
static double oracle_sigmoid_derivative(double z) {
    double e = exp(-fabs(z));
    return e / ((1.0 + e) * (1.0 + e));
}
static double oracle_tanh(double z) { return tanh(z); }
static double oracle_tanh_derivative(double z) {
    double e = exp(-2.0 * fabs(z));
    return 4.0 * e / ((1.0 + e) * (1.0 + e));
}

static unary_f kernel_of(const refnet_vmath_table* t, int which) {
    switch (which) {
    case 0: return t->sigmoid_f;
    case 1: return t->sigmoid_derivative_f;
    case 2: return t->tanh_f;
    default: return t->tanh_derivative_f;
    }
}
static const char* NAMES[] = {"sigmoid", "sigmoid_derivative", "tanh", "tanh_derivative"};
static double (*ORACLES[])(double) = {oracle_sigmoid, oracle_sigmoid_derivative, oracle_tanh,
                                      oracle_tanh_derivative};

static uint32_t bits_of(float f) { uint32_t b; memcpy(&b, &f, 4); return b; }

/* The spacing of float32 numbers at |d| (2^-149 in the subnormal range). */
static double float_ulp(double d) {
    int e;
    frexp(fabs(d), &e);   /* |d| in [2^(e-1), 2^e) */
    if (e - 1 < -126) e = -125;
    return ldexp(1.0, e - 1 - 23);
}

int main(int argc, char** argv) {
    uint64_t stride = argc > 1 ? strtoull(argv[1], NULL, 10) : 1;
    static float z[CHUNK], widest[CHUNK], other[CHUNK];
    const char* isas[3];
    refnet_vmath_table tables[3];
    int n_isas = 0;
    for (int limit = 2; limit >= 0; limit--) {   /* widest first, each distinct clone once */
        const char* isa = refnet_vmath_select(limit);
        if (n_isas == 0 || strcmp(isa, isas[n_isas - 1]) != 0) {
            isas[n_isas] = isa;
            tables[n_isas++] = refnet_vmath;
        }
    }
    for (int i = 0; i < n_isas; i++) printf("ISA %s\n", isas[i]);
    for (int which = 0; which < 4; which++) {
        uint64_t inputs = 0, rounded = 0, hard = 0, not_rounded = 0, over = 0;
        double worst = 0.0;
        uint64_t next = 0;
        while (next < (1ull << 32)) {
            ptrdiff_t n = 0;
            for (; n < CHUNK && next < (1ull << 32); n++, next += stride) {
                uint32_t b = (uint32_t)next;
                memcpy(&z[n], &b, 4);
            }
            kernel_of(&tables[0], which)(z, widest, n);
            for (int c = 1; c < n_isas; c++) {
                kernel_of(&tables[c], which)(z, other, n);
                if (memcmp(widest, other, n * sizeof(float)) != 0)
                    for (ptrdiff_t i = 0; i < n; i++)
                        if (bits_of(widest[i]) != bits_of(other[i]))
                            printf("CLONE %s %s %08x\n", NAMES[which], isas[c], bits_of(z[i]));
            }
            for (ptrdiff_t i = 0; i < n; i++) {
                float y = widest[i];
                inputs++;
                if (isnan(z[i]) || isnan(y)) {
                    if (!(isnan(z[i]) && isnan(y))) { over++; printf("OVER %s %08x %08x nan\n", NAMES[which], bits_of(z[i]), bits_of(y)); }
                    continue;
                }
                double d = ORACLES[which]((double)z[i]);
                double bound = (fabs((double)y - d) + fabs(d) * MARGIN) / float_ulp(fmin(fabs(d), fabs((double)y)));
                if (bound > worst) worst = bound;
                if (bound > 0.5 + 0x1p-20 || !signbit(y) != !signbit(d)) {
                    over++;
                    printf("OVER %s %08x %08x %.9f\n", NAMES[which], bits_of(z[i]), bits_of(y), bound);
                }
                float low = (float)(d - fabs(d) * MARGIN), high = (float)(d + fabs(d) * MARGIN);
                if (low != high) {
                    if (hard < 100 || hard % 1000 == 0)
                        printf("HARD %s %08x %08x\n", NAMES[which], bits_of(z[i]), bits_of(y));
                    hard++;
                } else if (y == low) {
                    rounded++;
                } else {
                    not_rounded++;
                }
            }
        }
        printf("SUMMARY %s %llu %llu %llu %llu %llu %.9f\n", NAMES[which], (unsigned long long)inputs,
               (unsigned long long)rounded, (unsigned long long)hard, (unsigned long long)not_rounded,
               (unsigned long long)over, worst);
        fflush(stdout);
    }
    return 0;
}
