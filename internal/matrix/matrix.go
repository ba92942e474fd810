// Package matrix is the matrixmult function's work, importable so that
// benchmarks can run the same body natively beside the .wasm.
package matrix

// Multiply returns the sum of the elements of A×B for two n×n matrices
// filled deterministically from seed; it is the function's whole work.
func Multiply(n int, seed uint64) float64 {
	fill := func(m []float64) {
		for i := range m {
			seed = seed*6364136223846793005 + 1442695040888963407
			m[i] = float64(seed>>40) / float64(1<<24)
		}
	}
	a, b, c := make([]float64, n*n), make([]float64, n*n), make([]float64, n*n)
	fill(a)
	fill(b)
	for i := 0; i < n; i++ {
		for k := 0; k < n; k++ {
			aik := a[i*n+k]
			for j := 0; j < n; j++ {
				c[i*n+j] += aik * b[k*n+j]
			}
		}
	}
	sum := 0.0
	for _, v := range c {
		sum += v
	}
	return sum
}
