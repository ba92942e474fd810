// An infinite loop: stopped at the function's timeout.
function main() {
  let i = 0;
  for (;;) {
    i++;
  }
}
