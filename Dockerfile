# syntax=docker/dockerfile:1
# Parley: one build, two images.
#   app     - the NestJS backend, non-root, production dependencies only (docker-compose: backend-*)
#   gateway - nginx with the built SPA and nginx/nginx.conf                 (docker-compose: nginx)
# The build stage runs the same commands as CI: npm ci, npm run build.

FROM node:24-bookworm AS build
WORKDIR /src
# Manifests first, so the dependency layer is cached until they change.
# (node:24-bookworm has python3, make and g++ for better-sqlite3's native build.)
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json angular.json nest-cli.json ./
COPY server ./server
COPY client ./client
COPY scripts ./scripts
RUN npm run build
# Drop dev dependencies but keep optional ones (pdfjs-dist needs @napi-rs/canvas).
RUN npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim AS app
ENV NODE_ENV=production \
    PORT=3000 \
    DATA_DIR=/app/data
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# Files and (without PostgreSQL) the SQLite database live on a volume owned by the unprivileged user.
RUN mkdir -p /app/data && chown node:node /app/data
USER node
VOLUME ["/app/data"]
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/api/v1/health/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node receives SIGTERM directly (graceful drain: README, "Health, shutdown and outages"): as PID 1 here, or under
# docker-compose.yml's `init: true`, which passes signals on and reaps a scanner's leftover children.
# The flags are `npm start`'s: a larger young generation (docs/performance.md, round 4) and a
# larger old-generation growing factor, so full GCs come rarely under load (round 9).
CMD ["node", "--max-semi-space-size=32", "--heap-growing-percent=300", "dist/server/main.js"]

FROM nginx:1.27-alpine AS gateway
COPY nginx/nginx.conf /etc/nginx/nginx.conf
COPY --from=build /src/dist/client/browser /usr/share/nginx/html
EXPOSE 80 443
