import { defineConfig } from "vitest/config";

// The hooks' tests pick happy-dom per file (`@vitest-environment happy-dom`);
// the core runs in plain node, as it does in a worker or a server-side render.
export default defineConfig({
  test: {
    include: ["test/**/*.test.{ts,tsx}"],
    environment: "node",
    restoreMocks: true,
  },
});
