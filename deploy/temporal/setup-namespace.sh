#!/bin/sh
# Creates the namespaces and the custom search attributes the worker writes.
# Runs in temporalio/admin-tools (docker-compose service temporal-namespace)
# once the server is healthy; idempotent (existing namespaces and attributes
# of the same type are left as they are; a type clash fails the job).
#   NAMESPACES  space-separated, default "default"
set -eu

ADDR=${TEMPORAL_ADDRESS:-temporal:7233}
RETENTION=${NAMESPACE_RETENTION:-720h}

i=0
until temporal operator cluster health --address "$ADDR" >/dev/null 2>&1; do
  i=$((i + 1))
  if [ "$i" -ge 60 ]; then
    echo "Temporal at $ADDR is not healthy" >&2
    exit 1
  fi
  sleep 2
done

for NS in ${NAMESPACES:-default}; do
  if temporal operator namespace describe --address "$ADDR" -n "$NS" >/dev/null 2>&1; then
    echo "namespace $NS exists"
  else
    if [ -n "${HISTORY_ARCHIVAL_URI:-}" ]; then
      # The URI of a namespace is fixed once set.
      temporal operator namespace create --address "$ADDR" -n "$NS" --retention "$RETENTION" \
        --history-archival-state enabled --history-uri "$HISTORY_ARCHIVAL_URI"
    else
      temporal operator namespace create --address "$ADDR" -n "$NS" --retention "$RETENTION"
    fi
  fi

  # Keep in sync with searchattr.All() (checked by go test ./deploy/).
  i=0
  until temporal operator search-attribute create --address "$ADDR" -n "$NS" \
    --name WorkFleet        --type Keyword \
    --name WorkTenantId     --type Keyword \
    --name WorkTenantName   --type Keyword \
    --name WorkWave         --type Keyword \
    --name WorkUpgradeStage --type Keyword \
    --name WorkWaitingOn    --type Keyword \
    --name WorkStageSince   --type Datetime \
    --name WorkFromVersion  --type Keyword \
    --name WorkLinkRound    --type Int; do
    # A namespace created a moment ago may not be in every cache yet.
    i=$((i + 1))
    if [ "$i" -ge 10 ]; then
      exit 1
    fi
    sleep 3
  done
  temporal operator search-attribute list --address "$ADDR" -n "$NS"
done
