# tpx-realtime server image (docs/deployment.md).
#
#   docker build -t tpx-realtime .
#   docker run -p 8080:8080 -v tpx-data:/data -e TPX_ADMIN_TOKEN=… tpx-realtime
#
# Not built in this project's CI (no container runtime there); the steps are the ones CI runs.

# ---- build: compile TypeScript and the native SQLite binding, then drop dev dependencies
FROM node:24-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# package.json's devEngines wants npm >= 11.11 (older npm rewrites the lock file).
RUN npm install -g npm@11
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY packages ./packages
RUN npm install --no-fund --no-audit
COPY bin ./bin
COPY src ./src
COPY bench ./bench
COPY console ./console
RUN npm run build && npm prune --omit=dev --no-fund --no-audit

# ---- runtime: the built app, non-root, data on a volume
FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    TPX_HOST=0.0.0.0 \
    TPX_PORT=8080 \
    TPX_DATA_DIR=/data \
    TPX_LOG_FORMAT=json
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/packages ./packages
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/console ./console
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
# /readyz: 200 when the store and bus answer, 503 while draining. With TPX_TLS_CERT set the port
# speaks TLS only, so the probe does too (the certificate names the public host, not 127.0.0.1).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 CMD \
  node -e "const m=process.env.TPX_TLS_CERT?require('https'):require('http');m.get({host:'127.0.0.1',port:process.env.TPX_PORT,path:'/readyz',rejectUnauthorized:false,timeout:2500},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"
# SIGTERM drains (SPEC §5); give it TPX_SHUTDOWN_DRAIN_MS plus the webhook timeout:
# `docker stop -t 30`, or terminationGracePeriodSeconds on Kubernetes.
STOPSIGNAL SIGTERM
CMD ["node", "bin/tpx.js", "serve"]
