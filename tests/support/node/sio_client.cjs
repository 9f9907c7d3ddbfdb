// The official Socket.IO JavaScript client (socket.io-client 4, the dashboard's own npm package) as
// a test peer: connects with the given transports, subscribes to one symbol, prints "ready", then
// prints one JSON line with the patterns it received (in arrival order) once it has `count`.
// usage: node sio_client.cjs URL TOKEN SYMBOL COUNT TRANSPORTS(comma-separated)
const path = require("path");
const { io } = require(path.join(process.env.TICKSTOCK_WEB, "node_modules", "socket.io-client"));

const [url, token, symbol, count, transports] = process.argv.slice(2);
const received = [];
const socket = io(url, { auth: { token }, transports: transports.split(","), reconnection: false });
const finish = (code, extra) => {
  console.log(JSON.stringify({ patterns: received, transport: socket.io.engine?.transport?.name, ...extra }));
  socket.close();
  process.exit(code);
};
setTimeout(() => finish(1, { error: "timeout" }), 20000);
socket.on("connect_error", (err) => finish(1, { error: String(err.message) }));
socket.on("pattern_detected", (envelope) => {
  received.push(envelope.data.pattern);
  if (received.length >= Number(count)) finish(0, {});
});
socket.on("connect", async () => {
  const ack = await socket.emitWithAck("subscribe_patterns", { symbol });
  if (ack.status !== "success") finish(1, { error: JSON.stringify(ack) });
  const ready = () => console.log("ready " + socket.io.engine.transport.name);
  // With polling first, wait for the upgrade so the events travel the websocket path too.
  if (socket.io.engine.transport.name === "polling" && transports.includes("websocket")) {
    socket.io.engine.once("upgrade", ready);
  } else {
    ready();
  }
});
