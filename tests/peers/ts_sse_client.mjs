#!/usr/bin/env node
// The TypeScript SDK's Client + SSEClientTransport (the 2024-11-05 HTTP+SSE
// transport) driving a full MCP flow against a gateway's `legacy_sse`
// endpoint. One JSON object per step on stdout ({"step": ..., "ok": bool,
// ...}), last {"step":"done","ok":true}; exit 1 on any failure.
//
//   node ts_sse_client.mjs URL [--server everything|py]
//
// Steps: connect (GET URL, the endpoint event, initialize), tools/list,
// tools/call (echo), progress (a long-running tool), denied (a tool the
// policy refuses answers "Unknown tool"), resources/list + read, prompts/
// list + get, http (every exchange: POSTs must get 202).
// Env MCP_HEADERS: JSON object of extra HTTP headers for every request.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";

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
let server = opt("--server", undefined);
const denied = opt("--denied", undefined);

let failed = false;
const emit = (step, ok = true, detail = {}) => {
  failed ||= !ok;
  console.log(JSON.stringify({ step, ok, ...detail }));
};
const headers = JSON.parse(process.env.MCP_HEADERS || "{}");
const textOf = (r) => r.content.map((c) => c.text || "").join("");

const http = [];
async function loggingFetch(input, init = {}) {
  const method = init.method || "GET";
  let mcp_method;
  try {
    mcp_method = JSON.parse(init.body).method;
  } catch {}
  const res = await fetch(input, init);
  http.push({ method, url: String(input), mcp_method, status: res.status });
  return res;
}

async function main() {
  if (!url) throw new Error("usage: ts_sse_client.mjs URL [--server everything|py] [--denied TOOL]");
  const transport = new SSEClientTransport(new URL(url), {
    eventSourceInit: { fetch: (u, init) => loggingFetch(u, { ...init, headers: { ...(init?.headers || {}), ...headers } }) },
    requestInit: { headers },
    fetch: loggingFetch,
  });
  const client = new Client({ name: "mcp-edge-ts-sse-test", version: "1.0.0" });
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
  emit("connect", true, { server: client.getServerVersion() });

  const tools = await client.listTools();
  const toolNames = tools.tools.map((t) => t.name);
  server ??= toolNames.includes("slow_progress") ? "py" : "everything";
  const names = NAMES[server];
  emit("tools/list", toolNames.includes(names.slow[0]), { count: toolNames.length });

  const [echoName, echoArgs] = names.echo;
  const r = await client.callTool({ name: echoName, arguments: echoArgs });
  emit("tools/call", !r.isError && textOf(r).includes("hi"), { tool: echoName, text: textOf(r) });

  const [slowName, slowArgs] = names.slow;
  delivered.length = 0;
  const sr = await client.callTool({ name: slowName, arguments: slowArgs }, undefined, {
    onprogress: () => {},
    timeout: 30000,
  });
  const progress = delivered.map((d) => d.progress);
  emit("progress", !sr.isError && progress.length === slowArgs.steps, { progress });

  if (denied) {
    let message = null;
    try {
      const d = await client.callTool({ name: denied, arguments: {} }, undefined, { timeout: 10000 });
      message = d.isError ? textOf(d) : "allowed";
    } catch (e) {
      message = String(e.message || e);
    }
    emit("denied", /Unknown tool/.test(message || ""), { message });
  }

  const res = await client.listResources();
  emit("resources/list", res.resources.length > 0, { count: res.resources.length });
  const rr = await client.readResource({ uri: res.resources[0].uri });
  emit("resources/read", rr.contents.length > 0, {});

  const prompts = await client.listPrompts();
  emit("prompts/list", prompts.prompts.length > 0, {});
  const [pName, pArgs] = names.prompt;
  const pr = await client.getPrompt({ name: pName, arguments: pArgs });
  emit("prompts/get", pr.messages.length > 0, {});

  await client.close();
  const posts = http.filter((h) => h.method === "POST");
  emit("http", posts.length > 0 && posts.every((h) => h.status === 202), { exchanges: http });
  emit("done", !failed);
  if (failed) process.exit(1);
}

main().catch((e) => {
  emit("error", false, { error: String(e && e.stack ? e.stack : e) });
  process.exit(1);
});
