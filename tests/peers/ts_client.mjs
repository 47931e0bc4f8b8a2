#!/usr/bin/env node
// The TypeScript SDK's Client + StreamableHTTPClientTransport driving a full
// MCP flow (session era, 2025-11-25) against a URL. One JSON object per step
// on stdout ({"step": ..., "ok": bool, ...}), last {"step":"done","ok":true};
// exit 1 on any failure.
//
//   node ts_client.mjs URL [--scenario full] [--server everything|py]
//
// Steps: initialize, tools/list, tools/call (echo), progress (a long-running
// tool; arrival time of each notifications/progress in ms since the request
// started, plus the server's own send times when it reports them), resources/
// list + read, prompts/list + get, get-stream (the GET SSE stream the transport
// opens after initialize), delete (terminateSession), http (every exchange).
// --server picks tool/prompt names; by default they are detected from tools/list.
// Env MCP_HEADERS: JSON object of extra HTTP headers for every request.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const NAMES = {
  everything: {
    echo: ["echo", { message: "hi" }],
    slow: ["trigger-long-running-operation", { duration: 2, steps: 4 }],
    prompt: ["simple-prompt", {}],
  },
  py: {
    echo: ["echo", { text: "hi" }],
    slow: ["slow_progress", { steps: 4, interval_ms: 400 }],
    prompt: ["greet", { name: "Ada" }],
  },
};

const argv = process.argv.slice(2);
const opt = (name, dflt) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : dflt);
const url = argv[0];
const scenario = opt("--scenario", "full");
let server = opt("--server", undefined);

let failed = false;
const emit = (step, ok = true, detail = {}) => {
  failed ||= !ok;
  console.log(JSON.stringify({ step, ok, ...detail }));
};
const headers = JSON.parse(process.env.MCP_HEADERS || "{}");
const textOf = (r) => r.content.map((c) => c.text || "").join("");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Every HTTP exchange the transport makes (the GET stream and DELETE included).
const http = [];
async function loggingFetch(input, init = {}) {
  const method = init.method || "GET";
  let mcp_method;
  try {
    mcp_method = JSON.parse(init.body).method;
  } catch {}
  const res = await fetch(input, init);
  http.push({ method, mcp_method, status: res.status, content_type: res.headers.get("content-type") });
  return res;
}

async function main() {
  if (!url || scenario !== "full") throw new Error("usage: ts_client.mjs URL [--scenario full] [--server everything|py]");
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers }, fetch: loggingFetch });
  const client = new Client({ name: "mcp-edge-ts-test", version: "1.0.0" });
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
  const sid = transport.sessionId; // none from a stateless server: get-stream/delete are then skipped
  emit("initialize", transport.protocolVersion !== undefined, {
    sessionId: sid ?? null,
    protocolVersion: transport.protocolVersion,
    server: client.getServerVersion(),
  });

  const tools = await client.listTools();
  const toolNames = tools.tools.map((t) => t.name);
  server ??= toolNames.includes("slow_progress") ? "py" : "everything";
  const names = NAMES[server];
  emit("tools/list", toolNames.includes(names.slow[0]), { count: toolNames.length, names: toolNames, server });

  const [echoName, echoArgs] = names.echo;
  const r = await client.callTool({ name: echoName, arguments: echoArgs });
  emit("tools/call", !r.isError && textOf(r).includes("hi"), { tool: echoName, text: textOf(r) });

  const [slowName, slowArgs] = names.slow;
  delivered.length = 0;
  const start = Date.now();
  const sr = await client.callTool({ name: slowName, arguments: slowArgs }, undefined, {
    onprogress: () => {},
    timeout: 30000,
  });
  const arrivals = delivered.map((d) => d.at - start);
  const progress = delivered.map((d) => d.progress);
  let sent = null; // py_server reports its send times (epoch ms) in the result
  try {
    sent = JSON.parse(textOf(sr)).sent_ms.map((t) => Math.round(t - start));
  } catch {}
  emit("progress", !sr.isError && arrivals.length === slowArgs.steps, {
    tool: slowName,
    arrivals_ms: arrivals,
    server_sent_ms: sent,
    progress,
    started_ms: start,
    result: textOf(sr),
  });

  const res = await client.listResources();
  emit("resources/list", res.resources.length > 0, { count: res.resources.length });
  const uri = res.resources[0].uri;
  const rr = await client.readResource({ uri });
  emit("resources/read", rr.contents.length > 0, { uri });

  const prompts = await client.listPrompts();
  emit("prompts/list", prompts.prompts.length > 0, { names: prompts.prompts.map((p) => p.name) });
  const [pName, pArgs] = names.prompt;
  const pr = await client.getPrompt({ name: pName, arguments: pArgs });
  emit("prompts/get", pr.messages.length > 0, { name: pName, messages: pr.messages.length });

  if (sid) {
    // The transport opens the GET stream by itself after notifications/initialized.
    for (let i = 0; i < 40 && !http.some((h) => h.method === "GET"); i++) await sleep(50);
    const get = http.find((h) => h.method === "GET");
    emit("get-stream", !!get && get.status === 200 && /text\/event-stream/.test(get.content_type || ""), { get });

    await transport.terminateSession();
    const del = http.find((h) => h.method === "DELETE");
    emit("delete", transport.sessionId === undefined && !!del && (del.status < 300 || del.status === 405), {
      status: del?.status,
    });
  }
  await client.close();
  emit("http", true, { exchanges: http });
  emit("done", !failed);
  if (failed) process.exit(1);
}

main().catch((e) => {
  emit("error", false, { error: String(e && e.stack ? e.stack : e) });
  process.exit(1);
});
