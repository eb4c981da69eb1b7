FROM debian:bookworm
