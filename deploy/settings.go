package deploy

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The files docker-compose.yaml mounts or reads, embedded so that the PostgreSQL rehearsal
// runs with exactly what the compose topology runs with.
var (
	//go:embed temporal/temporal.env
	temporalEnv []byte
	//go:embed temporal/dynamicconfig/production-sql.yaml
	dynamicConfig []byte
)

// TemporalEnvFile and DynamicConfigFile are the paths of those files in this folder.
const (
	TemporalEnvFile   = "deploy/temporal/temporal.env"
	DynamicConfigFile = "deploy/temporal/dynamicconfig/production-sql.yaml"
)

// TemporalSettings are Temporal's settings shared by docker-compose.yaml (env_file) and the
// PostgreSQL rehearsal: persistence, shards, connection pools, namespaces and retention.
type TemporalSettings struct {
	// Env is every KEY=VALUE of temporal.env.
	Env map[string]string
	// Plugin is the SQL plugin (DB), e.g. postgres12.
	Plugin string
	// User is the database user (POSTGRES_USER).
	User string
	// Database and VisibilityDatabase are the two databases (DBNAME, VISIBILITY_DBNAME).
	Database, VisibilityDatabase string
	// NumHistoryShards is fixed for the life of the database.
	NumHistoryShards int32
	// MaxConns, MaxIdleConns and MaxConnLifetime size each SQL connection pool.
	MaxConns, MaxIdleConns int
	MaxConnLifetime        time.Duration
	// Namespaces are created with Retention by setup-namespace.sh.
	Namespaces []string
	Retention  time.Duration
	// HistoryArchivalURI is where namespaces archive closed workflows' histories.
	HistoryArchivalURI string
}

// Temporal reads temporal.env; errors name file:line.
func Temporal() (TemporalSettings, error) {
	env, err := parseEnv(TemporalEnvFile, temporalEnv)
	if err != nil {
		return TemporalSettings{}, err
	}
	s := TemporalSettings{Env: env, Plugin: env["DB"], User: env["POSTGRES_USER"], Database: env["DBNAME"],
		VisibilityDatabase: env["VISIBILITY_DBNAME"], Namespaces: strings.Fields(env["NAMESPACES"]), HistoryArchivalURI: env["HISTORY_ARCHIVAL_URI"]}
	var errs []string
	for _, k := range []string{"DB", "POSTGRES_USER", "DBNAME", "VISIBILITY_DBNAME", "NAMESPACES", "HISTORY_ARCHIVAL_URI"} {
		if env[k] == "" {
			errs = append(errs, k+" is required")
		}
	}
	atoi := func(k string) int {
		n, err := strconv.Atoi(env[k])
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Sprintf("%s=%q must be a positive number", k, env[k]))
		}
		return n
	}
	dur := func(k string) time.Duration {
		d, err := time.ParseDuration(env[k])
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Sprintf("%s=%q must be a positive duration such as 720h", k, env[k]))
		}
		return d
	}
	s.NumHistoryShards = int32(atoi("NUM_HISTORY_SHARDS"))
	s.MaxConns, s.MaxIdleConns = atoi("SQL_MAX_CONNS"), atoi("SQL_MAX_IDLE_CONNS")
	s.MaxConnLifetime, s.Retention = dur("SQL_MAX_CONN_TIME"), dur("NAMESPACE_RETENTION")
	if len(errs) > 0 {
		return s, fmt.Errorf("%s: %s", TemporalEnvFile, strings.Join(errs, "; "))
	}
	return s, nil
}

// DynamicConfig is the compose server's dynamic config file (production-sql.yaml).
func DynamicConfig() []byte { return bytes.Clone(dynamicConfig) }

// parseEnv reads docker-compose env_file syntax: KEY=VALUE lines, # comments, blank lines;
// values are taken literally (no quotes, no interpolation).
func parseEnv(name string, data []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		k, v, ok := strings.Cut(text, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("%s:%d: %q is not KEY=VALUE", name, line, text)
		}
		if strings.ContainsAny(v, `"'`) {
			return nil, fmt.Errorf("%s:%d: %s: no quotes (docker-compose v1 would keep them in the value)", name, line, k)
		}
		out[strings.TrimSpace(k)] = v
	}
	return out, sc.Err()
}
