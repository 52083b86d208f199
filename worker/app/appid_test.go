package app

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Issue 11 item 5: Work 365's app ID has no usable default; the placeholder, the zero GUID or
// nothing at all stop the worker at start with what to set.
func TestWork365AppIDIsRequired(t *testing.T) {
	base := `
microsoft: {clientId: "11111111-1111-1111-1111-111111111111", secretFile: /run/secrets/ms_client_secret}
packagesDir: /var/lib/work365/packages
`
	for _, w := range []string{"", "work365: {appId: \"5b3e7d1c-0a65-4c1e-9d39-365000000365\"}\n", "work365: {appId: \"00000000-0000-0000-0000-000000000000\"}\n", "work365: {appId: not-a-guid}\n"} {
		_, err := LoadConfig(write(t, base+w))
		require.ErrorContains(t, err, "work365.appId", w)
		require.ErrorContains(t, err, "Enterprise applications", w)
	}
	c, err := LoadConfig(write(t, base+"work365: {appId: \"2f6a1a52-7c11-4c8e-a0f5-7d3e2b1c0a99\"}\n"))
	require.NoError(t, err)
	require.Equal(t, "2f6a1a52-7c11-4c8e-a0f5-7d3e2b1c0a99", c.Work365.AppID)
}
