// The Node.js (V8) baseline of the bench's JavaScript rows
// (internal/bench/javascript.go): the same example scripts edgefaas runs,
// served by a plain node:http server behind the same URL and JSON envelope
// as the edgefaas API ({"args": ...} in, {"data": ...} out), as the Go
// baseline serves the Go examples' bodies. No npm packages.
//
//   node node-server.mjs NAME=FILE...
//
// It prints "LISTEN host:port" once it listens on 127.0.0.1 and exits when
// its stdin closes.
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";

const handlers = new Map();
for (const arg of process.argv.slice(2)) {
  const at = arg.indexOf("=");
  const mod = at > 0 ? await import(pathToFileURL(arg.slice(at + 1)).href) : {};
  // An ES module's default export (examples/sleepjs) or FunLess's template,
  // module.exports.fl_main (examples/hellojs, examples/matrixmultjs).
  const fn = typeof mod.default === "function" ? mod.default : (mod.fl_main ?? mod.default?.fl_main);
  if (typeof fn !== "function") {
    throw new Error(`${arg}: want NAME=FILE of a script exporting fl_main or a default function`);
  }
  handlers.set(arg.slice(0, at), fn);
}

function reply(res, status, body) {
  const b = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(b) });
  res.end(b);
}

const server = createServer(async (req, res) => {
  const m = /^\/v1\/fn\/_\/(\w+)$/.exec(req.url);
  const fn = m && req.method === "POST" ? handlers.get(m[1]) : undefined;
  if (!fn) {
    return reply(res, 404, { errors: { detail: "Not Found" } });
  }
  const chunks = [];
  for await (const c of req) chunks.push(c);
  let args;
  try {
    args = JSON.parse(Buffer.concat(chunks).toString()).args ?? {};
  } catch {
    return reply(res, 400, { errors: { detail: "Bad Request" } });
  }
  try {
    reply(res, 200, { data: await fn(args) });
  } catch (e) {
    reply(res, 422, { errors: { detail: String(e) } });
  }
});
// Idle keep-alive connections stay open, as on the Go baseline: a client's
// POST on a connection the server is closing would fail.
server.keepAliveTimeout = 0;
server.listen(0, "127.0.0.1", () => {
  const a = server.address();
  console.log(`LISTEN ${a.address}:${a.port}`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
