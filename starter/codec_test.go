package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The starter loads the worker's payload keys before it connects: a wrong keys file or
// variable stops it with where the problem is, not with an undecodable result later.
func TestPayloadKeysAreCheckedBeforeConnecting(t *testing.T) {
	t.Setenv("W365_PAYLOAD_KEYS", "")
	missing := filepath.Join(t.TempDir(), "payload_keys")
	_, err := runCLI("status", "wf", "--address", "127.0.0.1:1", "--payload-keys-file", missing)
	require.ErrorContains(t, err, "read payload keys file")
	require.ErrorContains(t, err, missing)

	t.Setenv("W365_PAYLOAD_KEYS", "2026-11")
	_, err = runCLI("status", "wf", "--address", "127.0.0.1:1")
	require.ErrorContains(t, err, "$W365_PAYLOAD_KEYS:1: a payload key is written id=base64")
}
