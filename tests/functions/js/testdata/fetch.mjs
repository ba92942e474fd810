// fetch() under the function's egress policy: an allowed server's answer,
// or the refusal as the function sees it (a rejected Promise).
export default async function (args) {
  try {
    const init = { method: args.method, headers: { "X-Test": "js" } };
    if (args.body !== undefined) init.body = args.body;
    const r = await fetch(args.url, init);
    const text = await r.text();
    return { ok: r.ok, status: r.status, text, json: args.json ? await fetch(args.url).then((r) => r.json()) : null };
  } catch (e) {
    return { error: String(e) };
  }
}
