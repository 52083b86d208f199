package msauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func unsignedJWT(claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "RS256"})
	c, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + ".c2ln"
}

// A permission granted after the worker cached a token shows in FreshRoles at once, and the
// worker's cached token stays as it was (FreshRoles never touches the worker's cache).
func TestFreshRolesBypassesTheCache(t *testing.T) {
	f, srv := newFake(t)
	var granted atomic.Bool
	f.roles = func(string) []string {
		if granted.Load() {
			return []string{"User.Read.All", "Directory.Read.All"}
		}
		return []string{"User.Read.All"}
	}
	p := newProvider(t, srv, Config{ClientID: clientID, SecretFile: secretFile(t)}, nil)
	ctx := context.Background()

	cached, err := p.Token(ctx, tenantA, GraphScope)
	require.NoError(t, err)
	g, err := p.FreshRoles(ctx, tenantA, GraphScope)
	require.NoError(t, err)
	require.Equal(t, []string{"User.Read.All"}, g.Roles)
	require.False(t, g.Has("Directory.Read.All"))
	require.Equal(t, time.Unix(1767225600, 0).UTC(), g.IssuedAt)

	granted.Store(true)
	g, err = p.FreshRoles(ctx, tenantA, GraphScope)
	require.NoError(t, err)
	require.True(t, g.Has("directory.read.all"), "roles compare case-insensitively")
	require.Equal(t, 3, f.count(tenantA, GraphScope), "each FreshRoles asks Entra ID")

	again, err := p.Token(ctx, tenantA, GraphScope)
	require.NoError(t, err)
	require.Equal(t, cached, again, "the worker's cache is untouched")
}

func TestRolesOfRefusesAnOpaqueTokenWithoutEchoingIt(t *testing.T) {
	_, err := RolesOf("opaque-secret-token")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "opaque-secret-token")
	require.True(t, strings.Contains(err.Error(), "not a readable JWT"))
}

func TestFreshRolesMapsAMissingConsent(t *testing.T) {
	f, srv := newFake(t)
	f.fail[tenantB] = fakeFailure{status: 400, body: `{"error":"invalid_client","error_description":"AADSTS700016: Application not found in the directory","error_codes":[700016]}`}
	p := newProvider(t, srv, Config{ClientID: clientID, SecretFile: secretFile(t)}, nil)
	_, err := p.FreshRoles(context.Background(), tenantB, GraphScope)
	require.ErrorContains(t, err, "adminconsent?client_id="+clientID)
}
