// The physical limit of a DNMS trial on this core: build with `g++ -O3 -march=native -o /tmp/dnms_limit
// benchmarks/dnms_limit.cpp` and run it beside `bench_dnms.py` (see benchmarks/README.md).
// The multiply-adds of one DNMS trial (N = 200, 1000 steps), as tight loops: the recurrent
// current I = W r (N^2 per step) and the eligibility update e += S(s_i) S(r_j) (N^2 per step).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>
int main() {
    const int N = 200, steps = 1000, trials = 20;
    std::vector<double> W(N * N, 0.01), E(N * N, 0.0), r(N, 0.1), I(N), s(N, 0.2), x(N, 0.1);
    double best = 1e9, sink = 0;
    for (int t = 0; t < trials; ++t) {
        auto t0 = std::chrono::steady_clock::now();
        for (int k = 0; k < steps; ++k) {
            for (int i = 0; i < N; ++i) r[i] = std::tanh(x[i]);
            for (int i = 0; i < N; ++i) { double acc = 0; for (int j = 0; j < N; ++j) acc += W[i * N + j] * r[j]; I[i] = acc; }
            for (int i = 0; i < N; ++i) { double a = s[i] * s[i] * s[i]; for (int j = 0; j < N; ++j) E[i * N + j] += a * r[j]; }
            for (int i = 0; i < N; ++i) x[i] += 0.1 * (-x[i] + I[i]);
        }
        double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = dt < best ? dt : best; sink += E[7] + x[3];
    }
    std::printf("best %.3f ms per trial of %d steps (2 x %d x %d multiply-adds a step): %.2f GMAC/s  [%g]\n",
                best * 1e3, steps, N, N, 2.0 * N * N * steps / best / 1e9, sink);
}
