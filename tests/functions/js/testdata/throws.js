// A thrown error is a function error, with its message and stack.
function check(n) {
  if (n > 1) {
    throw new RangeError("n is too large: " + n);
  }
  return n;
}

function main(params) {
  return { n: check(params.n) };
}
