# The TLS sidecar of docker-compose (profile tls): Debian's stunnel in front of the gateway's FIX port.
# See README "TLS with stunnel".
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends stunnel4 && rm -rf /var/lib/apt/lists/*
USER stunnel4
ENTRYPOINT ["stunnel"]
CMD ["/etc/stunnel/sorgw.conf"]
