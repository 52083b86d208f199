package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDeskSectionValidation(t *testing.T) {
	for _, c := range []struct {
		desk DeskConfig
		want []string // "" valid
	}{
		{DeskConfig{}, nil},
		{DeskConfig{PublicURL: "https://desk.example.com", LinkKeyFile: "/k"}, nil},
		{DeskConfig{PublicURL: "http://127.0.0.1:8090", LinkKeyFile: "/k"}, nil},
		{DeskConfig{LinkKeyFile: "/k"}, []string{"desk.publicURL: required with desk.linkKeyFile"}},
		{DeskConfig{PublicURL: "https://desk.example.com"}, []string{"desk.linkKeyFile: required"}},
		{DeskConfig{PublicURL: "http://desk.example.com", LinkKeyFile: "/k"}, []string{"must be https"}},
		{DeskConfig{PublicURL: "https://desk.example.com/sub", LinkKeyFile: "/k"}, []string{"not an http(s) base URL"}},
		{DeskConfig{PublicURL: "https://desk.example.com", LinkKeyFile: "/k", LinkValidity: -1}, []string{"desk.linkValidity"}},
	} {
		errs := c.desk.validate()
		if len(c.want) == 0 {
			require.Empty(t, errs, "%+v", c.desk)
			continue
		}
		require.NotEmpty(t, errs, "%+v", c.desk)
		for _, w := range c.want {
			require.Contains(t, errorsText(errs), w)
		}
	}
	server := DeskConfig{PublicURL: "https://desk.example.com", LinkKeyFile: "/k", OperatorTenantID: "not-a-guid", Authority: "http://login"}
	err := server.ValidateServer()
	require.Error(t, err)
	for _, w := range []string{"desk.clientId: required", "desk.clientSecretFile: required", "desk.operatorTenantId", "operatorGroupId go together", "desk.authority"} {
		require.Contains(t, err.Error(), w)
	}
}

func TestDeskSignerReadsTheKeyFile(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	require.NoError(t, os.WriteFile(short, []byte("too-short\n"), 0o600))
	_, err := DeskConfig{PublicURL: "https://d", LinkKeyFile: short}.Signer()
	require.ErrorContains(t, err, "desk.linkKeyFile")
	good := filepath.Join(dir, "good")
	require.NoError(t, os.WriteFile(good, []byte(strings.Repeat("k", 64)+"\n"), 0o600))
	s, err := DeskConfig{PublicURL: "https://d", LinkKeyFile: good}.Signer()
	require.NoError(t, err)
	got, err := s.Verify(s.Sign("ns", "wf", "t"))
	require.NoError(t, err)
	require.Equal(t, "t", got.TaskID)
	none, err := DeskConfig{}.Signer()
	require.NoError(t, err)
	require.Nil(t, none, "no desk: no links")
}

func errorsText(errs []error) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString(e.Error() + "\n")
	}
	return b.String()
}
