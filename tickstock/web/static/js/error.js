// Error pages (403, 404) keep the shell: header, theme and connection state.
import { startShell } from "./app.js";

startShell();
