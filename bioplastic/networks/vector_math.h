// Vector versions of libm's functions, for the loops that GCC vectorises (included in every
// standalone code object: bioplastic/engine/backends.py).
//
// Brian2 compiles with -ffast-math -fno-finite-math-only. glibc declares the vector variants
// of its maths functions (libmvec, linked through libm) only under __FAST_MATH__, which
// -fno-finite-math-only leaves undefined; a vectorised loop then calls tanh or exp one value
// at a time (a 72-copy rate network's tanh: 24 ns a value, against 5 with the AVX2 variant).
// The variants are accurate to a few ulp, where the scalar functions are to one.
#pragma once
#include <cmath>
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__FAST_MATH__) && \
    defined(__GLIBC__) && defined(__GLIBC_PREREQ)
#if __GLIBC_PREREQ(2, 35)
extern "C" {
__attribute__((__simd__("notinbranch"))) double tanh(double) noexcept;
__attribute__((__simd__("notinbranch"))) double exp(double) noexcept;
__attribute__((__simd__("notinbranch"))) double log(double) noexcept;
__attribute__((__simd__("notinbranch"))) double sin(double) noexcept;
__attribute__((__simd__("notinbranch"))) double cos(double) noexcept;
}
#endif
#endif
