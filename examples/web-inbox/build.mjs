// `npm run build`: bundles the DOM page (src/main.ts) and the React page
// (src/react-main.tsx) with esbuild into dist/, next to their html.
//
// @notify/web is a file: dependency (a link to clients/web), whose own
// node_modules holds React and the protobuf runtime for its tests. The aliases
// make every import of those resolve here instead, so the bundle has one React
// (two copies break hooks) and one protobuf runtime.
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";

const SHARED = [
  "react",
  "react-dom",
  "@bufbuild/protobuf",
  "@connectrpc/connect",
  "@connectrpc/connect-web",
];

await rm("dist", { recursive: true, force: true });
await mkdir("dist");
await build({
  entryPoints: { main: "src/main.ts", react: "src/react-main.tsx" },
  bundle: true,
  format: "esm",
  target: ["es2022"],
  outdir: "dist",
  minify: true,
  sourcemap: true,
  jsx: "automatic",
  alias: Object.fromEntries(SHARED.map((name) => [name, name])),
  define: { "process.env.NODE_ENV": '"production"' },
  logLevel: "warning",
});
await copyFile("index.html", "dist/index.html");
await copyFile("react.html", "dist/react.html");
// The service worker is served from the page's folder, so its scope is the page's.
await copyFile("sw.js", "dist/sw.js");
console.log("web inbox built: examples/web-inbox/dist/ (index.html, react.html, sw.js)");
