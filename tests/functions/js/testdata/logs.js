// console lines go to the activation's logs.
function main(params) {
  console.log("starting", params.n);
  console.error("a warning", { n: params.n });
  console.log("done");
  return { ok: true };
}
