// matmul_checksum is the C compute kernel the benchmarks run both as wasm
// (matmul.c) and natively (internal/nativec): the paper's matrixmult with
// the same fill as examples/matrixmult, n×n float64, summed.
#include <stdint.h>
#include <stdlib.h>

static double matmul_checksum(int n, uint64_t seed) {
    double *a = malloc(sizeof(double) * n * n), *b = malloc(sizeof(double) * n * n);
    double *c = calloc((size_t)n * n, sizeof(double));
    for (int m = 0; m < 2; m++) {
        double *x = m == 0 ? a : b;
        for (int i = 0; i < n * n; i++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            x[i] = (double)(seed >> 40) / (double)(1 << 24);
        }
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++) {
            double aik = a[i * n + k];
            for (int j = 0; j < n; j++) c[i * n + j] += aik * b[k * n + j];
        }
    double sum = 0;
    for (int i = 0; i < n * n; i++) sum += c[i];
    free(a);
    free(b);
    free(c);
    return sum;
}
