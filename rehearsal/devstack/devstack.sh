#!/bin/sh
# The first command of a fresh clone: builds the rehearsal stack, saying what it compiles
# (the first build compiles the embedded Temporal server: about 10 minutes on 2 cores; later
# builds take seconds), then runs it with your flags. Same as `go run ./rehearsal/devstack`,
# which prints nothing while it compiles.
#   rehearsal/devstack/devstack.sh [devstack flags, e.g. --approve manual --headless]
set -eu
cd "$(dirname "$0")/../.."
state=.devstack
bin="$state/bin/devstack"
mkdir -p "$state/bin"
echo "Building the rehearsal stack (go build -v ./rehearsal/devstack)."
echo "The first build compiles the embedded Temporal server and its Web UI: about 10 minutes on"
echo "2 cores. Later builds take seconds. Progress: packages compiled / packages to check."
total=$(go list -deps ./rehearsal/devstack | wc -l | tr -d ' ')
go build -v -o "$bin" ./rehearsal/devstack 2>&1 | awk -v total="$total" '
  /^go: downloading/ { print; next }
  /^#/ || /:[0-9]+:/ { print; next }          # compiler errors pass through
  { n++; if (n == 1 || n % 25 == 0) printf("  compiled %d of at most %d packages, now %s\n", n, total, $0); fflush() }
  END { if (n > 0) printf("  compiled %d packages\n", n); else print "  nothing to compile: the build cache is warm" }'
test -x "$bin" || { echo "devstack.sh: the build failed (see above)" >&2; exit 1; }
echo "Built $bin; starting it."
exec "$bin" "$@"
