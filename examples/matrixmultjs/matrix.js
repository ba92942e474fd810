// matrixmultjs: the FunLess paper's matrixMult workload in JavaScript, in
// FunLess's template. It multiplies two n×n matrices (n = 100 by default)
// filled from a seed and returns the sum of the product's elements. The
// fill is a 32-bit generator (the Go example's 64-bit one needs BigInt),
// so the checksum differs from examples/matrixmult's.
function fill(m, state) {
  for (let i = 0; i < m.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    m[i] = (state >>> 8) / 16777216;
  }
  return state;
}

module.exports.fl_main = function (input) {
  const n = input.n === undefined ? 100 : input.n;
  if (!Number.isInteger(n) || n < 1 || n > 1000) {
    throw new RangeError("n must be an integer between 1 and 1000, got " + n);
  }
  const a = new Float64Array(n * n), b = new Float64Array(n * n), c = new Float64Array(n * n);
  let state = (input.seed === undefined ? 42 : input.seed) >>> 0;
  state = fill(a, state);
  fill(b, state);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k];
      for (let j = 0; j < n; j++) {
        c[i * n + j] += aik * b[k * n + j];
      }
    }
  }
  let sum = 0;
  for (let i = 0; i < c.length; i++) sum += c[i];
  return { n, checksum: sum };
};
