package app

import (
	"fmt"

	"go.temporal.io/sdk/log"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// NewLogger builds the zap logger: JSON for production, console for development.
func NewLogger(cfg LogConfig) (*zap.Logger, error) {
	var zc zap.Config
	switch cfg.Format {
	case "console":
		zc = zap.NewDevelopmentConfig()
		zc.DisableStacktrace = true
	case "json", "":
		zc = zap.NewProductionConfig()
	default:
		return nil, fmt.Errorf("log format %q: use json or console", cfg.Format)
	}
	if cfg.Level != "" {
		lvl, err := zapcore.ParseLevel(cfg.Level)
		if err != nil {
			return nil, fmt.Errorf("log level %q: %w", cfg.Level, err)
		}
		zc.Level = zap.NewAtomicLevelAt(lvl)
	}
	if cfg.File != "" && cfg.File != "-" {
		zc.OutputPaths = []string{cfg.File}
		zc.ErrorOutputPaths = []string{cfg.File}
	}
	return zc.Build()
}

// temporalLogger adapts zap to the SDK's logger interface (key-value pairs become fields).
type temporalLogger struct{ z *zap.Logger }

// NewTemporalLogger returns the SDK logger backed by z.
func NewTemporalLogger(z *zap.Logger) log.Logger {
	if z == nil {
		z = zap.NewNop()
	}
	return temporalLogger{z: z.WithOptions(zap.AddCallerSkip(1))}
}

func (l temporalLogger) fields(kv []any) []zap.Field {
	out := make([]zap.Field, 0, len(kv)/2+1)
	for i := 0; i < len(kv); i += 2 {
		if i+1 == len(kv) {
			out = append(out, zap.Any("extra", kv[i]))
			break
		}
		key, ok := kv[i].(string)
		if !ok {
			key = fmt.Sprint(kv[i])
		}
		out = append(out, zap.Any(key, kv[i+1]))
	}
	return out
}

func (l temporalLogger) Debug(msg string, kv ...any) { l.z.Debug(msg, l.fields(kv)...) }
func (l temporalLogger) Info(msg string, kv ...any)  { l.z.Info(msg, l.fields(kv)...) }
func (l temporalLogger) Warn(msg string, kv ...any)  { l.z.Warn(msg, l.fields(kv)...) }
func (l temporalLogger) Error(msg string, kv ...any) { l.z.Error(msg, l.fields(kv)...) }

// With keeps fields for later calls (log.WithLogger).
func (l temporalLogger) With(kv ...any) log.Logger {
	return temporalLogger{z: l.z.With(l.fields(kv)...)}
}
