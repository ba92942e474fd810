// A syntax error on line 4: the upload is refused with its line.
function main(params) {
  const total = params.a +
  return { total };
}
