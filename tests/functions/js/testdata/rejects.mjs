// A rejected Promise is a function error.
export default async function (args) {
  await null;
  throw new Error("rejected for " + args.who);
}
