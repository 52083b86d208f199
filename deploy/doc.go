// Package deploy holds no code: its tests check the deployment files in this
// folder (docker-compose's worker.yaml and Temporal setup scripts) against the
// Go code they must agree with.
package deploy
