package msauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"

	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
)

// AADSTS codes that need a person, not a retry.
const (
	codeConsentRequired     = "AADSTS65001"
	codeAppNotInTenant      = "AADSTS700016"
	codeNoServicePrincipal  = "AADSTS7000229"
	codeTenantNotFound      = "AADSTS90002"
	codeInvalidSecret       = "AADSTS7000215"
	codeExpiredSecret       = "AADSTS7000222"
	codeBadCertificate      = "AADSTS700027"
	codeResourceNotInTenant = "AADSTS500011"
	codeAppDisabled         = "AADSTS7000112"
	codeBlockedByCA         = "AADSTS53003"
)

var aadstsRE = regexp.MustCompile(`AADSTS\d+`)

// tokenErrorBody is Entra ID's OAuth error answer.
type tokenErrorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
}

// mapError turns an MSAL failure into an *msapi.Error with Service "login". The token
// endpoint's answers carry no token on failure, and MSAL's request (which carries the client
// secret or assertion in its body) is reduced to its method and path.
func (p *TokenProvider) mapError(err error, op, tenantID, scope string) error {
	e := &msapi.Error{Service: "login", Operation: op}

	var ce msalerrors.CallErr
	if errors.As(err, &ce) && ce.Resp != nil {
		if ce.Req != nil && ce.Req.URL != nil {
			e.Method, e.Path = ce.Req.Method, ce.Req.URL.Path
		}
		e.Status = ce.Resp.StatusCode
		var body tokenErrorBody
		if ce.Resp.Body != nil {
			raw, _ := io.ReadAll(io.LimitReader(ce.Resp.Body, 1<<20))
			_ = json.Unmarshal(raw, &body)
		}
		e.Code = aadstsCode(body)
		if e.Code == "" {
			e.Code = body.Error
		}
		e.Message = firstLine(body.ErrorDescription)
		if e.Message == "" {
			e.Message = http.StatusText(e.Status)
		}
		if e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable {
			e.RetryAfter = msapi.ParseRetryAfter(ce.Resp.Header.Get("Retry-After"), time.Now())
		}
		if hint, ok := p.hintFor(e.Code, tenantID, scope); ok {
			// Permanent until someone acts, whatever status Entra ID used (mostly 400).
			e.Status = http.StatusUnauthorized
			e.Hint = hint
		} else if strings.HasPrefix(e.Code, "AADSTS") && e.Status >= 400 && e.Status < 500 {
			e.Hint = fmt.Sprintf("Entra ID refused the app %s in tenant %s; look %s up at https://login.microsoftonline.com/error?code=%s",
				p.appName, tenantID, e.Code, strings.TrimPrefix(e.Code, "AADSTS"))
		}
		return e
	}

	e.Message = strings.Join(strings.Fields(err.Error()), " ")
	var ue *url.Error
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ue), errors.As(err, &ne):
		e.Hint = "Entra ID did not answer (network, DNS or timeout); the call is retried"
	case strings.Contains(err.Error(), "does not match authority"):
		// MSAL checks the discovery document's issuer against the authority.
		e.Local = true
		e.Hint = fmt.Sprintf("the login host answered with another issuer than %s expects: check authorityHost and any routing of the login host", p.authorityHost)
	default:
		e.Hint = "Entra ID sign-in failed unexpectedly; check the authority host and the route to it"
	}
	return e
}

// hintFor returns the operator's next step for the AADSTS codes no retry cures.
func (p *TokenProvider) hintFor(code, tenantID, scope string) (string, bool) {
	consentURL := fmt.Sprintf("%s/%s/adminconsent?client_id=%s", p.authorityHost, url.PathEscape(tenantID), url.QueryEscape(p.clientID))
	switch code {
	case codeConsentRequired, codeAppNotInTenant, codeNoServicePrincipal:
		return fmt.Sprintf("grant admin consent for app %s in tenant %s: a Global Administrator of that tenant opens %s", p.appName, tenantID, consentURL), true
	case codeTenantNotFound:
		return fmt.Sprintf("tenant %s does not exist in Entra ID: check the tenant ID in the inventory", tenantID), true
	case codeInvalidSecret:
		return fmt.Sprintf("the client secret of app %s is wrong: check the %s (it must hold the secret's value, not its ID)", p.appName, p.credSource), true
	case codeExpiredSecret:
		return fmt.Sprintf("the client secret of app %s has expired: create a new one in the app registration and put it in the %s", p.appName, p.credSource), true
	case codeBadCertificate:
		return fmt.Sprintf("Entra ID rejected the certificate: check the %s; its public certificate must be uploaded to app %s's registration and not be expired", p.credSource, p.appName), true
	case codeResourceNotInTenant:
		return fmt.Sprintf("the resource of scope %s is not in tenant %s: check the organisation URL, or that the service is provisioned in that tenant", scope, tenantID), true
	case codeAppDisabled:
		return fmt.Sprintf("app %s is disabled in tenant %s: a Global Administrator enables it under Enterprise applications", p.appName, tenantID), true
	case codeBlockedByCA:
		return fmt.Sprintf("a conditional access policy in tenant %s blocks app %s: exclude the app's service principal from that policy", tenantID, p.appName), true
	}
	return "", false
}

func aadstsCode(b tokenErrorBody) string {
	if len(b.ErrorCodes) > 0 {
		return "AADSTS" + strconv.Itoa(b.ErrorCodes[0])
	}
	return aadstsRE.FindString(b.ErrorDescription)
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// OrchestratorFault reports whether err is a sign-in failure of the orchestrator's own
// credential or app registration, as opposed to a missing consent in one tenant: the same
// answer comes from every tenant, so operators fix it once and no tenant is to blame.
// https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
func OrchestratorFault(err error) bool {
	var me *msapi.Error
	if !errors.As(err, &me) || me.Service != "login" {
		return false
	}
	switch me.Code {
	case codeInvalidSecret, // AADSTS7000215: wrong client secret
		codeExpiredSecret,  // AADSTS7000222: expired client secret
		codeBadCertificate, // AADSTS700027: certificate unknown to the app registration or expired
		codeAppDisabled,    // AADSTS7000112: the application is disabled
		"AADSTS700024":     // client assertion outside its validity: the worker's clock
		return true
	}
	return false
}
