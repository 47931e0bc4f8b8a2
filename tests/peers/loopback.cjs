// Preload (`node -r ./loopback.cjs ...`): makes a server that calls
// listen(port) without a host bind to 127.0.0.1 only, so test peers such as
// server-everything never listen on other interfaces, and prints
// `READY <port>` on stdout once it listens (server-everything's own ready
// line, "MCP Streamable HTTP Server listening on port N", goes to stderr).
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if ((typeof args[0] === "number" || typeof args[0] === "string") && (args.length === 1 || typeof args[1] === "function")) {
    args.splice(1, 0, "127.0.0.1");
  }
  this.once("listening", () => console.log(`READY ${this.address().port}`));
  return listen.apply(this, args);
};
