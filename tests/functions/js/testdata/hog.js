// Allocates without end: stopped at the function's memory limit.
function main() {
  const kept = [];
  for (;;) {
    kept.push(new Array(1 << 16).fill(kept.length));
  }
}
