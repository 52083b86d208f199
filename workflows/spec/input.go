package spec

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The checks in this file guard what operators type and what reaches Microsoft, terminals and
// chat: they run where input enters (the starter, Update validators, the worker before a token
// is minted), never inside a running workflow, so tightening them never changes a history.

// Dataverse host suffixes per cloud. A '*' stands for any number of digits (crm, crm4, crm11).
// Only the public cloud is allowed unless the worker config (dataverse.clouds) says otherwise.
const (
	CloudPublic    = "public"     // commercial and GCC: {org}.crm[N].dynamics.com
	CloudUSGovHigh = "usgov-high" // GCC High: {org}.crm.microsoftdynamics.us
	CloudUSGovDoD  = "usgov-dod"  // DoD: {org}.crm.appsplatform.us
	CloudChina     = "china"      // operated by 21Vianet: {org}.crm.dynamics.cn
)

// CloudHostSuffixes returns the Dataverse host suffixes of a cloud; false for an unknown cloud.
// https://learn.microsoft.com/en-us/power-apps/developer/data-platform/discovery-service
func CloudHostSuffixes(cloud string) ([]string, bool) {
	switch cloud {
	case CloudPublic:
		return []string{".crm*.dynamics.com"}, true
	case CloudUSGovHigh:
		return []string{".crm.microsoftdynamics.us"}, true
	case CloudUSGovDoD:
		return []string{".crm.appsplatform.us"}, true
	case CloudChina:
		return []string{".crm.dynamics.cn"}, true
	}
	return nil, false
}

// Clouds lists the cloud names CloudHostSuffixes knows.
func Clouds() []string { return []string{CloudPublic, CloudUSGovHigh, CloudUSGovDoD, CloudChina} }

// DefaultOrgHostSuffixes is the allow-list when none is configured: the public cloud.
func DefaultOrgHostSuffixes() []string {
	s, _ := CloudHostSuffixes(CloudPublic)
	return s
}

// HostSuffixesFor expands cloud names and extra suffixes into one allow-list, refusing unknown
// clouds and malformed suffixes. No clouds and no suffixes: the public cloud.
func HostSuffixesFor(clouds, extra []string) ([]string, error) {
	var out []string
	var errs []error
	for _, c := range clouds {
		s, ok := CloudHostSuffixes(strings.ToLower(strings.TrimSpace(c)))
		if !ok {
			errs = append(errs, fmt.Errorf("cloud %q is not one of %s", c, strings.Join(Clouds(), ", ")))
			continue
		}
		out = append(out, s...)
	}
	for _, s := range extra {
		if err := CheckHostSuffix(s); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, strings.ToLower(s))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(out) == 0 {
		out = DefaultOrgHostSuffixes()
	}
	return out, nil
}

var suffixLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?\*?$`)

// CheckHostSuffix checks an allow-list entry: ".crm*.dynamics.com", ".crm.dynamics.cn".
func CheckHostSuffix(s string) error {
	labels := strings.Split(strings.ToLower(strings.TrimPrefix(s, ".")), ".")
	if !strings.HasPrefix(s, ".") || len(labels) < 2 {
		return fmt.Errorf("host suffix %q must start with a dot and name a domain, like .crm.dynamics.com", s)
	}
	for _, l := range labels {
		if !suffixLabelRE.MatchString(l) {
			return fmt.Errorf("host suffix %q: label %q is not a DNS label (a '*' may end a label: digits)", s, l)
		}
	}
	return nil
}

var hostLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// CheckOrgURL checks that orgURL is a Dataverse environment URL on an allowed host: https, a
// DNS name (not an IP) ending in one of suffixes (nil: DefaultOrgHostSuffixes), and nothing
// else — no user name or password, port, path, query or fragment. It returns the host in lower
// case. Errors never repeat what could be a credential (user:pass@, a query).
func CheckOrgURL(orgURL string, suffixes []string) (string, error) {
	const like = "like https://contoso.crm.dynamics.com (Power Platform admin center > Environment > Environment URL)"
	u, err := url.Parse(strings.TrimSpace(orgURL))
	if err != nil || u.Opaque != "" {
		return "", errors.New("is not a URL " + like)
	}
	if u.Scheme != "https" {
		return "", fmt.Errorf("must start with https://, %s", like)
	}
	host := strings.ToLower(u.Hostname())
	shown := "https://" + host
	switch {
	case u.User != nil:
		return "", fmt.Errorf("%s carries a user name or password (…@): remove it; the orchestrator signs in with its own app", shown)
	case u.Port() != "" || strings.HasSuffix(u.Host, ":"):
		return "", fmt.Errorf("%s names a port: Dataverse listens on 443 only; remove the port", shown)
	case u.RawQuery != "" || u.ForceQuery:
		return "", fmt.Errorf("%s has a query (?…): remove it, the environment URL has none", shown)
	case u.Fragment != "" || u.RawFragment != "" || strings.Contains(orgURL, "#"):
		return "", fmt.Errorf("%s has a fragment (#…): remove it", shown)
	case u.Path != "" && u.Path != "/":
		return "", fmt.Errorf("%s has a path: use the environment URL alone, %s", shown, like)
	case host == "":
		return "", errors.New("names no host, " + like)
	case net.ParseIP(host) != nil:
		return "", fmt.Errorf("%s is an IP address: use the environment's DNS name, %s", shown, like)
	}
	if len(host) > 253 {
		return "", errors.New("host is longer than 253 characters")
	}
	labels := strings.Split(host, ".")
	for _, l := range labels {
		if !hostLabelRE.MatchString(l) {
			return "", fmt.Errorf("%s is not a DNS host name", shown)
		}
	}
	if len(suffixes) == 0 {
		suffixes = DefaultOrgHostSuffixes()
	}
	for _, s := range suffixes {
		if hostMatches(labels, s) {
			return host, nil
		}
	}
	return "", fmt.Errorf("%s is not a Dataverse host allowed here (allowed: %s; other clouds are opt-in in the worker config, dataverse.clouds)",
		shown, strings.Join(suffixes, ", "))
}

// hostMatches reports whether the host's labels end with the suffix's and at least one label
// (the organisation) comes before them.
func hostMatches(host []string, suffix string) bool {
	pat := strings.Split(strings.ToLower(strings.TrimPrefix(suffix, ".")), ".")
	if len(host) <= len(pat) {
		return false
	}
	tail := host[len(host)-len(pat):]
	for i, p := range pat {
		l := tail[i]
		if base, ok := strings.CutSuffix(p, "*"); ok {
			rest, ok := strings.CutPrefix(l, base)
			if !ok || strings.Trim(rest, "0123456789") != "" {
				return false
			}
			continue
		}
		if l != p {
			return false
		}
	}
	return true
}

var packageSegmentRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// CheckPackageRef checks a solution file reference: a file name, or a path of at most four
// plain names, inside the worker's packages folder, ending in .zip (a Dataverse solution file).
// "..", absolute paths, backslashes and hidden names are refused.
func CheckPackageRef(ref string) error {
	const want = "must be a .zip file name inside the worker's packages folder, like work365/Work365_2_5_0_1_managed.zip"
	if ref == "" || len(ref) > 255 || strings.ContainsAny(ref, `\`) || strings.HasPrefix(ref, "/") {
		return errors.New(want + " (no absolute path, no backslash)")
	}
	segs := strings.Split(ref, "/")
	if len(segs) > 4 {
		return errors.New(want + " (at most four names deep)")
	}
	for _, s := range segs {
		if !packageSegmentRE.MatchString(s) {
			return fmt.Errorf("%s: %q is not a plain name (letters, digits, . _ -, not starting with a dot)", want, Printable(s, 64))
		}
	}
	if !strings.HasSuffix(strings.ToLower(ref), ".zip") {
		return errors.New(want)
	}
	return nil
}

var (
	vaultRefRE = regexp.MustCompile(`^vault://[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$`)
	keyVaultRE = regexp.MustCompile(`^https://[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]\.vault\.(azure\.net|usgovcloudapi\.net|azure\.cn)/secrets/[A-Za-z0-9-]{1,127}(/[0-9a-fA-F]{32})?/?$`)
)

// CheckSecretRef checks a reference to a secret (the licence key of a new install): vault://
// followed by a path, or an Azure Key Vault secret URI. Anything else may be the secret itself,
// so the error never repeats the value.
func CheckSecretRef(ref string) error {
	if len(ref) <= 512 && (vaultRefRE.MatchString(ref) || keyVaultRE.MatchString(ref)) {
		return nil
	}
	return errors.New("is not a reference to where the key is kept (vault://path/to/key, or https://<vault>.vault.azure.net/secrets/<name>); " +
		"never put the key itself in an inventory: it would travel into task texts, history and chat cards (the value is not repeated here)")
}

// Text limits for what people type: names, who acted, notes, decisions.
const (
	MaxNameLen     = 128  // display names, --by
	MaxNoteLen     = 2000 // notes and reasons
	MaxDecisionLen = 32
)

// CheckText refuses text longer than max characters or containing control characters (escape
// sequences could rewrite an operator's terminal; newlines could forge log lines or card
// sections). Tabs are refused too: one line of plain text is all any of these fields need.
func CheckText(s string, max int) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8 text")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Errorf("is %d characters long; at most %d", n, max)
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r) {
			return fmt.Errorf("contains the control character %U: plain text only", r)
		}
	}
	return nil
}

// Printable makes text safe for a terminal or a log line: escape sequences (ANSI CSI/OSC) and
// other control characters are removed, invalid UTF-8 is replaced, and text longer than max
// characters (0: no limit) is cut with an ellipsis.
func Printable(s string, max int) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == 0x1b { // ESC: skip the whole sequence
			i += EscapeSequenceLen(s[i:])
			continue
		}
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			r = '\uFFFD'
		case r == '\n' || r == '\r' || r == '\t':
			r = ' '
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r):
			continue
		}
		if max > 0 && n == max {
			b.WriteRune('…')
			break
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// EscapeSequenceLen is the length of the terminal escape sequence at the start of s (which
// starts with ESC): CSI (ESC [ … final byte), OSC (ESC ] … BEL or ESC \), or ESC and one
// character.
func EscapeSequenceLen(s string) int {
	if len(s) < 2 {
		return len(s)
	}
	switch s[1] {
	case '[':
		for i := 2; i < len(s); i++ {
			if s[i] >= 0x40 && s[i] <= 0x7e {
				return i + 1
			}
		}
		return len(s)
	case ']':
		for i := 2; i < len(s); i++ {
			if s[i] == 0x07 {
				return i + 1
			}
			if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
		}
		return len(s)
	}
	return 2
}

// InputRules are what CheckInput needs beyond the spec: the clock and the allowed hosts.
type InputRules struct {
	// Now is the starter's clock: a window that has closed by then is refused. Zero: not checked.
	Now time.Time
	// OrgHostSuffixes is the Dataverse allow-list (nil: DefaultOrgHostSuffixes).
	OrgHostSuffixes []string
}

// CheckInput checks what Validate leaves to the place input enters (the starter): the time
// zone exists and the window has not closed, orgUrl is on an allowed Dataverse host, package
// references stay inside the packages folder, licenseKeyRef is a reference, names are plain
// text of sane length. Every problem is a FieldError.
func (t Tenant) CheckInput(r InputRules) error {
	var errs []error
	bad := func(field string, err error) {
		errs = append(errs, FieldError{Field: field, Problem: err.Error()})
	}
	if err := CheckText(t.DisplayName, MaxNameLen); err != nil {
		bad("displayName", err)
	}
	if t.OrgURL != "" {
		if _, err := CheckOrgURL(t.OrgURL, r.OrgHostSuffixes); err != nil {
			bad("orgUrl", err)
		}
	}
	if t.SolutionPackage != "" {
		if err := CheckPackageRef(t.SolutionPackage); err != nil {
			bad("solutionPackage", err)
		}
	}
	if t.PortalPackage != "" {
		if err := CheckPackageRef(t.PortalPackage); err != nil {
			bad("portalPackage", err)
		}
	}
	if t.LicenseKeyRef != "" {
		if err := CheckSecretRef(t.LicenseKeyRef); err != nil {
			bad("licenseKeyRef", err)
		}
	}
	for i, pc := range t.PartnerCenters {
		if err := CheckText(pc.Name, MaxNameLen); err != nil {
			bad(fmt.Sprintf("partnerCenters[%d].name", i), err)
		}
	}
	if tzRE.MatchString(t.TimeZone) {
		if loc, err := time.LoadLocation(t.TimeZone); err != nil {
			bad("timeZone", fmt.Errorf("%q is not a known IANA time zone (a spelling mistake? e.g. Europe/London, America/New_York)", t.TimeZone))
		} else if _, closes, err := t.Window.In(loc); err == nil && !r.Now.IsZero() && !closes.After(r.Now) {
			bad("window.start", fmt.Errorf("the window %s %s for %s closed at %s UTC, before now (%s UTC): set a window in the future",
				t.Window.Start, t.TimeZone, t.Window.Length, closes.UTC().Format("2006-01-02 15:04"), r.Now.UTC().Format("2006-01-02 15:04")))
		}
	}
	return errors.Join(errs...)
}
