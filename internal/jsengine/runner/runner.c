// The JavaScript runner: QuickJS compiled with this file to wasm32-wasi is
// the engine module every JS function runs in. It follows the funless ABI
// (exports __invoke, imports fl_imps.*), so a JS function runs under the
// same limits, countdown check, slots and memory budget as any guest.
//
// Its input is a frame the host builds (internal/jsengine, Frame):
//   byte 0      mode: 'r' run the handler of a script, 'x' run the handler
//               of a compiled script, 'R' and 'X' only evaluate their
//               top level (prepare), 'c' only check the script, 'b'
//               compile the script and answer its bytecode
//   bytes 1..4  the script's length n, little-endian
//   n bytes     the script (UTF-8 source, or for 'x' the bytecode 'b' made)
//   the rest    the invocation's args, JSON
// An instance evaluates the script once, on its first frame, and keeps the
// handler for the calls after it (an instance serves one function only):
// the frames after it may carry no script. The worker prepares one
// instance per function ('R' or 'X') and starts the others from a copy of
// its memory (internal/wasm, jstemplate.go), so each of them reseeds
// Math.random on its first call.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "quickjs.h"

#define FL_IMPORT(name) __attribute__((import_module("fl_imps"), import_name(#name)))
FL_IMPORT(__get_input_data) void fl_get_input_data(uint32_t ptr);
FL_IMPORT(__insert_response) void fl_insert_response(uint32_t ptr, uint32_t len);
FL_IMPORT(__insert_error) void fl_insert_error(uint32_t ptr, uint32_t len);
FL_IMPORT(__console_log) void fl_console_log(uint32_t ptr, uint32_t len);
#define EF_IMPORT(name) __attribute__((import_module("edgefaas"), import_name(#name)))
EF_IMPORT(http_request) int ef_http_request(uint32_t method, uint32_t method_len, uint32_t url, uint32_t url_len,
                                            uint32_t hdr, uint32_t hdr_len, uint32_t body, uint32_t body_len,
                                            uint32_t status_ptr, uint32_t len_ptr);
EF_IMPORT(response_read) uint32_t ef_response_read(uint32_t ptr, uint32_t cap);
#define P(x) ((uint32_t)(uintptr_t)(x))

#define SCRIPT_NAME "function.js"

static JSRuntime *rt;
static JSContext *ctx;
static JSValue handler;
static int ready;
static const char *script;
static size_t script_len;

// The glue between the host and the function, in JS: console, timers,
// fetch, the CommonJS module object, finding the handler and settling its
// result. fetch() only queues its request; the runner sends the queue
// (pump) once the function waits, through the host, which holds no CPU
// slot while the request is out.
static const char prelude[] =
    "(function (log, http) {\n"
    "  const frames = s => { const l = String(s).trimEnd().split('\\n');\n"
    "    return l.length <= 32 ? l.join('\\n') : l.slice(0, 32).join('\\n') + '\\n    ... ' + (l.length - 32) + ' more frames'; };\n"
    "  const stack = v => (v instanceof SyntaxError && typeof v.columnNumber === 'number') ?\n"
    "    String(v.stack).replace(/^(\\s*at [^\\n]*:\\d+)$/m, '$1:' + v.columnNumber) : v.stack;\n"
    "  const show = v => { if (typeof v === 'string') return v;\n"
    "    if (v instanceof Error) return String(v) + (v.stack ? '\\n' + frames(stack(v)) : '');\n"
    "    try { const s = JSON.stringify(v); return s === undefined ? String(v) : s; } catch (e) { return String(v); } };\n"
    "  const line = a => Array.prototype.map.call(a, show).join(' ');\n"
    "  const out = function () { log(line(arguments)); };\n"
    "  globalThis.console = { log: out, info: out, debug: out, warn: out, error: out, trace: out };\n"
    "  let timers = [], nextId = 1;\n"
    "  globalThis.setTimeout = function (fn, ms, ...args) {\n"
    "    if (typeof fn !== 'function') throw new TypeError('setTimeout: the callback is not a function');\n"
    "    const id = nextId++; timers.push({ id, at: Date.now() + Math.max(0, Number(ms) || 0), fn, args }); return id; };\n"
    "  globalThis.clearTimeout = function (id) { timers = timers.filter(t => t.id !== id); };\n"
    "  let fetches = [];\n"
    "  const noHeaders = Object.freeze({ get: () => null, has: () => false, forEach() {}, entries: () => [][Symbol.iterator]() });\n"
    "  class Response {\n"
    "    constructor(status, body, url) { this.status = status; this.ok = status >= 200 && status < 300; this.statusText = '';\n"
    "      this.url = url; this.redirected = false; this.headers = noHeaders; this.bodyUsed = false; this._body = body; }\n"
    "    _take() { if (this.bodyUsed) return Promise.reject(new TypeError('the body was already read'));\n"
    "      this.bodyUsed = true; return Promise.resolve(this._body); }\n"
    "    text() { return this._take(); }\n"
    "    json() { return this._take().then(JSON.parse); }\n"
    "  }\n"
    "  const headerText = h => { if (h === undefined || h === null) return '';\n"
    "    const pairs = Array.isArray(h) ? h : typeof h.entries === 'function' ? Array.from(h.entries()) : Object.entries(h);\n"
    "    return pairs.map(([k, v]) => { k = String(k); v = String(v);\n"
    "      if (/[\\r\\n:]/.test(k) || /[\\r\\n]/.test(v)) throw new TypeError('fetch: invalid header ' + JSON.stringify(k));\n"
    "      return k + ':' + v; }).join('\\n'); };\n"
    "  globalThis.fetch = function (resource, init) {\n"
    "    return new Promise((resolve, reject) => {\n"
    "      init = init || {};\n"
    "      const url = String(resource !== null && typeof resource === 'object' && 'url' in resource ? resource.url : resource);\n"
    "      const method = String(init.method || 'GET').toUpperCase();\n"
    "      let body = init.body === undefined || init.body === null ? '' : init.body;\n"
    "      if (typeof body !== 'string') throw new TypeError('fetch: the body must be a string (JSON.stringify an object)');\n"
    "      fetches.push({ url, method, headers: headerText(init.headers), body, resolve, reject });\n"
    "    });\n"
    "  };\n"
    "  globalThis.module = { exports: {} };\n"
    "  globalThis.exports = globalThis.module.exports;\n"
    "  const pick = o => (o === null || o === undefined) ? null :\n"
    "    typeof o.fl_main === 'function' ? o.fl_main : typeof o.main === 'function' ? o.main :\n"
    "    typeof o.default === 'function' ? o.default : null;\n"
    "  return {\n"
    "    find(ns) {\n"
    "      const m = globalThis.module && globalThis.module.exports;\n"
    "      return (ns && pick(ns)) || (typeof m === 'function' ? m : pick(m)) ||\n"
    "        (typeof globalThis.main === 'function' ? globalThis.main : null);\n"
    "    },\n"
    "    settle(r) {\n"
    "      const s = { done: false, ok: false, value: undefined };\n"
    "      if (r !== null && (typeof r === 'object' || typeof r === 'function') && typeof r.then === 'function') {\n"
    "        Promise.resolve(r).then(v => { s.done = true; s.ok = true; s.value = v; },\n"
    "                                e => { s.done = true; s.value = e; });\n"
    "      } else { s.done = true; s.ok = true; s.value = r; }\n"
    "      return s;\n"
    "    },\n"
    "    describe(e) { return e instanceof Error ? show(e) : 'Uncaught ' + show(e); },\n"
    "    wait() { if (timers.length === 0) return -1;\n"
    "      return Math.max(0, Math.min(...timers.map(t => t.at)) - Date.now()); },\n"
    "    fire() { const now = Date.now(); const due = timers.filter(t => t.at <= now).sort((a, b) => a.at - b.at || a.id - b.id);\n"
    "      timers = timers.filter(t => t.at > now); for (const t of due) t.fn(...t.args); },\n"
    "    clear() { timers = []; fetches = []; },\n"
    "    fetching() { return fetches.length > 0; },\n"
    "    pump() { const q = fetches; fetches = [];\n"
    "      for (const f of q) { const [ok, status, text] = http(f.method, f.url, f.headers, f.body);\n"
    "        if (ok) f.resolve(new Response(status, text, f.url)); else f.reject(new TypeError('fetch failed: ' + text)); } },\n"
    "  };\n"
    "})";

static JSValue glue = JS_UNDEFINED;

static void reply_error(const char *msg, size_t n) { fl_insert_error(P(msg), (uint32_t)n); }

static void reply_errorf(const char *msg) { reply_error(msg, strlen(msg)); }

// out_of_memory ends the call with a trap: the host then reports the
// function's memory limit (the line on stderr names the cause).
static void out_of_memory(void) {
    fputs("out of memory\n", stderr);
    fflush(stderr);
    __builtin_trap();
}

// exception_text describes the pending exception: "Name: message" and the
// stack for an Error, else the thrown value.
static char *exception_text(size_t *n) {
    JSValue exc = JS_GetException(ctx);
    const char *s = NULL;
    if (JS_IsError(ctx, exc)) {
        JSValue msg = JS_GetPropertyStr(ctx, exc, "message");
        const char *m = JS_ToCString(ctx, msg);
        if (m && strcmp(m, "out of memory") == 0) out_of_memory();
        JS_FreeCString(ctx, m);
        JS_FreeValue(ctx, msg);
    }
    JSValue fn = JS_GetPropertyStr(ctx, glue, "describe");
    JSValue text = JS_Call(ctx, fn, glue, 1, &exc);
    JS_FreeValue(ctx, fn);
    if (JS_IsException(text)) {
        JS_FreeValue(ctx, JS_GetException(ctx));
        s = JS_ToCStringLen(ctx, n, exc);
    } else {
        s = JS_ToCStringLen(ctx, n, text);
    }
    JS_FreeValue(ctx, text);
    JS_FreeValue(ctx, exc);
    if (s == NULL) out_of_memory();
    char *copy = malloc(*n + 1);
    if (copy == NULL) out_of_memory();
    memcpy(copy, s, *n + 1);
    JS_FreeCString(ctx, s);
    return copy;
}

static void reply_exception(void) {
    size_t n;
    char *s = exception_text(&n);
    reply_error(s, n);
    free(s);
}

static JSValue js_log(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    size_t n;
    const char *s = JS_ToCStringLen(c, &n, argv[0]);
    if (s == NULL) return JS_EXCEPTION;
    fl_console_log(P(s), (uint32_t)n);
    JS_FreeCString(c, s);
    return JS_UNDEFINED;
}

// js_http sends one request through the host (edgefaas.http_request,
// under the function's egress policy) and returns [ok, status, text]:
// the response body, or why the request failed.
static JSValue js_http(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    size_t n[4];
    const char *a[4] = {0};
    JSValue ret = JS_EXCEPTION;
    for (int i = 0; i < 4; i++) {
        a[i] = JS_ToCStringLen(c, &n[i], argv[i]);
        if (a[i] == NULL) goto done;
    }
    uint32_t status = 0, len = 0;
    int failed = ef_http_request(P(a[0]), (uint32_t)n[0], P(a[1]), (uint32_t)n[1], P(a[2]), (uint32_t)n[2],
                                 P(a[3]), (uint32_t)n[3], P(&status), P(&len));
    char *body = malloc((size_t)len + 1);
    if (body == NULL) out_of_memory();
    size_t got = 0;
    while (got < len) {
        uint32_t r = ef_response_read(P(body + got), len - (uint32_t)got);
        if (r == 0) break;
        got += r;
    }
    JSValue text = JS_NewStringLen(c, body, got);
    free(body);
    if (JS_IsException(text)) goto done;
    ret = JS_NewArray(c);
    JS_SetPropertyUint32(c, ret, 0, JS_NewBool(c, !failed));
    JS_SetPropertyUint32(c, ret, 1, JS_NewInt32(c, (int32_t)status));
    JS_SetPropertyUint32(c, ret, 2, text);
done:
    for (int i = 0; i < 4; i++) JS_FreeCString(c, a[i]);
    return ret;
}

static JSModuleDef *compiled_module;
static int compiled_bytecode; // the script is bytecode (mode 'x')

// load_module gives an ES module script its one module, the function
// itself (compiled by compile_script): anything else must be bundled into
// the script.
static JSModuleDef *load_module(JSContext *c, const char *name, void *opaque) {
    if (strcmp(name, SCRIPT_NAME) != 0 || compiled_module == NULL) {
        JS_ThrowReferenceError(c, "cannot import '%s': bundle dependencies into the script", name);
        return NULL;
    }
    return compiled_module;
}

// compile_script compiles the script as an ES module or a classic script:
// a module if QuickJS's look at its first token says so, else a classic
// script, else (an import or export further down) a module. A script that
// is neither reports the error that names its line best: the module's when
// the classic parse stumbled on import or export. It returns the compiled
// classic script (to run), JS_UNDEFINED for a module (kept in
// compiled_module), or JS_EXCEPTION.
static JSValue compile_script(void) {
    int flags = JS_EVAL_FLAG_COMPILE_ONLY;
    if (compiled_bytecode) {
        // Made by mode 'b' of this same engine: a module or a script.
        JSValue v = JS_ReadObject(ctx, (const uint8_t *)script, script_len, JS_READ_OBJ_BYTECODE);
        if (JS_IsException(v)) return v;
        if (JS_VALUE_GET_TAG(v) == JS_TAG_MODULE) {
            compiled_module = JS_VALUE_GET_PTR(v);
            JS_FreeValue(ctx, v);
            return JS_UNDEFINED;
        }
        return v;
    }
    if (!JS_DetectModule(script, script_len)) {
        JSValue v = JS_Eval(ctx, script, script_len, SCRIPT_NAME, JS_EVAL_TYPE_GLOBAL | flags);
        if (!JS_IsException(v)) return v;
        JSValue exc = JS_GetException(ctx);
        JSValue msg = JS_GetPropertyStr(ctx, exc, "message");
        const char *m = JS_ToCString(ctx, msg);
        int keyword = m && (strstr(m, "export") || strstr(m, "import"));
        JS_FreeCString(ctx, m);
        JS_FreeValue(ctx, msg);
        if (!keyword) {
            JS_Throw(ctx, exc);
            return JS_EXCEPTION;
        }
        JS_FreeValue(ctx, exc);
    }
    JSValue mod = JS_Eval(ctx, script, script_len, SCRIPT_NAME, JS_EVAL_TYPE_MODULE | flags);
    if (JS_IsException(mod)) return mod;
    compiled_module = JS_VALUE_GET_PTR(mod);
    JS_FreeValue(ctx, mod);
    return JS_UNDEFINED;
}

static int run_jobs(void) {
    JSContext *c;
    for (;;) {
        int r = JS_ExecutePendingJob(rt, &c);
        if (r <= 0) return r;
    }
}

// write_bytecode answers the compiled script's bytecode (mode 'b').
static int write_bytecode(JSValueConst compiled) {
    JSValue obj = compiled_module != NULL ? JS_MKPTR(JS_TAG_MODULE, compiled_module) : compiled;
    size_t n;
    uint8_t *b = JS_WriteObject(ctx, &n, obj, JS_WRITE_OBJ_BYTECODE);
    if (b == NULL) {
        reply_exception();
        return -1;
    }
    fl_insert_response(P(b), (uint32_t)n);
    js_free(ctx, b);
    return 0;
}

// setup makes the runtime and evaluates the script; 0 on success, else it
// has replied with the error. For mode 'c' it only compiles the script,
// for 'b' it answers its bytecode.
static int setup(char mode) {
    rt = JS_NewRuntime();
    if (rt == NULL) out_of_memory();
    JS_SetMaxStackSize(rt, 768 << 10);
    JS_SetModuleLoaderFunc(rt, NULL, load_module, NULL);
    ctx = JS_NewContext(rt);
    if (ctx == NULL) out_of_memory();
    JSValue make = JS_Eval(ctx, prelude, sizeof prelude - 1, "<edgefaas>", JS_EVAL_TYPE_GLOBAL);
    if (JS_IsException(make)) out_of_memory();
    JSValue fns[2] = {JS_NewCFunction(ctx, js_log, "log", 1), JS_NewCFunction(ctx, js_http, "http", 4)};
    glue = JS_Call(ctx, make, JS_UNDEFINED, 2, fns);
    JS_FreeValue(ctx, fns[0]);
    JS_FreeValue(ctx, fns[1]);
    JS_FreeValue(ctx, make);
    if (JS_IsException(glue)) out_of_memory();

    JSValue compiled = compile_script();
    if (JS_IsException(compiled)) {
        reply_exception();
        return -1;
    }
    if (mode == 'c' || mode == 'b') {
        int r = mode == 'b' ? write_bytecode(compiled) : 0;
        JS_FreeValue(ctx, compiled);
        return r;
    }
    JSValue ns = JS_UNDEFINED;
    JSValue v;
    if (compiled_module != NULL) {
        static const char importer[] =
            "import * as ns from '" SCRIPT_NAME "'; globalThis.__edgefaas_ns = ns;";
        v = JS_Eval(ctx, importer, sizeof importer - 1, "<edgefaas-import>", JS_EVAL_TYPE_MODULE);
    } else {
        v = JS_EvalFunction(ctx, compiled);
    }
    if (JS_IsException(v)) {
        reply_exception();
        return -1;
    }
    JS_FreeValue(ctx, v);
    if (run_jobs() < 0) {
        reply_exception();
        return -1;
    }
    if (compiled_module != NULL) {
        JSValue global = JS_GetGlobalObject(ctx);
        ns = JS_GetPropertyStr(ctx, global, "__edgefaas_ns");
        JS_FreeValue(ctx, global);
    }
    JSValue find = JS_GetPropertyStr(ctx, glue, "find");
    handler = JS_Call(ctx, find, glue, 1, &ns);
    JS_FreeValue(ctx, find);
    JS_FreeValue(ctx, ns);
    if (JS_IsException(handler)) {
        reply_exception();
        return -1;
    }
    if (!JS_IsFunction(ctx, handler)) {
        reply_errorf("the script defines no handler: set module.exports.fl_main, define a global function main, "
                     "or export a default function from an ES module");
        return -1;
    }
    ready = 1;
    return 0;
}

static int glue_call(const char *name, JSValue *result) {
    JSValue fn = JS_GetPropertyStr(ctx, glue, name);
    JSValue r = JS_Call(ctx, fn, glue, 0, NULL);
    JS_FreeValue(ctx, fn);
    if (JS_IsException(r)) return -1;
    if (result) *result = r; else JS_FreeValue(ctx, r);
    return 0;
}

// MAX_SLEEP_MS bounds one sleep of wait_for: a timer set for Infinity
// still sleeps a finite time, and the loop then sleeps again.
#define MAX_SLEEP_MS 3600000.0

// wait_for sends the requests the handler fetched and runs the timers it
// set until its result settles or nothing is left: a request blocks in
// the host, and between timers it sleeps (WASI poll_oneoff), both without
// the call's CPU slot. It sleeps until the next timer is due in one sleep:
// every wake-up runs this loop's JS glue, and the engine's sleep ends with
// the call, so a call past its timeout is stopped on time without waking
// to look. -1 with an exception pending if a timer or a callback threw.
static int wait_for(JSValueConst state) {
    for (;;) {
        JSValue done = JS_GetPropertyStr(ctx, state, "done");
        int is_done = JS_ToBool(ctx, done);
        JS_FreeValue(ctx, done);
        if (is_done) return 0;
        JSValue f;
        if (glue_call("fetching", &f) < 0) return -1;
        int fetching = JS_ToBool(ctx, f);
        JS_FreeValue(ctx, f);
        if (fetching) {
            if (glue_call("pump", NULL) < 0 || run_jobs() < 0) return -1;
            continue;
        }
        JSValue w;
        if (glue_call("wait", &w) < 0) return -1;
        double ms;
        JS_ToFloat64(ctx, &ms, w);
        JS_FreeValue(ctx, w);
        if (ms < 0) return 0;
        if (ms > 0) {
            if (ms > MAX_SLEEP_MS) ms = MAX_SLEEP_MS;
            int64_t ns = (int64_t)(ms * 1e6);
            struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
            nanosleep(&ts, NULL);
            continue;
        }
        if (glue_call("fire", NULL) < 0 || run_jobs() < 0) return -1;
    }
}

// reseed gives this instance its own Math.random() sequence: an instance
// started from a copy of a prepared one would otherwise repeat its seed.
static void reseed(void) {
    uint64_t seed = 0;
    if (getentropy(&seed, sizeof seed) != 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    JS_SetRandomSeed(ctx, seed);
}

// call runs the handler on args and replies with its JSON result.
static int call(const char *args, size_t args_len) {
    static int calls;
    if (calls++ == 0) reseed();
    // JS_ParseJSON wants a NUL-terminated buffer.
    char *buf = malloc(args_len + 1);
    if (buf == NULL) out_of_memory();
    memcpy(buf, args, args_len);
    buf[args_len] = 0;
    JSValue in = JS_ParseJSON(ctx, buf, args_len, "<args>");
    free(buf);
    if (JS_IsException(in)) {
        reply_exception();
        return 1;
    }
    // Timers a call left behind do not run in the next one.
    if (glue_call("clear", NULL) < 0) out_of_memory();
    JSValue r = JS_Call(ctx, handler, JS_UNDEFINED, 1, &in);
    JS_FreeValue(ctx, in);
    if (JS_IsException(r)) {
        reply_exception();
        return 1;
    }
    JSValue settle = JS_GetPropertyStr(ctx, glue, "settle");
    JSValue state = JS_Call(ctx, settle, glue, 1, &r);
    JS_FreeValue(ctx, settle);
    JS_FreeValue(ctx, r);
    if (JS_IsException(state)) {
        reply_exception();
        return 1;
    }
    if (run_jobs() < 0 || wait_for(state) < 0) {
        JS_FreeValue(ctx, state);
        reply_exception();
        return 1;
    }
    JSValue done = JS_GetPropertyStr(ctx, state, "done");
    JSValue ok = JS_GetPropertyStr(ctx, state, "ok");
    JSValue value = JS_GetPropertyStr(ctx, state, "value");
    int is_done = JS_ToBool(ctx, done), is_ok = JS_ToBool(ctx, ok);
    JS_FreeValue(ctx, done);
    JS_FreeValue(ctx, ok);
    JS_FreeValue(ctx, state);
    if (!is_done) {
        JS_FreeValue(ctx, value);
        reply_errorf("the handler's Promise never settled: no timer or fetch is left to settle it");
        return 1;
    }
    if (!is_ok) {
        JS_Throw(ctx, value);
        reply_exception();
        return 1;
    }
    JSValue json = JS_JSONStringify(ctx, value, JS_UNDEFINED, JS_UNDEFINED);
    JS_FreeValue(ctx, value);
    if (JS_IsException(json)) {
        reply_exception();
        return 1;
    }
    if (JS_IsUndefined(json)) {
        fl_insert_response(P("null"), 4);
        return 0;
    }
    size_t n;
    const char *s = JS_ToCStringLen(ctx, &n, json);
    JS_FreeValue(ctx, json);
    if (s == NULL) out_of_memory();
    fl_insert_response(P(s), (uint32_t)n);
    JS_FreeCString(ctx, s);
    return 0;
}

__attribute__((export_name("__invoke"))) int invoke(int input_len) {
    static char *input;
    if (input_len < 5) {
        reply_errorf("the JavaScript runner's input frame is too short");
        return 1;
    }
    free(input);
    input = malloc((size_t)input_len + 1);
    if (input == NULL) out_of_memory();
    fl_get_input_data(P(input));
    input[input_len] = 0;
    char mode = input[0];
    uint32_t n = (uint32_t)(uint8_t)input[1] | (uint32_t)(uint8_t)input[2] << 8 |
                 (uint32_t)(uint8_t)input[3] << 16 | (uint32_t)(uint8_t)input[4] << 24;
    if (n > (uint32_t)input_len - 5) {
        reply_errorf("the JavaScript runner's input frame is malformed");
        return 1;
    }
    if (!ready) {
        // The script stays in memory while the instance lives: an ES
        // module's loader reads it when the importer asks for it.
        static char *kept;
        kept = malloc(n + 1);
        if (kept == NULL) out_of_memory();
        memcpy(kept, input + 5, n);
        kept[n] = 0;
        script = kept;
        script_len = n;
        compiled_bytecode = mode == 'x' || mode == 'X';
        if (setup(mode) != 0) return 1;
        if (mode == 'c' || mode == 'R' || mode == 'X') {
            fl_insert_response(P("null"), 4);
            return 0;
        }
        if (mode == 'b') return 0;
    }
    return call(input + 5 + n, (size_t)input_len - 5 - n);
}
