package app

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/csp-ops/work365-upgrade/internal/codec"
)

// CodecConfig turns on payload encryption (AES-256-GCM, internal/codec) and, optionally, the
// codec endpoint through which the Web UI and the temporal CLI show payloads decoded. The keys
// come from a file or an environment variable, never from the config file.
type CodecConfig struct {
	// KeysFile holds one "id=base64" key per line, the encrypting key first; the others only
	// decrypt (rotation).
	KeysFile string `yaml:"keysFile,omitempty"`
	// KeysEnv names a variable holding "id=base64[,id=base64…]". With neither, the keys come
	// from W365_PAYLOAD_KEYS if set; otherwise payloads are not encrypted.
	KeysEnv string `yaml:"keysEnv,omitempty"`
	// Server serves the codec endpoint on metrics.address.
	Server CodecServerConfig `yaml:"server,omitempty"`
}

// CodecServerConfig serves Temporal's remote codec protocol at Path on the worker's metrics
// listener: POST {Path}/{namespace}/decode and /encode.
type CodecServerConfig struct {
	// Path is where the endpoint is mounted (e.g. /codec); empty: not served.
	Path string `yaml:"path,omitempty"`
	// Origins may call it from a browser: the Web UI's origin (e.g. http://localhost:8080).
	Origins []string `yaml:"origins,omitempty"`
	// TokenFile or TokenEnv hold a bearer token callers must send (optional).
	TokenFile string `yaml:"tokenFile,omitempty"`
	TokenEnv  string `yaml:"tokenEnv,omitempty"`
}

// validate reports every problem of the codec block, naming the key.
func (c CodecConfig) validate(metricsAddress string) []error {
	var errs []error
	if c.KeysFile != "" && c.KeysEnv != "" {
		errs = append(errs, errors.New("codec: set keysFile or keysEnv, not both"))
	}
	s := c.Server
	if s.Path == "" {
		if len(s.Origins) > 0 || s.TokenFile != "" || s.TokenEnv != "" {
			errs = append(errs, errors.New("codec.server.path: required when the codec server is configured (e.g. /codec)"))
		}
		return errs
	}
	if !strings.HasPrefix(s.Path, "/") || strings.HasSuffix(s.Path, "/") || s.Path == "/metrics" || s.Path == "/healthz" {
		errs = append(errs, fmt.Errorf("codec.server.path: %q must start with / and not end with it, and not be /metrics or /healthz (e.g. /codec)", s.Path))
	}
	if metricsAddress == "" {
		errs = append(errs, errors.New("codec.server: served on metrics.address, which is empty: set metrics.address (e.g. \":9090\")"))
	}
	if s.TokenFile != "" && s.TokenEnv != "" {
		errs = append(errs, errors.New("codec.server: set tokenFile or tokenEnv, not both"))
	}
	for i, o := range s.Origins {
		if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			errs = append(errs, fmt.Errorf("codec.server.origins[%d]: %q is not an origin: write scheme://host[:port], e.g. http://localhost:8080", i, o))
		}
	}
	return errs
}

// Keys loads the payload keys; nil when none are configured.
func (c CodecConfig) Keys() (*codec.Keys, error) {
	return codec.Load(c.KeysFile, c.KeysEnv)
}

// ApplyCodec loads the payload keys and sets the client's data converter: with keys, payloads
// are encrypted; without, they are not, and an encrypted one is refused naming its key ID.
func ApplyCodec(c CodecConfig, o *client.Options, logger *zap.Logger) (*codec.Keys, error) {
	keys, err := c.Keys()
	if err != nil {
		return nil, err
	}
	if o.DataConverter, err = codec.DataConverter(keys); err != nil {
		return nil, err
	}
	if keys == nil {
		logger.Warn("payloads are not encrypted: set codec.keysFile or codec.keysEnv (or " + codec.DefaultKeysEnv + ")")
	} else {
		logger.Info("payloads encrypted", zap.String("activeKey", keys.ActiveID()), zap.Strings("keys", keys.IDs()))
	}
	return keys, nil
}

// CodecHandler is the codec endpoint of the configuration, to be mounted at Server.Path.
func CodecHandler(c CodecConfig, keys *codec.Keys) (http.Handler, error) {
	if keys == nil {
		return nil, errors.New("codec.server: the codec endpoint needs payload keys: set codec.keysFile or codec.keysEnv (or " + codec.DefaultKeysEnv + ")")
	}
	token, err := secretFrom(c.Server.TokenFile, c.Server.TokenEnv, "")
	if err != nil {
		return nil, fmt.Errorf("codec.server: %w", err)
	}
	if c.Server.TokenEnv != "" && token == "" {
		return nil, fmt.Errorf("codec.server.tokenEnv: %s is empty: set it, or drop tokenEnv", c.Server.TokenEnv)
	}
	cd, err := codec.New(keys)
	if err != nil {
		return nil, err
	}
	return http.StripPrefix(c.Server.Path, codec.Handler(cd, codec.ServerOptions{Origins: c.Server.Origins, Token: token})), nil
}

// ServeCodec mounts the codec endpoint on the observability listener when configured.
func (o *Observability) ServeCodec(c CodecConfig, keys *codec.Keys, logger *zap.Logger) error {
	if c.Server.Path == "" {
		return nil
	}
	h, err := CodecHandler(c, keys)
	if err != nil {
		return err
	}
	o.mux.Handle(c.Server.Path+"/", h)
	logger.Info("codec endpoint up", zap.String("path", c.Server.Path), zap.Strings("origins", c.Server.Origins),
		zap.Bool("bearerToken", c.Server.TokenFile != "" || c.Server.TokenEnv != ""))
	return nil
}
