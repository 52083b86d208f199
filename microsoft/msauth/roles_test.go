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

func TestRolesOfRefusesAnOpaqueTokenWithoutEchoingIt(t *testing.T) {
	_, err := RolesOf("opaque-secret-token")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "opaque-secret-token")
	require.True(t, strings.Contains(err.Error(), "not a readable JWT"))
}

func TestGrantedRolesMapsAMissingConsent(t *testing.T) {
	f, srv := newFake(t)
	f.fail[tenantB] = fakeFailure{status: 400, body: `{"error":"invalid_client","error_description":"AADSTS700016: Application not found in the directory","error_codes":[700016]}`}
	p := newProvider(t, srv, Config{ClientID: clientID, SecretFile: secretFile(t)}, nil)
	s, err := p.NewSession()
	require.NoError(t, err)
	_, err = s.GrantedRoles(context.Background(), tenantB, GraphScope)
	require.ErrorContains(t, err, "adminconsent?client_id="+clientID)
}

// A session has its own cache: its first token is issued now, later calls reuse it, and the
// worker's provider keeps its own token.
func TestSessionHasItsOwnCache(t *testing.T) {
	f, srv := newFake(t)
	var granted atomic.Bool
	f.roles = func(string) []string {
		if granted.Load() {
			return []string{"Directory.Read.All"}
		}
		return nil
	}
	p := newProvider(t, srv, Config{ClientID: clientID, SecretFile: secretFile(t)}, nil)
	ctx := context.Background()
	worker, err := p.Token(ctx, tenantA, GraphScope)
	require.NoError(t, err)
	granted.Store(true)
	s, err := p.NewSession()
	require.NoError(t, err)
	g, err := s.GrantedRoles(ctx, tenantA, GraphScope)
	require.NoError(t, err)
	require.True(t, g.Has("directory.read.all"), "roles compare case-insensitively")
	require.Equal(t, time.Unix(1767225600, 0).UTC(), g.IssuedAt)
	_, err = s.Token(ctx, tenantA, GraphScope)
	require.NoError(t, err)
	require.Equal(t, 2, f.count(tenantA, GraphScope), "one token for the worker, one for the session")
	again, err := p.Token(ctx, tenantA, GraphScope)
	require.NoError(t, err)
	require.Equal(t, worker, again)
}
