// The official Socket.IO JavaScript client (socket.io-client 4, the dashboard's npm package) as a
// long-lived test peer that follows the README's resume recipe: it subscribes to SYMBOLS and, on
// every reconnect (by itself, to whichever node), subscribes again with `since` = the last offset
// it received per symbol, else the baseline the first ack gave that symbol.
// It prints one JSON line per happening: {"ev": "ack" | "event" | "disconnect" | "connect_error"
// | "reconnect_attempt" | "upgrade", "t": epoch ms, ...}. A line "quit" on stdin closes it.
// usage: node sio_resume.cjs URL TOKEN SYMBOLS(comma-separated) TRANSPORTS(comma-separated)
const path = require("path");
const readline = require("readline");
const { io } = require(path.join(process.env.TICKSTOCK_WEB, "node_modules", "socket.io-client"));

const [url, token, symbolList, transports] = process.argv.slice(2);
const symbols = symbolList.split(",");
const last = {};
const baseline = {};
const say = (ev, extra) => console.log(JSON.stringify({ ev, t: Date.now(), ...extra }));

// The dashboard's reconnection settings (tickstock/web/static/js/socket.js).
const socket = io(url, {
  auth: { token },
  transports: transports.split(","),
  reconnectionDelay: 500,
  reconnectionDelayMax: 5000,
});
socket.on("pattern_detected", (envelope) => {
  last[envelope.data.symbol] = envelope.data.offset;
  say("event", { symbol: envelope.data.symbol, offset: envelope.data.offset });
});
socket.on("connect", async () => {
  const since = {};
  for (const symbol of symbols) {
    const offset = last[symbol] || baseline[symbol];
    if (offset) since[symbol] = offset;
  }
  const ack = await socket.emitWithAck("subscribe_patterns", { symbols, since });
  if (ack.status !== "success") {
    say("error", { ack });
    return;
  }
  for (const [symbol, offset] of Object.entries(ack.offsets)) {
    if (!(symbol in baseline)) baseline[symbol] = offset;
  }
  say("ack", {
    offsets: ack.offsets,
    recovered: ack.recovered,
    replayed: ack.replayed,
    transport: socket.io.engine.transport.name,
  });
});
socket.on("disconnect", (reason) => say("disconnect", { reason }));
socket.on("connect_error", (err) => say("connect_error", { message: String(err.message), type: err.type }));
socket.io.on("reconnect_attempt", (attempt) => say("reconnect_attempt", { attempt }));
socket.io.on("open", () => {
  socket.io.engine.on("upgrade", (transport) => say("upgrade", { transport: transport.name }));
});

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() === "quit") {
    socket.close();
    setTimeout(() => process.exit(0), 300); // the close packet of a long-polling session is a POST
  }
});
