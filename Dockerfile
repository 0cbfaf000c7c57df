# syntax=docker/dockerfile:1
# The image the manifests run (`ferrolb:dev`): the controller, the speaker and ferrolbctl.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The registry and the build tree live in BuildKit caches: a change to FerroLB's code rebuilds
# FerroLB, not its dependencies. The binaries are copied out of the cached tree.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ferrolb-controller -p ferrolb-speaker -p ferrolbctl \
    && mkdir /out \
    && cp target/release/ferrolb-controller target/release/ferrolb-speaker target/release/ferrolbctl /out/

# glibc and CA certificates, no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
# Not root by default: the controller needs nothing more. The speaker's manifest runs it as
# root with NET_RAW only (raw sockets for ARP and NDP).
USER 65532:65532
