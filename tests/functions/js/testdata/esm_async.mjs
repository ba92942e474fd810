// An ES module whose handler returns a Promise.
const double = async n => n * 2;

export default async function (args) {
  const a = await double(args.n);
  const b = await Promise.all([double(a), double(a + 1)]);
  return { a, b };
}
