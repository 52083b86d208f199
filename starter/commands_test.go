package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func runCLI(args ...string) (string, error) {
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestPlanShowsEachTenantAndStartsNothing(t *testing.T) {
	out, err := runCLI("plan", "../examples/fleet.yaml")
	require.NoError(t, err)
	require.Contains(t, out, "Fleet example: 4 tenants")
	require.Contains(t, out, "wave 1 canary     1 tenants, concurrency 1, approval gate after it")
	require.Contains(t, out, "wave 2 bulk       3 tenants, concurrency 20")
	require.Contains(t, out, "partner center  skipped: indirect reseller")
	require.Contains(t, out, "re-consent tailspin-emea (tenant 1b0c2a52-5a1e-4d55-9f3e-0000000000e4: MFA policies first)")
	require.Contains(t, out, "licence key at vault://work365/licences/northwind")
	require.Contains(t, out, "Nothing was started")
}

func TestLaunchRefusesAnInvalidInventoryBeforeConnecting(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(p, []byte("tenants:\n  - tenantId: nope\n"), 0o600))
	// The address is unreachable: the error must come from the file, before any connection.
	_, err := runCLI("launch", p, "--address", "127.0.0.1:1")
	require.Error(t, err)
	require.Contains(t, err.Error(), p+":2: tenant nope: tenantId")
}

func TestConfirmNeedsAudienceAndWho(t *testing.T) {
	_, err := runCLI("confirm", "wf", "task-1", "--as", "admin", "--by", "me")
	require.ErrorContains(t, err, `audience "admin"`)
	_, err = runCLI("confirm", "wf", "task-1", "--as", "operator")
	require.ErrorContains(t, err, "--by is required")
}
