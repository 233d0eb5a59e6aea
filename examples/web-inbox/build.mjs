// `npm run build`: bundles src/main.ts with esbuild into dist/ next to index.html.
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";

await rm("dist", { recursive: true, force: true });
await mkdir("dist");
await build({
  entryPoints: ["src/main.ts"],
  bundle: true,
  format: "esm",
  target: ["es2022"],
  outfile: "dist/main.js",
  minify: true,
  sourcemap: true,
  logLevel: "warning",
});
await copyFile("index.html", "dist/index.html");
// The service worker is served from the page's folder, so its scope is the page's.
await copyFile("sw.js", "dist/sw.js");
console.log("web inbox built: examples/web-inbox/dist/");
