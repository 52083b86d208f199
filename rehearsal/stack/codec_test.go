package stack

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/internal/codec"
)

// A rehearsal with a state folder creates its key there once and reads it on every rerun, so
// a resumed rehearsal decrypts what the last one wrote.
func TestRehearsalKeyLivesInTheStateFolder(t *testing.T) {
	dir := t.TempDir()
	first, err := payloadKeys(Options{StateDir: dir})
	require.NoError(t, err)
	file := filepath.Join(dir, PayloadKeysFile)
	info, err := os.Stat(file)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "only its owner reads the key")

	again, err := payloadKeys(Options{StateDir: dir})
	require.NoError(t, err)
	require.Equal(t, first.IDs(), again.IDs())
	dc1, err := codec.DataConverter(first)
	require.NoError(t, err)
	dc2, err := codec.DataConverter(again)
	require.NoError(t, err)
	p, err := dc1.ToPayload("https://contoso.crm.dynamics.com")
	require.NoError(t, err)
	var back string
	require.NoError(t, dc2.FromPayload(p, &back), "the rerun's key is the first run's")
	require.Equal(t, "https://contoso.crm.dynamics.com", back)

	// Without a state folder, a key in memory; given keys win.
	mem, err := payloadKeys(Options{})
	require.NoError(t, err)
	require.NotNil(t, mem)
	k, err := codec.GenerateKey("given")
	require.NoError(t, err)
	given, err := codec.NewKeys(k)
	require.NoError(t, err)
	got, err := payloadKeys(Options{StateDir: dir, PayloadKeys: given})
	require.NoError(t, err)
	require.Equal(t, []string{"given"}, got.IDs())

	// A broken key file is reported, not replaced.
	require.NoError(t, os.WriteFile(file, []byte("garbage\n"), 0o600))
	_, err = payloadKeys(Options{StateDir: dir})
	require.ErrorContains(t, err, file+":1:")
}
