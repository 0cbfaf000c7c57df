# The image the manifests run (`ferrolb:dev`): the controller, the speaker and ferrolbctl.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ferrolb-controller -p ferrolb-speaker -p ferrolbctl

FROM debian:bookworm-slim
COPY --from=build /src/target/release/ferrolb-controller /src/target/release/ferrolb-speaker /src/target/release/ferrolbctl /usr/local/bin/
