import { defineConfig } from "vite";

// The bundle goes where internal/webui embeds it (go:embed); see
// docs/console.md. `npm run dev` is not used: the console is served by
// tether itself (make dev).
export default defineConfig({
  build: {
    outDir: "../internal/webui/dist/console",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    chunkSizeWarningLimit: 1000,
  },
});
