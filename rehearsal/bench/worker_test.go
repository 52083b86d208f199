package main

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"

	"github.com/csp-ops/work365-upgrade/internal/codec"
)

func TestHoldRelease(t *testing.T) {
	require.False(t, holdRelease(0, 0, 1000, 1000), "nothing started yet")
	require.False(t, holdRelease(999, 999, 1000, 1000), "one upgrade short")
	require.True(t, holdRelease(1000, 1000, 1000, 1000), "the whole fleet in flight")
	require.True(t, holdRelease(500, 600, 1000, 500), "a hold below the fleet's size")
	// Some tenants finished without anyone (nothing to hold them): once all started, no more come.
	require.True(t, holdRelease(990, 1000, 1000, 1000))
	require.False(t, holdRelease(990, 995, 1000, 1000))
}

func TestGateOpensOnce(t *testing.T) {
	g := newGate()
	select {
	case <-g.ch:
		t.Fatal("a new gate is open")
	default:
	}
	g.open()
	g.open() // a second opener (the hold's end and its deferred open) does not panic
	_, open := <-g.ch
	require.False(t, open)
}

func TestBenchKeysAreTheWorkersKeysFile(t *testing.T) {
	dir := t.TempDir()
	keys, file, err := benchKeys(dir)
	require.NoError(t, err)
	fromFile, err := codec.Load(file, "")
	require.NoError(t, err)
	require.Equal(t, keys.IDs(), fromFile.IDs())
	// The same secret: what this process encrypts, the worker reads.
	c1, err := codec.New(keys)
	require.NoError(t, err)
	c2, err := codec.New(fromFile)
	require.NoError(t, err)
	enc, err := c1.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte("tenant input")}})
	require.NoError(t, err)
	dec, err := c2.Decode(enc)
	require.NoError(t, err)
	require.Equal(t, "tenant input", string(dec[0].GetData()))
	info, err := os.Stat(file)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	b, _ := os.ReadFile(file)
	require.True(t, strings.HasPrefix(string(b), "bench-1="))
}
