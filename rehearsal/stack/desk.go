package stack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/csp-ops/work365-upgrade/ops"
	"github.com/csp-ops/work365-upgrade/ops/desk"
	"github.com/csp-ops/work365-upgrade/worker/app"
)

// startDesk runs the task desk as production does — its own Temporal client naming the desk,
// its own sign-in through MSAL against the simulated Entra ID — on a loopback port, with a new
// link key in dir. It returns the desk section the worker's configuration gets.
func (s *Stack) startDesk(ctx context.Context, address string, dc converter.DataConverter, dir string) (app.DeskConfig, error) {
	// With a state folder the key is kept there, so the links of a resumed rehearsal still open.
	keyFile := filepath.Join(dir, "desk-link-key")
	if s.opts.StateDir != "" {
		keyFile = filepath.Join(s.opts.StateDir, "desk-link-key")
	}
	if _, err := os.Stat(keyFile); err != nil {
		key := make([]byte, 48)
		if _, err := rand.Read(key); err != nil {
			return app.DeskConfig{}, err
		}
		if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)), 0o600); err != nil {
			return app.DeskConfig{}, err
		}
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", s.opts.DeskPort))
	if err != nil {
		return app.DeskConfig{}, fmt.Errorf("the task desk's port: %w", err)
	}
	scn := s.Cloud.Scenario()
	cfg := app.DeskConfig{PublicURL: "http://" + l.Addr().String(), LinkKeyFile: keyFile, ClientID: scn.Desk.ClientID,
		Authority: app.DefaultDeskAuthority}
	if scn.Partner != nil {
		cfg.OperatorTenantID, cfg.OperatorGroupID = scn.Partner.TenantID, scn.Partner.OperatorsGroup.ObjectID
	}
	cfg.DeskDefaults()
	links, err := cfg.Signer()
	if err != nil {
		_ = l.Close()
		return cfg, err
	}
	c, err := client.DialContext(ctx, client.Options{HostPort: address, Namespace: s.opts.Namespace, DataConverter: dc,
		Identity: desk.ClientName + "@rehearsal", Logger: app.NewTemporalLogger(s.opts.Logger)})
	if err != nil {
		_ = l.Close()
		return cfg, fmt.Errorf("the task desk's Temporal client: %w", err)
	}
	s.cleanup = append(s.cleanup, c.Close)
	entra, err := desk.NewEntra(cfg.Authority, scn.Desk.ClientID, scn.Desk.ClientSecret,
		// The simulated cloud issues ID tokens on its own clock (faster than real time).
		desk.EntraOptions{HTTPClient: s.Cloud.HTTPClient(), NoInstanceDiscovery: true, Now: func() time.Time { return s.Cloud.Clock().Now() }})
	if err != nil {
		_ = l.Close()
		return cfg, err
	}
	d, err := desk.New(desk.Config{PublicURL: cfg.PublicURL, Namespace: s.opts.Namespace, Links: links, SignIn: entra,
		Logger: s.opts.Logger.Named("desk"),
		Backend: desk.TemporalBackend{Ops: ops.Ops{Client: c, TaskQueue: s.opts.TaskQueue}, DataConverter: dc,
			OperatorTenantID: cfg.OperatorTenantID, OperatorGroupID: cfg.OperatorGroupID}})
	if err != nil {
		_ = l.Close()
		return cfg, err
	}
	srv := &http.Server{Handler: d, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	s.DeskURL, s.DeskLinkKeyFile = cfg.PublicURL, keyFile
	s.cleanup = append(s.cleanup, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = srv.Close()
		}
	})
	return cfg, nil
}
