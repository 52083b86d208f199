// Package deploy holds the deployment files (docker-compose's worker.yaml, Temporal's
// settings, setup scripts and dynamic config) and reads Temporal's settings for the
// PostgreSQL rehearsal, so that compose and the rehearsal share one source. Its tests check
// these files against the Go code and the module versions they must agree with.
package deploy
