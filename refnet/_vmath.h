/* Branch-free exp and expm1, the activation loops built on them, and
 * the optimizers' Adam and RMSProp/Adagrad loops, each cloned per instruction set and
 * chosen at run time.
 *
 * Why: libm's exp is a call the compiler cannot vectorise, so sigmoid ran at a tenth of
 * memory speed.  These functions use only + - * / and bit operations on the exponent
 * field, with no branch and no table, so every loop below vectorises; each loop is
 * compiled once for the baseline of the platform (SSE2 on x86-64, NEON on ARM64) and, on
 * x86-64 with GCC or Clang, once more for AVX2 and once for AVX-512, picked once at import
 * (refnet_vmath_select) by __builtin_cpu_supports.  Every clone runs the same IEEE
 * operations in the same order (the build passes -ffp-contract=off, so no clone fuses a
 * multiply and an add), hence the same bits on every machine (tested).
 *
 * The algorithm is the classic one of Cody & Waite and of fdlibm's e_exp.c (Sun, 1993):
 *   x = k ln2 + r, |r| <= ln2/2, k an integer, ln2 = LN2_HI + LN2_LO, where LN2_HI has
 *   its low 21 bits zero, so that k * LN2_HI is exact for |k| < 2^21 and
 *   hi = x - k * LN2_HI is exact (Sterbenz);
 *   c = r - r^2 (P1 + r^2 (P2 + ... + r^2 P5)), a minimax fit of r (e^r + 1)/(e^r - 1) - 2
 *   with error < 2^-59 on |r| <= 0.3466 (fdlibm's published coefficients);
 *   e^r = 1 + r + r c / (2 - c), evaluated as 1 - ((lo - r c / (2 - c)) - hi).
 * fdlibm's error analysis bounds the result by 1 ulp (it assumes plain IEEE double
 * operations, which is what -ffp-contract=off guarantees).  The reduction differs only in
 * how k is rounded: to nearest, by adding and subtracting 1.5 * 2^52 (exact for
 * |x / ln2| < 2^51), which keeps |r| <= ln2/2 + 2^-43 for |x| <= 746: the polynomial's
 * bound is unchanged at that margin.  2^k is built from its exponent field, in two factors
 * 2^k1 2^k2 with k1 = round(k / 2) so that each is a normal number for every k of
 * x in [-746, 710]: the first product is exact, the second rounds once, which gives
 * correctly-scaled subnormal results and inf beyond 709.78.
 *
 * expm1 (for tanh, x <= 0): with the same r and c, e^r - 1 = hi - (lo - r c / (2 - c))
 * and e^x - 1 = 2^k (e^r - 1) + (2^k - 1).  For k = 0 (|x| <= ln2/2) that is the first
 * term alone, accurate relative to the small result (< 1 ulp: the final subtraction's
 * 0.5 and the correction term's error scaled by |r|/2), where 1 - e^x would cancel; for
 * k <= -1 the result is in (-1, -0.29], 2^k - 1 is exact and |2^k (e^r - 1)| <= 0.21, so
 * the error is 0.21/0.29 of the first term's 1 ulp plus the sum's 0.5: <= 1.25 ulp.
 */

#ifndef REFNET_VMATH_H
#define REFNET_VMATH_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define REFNET_LN2_HI 6.93147180369123816490e-01   /* 0x3FE62E42FEE00000 */
#define REFNET_LN2_LO 1.90821492927058770002e-10   /* 0x3DEA39EF35793C76 */
#define REFNET_INV_LN2 1.44269504088896338700e+00
#define REFNET_P1 1.66666666666666019037e-01
#define REFNET_P2 -2.77777777770155933842e-03
#define REFNET_P3 6.61375632143793436117e-05
#define REFNET_P4 -1.65339022054652515390e-06
#define REFNET_P5 4.13813679705723846039e-08
/* x + 1.5 * 2^52 rounds x to an integer and leaves it in the low mantissa bits. */
#define REFNET_SHIFTER 0x1.8p52

#if defined(__GNUC__)
#define REFNET_INLINE static inline __attribute__((always_inline))
#else
#define REFNET_INLINE static inline
#endif

/* 2^k for an integer-valued double k in [-1022, 1023], from the exponent field. */
REFNET_INLINE double refnet_pow2(double k) {
    double shifted = (k + 1023.0) + REFNET_SHIFTER;
    uint64_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    bits <<= 52;   /* the biased exponent k + 1023 sits in the low 11 bits */
    memcpy(&shifted, &bits, sizeof bits);
    return shifted;
}

/* The Cody-Waite reduction x = k ln2 + (hi - lo), and c of fdlibm's rational form. */
#define REFNET_REDUCE(x, k, hi, lo, r, c)                                                   \
    double k = ((x) * REFNET_INV_LN2 + REFNET_SHIFTER) - REFNET_SHIFTER;                \
    double hi = (x) - k * REFNET_LN2_HI;                                                \
    double lo = k * REFNET_LN2_LO;                                                      \
    double r = hi - lo;                                                                 \
    double r2_ = r * r;                                                                 \
    double c = r - r2_ * (REFNET_P1 + r2_ * (REFNET_P2 + r2_ * (REFNET_P3 + r2_ * (REFNET_P4 + r2_ * REFNET_P5))));

/* e^x, < 1 ulp, for any double (NaN propagates; the comparisons let it through). */
REFNET_INLINE double refnet_exp(double x) {
    x = x < -746.0 ? -746.0 : x;   /* e^-746 rounds to 0 */
    x = x > 710.0 ? 710.0 : x;     /* e^710 overflows */
    REFNET_REDUCE(x, k, hi, lo, r, c)
    double y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    double k1 = (k * 0.5 + REFNET_SHIFTER) - REFNET_SHIFTER;
    return y * refnet_pow2(k1) * refnet_pow2(k - k1);
}

/* e^x - 1 for x <= 0, <= 1.25 ulp (NaN propagates). */
REFNET_INLINE double refnet_expm1_nonpositive(double x) {
    x = x < -40.0 ? -40.0 : x;     /* e^-40 - 1 rounds to -1 */
    REFNET_REDUCE(x, k, hi, lo, r, c)
    double p = hi - (lo - (r * c) / (2.0 - c));
    double s = refnet_pow2(k);
    return s * p + (s - 1.0);
}

/* The activations, as the reference states them (see refnet/reference/activations.py). */

REFNET_INLINE double refnet_sigmoid_of(double z) {
    /* sigma(z) from e = exp(-|z|) in (0, 1], which cannot overflow; the numerator is 1
       for z >= 0 and e for z < 0, picked by a select the compiler vectorises. */
    double e = refnet_exp(-fabs(z));
    double numerator = z < 0 ? e : 1.0;
    return numerator / (1.0 + e);
}

REFNET_INLINE double refnet_sigmoid_derivative_of(double z) {
    /* sigma'(z) = sigma(|z|) sigma(-|z|), both factors accurate */
    double e = refnet_exp(-fabs(z));
    return (1.0 / (1.0 + e)) * (e / (1.0 + e));
}

REFNET_INLINE double refnet_tanh_of(double z) {
    /* tanh(z) = -t / (2 + t), t = expm1(-2|z|), with the sign of z (musl's formula) */
    double t = refnet_expm1_nonpositive(-2.0 * fabs(z));
    return copysign(-t / (2.0 + t), z);
}

REFNET_INLINE double refnet_tanh_derivative_of(double z) {
    /* sech^2(z) = 4e / (1 + e)^2, e = exp(-2|z|) */
    double e = refnet_exp(-2.0 * fabs(z));
    return 4.0 * e / ((1.0 + e) * (1.0 + e));
}

/* float32 inputs: e^-|z| = 2^k N / D with one division fewer.
 *
 * fdlibm's e^r = 1 + r + r c / (2 - c) is the fraction N / D, N = 2 + 2r - c, D = 2 - c (the
 * same c), so with s = 2^k
 *   sigma(|z|)  = D / (D + s N),   sigma(-|z|) = s N / (D + s N),
 *   sigma'(z)   = s N D / (D + s N)^2,   sech^2(z) = 4 sigma'(2z),
 *   tanh|z|     = (D (1 - s) - 2 r s) / (D + s N)   (with e = e^-2|z|; D - s N, exactly),
 * one division each where the double path above takes two (sigma, tanh) or three (sigma'): on
 * eight double lanes the divider was the limit.  The double kernels keep their own forms (their
 * float64 ulp bounds are proven for those); these serve only arrays of float32, whose |z| is
 * clamped to 200: there sigma(-200) < 2^-288 rounds to 0 and 1 - sigma(200) to 1 in
 * float32, and so does g sigma'(z) (or g sech^2 at 2|z| = 200) for any float32 gradient
 * g (|g| < 2^128), while k >= -289 keeps s a normal double (one pow2 factor).
 *
 * Error, in u = 2^-53 relative, before the one rounding to float32: hi is exact (k * LN2_HI is
 * exact for |k| < 2^21, and x, a float32 value with |x| >= ln2/2 when k != 0, and k * LN2_HI
 * are multiples of 2^-32 whose difference is below 1/2), lo's error is < 2^-76, r = hi - lo
 * rounds once: |dr| <= 2^-55 absolute, 0.25u in e^r (d e^r / e^r = dr).  c: fdlibm's
 * approximation error < 2^-59 and the rounding of r - r^2 P (<= 0.5u |c| + 3u r^2 / 6 <= 0.25u
 * absolute); e^r moves by at most |r| / ((2 - c)(2 + 2r - c)) <= 0.12 of that: < 0.05u.  D in
 * [1.65, 2.36] rounds once (<= 2^-52 absolute: 1.25u relative); N = D + 2r (2r exact) in
 * [1.3, 2.7] carries D's absolute error and its own rounding: <= 2 * 2^-52 / 1.3 = 3.1u.
 * s N: + 0.5u (s exact, no underflow); D + s N, a sum of positive terms: max of both + 0.5u
 * = 3.9u; the division + 0.5u.  sigma(|z|): 1.25 + 3.9 + 0.5 + 0.3 (r, c) = 6u;
 * sigma(-|z|): 3.6 + 3.9 + 0.5 + 0.3 = 8.3u; sigma': N D (4.85 + 0.5), the square (2 * 3.9
 * + 0.5) and the division (0.5): 14.5u + 0.3 < 16u = 2^-49.  sech^2: 2|z| and 4 sigma' are
 * exact.  tanh: where k = 0, r = x exactly and the numerator -2r is exact: the
 * denominator's 3.9u + 0.5u + 0.3u (c) < 5u; where k <= -1 (s <= 1/2) the numerator is
 * >= 1.65 (1 - s) - 0.35 * 2s >= 0.47, D (1 - s) carries 1.75u of a term <= 1.18 and 2 r s
 * (exact scaling) r's 2^-55: with the subtraction's 0.5u and c's 0.3u, <= 6u; with the
 * denominator and division: < 11u.  So each double result is within 2^-49 of the exact
 * value, relative, and a float32 ulp is at least 2^-24 relative: rounded once, the result is
 * within 0.5 + 2^-24 ulp (two times the double error: rounding goes to the float nearest the
 * computed value), inside
 * the specs' CORRECTLY_ROUNDED (0.5 + 2^-20).  Subnormal float32 results only gain: their
 * ulp is fixed at 2^-149 while the double error shrinks with the value.  Measured on all
 * 2^32 float32 inputs by tests/exhaustive_float32.c (refnet's README, "Accuracy").
 */
#define REFNET_EXP_RATIO_F32(z, s, sn, d)                                                   \
    double x_ = -fabs(z);                                                                   \
    x_ = x_ < -200.0 ? -200.0 : x_;                                                         \
    REFNET_REDUCE(x_, k_, hi_, lo_, r_, c_)                                                 \
    double d = 2.0 - c_;                                                                    \
    double s = refnet_pow2(k_);                                                             \
    double sn = s * (d + (r_ + r_));

REFNET_INLINE double refnet_sigmoid_f32_of(double z) {
    REFNET_EXP_RATIO_F32(z, s, sn, d)
    return (z < 0 ? sn : d) / (d + sn);
}

REFNET_INLINE double refnet_sigmoid_derivative_f32_of(double z) {
    REFNET_EXP_RATIO_F32(z, s, sn, d)
    double den = d + sn;
    return (sn * d) / (den * den);
}

REFNET_INLINE double refnet_tanh_f32_of(double z) {
    /* tanh|z| = (1 - e) / (1 + e), e = e^-2|z| = s N / D: the numerator D - s N written as
       D (1 - s) - 2 r s, which is -2r, exact, where k = 0 (|z| <= ln2/4) and 1 - e would cancel */
    REFNET_EXP_RATIO_F32(2.0 * z, s, sn, d)
    return copysign((d * (1.0 - s) - (r_ + r_) * s) / (d + sn), z);
}

REFNET_INLINE double refnet_tanh_derivative_f32_of(double z) {
    return 4.0 * refnet_sigmoid_derivative_f32_of(2.0 * z);
}

/* The loops, each element computed in double and rounded once to the array's type. */
#define REFNET_UNARY(name, T, f, attr)                                                      \
    attr static void name(const T* z, T* out, ptrdiff_t n) {              \
        for (ptrdiff_t i = 0; i < n; i++) out[i] = (T)f((double)z[i]);                      \
    }
#define REFNET_BINARY(name, T, f, attr)                                                     \
    attr static void name(const T* g, const T* z, T* out,       \
                          ptrdiff_t n) {                                                    \
        for (ptrdiff_t i = 0; i < n; i++) out[i] = (T)((double)g[i] * f((double)z[i]));     \
    }
/* g e^x 2^extra with no underflow before the product: x = k ln2 + r, (g / 2) e^r rounded once
   (halved: e^r reaches sqrt 2, g the largest double), then scaled exactly (ldexp; rounded again
   only where the result is subnormal).  < 1.75 ulp.  The
   float64 backward passes use it where f'(z) is subnormal: the operations of the reference's
   _times_exp (refnet/reference/activations.py), with this header's exp rather than libm's,
   whose bits differ between machines (glibc picks an FMA or a plain version by CPU). */
static double refnet_times_exp(double g, double x, int extra) {
    double k = rint(x / 0.6931471805599453);
    double r = (x - k * REFNET_LN2_HI) - k * REFNET_LN2_LO;
    return ldexp(g * 0.5 * refnet_exp(r), (int)k + (extra + 1));
}

/* The float64 backward passes: g f'(z), except where f'(z) = c e^(-s|z|) is subnormal but the
   product need not be (low < |z| < high): there g e^(-s|z|) c by refnet_times_exp (c = 2^extra).
   The vectorised loop also notes whether any |z| lies in that band (none, in training); only
   then are those elements redone, from the inputs.  In place (out is g or z) that must be known
   before the inputs are overwritten: one more pass over z, and element by element if so.
   (Measured on 10^7 elements, AVX2, the loop alone: 28.6 ms without the band, 31.3 ms with the
   noting; checking blocks of 512 first, 38-42 ms.  Through refnet.sigmoid_backward: 33 -> 37 ms.) */
#define REFNET_IN_BAND(x, low, high) ((((x) > (low)) & ((x) < (high))) | (((x) < -(low)) & ((x) > -(high))))
/* Every NaN result as NumPy's np.nan: gcc forms -|z| of a NaN z with the sign bit set or not
   depending on how it vectorised the loop (by clone, and by position within one), and the
   band's scaling would pass a NaN g's own sign and payload through. */
#define REFNET_QUIET(r) ((r) == (r) ? (r) : NAN)
#define REFNET_BACKWARD_TAILS(name, f, low, high, s, extra, attr)                           \
    attr static void name(const double* g, const double* z, double* out, ptrdiff_t n) {     \
        int64_t tails = 0;   /* 64-bit, as the doubles' compare masks: SSE2 vectorises it */  \
        if (out == g || out == z) {                                                         \
            for (ptrdiff_t i = 0; i < n; i++) tails |= (int64_t)REFNET_IN_BAND(z[i], low, high); \
            if (tails) {                                                                    \
                for (ptrdiff_t i = 0; i < n; i++) {                                         \
                    out[i] = REFNET_IN_BAND(z[i], low, high)                                \
                             ? REFNET_QUIET(refnet_times_exp(g[i], -(s) * fabs(z[i]), extra)) \
                             : REFNET_QUIET(g[i] * f(z[i]));                               \
                }                                                                           \
                return;                                                                     \
            }                                                                               \
        }                                                                                   \
        for (ptrdiff_t i = 0; i < n; i++) {                                                 \
            out[i] = REFNET_QUIET(g[i] * f(z[i]));                                          \
            tails |= (int64_t)REFNET_IN_BAND(z[i], low, high);                              \
        }                                                                                   \
        if (tails)                                                                          \
            for (ptrdiff_t i = 0; i < n; i++)                                               \
                if (REFNET_IN_BAND(z[i], low, high))                                        \
                    out[i] = REFNET_QUIET(refnet_times_exp(g[i], -(s) * fabs(z[i]), extra)); \
    }
#define REFNET_EXP_SHIFTED(name, T, attr)                                                   \
    attr static void name(const T* z, double shift, double* out,         \
                          ptrdiff_t n) {                                                    \
        for (ptrdiff_t i = 0; i < n; i++) out[i] = refnet_exp((double)z[i] - shift);        \
    }

/* Adam's update, the same IEEE operations in the same order as the Cython loop it replaced
   and the NumPy reference (refnet/reference/optimizers.py), so the same bits on every clone:
   float64 sqrt and division are compute-bound at two lanes (SSE2), not at eight (AVX-512).
   g := g + l2 theta + l1 sgn(theta) where penalised;  m += (1 - b1)(g - m);
   v := b2 v + (1 - b2) g^2;  AMSGrad (ams 1): v := vmax := max(vmax, v); (ams 2, optax):
   vmax := max(vmax, v / c), d := sqrt(vmax + eps_in) + eps_out;  otherwise d := sqrt(v / c + eps_in)
   + eps_out where inside (c = c2), d := sqrt(v) / c + eps_out where not (c = sqrt(c2));
   n := coef_m m (+ coef_g g for Nesterov);  theta := keep theta - n / max(d, tiny).
   max is np.maximum's: a NaN in either operand is the result. */
#define REFNET_MAX_NAN(a, b) (((a) >= (b) || (a) != (a)) ? (a) : (b))
#define REFNET_ADAM(name, T, SQRT, TINY, penalised, inside, ams, nesterov, attr)             \
    attr static void name(T* param, const T* grad, T* exp_avg, T* exp_avg_sq,               \
                          T* max_exp_avg_sq, T coef_m, T coef_g, T c, T one_minus_beta1,    \
                          T beta2, T one_minus_beta2, T eps_in, T eps_out, T l2, T l1,      \
                          T keep, ptrdiff_t start, ptrdiff_t stop) {                        \
        for (ptrdiff_t i = start; i < stop; i++) {                                          \
            T theta = param[i];                                                             \
            T g = grad[i];                                                                  \
            if (penalised) {                                                                \
                T up = theta > 0 ? l1 : (T)0;                                               \
                T down = theta < 0 ? l1 : (T)0;                                             \
                g = g + l2 * theta + (up - down);                                           \
            }                                                                               \
            T m = exp_avg[i];                                                               \
            m = m + one_minus_beta1 * (g - m);                                              \
            exp_avg[i] = m;                                                                 \
            T v = beta2 * exp_avg_sq[i] + one_minus_beta2 * g * g;                          \
            exp_avg_sq[i] = v;                                                              \
            T d;                                                                            \
            if (ams == 2) {                                                                 \
                T most = REFNET_MAX_NAN(max_exp_avg_sq[i], v / c);                          \
                max_exp_avg_sq[i] = most;                                                   \
                d = SQRT(most + eps_in) + eps_out;                                          \
            } else {                                                                        \
                if (ams == 1) {                                                             \
                    v = REFNET_MAX_NAN(max_exp_avg_sq[i], v);                               \
                    max_exp_avg_sq[i] = v;                                                  \
                }                                                                           \
                if (inside)                                                                 \
                    d = SQRT(v / c + eps_in) + eps_out;                                     \
                else                                                                        \
                    d = SQRT(v) / c + eps_out;                                              \
            }                                                                               \
            d = d < TINY ? TINY : d;                                                        \
            T n = nesterov ? coef_m * m + coef_g * g : coef_m * m;                          \
            param[i] = keep * theta - n / d;                                                \
        }                                                                                   \
    }

typedef void (*refnet_adam_f)(float*, const float*, float*, float*, float*, float, float, float,
                              float, float, float, float, float, float, float, float,
                              ptrdiff_t, ptrdiff_t);
typedef void (*refnet_adam_d)(double*, const double*, double*, double*, double*, double, double,
                              double, double, double, double, double, double, double, double,
                              double, ptrdiff_t, ptrdiff_t);
#define REFNET_ADAM_F(name, pen, ins, ams, nes, attr)                                       \
    REFNET_ADAM(name, float, sqrtf, FLT_TRUE_MIN, pen, ins, ams, nes, attr)
#define REFNET_ADAM_D(name, pen, ins, ams, nes, attr)                                       \
    REFNET_ADAM(name, double, sqrt, DBL_TRUE_MIN, pen, ins, ams, nes, attr)

/* The variants in the order refnet_adam_variant numbers them: penalised * 8 + one of (),
   (inside), (ams 1), (ams 1, inside), (ams 2, which is always inside), then Nesterov's, whose
   v is always corrected before the root: (inside), (ams 1, inside), (ams 2). */
#define REFNET_ADAM_PEN(S, T, suffix, pen, attr)                                            \
    REFNET_ADAM_##S(refnet_adam_##T##pen##0_##suffix, pen, 0, 0, 0, attr)                   \
    REFNET_ADAM_##S(refnet_adam_##T##pen##1_##suffix, pen, 1, 0, 0, attr)                   \
    REFNET_ADAM_##S(refnet_adam_##T##pen##2_##suffix, pen, 0, 1, 0, attr)                   \
    REFNET_ADAM_##S(refnet_adam_##T##pen##3_##suffix, pen, 1, 1, 0, attr)                   \
    REFNET_ADAM_##S(refnet_adam_##T##pen##4_##suffix, pen, 1, 2, 0, attr)                   \
    REFNET_ADAM_##S(refnet_adam_##T##pen##5_##suffix, pen, 1, 0, 1, attr)                   \
    REFNET_ADAM_##S(refnet_adam_##T##pen##6_##suffix, pen, 1, 1, 1, attr)                   \
    REFNET_ADAM_##S(refnet_adam_##T##pen##7_##suffix, pen, 1, 2, 1, attr)
#define REFNET_ADAM_ALL(S, T, suffix, attr)                                                 \
    REFNET_ADAM_PEN(S, T, suffix, 0, attr)                                                  \
    REFNET_ADAM_PEN(S, T, suffix, 1, attr)
#define REFNET_ADAM_PEN_LIST(T, pen, suffix)                                                \
    refnet_adam_##T##pen##0_##suffix, refnet_adam_##T##pen##1_##suffix,                    \
    refnet_adam_##T##pen##2_##suffix, refnet_adam_##T##pen##3_##suffix,                    \
    refnet_adam_##T##pen##4_##suffix, refnet_adam_##T##pen##5_##suffix,                    \
    refnet_adam_##T##pen##6_##suffix, refnet_adam_##T##pen##7_##suffix
#define REFNET_ADAM_LIST(T, suffix)                                                         \
    {REFNET_ADAM_PEN_LIST(T, 0, suffix), REFNET_ADAM_PEN_LIST(T, 1, suffix)}

/* RMSProp and Adagrad (weights (1, 1)), every variant, as the Cython loops they replaced and
   the NumPy reference: the same operations in the same order, so the same bits.  One loop
   per combination of flags (literals, so the compiler specialises and vectorises each):
   g := g + l2 theta + l1 sgn(theta) where penalised;
   root state (Lee): s := sqrt(a (s/2^e)^2 + b (|g|/2^e)^2) 2^e with 2^e the binade of
   s + |g| clipped to keep both powers normal, d := s + eps_out;  otherwise
   v := a v + b g^2 (corrected: divided by c; centered: minus the square of g_bar := a g_bar + b g,
   divided by c where corrected, floored at 0), d := sqrt(v + eps_in) + eps_out;  n := g / max(d, tiny);
   with momentum: B := mu B + gain n, theta := keep theta - scale B (Nesterov: scale (mu B + gain n));
   else theta := keep theta - lr n. */
/* down = 2^-e and up = 2^e where m = f 2^e, f in [0.5, 1) (np.frexp), m >= 0 clipped to
   [2^-bias, TOP] first so that both are normal (as the reference does).  From the exponent
   field with integer and/add/subtract, which vectorise where frexp and ldexp do not: for a
   biased exponent E of m, 2^-e has the biased exponent 2 bias - 1 - E and 2^e has E + 1; a
   zero or subnormal m has E = 0, the E of 2^-bias, so the clip from below is free. */
#define REFNET_BINADE(T, U, m, down, up, TOP, MASK, DOWN_BASE, UNIT)                       \
    {                                                                                       \
        T clipped_ = (m) <= TOP ? (m) : TOP;                                                \
        U field_;                                                                           \
        memcpy(&field_, &clipped_, sizeof field_);                                          \
        field_ &= MASK;                                                                     \
        U power_ = DOWN_BASE - field_;                                                      \
        memcpy(&(down), &power_, sizeof power_);                                            \
        power_ = field_ + UNIT;                                                             \
        memcpy(&(up), &power_, sizeof power_);                                              \
    }
#define REFNET_RMSPROP(name, T, U, SQRT, TINY, TOP, MASK, DOWN_BASE, UNIT, penalised, root_state, \
                       centered, with_momentum, nesterov, corrected, attr)                  \
    attr static void name(T* param, const T* grad, T* square_avg, T* grad_avg,               \
                          T* momentum_buffer, T lr, T old_weight, T new_weight, T momentum, \
                          T eps_in, T eps_out, T gain, T scale, T c, T l2, T l1, T keep,    \
                          ptrdiff_t start, ptrdiff_t stop) {                                \
        for (ptrdiff_t i = start; i < stop; i++) {                                          \
            T theta = param[i];                                                             \
            T g = grad[i];                                                                  \
            T d;                                                                            \
            if (penalised) {                                                                \
                T up_ = theta > 0 ? l1 : (T)0;                                              \
                T down_ = theta < 0 ? l1 : (T)0;                                            \
                g = g + l2 * theta + (up_ - down_);                                         \
            }                                                                               \
            if (root_state) {                                                               \
                T v = square_avg[i];                                                        \
                T magnitude = (T)fabs(g);                                                   \
                T down, up;                                                                 \
                REFNET_BINADE(T, U, v + magnitude, down, up, TOP, MASK, DOWN_BASE, UNIT)    \
                v = down * v;                                                               \
                magnitude = down * magnitude;                                               \
                v = SQRT(old_weight * (v * v) + new_weight * (magnitude * magnitude)) * up; \
                square_avg[i] = v;                                                          \
                d = v + eps_out;                                                            \
            } else {                                                                        \
                T v = old_weight * square_avg[i] + new_weight * g * g;                      \
                square_avg[i] = v;                                                          \
                T variance = corrected ? v / c : v;                                         \
                if (centered) {                                                             \
                    T g_bar = old_weight * grad_avg[i] + new_weight * g;                    \
                    grad_avg[i] = g_bar;                                                    \
                    if (corrected) g_bar = g_bar / c;                                       \
                    variance = variance - g_bar * g_bar;                                    \
                    variance = variance < 0 ? (T)0 : variance;                              \
                }                                                                           \
                d = SQRT(variance + eps_in) + eps_out;                                      \
            }                                                                               \
            T normalised = g / (d < TINY ? TINY : d);                                       \
            if (with_momentum) {                                                            \
                T b = momentum * momentum_buffer[i] + gain * normalised;                    \
                momentum_buffer[i] = b;                                                     \
                param[i] = keep * theta - scale * (nesterov ? momentum * b + gain * normalised : b); \
            } else {                                                                        \
                param[i] = keep * theta - lr * normalised;                                  \
            }                                                                               \
        }                                                                                   \
    }

#define REFNET_RMSPROP_F(name, pen, root, cen, mom, nes, cor, attr)                        \
    REFNET_RMSPROP(name, float, uint32_t, sqrtf, FLT_TRUE_MIN, 0x1p125f, 0x7F800000u,      \
                   0x7E800000u, 0x00800000u, pen, root, cen, mom, nes, cor, attr)
#define REFNET_RMSPROP_D(name, pen, root, cen, mom, nes, cor, attr)                        \
    REFNET_RMSPROP(name, double, uint64_t, sqrt, DBL_TRUE_MIN, 0x1p1021, 0x7FF0000000000000u, \
                   0x7FD0000000000000u, 0x0010000000000000u, pen, root, cen, mom, nes, cor, attr)

typedef void (*refnet_rmsprop_f)(float*, const float*, float*, float*, float*, float, float, float,
                                 float, float, float, float, float, float, float, float, float,
                                 ptrdiff_t, ptrdiff_t);
typedef void (*refnet_rmsprop_d)(double*, const double*, double*, double*, double*, double, double,
                                 double, double, double, double, double, double, double, double,
                                 double, double, ptrdiff_t, ptrdiff_t);

/* The variants in the order refnet_rmsprop_variant numbers them: penalised * 15 + one of
   (root), (root, momentum), (root, momentum, nesterov), then for the average v, uncorrected
   and corrected: (), (momentum), (momentum, nesterov), (centered), (centered, momentum),
   (centered, momentum, nesterov). */
#define REFNET_RMSPROP_V(S, T, suffix, pen, first, cor, attr)                               \
    REFNET_RMSPROP_##S(refnet_rmsprop_##T##first##0_##suffix, pen, 0, 0, 0, 0, cor, attr)   \
    REFNET_RMSPROP_##S(refnet_rmsprop_##T##first##1_##suffix, pen, 0, 0, 1, 0, cor, attr)   \
    REFNET_RMSPROP_##S(refnet_rmsprop_##T##first##2_##suffix, pen, 0, 0, 1, 1, cor, attr)   \
    REFNET_RMSPROP_##S(refnet_rmsprop_##T##first##3_##suffix, pen, 0, 1, 0, 0, cor, attr)   \
    REFNET_RMSPROP_##S(refnet_rmsprop_##T##first##4_##suffix, pen, 0, 1, 1, 0, cor, attr)   \
    REFNET_RMSPROP_##S(refnet_rmsprop_##T##first##5_##suffix, pen, 0, 1, 1, 1, cor, attr)
#define REFNET_RMSPROP_PEN(S, T, suffix, pen, attr)                                         \
    REFNET_RMSPROP_##S(refnet_rmsprop_##T##pen##r0_##suffix, pen, 1, 0, 0, 0, 0, attr)      \
    REFNET_RMSPROP_##S(refnet_rmsprop_##T##pen##r1_##suffix, pen, 1, 0, 1, 0, 0, attr)      \
    REFNET_RMSPROP_##S(refnet_rmsprop_##T##pen##r2_##suffix, pen, 1, 0, 1, 1, 0, attr)      \
    REFNET_RMSPROP_V(S, T, suffix, pen, pen##u, 0, attr)                                    \
    REFNET_RMSPROP_V(S, T, suffix, pen, pen##c, 1, attr)
#define REFNET_RMSPROP_ALL(S, T, suffix, attr)                                              \
    REFNET_RMSPROP_PEN(S, T, suffix, 0, attr)                                               \
    REFNET_RMSPROP_PEN(S, T, suffix, 1, attr)
#define REFNET_RMSPROP_V_LIST(T, first, suffix)                                             \
    refnet_rmsprop_##T##first##0_##suffix, refnet_rmsprop_##T##first##1_##suffix,          \
    refnet_rmsprop_##T##first##2_##suffix, refnet_rmsprop_##T##first##3_##suffix,          \
    refnet_rmsprop_##T##first##4_##suffix, refnet_rmsprop_##T##first##5_##suffix
#define REFNET_RMSPROP_PEN_LIST(T, pen, suffix)                                             \
    refnet_rmsprop_##T##pen##r0_##suffix, refnet_rmsprop_##T##pen##r1_##suffix,            \
    refnet_rmsprop_##T##pen##r2_##suffix, REFNET_RMSPROP_V_LIST(T, pen##u, suffix),         \
    REFNET_RMSPROP_V_LIST(T, pen##c, suffix)
#define REFNET_RMSPROP_LIST(T, suffix)                                                      \
    {REFNET_RMSPROP_PEN_LIST(T, 0, suffix), REFNET_RMSPROP_PEN_LIST(T, 1, suffix)}

/* No `restrict`: the elementwise kernels may run in place (out == z); the compiler
   checks for overlap at run time and vectorises either way. */
typedef struct {
    const char* isa;
    void (*sigmoid_f)(const float*, float*, ptrdiff_t);
    void (*sigmoid_d)(const double*, double*, ptrdiff_t);
    void (*sigmoid_derivative_f)(const float*, float*, ptrdiff_t);
    void (*sigmoid_derivative_d)(const double*, double*, ptrdiff_t);
    void (*tanh_f)(const float*, float*, ptrdiff_t);
    void (*tanh_d)(const double*, double*, ptrdiff_t);
    void (*tanh_derivative_f)(const float*, float*, ptrdiff_t);
    void (*tanh_derivative_d)(const double*, double*, ptrdiff_t);
    void (*sigmoid_backward_f)(const float*, const float*, float*, ptrdiff_t);
    void (*sigmoid_backward_d)(const double*, const double*, double*, ptrdiff_t);
    void (*tanh_backward_f)(const float*, const float*, float*, ptrdiff_t);
    void (*tanh_backward_d)(const double*, const double*, double*, ptrdiff_t);
    void (*exp_shifted_f)(const float*, double, double*, ptrdiff_t);
    void (*exp_shifted_d)(const double*, double, double*, ptrdiff_t);
    refnet_adam_f adam_f[16];         /* numbered by refnet_adam_variant */
    refnet_adam_d adam_d[16];
    refnet_rmsprop_f rmsprop_f[30];   /* numbered by refnet_rmsprop_variant */
    refnet_rmsprop_d rmsprop_d[30];
} refnet_vmath_table;

#define REFNET_TABLE(suffix, attr)                                                          \
    REFNET_UNARY(refnet_sigmoid_f_##suffix, float, refnet_sigmoid_f32_of, attr)               \
    REFNET_UNARY(refnet_sigmoid_d_##suffix, double, refnet_sigmoid_of, attr)                \
    REFNET_UNARY(refnet_sigmoid_derivative_f_##suffix, float, refnet_sigmoid_derivative_f32_of, attr) \
    REFNET_UNARY(refnet_sigmoid_derivative_d_##suffix, double, refnet_sigmoid_derivative_of, attr) \
    REFNET_UNARY(refnet_tanh_f_##suffix, float, refnet_tanh_f32_of, attr)                     \
    REFNET_UNARY(refnet_tanh_d_##suffix, double, refnet_tanh_of, attr)                      \
    REFNET_UNARY(refnet_tanh_derivative_f_##suffix, float, refnet_tanh_derivative_f32_of, attr) \
    REFNET_UNARY(refnet_tanh_derivative_d_##suffix, double, refnet_tanh_derivative_of, attr) \
    REFNET_BINARY(refnet_sigmoid_backward_f_##suffix, float, refnet_sigmoid_derivative_f32_of, attr) \
    REFNET_BACKWARD_TAILS(refnet_sigmoid_backward_d_##suffix, refnet_sigmoid_derivative_of, 708.0, 1455.0, 1.0, 0, attr) \
    REFNET_BINARY(refnet_tanh_backward_f_##suffix, float, refnet_tanh_derivative_f32_of, attr) \
    REFNET_BACKWARD_TAILS(refnet_tanh_backward_d_##suffix, refnet_tanh_derivative_of, 354.0, 728.2, 2.0, 2, attr) \
    REFNET_EXP_SHIFTED(refnet_exp_shifted_f_##suffix, float, attr)                          \
    REFNET_EXP_SHIFTED(refnet_exp_shifted_d_##suffix, double, attr)                         \
    REFNET_ADAM_ALL(F, f, suffix, attr)                                                     \
    REFNET_ADAM_ALL(D, d, suffix, attr)                                                     \
    REFNET_RMSPROP_ALL(F, f, suffix, attr)                                                  \
    REFNET_RMSPROP_ALL(D, d, suffix, attr)                                                  \
    static const refnet_vmath_table refnet_vmath_##suffix = {                               \
        #suffix,                                                                            \
        refnet_sigmoid_f_##suffix, refnet_sigmoid_d_##suffix,                               \
        refnet_sigmoid_derivative_f_##suffix, refnet_sigmoid_derivative_d_##suffix,         \
        refnet_tanh_f_##suffix, refnet_tanh_d_##suffix,                                     \
        refnet_tanh_derivative_f_##suffix, refnet_tanh_derivative_d_##suffix,               \
        refnet_sigmoid_backward_f_##suffix, refnet_sigmoid_backward_d_##suffix,             \
        refnet_tanh_backward_f_##suffix, refnet_tanh_backward_d_##suffix,                   \
        refnet_exp_shifted_f_##suffix, refnet_exp_shifted_d_##suffix,                      \
        REFNET_ADAM_LIST(f, suffix), REFNET_ADAM_LIST(d, suffix),                           \
        REFNET_RMSPROP_LIST(f, suffix), REFNET_RMSPROP_LIST(d, suffix),                     \
    };

REFNET_TABLE(baseline, )

/* Wider clones where the compiler can target them and the CPU can be asked at run time
   (-DREFNET_NO_ISA_CLONES compiles the portable build alone, as on ARM64). */
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__) && !defined(REFNET_NO_ISA_CLONES)
#define REFNET_X86_CLONES 1
REFNET_TABLE(avx2, __attribute__((target("avx2"))))
REFNET_TABLE(avx512, __attribute__((target("avx512f"))))
#endif

static refnet_vmath_table refnet_vmath = {0};

/* Pick the widest clone the CPU runs, no wider than `limit` (0 baseline, 1 AVX2, 2 AVX-512;
   tests lower it to check that every clone gives the same bits).  Returns its name. */
static const char* refnet_vmath_select(int limit) {
    refnet_vmath = refnet_vmath_baseline;
#ifdef REFNET_X86_CLONES
    __builtin_cpu_init();
    if (limit >= 2 && __builtin_cpu_supports("avx512f"))
        refnet_vmath = refnet_vmath_avx512;
    else if (limit >= 1 && __builtin_cpu_supports("avx2"))
        refnet_vmath = refnet_vmath_avx2;
#else
    (void)limit;
#endif
    return refnet_vmath.isa;
}

/* The index of an Adam variant in the table (ams 2, and Nesterov, always inside). */
static inline int refnet_adam_variant(int penalised, int inside, int ams, int nesterov) {
    int variant = nesterov ? 5 + ams : ams == 2 ? 4 : 2 * (ams != 0) + (inside != 0);
    return 8 * (penalised != 0) + variant;
}

static inline void refnet_adam_float(int variant, float* param, const float* grad, float* exp_avg,
                                     float* exp_avg_sq, float* max_exp_avg_sq, float coef_m,
                                     float coef_g, float c, float one_minus_beta1, float beta2,
                                     float one_minus_beta2, float eps_in, float eps_out, float l2,
                                     float l1, float keep, ptrdiff_t start, ptrdiff_t stop) {
    refnet_vmath.adam_f[variant](param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, coef_m, coef_g, c,
                                 one_minus_beta1, beta2, one_minus_beta2, eps_in, eps_out, l2, l1,
                                 keep, start, stop);
}

static inline void refnet_adam_double(int variant, double* param, const double* grad,
                                      double* exp_avg, double* exp_avg_sq, double* max_exp_avg_sq,
                                      double coef_m, double coef_g, double c,
                                      double one_minus_beta1, double beta2, double one_minus_beta2,
                                      double eps_in, double eps_out, double l2, double l1,
                                      double keep, ptrdiff_t start, ptrdiff_t stop) {
    refnet_vmath.adam_d[variant](param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, coef_m, coef_g, c,
                                 one_minus_beta1, beta2, one_minus_beta2, eps_in, eps_out, l2, l1,
                                 keep, start, stop);
}

/* The index of an RMSProp/Adagrad variant in the table (root state is never centered nor
   corrected; Nesterov needs momentum). */
static inline int refnet_rmsprop_variant(int penalised, int root_state, int centered, int with_momentum,
                                         int nesterov, int corrected) {
    int step = with_momentum ? 1 + (nesterov != 0) : 0;
    int variant = root_state ? step : 3 + 6 * (corrected != 0) + 3 * (centered != 0) + step;
    return 15 * (penalised != 0) + variant;
}

static inline void refnet_rmsprop_float(int variant, float* param, const float* grad, float* square_avg,
                                        float* grad_avg, float* momentum_buffer, float lr,
                                        float old_weight, float new_weight, float momentum,
                                        float eps_in, float eps_out, float gain, float scale, float c,
                                        float l2, float l1, float keep, ptrdiff_t start, ptrdiff_t stop) {
    refnet_vmath.rmsprop_f[variant](param, grad, square_avg, grad_avg, momentum_buffer, lr, old_weight,
                                    new_weight, momentum, eps_in, eps_out, gain, scale, c, l2, l1, keep,
                                    start, stop);
}

static inline void refnet_rmsprop_double(int variant, double* param, const double* grad,
                                         double* square_avg, double* grad_avg,
                                         double* momentum_buffer, double lr, double old_weight,
                                         double new_weight, double momentum, double eps_in,
                                         double eps_out, double gain, double scale, double c,
                                         double l2, double l1, double keep, ptrdiff_t start,
                                         ptrdiff_t stop) {
    refnet_vmath.rmsprop_d[variant](param, grad, square_avg, grad_avg, momentum_buffer, lr, old_weight,
                                    new_weight, momentum, eps_in, eps_out, gain, scale, c, l2, l1, keep,
                                    start, stop);
}

#endif /* REFNET_VMATH_H */
