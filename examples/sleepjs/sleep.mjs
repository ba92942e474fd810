// sleepjs: the FunLess paper's sleep workload in JavaScript. It waits on a
// timer, holding no CPU slot while it waits: {"ms": 3000} sleeps 3 s.
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

export default async function (args) {
  const ms = Number(args.ms) || 0;
  await sleep(ms);
  return { slept: ms };
}
