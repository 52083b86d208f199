package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/csp-ops/work365-upgrade/internal/codec"
)

// PayloadKeysFile is the rehearsal's payload key file in its state folder (created with a new
// key at the first start, reused afterwards so a rerun reads what the last one wrote).
const PayloadKeysFile = "payload-keys"

// rehearsalKeyID names the key a rehearsal generates.
const rehearsalKeyID = "rehearsal-1"

// payloadKeys are the rehearsal's keys: o.PayloadKeys, else the state folder's key file
// (created when missing), else a new key in memory.
func payloadKeys(o Options) (*codec.Keys, error) {
	if o.PayloadKeys != nil {
		return o.PayloadKeys, nil
	}
	if o.StateDir == "" {
		k, err := codec.GenerateKey(rehearsalKeyID)
		if err != nil {
			return nil, err
		}
		return codec.NewKeys(k)
	}
	file := filepath.Join(o.StateDir, PayloadKeysFile)
	keys, err := codec.Load(file, "")
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return keys, err
	}
	k, err := codec.GenerateKey(rehearsalKeyID)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.StateDir, 0o755); err != nil {
		return nil, err
	}
	text := "# Payload keys of this rehearsal (id=base64, the first encrypts). Delete the state folder to start anew.\n" + codec.Format(k)
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		return nil, fmt.Errorf("write the rehearsal's payload key: %w", err)
	}
	return codec.NewKeys(k)
}

// startCodecServer serves the codec endpoint on a free local port for the Web UI on uiPort
// (its origins by both loopback names) and returns its URL.
func (s *Stack) startCodecServer(c *codec.Codec, uiPort int) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("codec server: %w", err)
	}
	var origins []string
	if uiPort != 0 {
		p := strconv.Itoa(uiPort)
		origins = []string{"http://127.0.0.1:" + p, "http://localhost:" + p}
	}
	srv := &http.Server{Handler: codec.Handler(c, codec.ServerOptions{Origins: origins}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	s.cleanup = append(s.cleanup, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String(), nil
}
