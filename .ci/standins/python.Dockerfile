# Stand-in for python:3.11-slim-bookworm: Debian's Python 3.11 with pip usable as root.
ARG BASE
FROM ${BASE}
ENV LANG=C.UTF-8
# The official image's pip installs system-wide; Debian marks its Python as externally managed.
RUN rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED
# pip reaches the same index, through the same trusted certificates, as the machine that builds.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY pip.conf /etc/pip.conf
CMD ["python3"]
