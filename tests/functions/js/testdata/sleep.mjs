// The FunLess paper's sleep, in JavaScript: waits on a timer, holding no
// CPU slot while it waits.
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

export default async function (args) {
  const ms = Number(args.ms) || 0;
  await sleep(ms);
  return { slept: ms };
}
