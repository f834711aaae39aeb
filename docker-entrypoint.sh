#!/bin/sh
# Container entrypoint: run one Fieldcast role, or any other command as given.
#   web [options]        the API under gunicorn on 0.0.0.0:8000
#   worker [options]     an RQ worker
#   scheduler            the periodic job scheduler
#   migrate [options]    apply database migrations, then exit
set -eu

if [ "$#" -eq 0 ]; then
    set -- web
fi

case "$1" in
    web)
        shift
        # gunicorn workers share metrics through files here; stale files from a
        # previous run would be counted again, so start from an empty directory.
        if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
            mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
            find "$PROMETHEUS_MULTIPROC_DIR" -mindepth 1 -delete
        fi
        exec fieldcast web --bind 0.0.0.0:8000 "$@"
        ;;
    worker)
        shift
        exec fieldcast worker "$@"
        ;;
    scheduler)
        shift
        exec fieldcast scheduler "$@"
        ;;
    migrate)
        shift
        exec fieldcast migrate "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
