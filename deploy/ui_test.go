package deploy

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
)

// uiWriteActionsOff are ui-server v2.54.1's switches (config/docker.yaml) for every action
// that changes a workflow from the Web UI; each must be "true" in the compose file.
var uiWriteActionsOff = []string{
	"TEMPORAL_DISABLE_WRITE_ACTIONS",
	"TEMPORAL_WORKFLOW_TERMINATE_DISABLED",
	"TEMPORAL_WORKFLOW_CANCEL_DISABLED",
	"TEMPORAL_WORKFLOW_SIGNAL_DISABLED",
	"TEMPORAL_WORKFLOW_UPDATE_DISABLED",
	"TEMPORAL_WORKFLOW_RESET_DISABLED",
	"TEMPORAL_WORKFLOW_PAUSE_DISABLED",
	"TEMPORAL_BATCH_ACTIONS_DISABLED",
	"TEMPORAL_START_WORKFLOW_DISABLED",
	"TEMPORAL_ACTIVITY_COMMANDS_DISABLED",
}

// The compose Web UI is for reading: sign-in is on (OIDC, with a callback and the provider,
// client ID and secret from its env_file) and every write action is off, so changes go
// through the starter and the task desk.
func TestComposeWebUIIsReadOnlyWithSignIn(t *testing.T) {
	ui, ok := readCompose(t).Services["temporal-ui"]
	if !ok {
		t.Fatal("docker-compose.yaml: service temporal-ui is missing")
	}
	env := func(k string) string {
		v, ok := ui.Environment[k]
		if !ok {
			return ""
		}
		return fmt.Sprint(v)
	}
	for _, k := range uiWriteActionsOff {
		if env(k) != "true" {
			t.Errorf("docker-compose.yaml: temporal-ui sets %s=%q; it must be \"true\" (the Web UI is read-only: changes go through the starter and the task desk)", k, env(k))
		}
	}
	if env("TEMPORAL_AUTH_ENABLED") != "true" || env("TEMPORAL_AUTH_TYPE") != "oidc" {
		t.Errorf("docker-compose.yaml: temporal-ui must sign people in (TEMPORAL_AUTH_ENABLED \"true\", TEMPORAL_AUTH_TYPE oidc)")
	}
	if !strings.HasSuffix(env("TEMPORAL_AUTH_CALLBACK_URL"), "/auth/sso/callback") {
		t.Errorf("docker-compose.yaml: temporal-ui TEMPORAL_AUTH_CALLBACK_URL %q must end in /auth/sso/callback (ui-server's route)", env("TEMPORAL_AUTH_CALLBACK_URL"))
	}
	var files []string
	switch v := ui.EnvFile.(type) {
	case string:
		files = []string{v}
	case []any:
		for _, f := range v {
			files = append(files, fmt.Sprint(f))
		}
	}
	if len(files) != 1 || !strings.Contains(files[0], "deploy/secrets/temporal_ui_auth.env") {
		t.Fatalf("docker-compose.yaml: temporal-ui must read its sign-in secrets from deploy/secrets/temporal_ui_auth.env (env_file), got %v", files)
	}
	f, err := os.Open("secrets/temporal_ui_auth.env.example")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && !strings.HasPrefix(k, "#") {
			keys[k] = v
		}
	}
	for _, k := range []string{"TEMPORAL_AUTH_PROVIDER_URL", "TEMPORAL_AUTH_CLIENT_ID", "TEMPORAL_AUTH_CLIENT_SECRET"} {
		if keys[k] == "" {
			t.Errorf("deploy/secrets/temporal_ui_auth.env.example: %s is missing", k)
		}
		if _, set := ui.Environment[k]; set {
			t.Errorf("docker-compose.yaml: temporal-ui sets %s in the file; it belongs in the env_file", k)
		}
	}
	if !strings.HasPrefix(keys["TEMPORAL_AUTH_PROVIDER_URL"], "https://login.microsoftonline.com/") {
		t.Errorf("the provider is Microsoft Entra ID: TEMPORAL_AUTH_PROVIDER_URL %q", keys["TEMPORAL_AUTH_PROVIDER_URL"])
	}
}
