package app

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/csp-ops/work365-upgrade/ops/desk/link"
)

// DeskConfig is the task desk's section of the worker configuration (desk:). The worker reads
// publicURL, linkKeyFile and linkValidity to put a signed desk link in every task
// notification; the desk binary (worker/desk) reads the whole section. Secrets (the link key,
// the desk app's client secret) stay in files the section names.
type DeskConfig struct {
	// PublicURL is the desk's address as people reach it (https://desk.example.com); empty:
	// no desk, notifications carry no desk link.
	PublicURL string `yaml:"publicURL,omitempty"`
	// LinkKeyFile holds the key that signs task links (at least 32 random bytes); the worker
	// and the desk read the same file.
	LinkKeyFile string `yaml:"linkKeyFile,omitempty"`
	// LinkValidity is how long a task link opens its task (default 168h, 7 days); every
	// reminder carries a fresh one.
	LinkValidity time.Duration `yaml:"linkValidity,omitempty"`
	// Listen is the desk's listen address (default :8090).
	Listen string `yaml:"listen,omitempty"`
	// ClientID is the desk's own Entra app registration (multi-tenant, web platform, redirect
	// URI publicURL + /auth/callback), not the orchestrator's.
	ClientID string `yaml:"clientId,omitempty"`
	// ClientSecretFile holds that app's client secret.
	ClientSecretFile string `yaml:"clientSecretFile,omitempty"`
	// Authority is where people sign in (default https://login.microsoftonline.com/organizations:
	// any work account, so the desk can tell a person from the wrong tenant who they are).
	Authority string `yaml:"authority,omitempty"`
	// OperatorTenantID is the partner's own tenant, where operators sign in.
	OperatorTenantID string `yaml:"operatorTenantId,omitempty"`
	// OperatorGroupID is the object ID of the Entra group whose members may confirm operator
	// tasks (the desk app emits group IDs in its ID tokens: groupMembershipClaims).
	OperatorGroupID string `yaml:"operatorGroupId,omitempty"`
}

// DefaultDeskListen and DefaultDeskAuthority are the desk's defaults.
const (
	DefaultDeskListen    = ":8090"
	DefaultDeskAuthority = "https://login.microsoftonline.com/organizations"
)

// Enabled reports whether notifications carry desk links.
func (c DeskConfig) Enabled() bool { return c.PublicURL != "" }

// Signer returns the link signer of the configuration (nil when the desk is not configured).
func (c DeskConfig) Signer() (*link.Signer, error) {
	if !c.Enabled() {
		return nil, nil
	}
	s, err := link.Load(c.LinkKeyFile, c.LinkValidity)
	if err != nil {
		return nil, fmt.Errorf("desk.linkKeyFile: %w", err)
	}
	return s, nil
}

var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// validate checks what the worker needs of the section.
func (c DeskConfig) validate() []error {
	var errs []error
	if c.PublicURL == "" {
		if c.LinkKeyFile != "" {
			errs = append(errs, errors.New("desk.publicURL: required with desk.linkKeyFile (the desk's address as people reach it, e.g. https://desk.example.com)"))
		}
		return errs
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		errs = append(errs, fmt.Errorf("desk.publicURL: %q is not an http(s) base URL: give the desk's address, e.g. https://desk.example.com", c.PublicURL))
	} else if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		errs = append(errs, fmt.Errorf("desk.publicURL: %q must be https (people sign in through it; plain http only on localhost)", c.PublicURL))
	}
	if c.LinkKeyFile == "" {
		errs = append(errs, errors.New("desk.linkKeyFile: required with desk.publicURL (a file of at least 32 random bytes: openssl rand -base64 48)"))
	}
	if c.LinkValidity < 0 {
		errs = append(errs, fmt.Errorf("desk.linkValidity: %v must not be negative (e.g. 168h)", c.LinkValidity))
	}
	return errs
}

// ValidateServer checks what the desk binary needs beyond what the worker needs.
func (c DeskConfig) ValidateServer() error {
	errs := c.validate()
	if c.PublicURL == "" {
		errs = append(errs, errors.New("desk.publicURL: required (the desk's address as people reach it)"))
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("desk.clientId: required (the desk's own Entra app registration, multi-tenant, redirect URI <publicURL>/auth/callback)"))
	}
	if c.ClientSecretFile == "" {
		errs = append(errs, errors.New("desk.clientSecretFile: required (the file holding the desk app's client secret)"))
	}
	if c.Authority != "" {
		if u, err := url.Parse(c.Authority); err != nil || u.Scheme != "https" || u.Host == "" || strings.Trim(u.Path, "/") == "" {
			errs = append(errs, fmt.Errorf("desk.authority: %q is not an https authority with a tenant, e.g. %s", c.Authority, DefaultDeskAuthority))
		}
	}
	if c.OperatorTenantID != "" && !guidPattern.MatchString(c.OperatorTenantID) {
		errs = append(errs, fmt.Errorf("desk.operatorTenantId: %q is not a tenant ID (GUID)", c.OperatorTenantID))
	}
	if c.OperatorGroupID != "" && !guidPattern.MatchString(c.OperatorGroupID) {
		errs = append(errs, fmt.Errorf("desk.operatorGroupId: %q is not a group object ID (GUID)", c.OperatorGroupID))
	}
	if (c.OperatorTenantID == "") != (c.OperatorGroupID == "") {
		errs = append(errs, errors.New("desk: operatorTenantId and operatorGroupId go together (operators sign in to the partner's tenant and must be in the group); without them the desk refuses operator tasks"))
	}
	return errors.Join(errs...)
}

// DeskDefaults fills what the desk section leaves empty.
func (c *DeskConfig) DeskDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultDeskListen
	}
	if c.Authority == "" {
		c.Authority = DefaultDeskAuthority
	}
	if c.LinkValidity == 0 {
		c.LinkValidity = link.DefaultValidity
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
