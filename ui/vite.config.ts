/**
 * Builds the dashboard into operator/dist/ui, where the run API serves it at
 * /ui/ (operator/src/api/ui.ts): it ships with the operator package and its
 * image, and no CDN is involved at run time.
 */
import { fileURLToPath } from "node:url";
import preact from "@preact/preset-vite";
import { defineConfig } from "vite";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/ui/",
  plugins: [preact()],
  logLevel: "warn",
  build: {
    outDir: fileURLToPath(new URL("../operator/dist/ui", import.meta.url)),
    emptyOutDir: true,
    target: "es2022",
    // Small enough to ship whole; a map only helps someone debugging the page.
    sourcemap: true,
  },
});
