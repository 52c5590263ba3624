# Stand-in for redis:7-bookworm: Debian's Redis 7 with the official image's entrypoint contract.
ARG BASE
FROM ${BASE}
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
VOLUME /data
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
