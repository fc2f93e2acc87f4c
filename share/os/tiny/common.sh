# Shared by the scripts of the tiny OS definition (sourced, not executed).

usage() {
  echo "usage: $0 (environment variables as in ganeti-os-interface(7))" >&2
  exit 1
}

case "${1:-}" in
  -h|--help) usage ;;
esac

require() {
  for var in "$@"; do
    eval "value=\${$var:-}"
    if [ -z "$value" ]; then
      echo "$0: required variable $var is not set" >&2
      exit 1
    fi
  done
}

log() {
  if [ "${DEBUG_LEVEL:-0}" != 0 ] || [ "${OS_VARIANT:-}" = verbose ]; then
    echo "tiny: $*" >&2
  fi
}
