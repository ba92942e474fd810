// Returns more than the output limit.
function main(params) {
  return "x".repeat(params.mib * 1024 * 1024);
}
