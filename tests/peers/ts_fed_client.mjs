#!/usr/bin/env node
// The TypeScript SDK's Client + StreamableHTTPClientTransport against a
// mcp-edge virtual server composed of server-everything (prefix `ev`) and
// py_server.py (prefix `py`); the twin of py_fed_client.py (session era only).
// One JSON object per step on stdout ({"step": ..., "ok": bool, ...}), last
// {"step":"done","ok":...}; exit 1 on any failure.
//
//   node ts_fed_client.mjs URL [--name acme-tools] [--ev ev] [--py py] [--skip NAME,...]
//
// Steps: initialize (serverInfo.name is the virtual server's), tools/list (both
// members' tools, prefixed), tools/call of each member, progress through a
// member's tool call, elicitation (a member's elicitation/create answered by
// the client's handler and returned to that member), unknown-tool,
// resources/list and a resources/read of each member's resource, prompts
// (list + get of each member), get-stream (the GET SSE stream the transport
// opens after initialize), delete (terminateSession), http (every exchange).
// --skip leaves out steps (by name). Members left out (`--ev ''`) are not asked for.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";

const argv = process.argv.slice(2);
const opt = (name, dflt) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] ?? "" : dflt);
const url = argv[0];
const a = {
  name: opt("--name", "acme-tools"),
  ev: opt("--ev", "ev"),
  py: opt("--py", "py"),
  skip: new Set(opt("--skip", "").split(",").filter(Boolean)),
};

const failed = [];
const emit = (step, ok = true, detail = {}) => {
  if (!ok) failed.push(step);
  console.log(JSON.stringify({ step, ok: !!ok, ...detail }));
};
const textOf = (r) => (r.content || []).map((c) => c.text || "").join("");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A request header, whatever shape the transport handed to fetch.
function header(headers, name) {
  if (!headers) return null;
  if (headers instanceof Headers) return headers.get(name);
  if (Array.isArray(headers)) return headers.find(([k]) => k.toLowerCase() === name)?.[1] ?? null;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  return key === undefined ? null : headers[key];
}

// Every HTTP exchange the transport makes (the GET stream and DELETE included).
const http = [];
async function loggingFetch(input, init = {}) {
  let body;
  try {
    body = JSON.parse(init.body);
  } catch {}
  body = body && typeof body === "object" && !Array.isArray(body) ? body : {};
  const res = await fetch(input, init);
  http.push({
    method: init.method || "GET",
    status: res.status,
    content_type: res.headers.get("content-type"),
    mcp_method: body.method ?? null,
    id: body.id ?? null,
    h_name: header(init.headers, "mcp-name"),
    r_session: res.headers.get("mcp-session-id"),
  });
  return res;
}

const elicited = [];

async function main() {
  if (!url) throw new Error("usage: ts_fed_client.mjs URL [--name acme-tools] [--ev ev] [--py py] [--skip NAME,...]");
  const { ev, py, skip } = a;
  const sep = "__";
  const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: loggingFetch });
  const client = new Client({ name: "mcp-edge-ts-fed-test", version: "1.0.0" }, { capabilities: { elicitation: {} } });
  client.setRequestHandler(ElicitRequestSchema, async (request) => {
    elicited.push(request.params.message);
    return { action: "accept", content: { name: "Ada", check: true } };
  });
  await client.connect(transport);
  // notifications/progress as the transport delivered them: the SDK runs a
  // notification handler a microtask later, so one that arrives in the same
  // read as its call's result is dropped by the client, not by the gateway
  const delivered = [];
  const deliver = transport.onmessage;
  transport.onmessage = (m, extra) => {
    if (m?.method === "notifications/progress") delivered.push({ at: Date.now(), progress: m.params?.progress });
    deliver?.(m, extra);
  };

  const sid = http.find((h) => h.mcp_method === "initialize")?.r_session ?? transport.sessionId ?? null;
  const info = client.getServerVersion() || {};
  emit("initialize", info.name === a.name && !!sid, {
    server: info,
    sessionId: sid,
    protocolVersion: transport.protocolVersion,
  });

  let names = [];
  let cursor;
  for (let i = 0; i < 20; i++) {
    // every page (a composite cursor walks the members)
    const page = await client.listTools(cursor ? { cursor } : undefined);
    names.push(...page.tools.map((t) => t.name));
    cursor = page.nextCursor;
    if (!cursor) break;
  }
  const want = [...(ev ? [`${ev}${sep}echo`] : []), ...(py ? [`${py}${sep}add`, `${py}${sep}slow_progress`] : [])];
  emit("tools/list", want.every((n) => names.includes(n)), { names, wanted: want });

  if (ev) {
    const tool = `${ev}${sep}echo`;
    const r = await client.callTool({ name: tool, arguments: { message: "hi" } });
    emit("tools/call", !r.isError && textOf(r).includes("hi"), { tool, text: textOf(r) });
  }
  if (py) {
    const tool = `${py}${sep}add`;
    const r = await client.callTool({ name: tool, arguments: { a: 2, b: 40 } });
    emit("tools/call", !r.isError && textOf(r) === "42", { tool, text: textOf(r) });
  }

  if (py && !skip.has("progress")) {
    delivered.length = 0;
    const start = Date.now();
    const r = await client.callTool(
      { name: `${py}${sep}slow_progress`, arguments: { steps: 3, interval_ms: 200 } },
      undefined,
      { onprogress: () => {}, timeout: 30000 },
    );
    const arrivals = delivered.map((d) => d.at - start);
    emit("progress", !r.isError && arrivals.length === 3, { arrivals_ms: arrivals });
  }

  if (ev && !skip.has("elicitation")) {
    const tool = `${ev}${sep}trigger-elicitation-request`;
    if (!names.includes(tool)) {
      // the member registers it once it knows the client can elicit
      names = (await client.listTools()).tools.map((t) => t.name);
    }
    const r = await client.callTool({ name: tool, arguments: {} });
    emit("elicitation", !r.isError && elicited.length === 1 && textOf(r).includes("Ada"), {
      asked: elicited,
      text: textOf(r).slice(0, 300),
    });
  }

  try {
    // the same answer as a tool no member has: a JSON-RPC error -32602
    const r = await client.callTool({ name: `nobody${sep}echo`, arguments: { message: "x" } });
    emit("unknown-tool", !!r.isError, { text: textOf(r) });
  } catch (e) {
    emit("unknown-tool", String(e?.message ?? e).includes("Unknown tool") && (e?.code ?? -32602) === -32602, {
      error: String(e?.message ?? e),
      code: e?.code ?? null,
    });
  }

  const res = [];
  cursor = undefined;
  for (let i = 0; i < 20; i++) {
    const page = await client.listResources(cursor ? { cursor } : undefined);
    res.push(...page.resources.map((x) => String(x.uri)));
    cursor = page.nextCursor;
    if (!cursor) break;
  }
  emit("resources/list", (!py || res.includes("demo://greeting")) && res.length > (ev && py ? 1 : 0), {
    count: res.length,
    first: res.slice(0, 3),
  });
  const reads = [];
  if (py) {
    const rr = await client.readResource({ uri: "demo://greeting" });
    reads.push(rr.contents.map((c) => c.text || "").join("").includes("hello from py_server"));
  }
  if (ev) {
    const uri = res.find((u) => u !== "demo://greeting");
    if (uri === undefined) reads.push(false);
    else {
      const rr = await client.readResource({ uri });
      reads.push(rr.contents.length > 0 && String(rr.contents[0].uri) === uri);
    }
  }
  emit("resources/read", reads.every(Boolean), { reads });

  const prompts = (await client.listPrompts()).prompts.map((p) => p.name);
  const gets = [];
  if (py) {
    const pr = await client.getPrompt({ name: `${py}${sep}greet`, arguments: { name: "Ada" } });
    gets.push(JSON.stringify(pr).includes("Ada"));
  }
  if (ev) {
    const pr = await client.getPrompt({ name: `${ev}${sep}simple-prompt`, arguments: {} });
    gets.push(pr.messages.length > 0);
  }
  emit("prompts", gets.every(Boolean) && prompts.length > 0, { names: prompts, gets });

  if (sid && !skip.has("get-stream")) {
    // The transport opens the GET stream by itself after notifications/initialized.
    for (let i = 0; i < 40 && !http.some((h) => h.method === "GET"); i++) await sleep(50);
    const get = http.find((h) => h.method === "GET") ?? null;
    emit("get-stream", !!get && get.status === 200 && /text\/event-stream/.test(get.content_type || ""), { get });
  }

  if (sid) {
    await transport.terminateSession();
    const del = http.find((h) => h.method === "DELETE");
    emit("delete", !!del && del.status < 300, { status: del?.status ?? null });
  }
  await client.close();
  emit("http", true, { exchanges: http });
  emit("done", failed.length === 0);
}

main()
  .catch((e) => {
    emit("error", false, { error: String(e && e.stack ? e.stack : e) });
  })
  .finally(() => process.exit(failed.length ? 1 : 0));
