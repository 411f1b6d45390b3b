import { defineConfig } from 'vite';

// The dev server proxies the API prefixes to a running `vispyr serve` (UI port 3000), so
// `npm run dev` gives hot reload against real data.
const target = process.env.VISPYR_URL ?? 'http://127.0.0.1:3000';

export default defineConfig({
  build: {
    outDir: process.env.VISPYR_UI_OUT ?? 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    sourcemap: false,
    chunkSizeWarningLimit: 200,
  },
  server: {
    proxy: { '/prom': target, '/tempo': target, '/pyroscope': target, '/loki': { target, ws: true } },
  },
  test: {
    include: ['src/**/*.test.ts'],
  },
} as any);
